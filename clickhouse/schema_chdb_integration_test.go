package clickhouse

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chdb"
)

// TestSchemaOnChDB runs the schema on a current ClickHouse (chDB 26.x, in
// process): the modern DDL that servers from 21.8 get, and the legacy DDL,
// which must run on a modern engine too. chDB allows one connection per
// process, so every check shares this test's.
func TestSchemaOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	modern, legacy := ch.modern, ch.legacy
	t.Logf("chDB %s", modern)

	t.Run("modern", func(t *testing.T) {
		ch.t = t
		o := SchemaOptions{Database: "consentry"}
		ch.migrate(modern, o)
		ch.exercise(o)
		// Table comments and TTLs are where the dialects differ.
		for _, row := range ch.rows(fmt.Sprintf("SELECT name, comment, engine_full FROM system.tables WHERE database = 'consentry' AND name NOT IN ('%s', '%s')", ViewSessionsDaily, ViewCrashGroupsDaily)) {
			if row[1] == "" {
				t.Errorf("table %s has no comment", row[0])
			}
			if row[0] != TableMigrations && row[0] != TableApps && row[0] != TableCrashGroupStatus && row[0] != TableCrashGroupChanges && !strings.Contains(row[2], "TTL ") {
				t.Errorf("table %s has no TTL: %s", row[0], row[2])
			}
		}
		ch.runReadmeQueries("consentry")
		ch.runToolQueries("consentry")
		ch.runStoreQueries(modern, "consentry")
		ch.runTriageQueries("consentry")
		// An insert repeated with its deduplication token (as the spool
		// repeats one after a crash) is stored once.
		for range 2 {
			ch.exec("INSERT INTO consentry.sessions (app_id, event_date, event_time, event_id, phase) SETTINGS insert_deduplication_token = 'spool:1:2:sessions' SELECT 'dedup', today(), now(), toUUID('00000000-0000-0000-0000-000000000001'), 'start'")
		}
		if got := ch.rows("SELECT count() FROM consentry.sessions WHERE app_id = 'dedup'"); got[0][0] != "1" {
			t.Errorf("a repeated insert with the same token stored %s rows, want 1", got[0][0])
		}
	})
	t.Run("legacy", func(t *testing.T) {
		ch.t = t
		o := SchemaOptions{Database: "consentry_legacy"}
		ch.migrate(legacy, o)
		ch.exercise(o)
		ch.runReadmeQueries("consentry_legacy")
		ch.runToolQueries("consentry_legacy")
		ch.runStoreQueries(legacy, "consentry_legacy")
		ch.runTriageQueries("consentry_legacy")
	})
	t.Run("upgrade", func(t *testing.T) {
		ch.t = t
		// A database of migrations 1 and 2, as an earlier version made it,
		// upgraded, has the columns of a new one.
		for _, d := range []Dialect{modern, legacy} {
			o := SchemaOptions{Database: "consentry_upgrade_" + dialectName(d)}
			ch.exec("CREATE DATABASE IF NOT EXISTS " + o.Database)
			ch.apply(d, o, Migrations()[:2])
			for _, table := range EventTables() {
				ch.exec(fmt.Sprintf("ALTER TABLE %s.%s DROP COLUMN consent_key", o.Database, table))
			}
			ch.migrate(d, o)
			fresh := "consentry"
			if !d.Modern {
				fresh = "consentry_legacy"
			}
			q := "SELECT table, name, type, default_kind, default_expression, comment, compression_codec FROM system.columns WHERE database = '%s' ORDER BY table, position"
			got, want := ch.rows(fmt.Sprintf(q, o.Database)), ch.rows(fmt.Sprintf(q, fresh))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: upgraded columns\n%v\nnew\n%v", d, got, want)
			}
		}
	})
	t.Run("retention", func(t *testing.T) {
		ch.t = t
		// A changed retention, and a schema created on an old server
		// that was then upgraded, both get the configured TTL.
		ch.syncTTL(SchemaOptions{Database: "consentry", RetentionDays: map[string]int{TableSessions: 30}}, 1)
		// Every table with a TTL, the revocations and salts too.
		ch.syncTTL(SchemaOptions{Database: "consentry_legacy"}, 2*len(Tables())+4)
	})
}

