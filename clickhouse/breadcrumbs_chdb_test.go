package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestBreadcrumbsOnChDB is TestBreadcrumbsUpgradeIntegration on ClickHouse
// 26.x (chDB), with the modern schema and the legacy one: an upgraded
// database has the breadcrumb columns of a new one, codecs and
// LowCardinality included, and stores and reads them.
func TestBreadcrumbsOnChDB(t *testing.T) {
	ctx := context.Background()
	i := breadcrumbsMigrationIndex(t)
	ch := newChdbRunner(t)
	ch.eachDialect(t, func(t *testing.T, d Dialect) {
		name := dialectName(d)
		run := func(o SchemaOptions, ms []Migration) {
			ch.exec("CREATE DATABASE IF NOT EXISTS " + o.Database)
			ch.apply(d, o, ms)
		}
		up := SchemaOptions{Database: "breadcrumbs_upgrade_" + name}
		run(up, Migrations()[:i])
		dropBreadcrumbColumns(t, func(q string) error { return ch.db.Exec(ctx, q) }, up)
		run(up, Migrations()[i:])
		fresh := SchemaOptions{Database: "breadcrumbs_fresh_" + name}
		run(fresh, Migrations())
		q := `SELECT database LIKE '%%_private', table, name, type, comment, compression_codec FROM system.columns
WHERE database IN ('%[1]s', '%[1]s_private') AND table IN ('crashes', 'held_crashes') ORDER BY database, table, position`
		got, want := ch.rows(fmt.Sprintf(q, up.Database)), ch.rows(fmt.Sprintf(q, fresh.Database))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("upgraded columns\n%v\nnew\n%v", got, want)
		}
		if wantType := map[bool]string{true: "Array(LowCardinality(String))", false: "Array(String)"}[d.Modern]; !strings.Contains(fmt.Sprint(got), "breadcrumb_names "+wantType) {
			t.Errorf("breadcrumb_names is not %s: %v", wantType, got)
		}
		ch.exec(fmt.Sprintf(`INSERT INTO %s.crashes (app_id, event_date, event_time, event_id, exception_type, breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms)
VALUES ('com.example.notes', today(), now(), generateUUIDv4(), 'E', ['screen_view', 'tap'], ['editor', 'editor'], [60000, 0])`, up.Database))
		if got := ch.rows(fmt.Sprintf("SELECT breadcrumb_types[-1], breadcrumb_names[1], arraySum(breadcrumb_offsets_ms) FROM %s.crashes", up.Database)); fmt.Sprint(got) != "[[tap editor 60000]]" {
			t.Errorf("read back %v", got)
		}
	})
}
