package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/pipeline"
)

// dropBreadcrumbColumns makes the crashes and held crashes tables of a
// database as the release before the breadcrumbs migration left them.
func dropBreadcrumbColumns(t *testing.T, exec func(string) error, o SchemaOptions) {
	t.Helper()
	o = o.withDefaults()
	for _, table := range []string{o.Database + "." + TableCrashes, o.PrivateDatabase + "." + HeldTablePrefix + TableCrashes} {
		for _, col := range breadcrumbColumns {
			if err := exec(fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", table, col)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestBreadcrumbsUpgradeIntegration upgrades, on 18.16, a database the
// release before made: the crashes table and its held table get the
// breadcrumb columns as a new database has them, and crashes with
// breadcrumbs are stored, held, and moved from held to public with them.
func TestBreadcrumbsUpgradeIntegration(t *testing.T) {
	c := openClient(t, Config{})
	ctx := context.Background()
	i := breadcrumbsMigrationIndex(t)
	if _, err := c.migrate(ctx, Migrations()[:i]); err != nil {
		t.Fatal(err)
	}
	dropBreadcrumbColumns(t, func(q string) error { return c.conn.Exec(ctx, q) }, c.schema.opts)
	applied, err := c.Migrate(ctx)
	if err != nil || fmt.Sprint(applied) != fmt.Sprint([]int{Migrations()[i].Version}) {
		t.Fatalf("Migrate applied %v, %v", applied, err)
	}
	fresh := migrated(t, Config{Database: c.Database() + "_fresh"})
	// (18.16's system.columns has no position: DESCRIBE keeps the order.)
	columns := func(c *Client) [][]string {
		o := c.schema.opts
		return append(stringRows(t, c, "DESCRIBE TABLE "+o.Database+"."+TableCrashes),
			stringRows(t, c, "DESCRIBE TABLE "+o.PrivateDatabase+"."+HeldTablePrefix+TableCrashes)...)
	}
	got, want := columns(c), columns(fresh)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("upgraded columns\n%v\nnew\n%v", got, want)
	}
	if !strings.Contains(fmt.Sprint(got), "breadcrumb_names Array(String)   Breadcrumbs' screen") {
		t.Errorf("upgraded columns lack the breadcrumbs, or their comments: %v", got)
	}

	day := time.Now().UTC().Truncate(24 * time.Hour)
	crash := func(n byte, crumbs ...pipeline.Breadcrumb) pipeline.CrashRow {
		return pipeline.CrashRow{Common: testCommon(n, day.Add(time.Hour)), ExceptionType: "E", Thread: "main", AppState: "foreground", Breadcrumbs: crumbs}
	}
	crumbs := []pipeline.Breadcrumb{{Type: "screen_view", Name: "editor", OffsetMs: 60_000}, {Type: "custom", Name: "export_pdf"}}
	if err := c.Insert(ctx, &pipeline.Rows{Crashes: []pipeline.CrashRow{crash(1, crumbs...), crash(2)}}); err != nil {
		t.Fatal(err)
	}
	held := crash(3, pipeline.Breadcrumb{Type: "tap", Name: "settings", OffsetMs: 120_000})
	if err := c.InsertHeld(ctx, &pipeline.Rows{Crashes: []pipeline.CrashRow{held}}, ""); err != nil {
		t.Fatal(err)
	}
	u := kanon.Unit{App: held.AppID, Day: day}
	if err := c.Move(ctx, u, kanon.Move{Combos: []kanon.QI{kanon.QIOf(&held.Common)}}); err != nil {
		t.Fatal(err)
	}
	got = stringRows(t, c, fmt.Sprintf("SELECT toString(event_id), breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms FROM %s.crashes ORDER BY event_id", c.Database()))
	want = [][]string{
		{uuid.UUID(crash(1).EventID).String(), "[screen_view custom]", "[editor export_pdf]", "[60000 0]"},
		{uuid.UUID(crash(2).EventID).String(), "[]", "[]", "[]"},
		{uuid.UUID(held.EventID).String(), "[tap]", "[settings]", "[120000]"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored breadcrumbs\n%v\nwant\n%v", got, want)
	}
}

// stringRows runs q and returns its rows, each value as fmt.Sprint prints
// it.
func stringRows(t *testing.T, c *Client, q string) [][]string {
	t.Helper()
	rows, err := c.conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(rows.ColumnTypes()))
		for i, ct := range rows.ColumnTypes() {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprint(reflect.ValueOf(v).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}