// chdbRunner runs the schema's SQL on chDB for a test.
type chdbRunner struct {
	t  *testing.T
	db *chdb.DB
	// modern is the dialect chDB speaks, legacy the one of Debian's 18.16.
	modern, legacy Dialect
}

// newChdbRunner opens chDB for t (see openChDB).
func newChdbRunner(t *testing.T) *chdbRunner {
	db, modern, legacy := openChDB(t)
	return &chdbRunner{t: t, db: db, modern: modern, legacy: legacy}
}

// dialectName names d's subtests and databases: modern or legacy.
func dialectName(d Dialect) string {
	if d.Modern {
		return "modern"
	}
	return "legacy"
}

// eachDialect runs f as a subtest of t, named by dialectName, for the
// modern dialect and then the legacy one, with c reporting to the subtest.
func (c *chdbRunner) eachDialect(t *testing.T, f func(t *testing.T, d Dialect)) {
	for _, d := range []Dialect{c.modern, c.legacy} {
		t.Run(dialectName(d), func(t *testing.T) {
			c.t = t
			f(t, d)
		})
	}
}

func (c *chdbRunner) exec(sql string) {
	c.t.Helper()
	if err := c.db.Exec(context.Background(), sql); err != nil {
		c.t.Fatalf("%v\n%s", err, sql)
	}
}

