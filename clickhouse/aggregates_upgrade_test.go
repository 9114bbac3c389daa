package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// v9Aggregates returns the statements that make sessions_daily and
// crash_groups_daily, and their views, as releases before migration 10
// made them: plain sums, which count an event stored twice twice.
func v9Aggregates(d Dialect, o SchemaOptions) []string {
	o = o.withDefaults()
	s := newSchema(o)
	sessions := *s.sessionsDaily
	sessions.columns = append(slices.Clone(sessions.columns[:7]),
		column{name: "starts", typ: aggregateType("sum", "UInt64"), comment: "Session starts: sumMerge(starts)."},
		column{name: "ends", typ: aggregateType("sum", "UInt64"), comment: "Session ends: sumMerge(ends)."},
		column{name: "sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions: uniqMerge(sessions)."},
		column{name: "total_duration_ms", typ: aggregateType("sum", "UInt64"), comment: "Sum of lengths: sumMerge(total_duration_ms)."},
		column{name: "total_foreground_ms", typ: aggregateType("sum", "UInt64"), comment: "Sum of foreground times: sumMerge(total_foreground_ms)."},
	)
	crashes := *s.crashGroups
	crashes.orderBy = crashes.orderBy[:len(crashes.orderBy)-1] // no handled
	crashes.columns = append(slices.Clone(crashes.columns[:8]),
		column{name: "crashes", typ: aggregateType("sum", "UInt64"), comment: "Crashes: sumMerge(crashes)."},
		column{name: "fatal", typ: aggregateType("sum", "UInt64"), comment: "Crashes that ended the process: sumMerge(fatal)."},
		column{name: "sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions: uniqMerge(sessions)."},
		column{name: "fatal_sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions that crashed: uniqMerge(fatal_sessions)."},
		column{name: "first_seen", typ: aggregateType("min", "DateTime('UTC')"), comment: "Earliest event_time: minMerge(first_seen)."},
		column{name: "last_seen", typ: aggregateType("max", "DateTime('UTC')"), comment: "Latest event_time: maxMerge(last_seen)."},
		column{name: "message", typ: aggregateType("any", "String"), comment: "One message: anyMerge(message)."},
		column{name: "culprit", typ: aggregateType("any", "String"), comment: "One culprit: anyMerge(culprit)."},
	)
	stmts := append(sessions.create(d, o), crashes.create(d, o)...)
	return append(stmts, fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.sessions_daily_mv TO %[1]s.sessions_daily AS SELECT
    event_date, app_id, app_version, os_name, os_version, country, region,
    sumState(toUInt64(phase = 'start')) AS starts, sumState(toUInt64(phase = 'end')) AS ends,
    uniqStateIf(session_key, session_key != 0) AS sessions,
    sumState(duration_ms) AS total_duration_ms, sumState(foreground_ms) AS total_foreground_ms
FROM %[1]s.sessions
GROUP BY event_date, app_id, app_version, os_name, os_version, country, region`, o.Database),
		fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.crash_groups_daily_mv TO %[1]s.crash_groups_daily AS SELECT
    app_id, event_date, fingerprint, exception_type, app_version, os_name, country, region,
    sumState(toUInt64(1)) AS crashes, sumState(toUInt64(handled = 0)) AS fatal,
    uniqStateIf(session_key, session_key != 0) AS sessions,
    uniqStateIf(session_key, session_key != 0 AND handled = 0) AS fatal_sessions,
    minState(event_time) AS first_seen, maxState(event_time) AS last_seen, anyState(message) AS message,
    anyState(if(has(frame_in_app, 1), frame_function[indexOf(frame_in_app, 1)], frame_function[1])) AS culprit
FROM %[1]s.crashes
GROUP BY app_id, event_date, fingerprint, exception_type, app_version, os_name, country, region`, o.Database))
}

