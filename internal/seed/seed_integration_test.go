package seed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chdb"
	"github.com/consentry/consentry/internal/chdb/chdbtest"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/fakedata"
)

// bulkRows is how many rows the integration tests make with
// BulkCrashesSQL.
const bulkRows = 200_000

// TestClickHouse stores Rows and BulkCrashesSQL's rows in a real
// ClickHouse (the installed one, 18.16 on Debian 12) through the schema
// the collector creates.
func TestClickHouse(t *testing.T) {
	srv := chtest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const db = "seed_test"
	c, err := clickhouse.Open(ctx, clickhouse.Config{Addr: srv.Addr(), Database: db, Username: srv.User(), Password: srv.Password()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Logf("ClickHouse %s", c.Dialect())
	conn := chtest.Conn(t, srv)

	t.Run("Columns", func(t *testing.T) {
		// BulkCrashesSQL names every column of the crashes table.
		got := chtest.QueryStrings(ctx, t, conn, fmt.Sprintf("SELECT name FROM system.columns WHERE database = '%s' AND table = 'crashes' ORDER BY name", db))
		if want := slices.Sorted(slices.Values(crashColumns)); !slices.Equal(got, want) {
			t.Errorf("crashes has columns\n%q\nBulkCrashesSQL names\n%q", got, want)
		}
	})

	t.Run("Rows", func(t *testing.T) {
		cfg := Config{AppID: "com.example.seedtest", End: time.Now(), Days: 3, SessionsPerDay: 50, Seed: 5}
		rows := Rows(cfg)
		if err := c.Insert(ctx, rows); err != nil {
			t.Fatalf("insert: %v", err)
		}
		for _, tc := range []struct {
			table string
			want  int
		}{
			{clickhouse.TableSessions, len(rows.Sessions)},
			{clickhouse.TableGestures, len(rows.Gestures)},
			{clickhouse.TableCrashes, len(rows.Crashes)},
			{clickhouse.TableCustomEvents, len(rows.Customs)},
			{clickhouse.TableDiagnostics, len(rows.Diagnostics)},
		} {
			n, err := c.CountRows(ctx, tc.table, cfg.AppID)
			if err != nil {
				t.Fatal(err)
			}
			if n != uint64(tc.want) || n == 0 {
				t.Errorf("%s: %d rows, want %d", tc.table, n, tc.want)
			}
		}
		var want []string
		for d := range cfg.Days {
			want = append(want, fmt.Sprintf("%s 50", cfg.FirstDay().AddDate(0, 0, d).Format(time.DateOnly)))
		}
		got := chtest.QueryStrings(ctx, t, conn, fmt.Sprintf(`SELECT concat(toString(event_date), ' ', toString(count()))
FROM %s.sessions WHERE app_id = '%s' AND phase = 'start' GROUP BY event_date ORDER BY event_date`, db, cfg.AppID))
		if !slices.Equal(got, want) {
			t.Errorf("session starts per day: %q, want %q", got, want)
		}
	})

	t.Run("BulkCrashesSQL", func(t *testing.T) {
		end := time.Now()
		start := time.Now()
		if err := conn.Exec(ctx, BulkCrashesSQL(db, bulkRows, 30, end)); err != nil {
			t.Fatalf("bulk insert: %v", err)
		}
		elapsed := time.Since(start)
		t.Logf("BulkCrashesSQL: %d rows in %v (%.0f rows/s) on ClickHouse %s", bulkRows, elapsed.Round(time.Millisecond), bulkRows/elapsed.Seconds(), c.Dialect())
		checkBulk(t, func(sql string) string {
			got := chtest.QueryStrings(ctx, t, conn, sql)
			if len(got) != 1 {
				t.Fatalf("%d rows, want 1:\n%s", len(got), sql)
			}
			return got[0]
		}, db, bulkRows, 30, end)
	})
}

// TestBulkCrashesSQLOnChDB runs BulkCrashesSQL on a current ClickHouse
// (chDB, in process) against the schema that servers from 21.8 on get.
func TestBulkCrashesSQLOnChDB(t *testing.T) {
	db := chdbtest.Open(t, chdb.Config{})
	ctx := t.Context()
	version, err := db.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := clickhouse.ParseVersion(version)
	if err != nil || !d.Modern {
		t.Fatalf("chDB %q: %+v, %v; want a modern server", version, d, err)
	}
	const database = "seed_bulk"
	o := clickhouse.SchemaOptions{Database: database}
	if err := db.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+database); err != nil {
		t.Fatal(err)
	}
	for _, m := range clickhouse.Migrations() {
		for _, stmt := range m.Statements(d, o) {
			if err := db.Exec(ctx, stmt); err != nil {
				t.Fatalf("migration %d: %v\n%s", m.Version, err, stmt)
			}
		}
	}
	const n = 100_000
	end := time.Now()
	start := time.Now()
	if err := db.Exec(ctx, BulkCrashesSQL(database, n, 14, end)); err != nil {
		t.Fatalf("bulk insert: %v", err)
	}
	t.Logf("BulkCrashesSQL: %d rows in %v on chDB %s", n, time.Since(start).Round(time.Millisecond), version)
	checkBulk(t, func(sql string) string {
		out, err := db.Query(ctx, sql, "TabSeparatedRaw")
		if err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
		return strings.TrimSpace(out)
	}, database, n, 14, end)
}

// checkBulk checks the rows BulkCrashesSQL made in database, with query
// returning the one String of a query's one row.
func checkBulk(t *testing.T, query func(string) string, database string, n, days int, end time.Time) {
	t.Helper()
	last := end.UTC().Truncate(24 * time.Hour)
	first := last.AddDate(0, 0, -(days - 1))
	checks := []struct{ expr, want string }{
		{"count()", fmt.Sprint(n)},
		{"uniqExact(fingerprint)", fmt.Sprint(BulkFingerprints)},
		{"uniqExact(event_id)", fmt.Sprint(n)},
		{"min(event_date)", first.Format(time.DateOnly)},
		{"max(event_date)", last.Format(time.DateOnly)},
		{"countIf(toDate(event_time) != event_date OR toSecond(event_time) != 0)", "0"},
		{`countIf(length(frame_module) = 0 OR length(frame_function) != length(frame_module) OR length(frame_file) != length(frame_module)
        OR length(frame_line) != length(frame_module) OR length(frame_in_app) != length(frame_module))`, "0"},
		{"countIf(session_key = 0 OR message = '' OR exception_type = '' OR thread = '' OR consent_key != '')", "0"},
		{"uniqExact(app_version)", fmt.Sprint(len(appVersions))},
		{"uniqExact(os_version)", fmt.Sprint(len(fakedata.OSVersions(fakedata.OSAndroid)) + len(fakedata.OSVersions(fakedata.OSIOS)))},
		{"uniqExact(device_model)", fmt.Sprint(len(fakedata.Devices()))},
		{"uniqExact(region)", fmt.Sprint(len(fakedata.Places()))},
		{"countIf(device_class = 'tablet') > 0 AND countIf(device_class = 'tablet' AND device_model != 'iPad13,4') = 0", "1"},
		{"uniqExact(exception_type)", "16"},
		{"countIf(handled = 1) > 0 AND countIf(handled = 0) > 0 AND countIf(arraySum(frame_in_app) = 1) > 0", "1"},
	}
	exprs := make([]string, len(checks))
	var want []string
	for i, c := range checks {
		exprs[i] = "toString(" + c.expr + ")"
		want = append(want, c.want)
	}
	sql := fmt.Sprintf("SELECT concat(%s)\nFROM %s.crashes\nWHERE app_id = '%s'", strings.Join(exprs, ", '|',\n    "), database, DefaultAppID)
	if got := strings.Split(query(sql), "|"); !slices.Equal(got, want) {
		for i, c := range checks {
			if i >= len(got) || got[i] != c.want {
				t.Errorf("%s = %q, want %s", c.expr, got[min(i, len(got)-1)], c.want)
			}
		}
	}
	// Group sizes are skewed: the largest is many times the median.
	sizes := query(fmt.Sprintf(`SELECT concat(toString(max(n)), ' ', toString(quantileExact(0.5)(n)))
FROM (SELECT fingerprint, count() AS n FROM %s.crashes WHERE app_id = '%s' GROUP BY fingerprint)`, database, DefaultAppID))
	var largest, median int
	if _, err := fmt.Sscan(sizes, &largest, &median); err != nil || largest < 20*median {
		t.Errorf("group sizes: largest and median %q, want a skew of 20 at least", sizes)
	}
}