// rows runs a query and returns its rows' TabSeparated fields.
func (c *chdbRunner) rows(sql string) [][]string {
	c.t.Helper()
	out, err := c.db.Query(context.Background(), sql, "TabSeparated")
	if err != nil {
		c.t.Fatalf("%v\n%s", err, sql)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// migrate applies every migration, twice: the second run must change
// nothing. As Migrate does, it takes the error that a column to add exists
// as success: the legacy dialect's ADD COLUMN has no IF NOT EXISTS.
func (c *chdbRunner) migrate(d Dialect, o SchemaOptions) {
	c.t.Helper()
	c.exec("CREATE DATABASE IF NOT EXISTS " + o.Database)
	for range 2 {
		c.exec(newSchema(o).migrations.def.create(d, o)[0])
		c.apply(d, o, Migrations())
	}
}

// apply runs the statements of ms, taking the error that a column to add
// exists as success, as Migrate does.
func (c *chdbRunner) apply(d Dialect, o SchemaOptions, ms []Migration) {
	c.t.Helper()
	for _, m := range ms {
		for _, stmt := range m.Statements(d, o) {
			if err := c.db.Exec(context.Background(), stmt); err != nil && !(strings.Contains(stmt, " ADD COLUMN ") && columnExists(err.Error())) {
				c.t.Fatalf("%v\n%s", err, stmt)
			}
		}
	}
}

// literal returns a SQL literal for a value of column col.
func literal(col column) string {
	switch col.name {
	case "phase":
		return "'end'"
	case "duration_ms":
		return "1500"
	case "session_key":
		return "42"
	case "minute":
		return "toStartOfMinute(now())"
	case "expires_at":
		return "now() + 3600"
	}
	switch col.typ.legacy {
	case "String":
		return "'" + col.name + "'"
	case "Date":
		return "today()"
	case "DateTime('UTC')":
		return "now()"
	case "UUID":
		return "generateUUIDv4()"
	case "UInt8", "UInt32", "UInt64":
		return "1"
	case "Array(String)":
		return "['a', 'b']"
	case "Array(UInt32)", "Array(UInt8)", "Array(Int64)":
		return "[1, 0]"
	case "Array(Float64)":
		return "[2.5]"
	}
	return "unknown type " + col.typ.legacy
}

// exercise inserts a row into every table, with an explicit column list
// as the client does, reads every table, and queries the aggregate.
func (c *chdbRunner) exercise(o SchemaOptions) {
	c.t.Helper()
	s := newSchema(o)
	for _, def := range []*tableDef{s.sessions.def, s.gestures.def, s.crashes.def, s.customs.def, s.diagnostics.def, s.rejects.def, s.migrations.def,
		s.apps.def, s.revocations.def, s.erasures.def, s.crashStatus.def, s.crashChanges.def} {
		var values []string
		for _, col := range def.columns {
			values = append(values, literal(col))
		}
		c.exec(fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES (%s)", o.Database, def.name,
			strings.Join(def.columnNames(), ", "), strings.Join(values, ", ")))
	}
	for _, def := range append(s.dataTables(), s.migrations.def, s.apps.def, s.revocations.def, s.crashStatus.def, s.crashChanges.def) {
		rows := c.rows(fmt.Sprintf("SELECT * FROM %s.%s", o.Database, def.name))
		if len(rows) != 1 || len(rows[0]) != len(def.columns) {
			c.t.Errorf("%s: %d rows %v, want 1 row of %d columns", def.name, len(rows), rows, len(def.columns))
		}
	}
	got := c.rows(fmt.Sprintf(`SELECT uniqExactMerge(starts), uniqExactMerge(ends), uniqMerge(sessions)
FROM %s.sessions_daily GROUP BY event_date, app_id`, o.Database))
	if fmt.Sprint(got) != "[[0 1 1]]" {
		c.t.Errorf("sessions_daily = %v, want 0 starts, 1 end, 1 session", got)
	}
	got = c.rows(fmt.Sprintf(`SELECT uniqExactMerge(crashes), uniqExactMergeIf(crashes, handled = 0), uniqMerge(sessions), uniqMergeIf(sessions, handled = 0), minMerge(first_seen) = maxMerge(last_seen)
FROM %s.crash_groups_daily GROUP BY app_id, fingerprint`, o.Database))
	if fmt.Sprint(got) != "[[1 0 1 0 1]]" {
		c.t.Errorf("crash_groups_daily = %v, want 1 handled crash in 1 session, first seen = last seen", got)
	}
	if n := c.rows(fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s' AND table NOT IN ('%s', '%s') AND comment = ''", o.Database, ViewSessionsDaily, ViewCrashGroupsDaily)); n[0][0] != "0" {
		c.t.Errorf("%s columns without a comment", n[0][0])
	}
}

// syncTTL checks that ttlChanges makes want changes to the tables of o and
// that none remain after they ran.
func (c *chdbRunner) syncTTL(o SchemaOptions, want int) {
	c.t.Helper()
	s := newSchema(o)
	current := func() map[string]string {
		m := make(map[string]string)
		o := o.withDefaults()
		for _, row := range c.rows(fmt.Sprintf("SELECT database, name, create_table_query FROM system.tables WHERE database IN ('%s', '%s')", o.Database, o.PrivateDatabase)) {
			m[row[0]+"."+row[1]] = row[2]
		}
		return m
	}
	stmts := s.ttlChanges(current())
	if len(stmts) != want {
		c.t.Errorf("%d changes %q, want %d", len(stmts), stmts, want)
	}
	for _, stmt := range stmts {
		c.exec(stmt)
	}
	if again := s.ttlChanges(current()); len(again) != 0 {
		c.t.Errorf("changes left after applying them: %q", again)
	}
	if o.RetentionDays[TableSessions] == 30 {
		q := c.rows(fmt.Sprintf("SELECT engine_full FROM system.tables WHERE database = '%s' AND name = 'sessions'", o.Database))
		if !strings.Contains(q[0][0], "TTL event_date + toIntervalDay(30)") {
			c.t.Errorf("sessions: %s", q[0][0])
		}
	}
}

// runReadmeQueries runs the example queries of README.md in database.
func (c *chdbRunner) runReadmeQueries(database string) {
	c.t.Helper()
	for _, q := range readmeQueries(c.t, database) {
		c.rows(q)
	}
	for _, q := range analystsQueries(c.t, database) {
		c.rows(q)
	}
}

// analystsQueries returns the example queries of docs/analysts.md, in
// database. (collector/analysts_integration_test.go runs them on 18.16
// over seeded rows.)
func analystsQueries(t *testing.T, database string) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/analysts.md")
	if err != nil {
		t.Fatal(err)
	}
	_, examples, ok := strings.Cut(string(b), "\n## Example queries\n")
	if !ok {
		t.Fatal("docs/analysts.md: no Example queries section")
	}
	var queries []string
	for _, block := range strings.Split(examples, "```sql\n")[1:] {
		q, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("docs/analysts.md: unterminated sql block")
		}
		queries = append(queries, strings.ReplaceAll(q, "consentry.", database+"."))
	}
	if len(queries) < 10 {
		t.Fatalf("docs/analysts.md: %d example queries", len(queries))
	}
	return queries
}