// makeV9 turns db, migrated to the current schema's first nine
// migrations, into a database as release 9 left it: the aggregates and
// views of v9Aggregates.
func makeV9(t *testing.T, r sqlRunner, d Dialect, o SchemaOptions) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{ViewSessionsDaily, ViewCrashGroupsDaily, TableSessionsDaily, TableCrashGroupsDaily} {
		if err := r.exec(ctx, fmt.Sprintf("DROP TABLE %s.%s", o.Database, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range v9Aggregates(d, o) {
		if err := r.exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
}

// upgradeSteps stores rows as a v9 database held them and checks the
// upgrade (migrate, run on r) against what query reads: the old
// aggregates count a resent batch twice; after the upgrade the new ones
// count each event once, also of a day only the event tables hold, and
// of events stored again after it; the old tables are kept under their
// legacy names with the day the event tables no longer hold; a second
// run changes nothing.
func upgradeSteps(t *testing.T, query queryFunc, store func(*pipeline.Rows), dropDay func(time.Time), migrate func() error, db string) {
	t.Helper()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	gone := today.AddDate(0, 0, -200) // past the event tables' retention
	all := retryRows(today, 40)
	old := retryRows(gone, 10)
	store(all)
	store(all)
	store(old)
	dropDay(gone)
	crashes := func(table string) string {
		return query(t, fmt.Sprintf("SELECT toString(sumMerge(crashes)) FROM %s.%s WHERE event_date = today()", db, table))[0][0]
	}
	if got := crashes(TableCrashGroupsDaily); got != "80" {
		t.Fatalf("before the upgrade: %s crashes of 40 stored twice, want 80 (the defect)", got)
	}

	if err := migrate(); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	checkAggregates(t, query, db, all)
	if got := crashes(legacyName(TableCrashGroupsDaily)); got != "80" {
		t.Errorf("%s keeps %s crashes of today, want the 80 it had", legacyName(TableCrashGroupsDaily), got)
	}
	q := "SELECT toString(count()) FROM %s.%s WHERE event_date = toDate('%s')"
	if n := query(t, fmt.Sprintf(q, db, legacyName(TableSessionsDaily), gone.Format(time.DateOnly))); n[0][0] == "0" {
		t.Errorf("%s lost the day the event tables no longer hold", legacyName(TableSessionsDaily))
	}
	if n := query(t, fmt.Sprintf(q, db, TableSessionsDaily, gone.Format(time.DateOnly))); n[0][0] != "0" {
		t.Errorf("%s has %s rows of a day the event tables no longer hold", TableSessionsDaily, n[0][0])
	}

	// The new views count events stored again once; a second run of the
	// migration (interrupted before it was recorded, or by another
	// collector) changes nothing.
	store(all)
	if err := migrate(); err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkAggregates(t, query, db, all)
	if got := crashes(legacyName(TableCrashGroupsDaily)); got != "80" {
		t.Errorf("after a second run %s has %s crashes of today, want 80", legacyName(TableCrashGroupsDaily), got)
	}
	tables := query(t, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' AND name LIKE '%%daily%%' ORDER BY name", db))
	if got := fmt.Sprint(tables); got != "[[crash_groups_daily] [crash_groups_daily_legacy] [crash_groups_daily_mv] [sessions_daily] [sessions_daily_legacy] [sessions_daily_mv]]" {
		t.Errorf("tables %s", got)
	}
}

// TestUpgradeAggregatesIntegration upgrades a database whose aggregates
// count repeated events twice (release 9) on 18.16: see upgradeSteps.
func TestUpgradeAggregatesIntegration(t *testing.T) {
	c := openClient(t, Config{})
	ctx := context.Background()
	if _, err := c.migrate(ctx, Migrations()[:9]); err != nil {
		t.Fatal(err)
	}
	makeV9(t, connRunner{c: c}, c.dialect, c.schema.opts)
	store := func(rows *pipeline.Rows) {
		if err := c.Insert(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	dropDay := func(day time.Time) {
		for _, table := range []string{TableSessions, TableCrashes} {
			if err := c.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", c.Database(), table, day.Format("20060102"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two collectors upgrade at once, as replicas starting together do.
	other := openClient(t, Config{Database: c.Database()})
	runs := 0
	migrate := func() error {
		runs++
		if runs > 1 {
			return c.replaceAggregates(ctx)
		}
		errs := make(chan error, 2)
		for _, client := range []*Client{c, other} {
			go func() {
				applied, err := client.Migrate(ctx)
				if want := versionsOf(Migrations()[9:]); err == nil && fmt.Sprint(applied) != fmt.Sprint(want) {
					err = fmt.Errorf("applied %v, want %v", applied, want)
				}
				errs <- err
			}()
		}
		return errors.Join(<-errs, <-errs)
	}
	upgradeSteps(t, connQuery(c), store, dropDay, migrate, c.Database())

	// The legacy tables expire with the new ones.
	dropped, err := c.EnforceRetention(ctx, time.Now().AddDate(2, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(dropped, func(p string) bool { return strings.HasPrefix(p, legacyName(TableSessionsDaily)+"/") }) {
		t.Errorf("retention dropped %v, nothing of %s", dropped, legacyName(TableSessionsDaily))
	}
}

// chdbSQL is a sqlRunner on chDB.
type chdbSQL struct{ c *chdbRunner }

func (r chdbSQL) exec(ctx context.Context, sql string) error { return r.c.db.Exec(ctx, sql) }

func (r chdbSQL) column(ctx context.Context, sql string) ([]string, error) {
	out, err := r.c.db.Query(ctx, sql, "TabSeparated")
	if err != nil {
		return nil, err
	}
	var col []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" {
			col = append(col, strings.Split(line, "\t")[0])
		}
	}
	return col, nil
}

// TestUpgradeAggregatesOnChDB is TestUpgradeAggregatesIntegration on
// ClickHouse 26.x, with the modern schema and the legacy one.
func TestUpgradeAggregatesOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	ch.eachDialect(t, func(t *testing.T, d Dialect) {
		o := SchemaOptions{Database: "upgrade_aggregates_" + dialectName(d)}.withDefaults()
		ch.exec("DROP DATABASE IF EXISTS " + o.Database)
		ch.exec("CREATE DATABASE " + o.Database)
		ch.apply(d, o, Migrations()[:9])
		r := chdbSQL{ch}
		makeV9(t, r, d, o)
		store := func(rows *pipeline.Rows) {
			for _, stmt := range insertSQL(o.Database, rows, "") {
				ch.exec(stmt)
			}
		}
		dropDay := func(day time.Time) {
			for _, table := range []string{TableSessions, TableCrashes} {
				ch.exec(fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", o.Database, table, day.Format("20060102")))
			}
		}
		migrate := func() error {
			return replaceAggregates(context.Background(), r, []sqlRunner{r}, d, newSchema(o), zap.NewNop())
		}
		upgradeSteps(t, ch.query(), store, dropDay, migrate, o.Database)
	})
}
