package clickhouse

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/internal/chdb"
	"github.com/consentry/consentry/internal/chdb/chdbtest"
	"github.com/consentry/consentry/pipeline"
)

// openChDB opens chDB for t (closed when t ends) and returns the modern
// dialect it speaks and the legacy one of Debian's 18.16. It fails t
// without the library (see scripts/deps.sh) and skips it under -short.
func openChDB(t *testing.T) (db *chdb.DB, modern, legacy Dialect) {
	t.Helper()
	db = chdbtest.Open(t, chdb.Config{})
	version, err := db.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if modern, err = ParseVersion(version); err != nil || !modern.Modern {
		t.Fatalf("chDB %q: %+v, %v; want a modern server", version, modern, err)
	}
	if legacy, err = ParseVersion("18.16.1"); err != nil {
		t.Fatal(err)
	}
	return db, modern, legacy
}

// insertSQL returns the INSERT statements that store rows' crashes and
// sessions in database, with the deduplication token if not "".
func insertSQL(database string, rows *pipeline.Rows, token string) []string {
	common := func(c *pipeline.Common) string {
		return fmt.Sprintf("%s, toDate(%d), toDateTime(%d), toUUID(%s), %d, %s, %s, %s, %s, %s, %s",
			quote(c.AppID), c.EventTime.Unix()/86400, c.EventTime.Unix(), quote(uuid.UUID(c.EventID).String()), c.SessionKey,
			quote(c.AppVersion), quote(c.OSName), quote(c.OSVersion), quote(c.Country), quote(c.Region), quote(c.DeviceModel))
	}
	const commonCols = "app_id, event_date, event_time, event_id, session_key, app_version, os_name, os_version, country, region, device_model"
	settings := ""
	if token != "" {
		settings = " SETTINGS insert_deduplication_token = " + quote(token)
	}
	var stmts []string
	if len(rows.Crashes) > 0 {
		values := make([]string, len(rows.Crashes))
		for i := range rows.Crashes {
			r := &rows.Crashes[i]
			var funcs, inApp []string
			for _, f := range r.Frames {
				funcs, inApp = append(funcs, quote(f.Function)), append(inApp, fmt.Sprint(b2u(f.InApp)))
			}
			values[i] = fmt.Sprintf("(%s, %s, %d, %s, [%s], [%s], %d, %s, %s)", common(&r.Common), quote(r.ExceptionType), r.Fingerprint, quote(r.Message),
				strings.Join(funcs, ", "), strings.Join(inApp, ", "), b2u(r.Handled), quote(r.Thread), quote(r.AppState))
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s.%s (%s, exception_type, fingerprint, message, frame_function, frame_in_app, handled, thread, app_state)%s VALUES %s",
			database, TableCrashes, commonCols, settings, strings.Join(values, ", ")))
	}
	if len(rows.Sessions) > 0 {
		values := make([]string, len(rows.Sessions))
		for i := range rows.Sessions {
			r := &rows.Sessions[i]
			values[i] = fmt.Sprintf("(%s, %s, %d, %d)", common(&r.Common), quote(r.Phase), r.DurationMs, r.ForegroundMs)
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s.%s (%s, phase, duration_ms, foreground_ms)%s VALUES %s",
			database, TableSessions, commonCols, settings, strings.Join(values, ", ")))
	}
	return stmts
}

// query returns a queryFunc on c.
func (c *chdbRunner) query() queryFunc {
	return func(t *testing.T, sql string) [][]string {
		t.Helper()
		c.t = t
		return c.rows(sql)
	}
}

// TestAggregatesOnChDB is TestAggregatesCountEachEventOnceIntegration on
// ClickHouse 26.x, with the modern schema and the legacy one: events
// stored again, by a resent batch or by the spool repeating an insert
// with its deduplication token, count once in the aggregates.
func TestAggregatesOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	all := retryRows(day, 60)
	part := &pipeline.Rows{Crashes: all.Crashes[10:25], Sessions: all.Sessions[20:50]}
	type insert struct {
		rows  *pipeline.Rows
		token string
	}
	for _, d := range []Dialect{ch.modern, ch.legacy} {
		for _, tc := range []struct {
			name    string
			inserts []insert
			merge   bool
		}{
			{"once", []insert{{all, ""}}, false},
			{"resent", []insert{{all, ""}, {all, ""}}, false},
			{"resent in part", []insert{{all, ""}, {part, ""}}, false},
			{"redone by the spool", []insert{{all, "spool:1:60"}, {all, "spool:1:60"}}, false},
			{"resent and merged", []insert{{all, ""}, {all, ""}}, true},
		} {
			t.Run(dialectName(d)+"/"+tc.name, func(t *testing.T) {
				ch.t = t
				o := SchemaOptions{Database: "agg_" + strings.NewReplacer("/", "_", " ", "_").Replace(strings.ToLower(t.Name()[len("TestAggregatesOnChDB/"):]))}
				ch.exec("DROP DATABASE IF EXISTS " + o.Database)
				ch.migrate(d, o)
				for _, in := range tc.inserts {
					for _, stmt := range insertSQL(o.Database, in.rows, in.token) {
						ch.exec(stmt)
					}
				}
				if tc.merge {
					for _, table := range []string{TableCrashes, TableSessions, TableCrashGroupsDaily, TableSessionsDaily} {
						ch.exec(fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", o.Database, table))
					}
				}
				checkAggregates(t, ch.query(), o.Database, all)
			})
		}
	}
}