// runToolQueries runs the queries the tools run, in database.
func (c *chdbRunner) runToolQueries(database string) {
	c.t.Helper()
	for _, q := range toolQueries(database, "com.example.notes") {
		c.rows(q)
	}
}

// runStoreQueries runs the consent store's queries in database and checks
// that the rows exercise inserted read back.
func (c *chdbRunner) runStoreQueries(d Dialect, database string) {
	c.t.Helper()
	for _, q := range storeQueries(d, database) {
		c.rows(q)
	}
	now := time.Now()
	if got := c.rows(appsQuery(database)); len(got) != 1 || got[0][0] != "app_id" || got[0][2] != "['a','b']" {
		c.t.Errorf("apps: %v", got)
	}
	if got := c.rows(revocationsQuery(database, now.Add(-time.Hour), now)); len(got) != 1 || got[0][0] != "consent_hash" {
		c.t.Errorf("revocations: %v", got)
	}
	if got := c.rows(consentRowsQuery(database, EventTables(), "", "app_id", "consent_key")); len(got) != len(EventTables()) || got[0][1] != "1" {
		c.t.Errorf("consent rows: %v", got)
	}
}

// readmeQueries returns the sql blocks of README.md, reading database
// for consentry.
func readmeQueries(t *testing.T, database string) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	blocks := strings.Split(string(b), "```sql\n")
	for _, block := range blocks[1:] {
		q, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatal("README.md: unterminated sql block")
		}
		queries = append(queries, strings.ReplaceAll(q, "consentry.", database+"."))
	}
	if len(queries) < 5 || slices.Contains(queries, "") {
		t.Fatalf("README.md: %d example queries", len(queries))
	}
	return queries
}

// bind returns q's text with its arguments in place, as clickhouse-go
// binds them, for chDB, which takes text only.
func bind(t *testing.T, q query) string {
	t.Helper()
	parts := strings.Split(q.sql, "?")
	if len(parts)-1 != len(q.args) {
		t.Fatalf("%d placeholders, %d arguments:\n%s", len(parts)-1, len(q.args), q.sql)
	}
	var b strings.Builder
	for i, a := range q.args {
		b.WriteString(parts[i])
		switch v := a.(type) {
		case string:
			b.WriteString(quote(v))
		case int, uint64:
			fmt.Fprint(&b, v)
		default:
			t.Fatalf("argument %d: %T is not bound by this test", i, a)
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// runTriageQueries runs the dashboard's queries (package triage's
// Backend) in database.
func (c *chdbRunner) runTriageQueries(database string) {
	c.t.Helper()
	for _, q := range triageQueries(database, "com.example.notes", time.Now().UTC().Truncate(24*time.Hour)) {
		c.rows(bind(c.t, q))
	}
}
