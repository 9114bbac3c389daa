package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/pipeline"
)

// TestClusterBreadcrumbsUpgradeIntegration upgrades a cluster database
// the release before the breadcrumbs made: every server's crashes and held
// crashes tables, storage and Distributed, get the breadcrumb columns, a
// second Migrate has nothing to do, and a crash's breadcrumbs go through
// the Distributed table and back. (A fresh database has the columns from
// CREATE: there migration 12 leaves every ALTER out, which the other
// cluster tests run.)
func TestClusterBreadcrumbsUpgradeIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_crumbs")
	c := clusterClient(t, db, [2]int{1, 0})
	ctx := context.Background()
	i := breadcrumbsMigrationIndex(t)
	if _, err := c.migrate(ctx, Migrations()[:i]); err != nil {
		t.Fatal(err)
	}
	o := c.schema.opts
	cl := cluster.Get(t)
	tables := []string{o.Database + "." + TableCrashes, o.PrivateDatabase + "." + HeldTablePrefix + TableCrashes}
	for _, table := range tables {
		for _, col := range breadcrumbColumns {
			// The storage tables replicate the drop; each server's
			// Distributed table is its own (18.16 alters none ON CLUSTER).
			if err := c.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s_local ON CLUSTER %s DROP COLUMN %s", table, cl.Name(), col)); err != nil {
				t.Fatal(err)
			}
			for s := range cl.Shards() {
				for r := range cl.Replicas() {
					if err := cl.Conn(t, s, r).Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", table, col)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	count := func(table string) []uint64 {
		db, name, _ := strings.Cut(table, ".")
		return onEveryServer(t, fmt.Sprintf("SELECT count() FROM system.columns WHERE database = %s AND table = %s AND name LIKE 'breadcrumb_%%'", quote(db), quote(name)))
	}
	if got := count(tables[0]); fmt.Sprint(got) != "[0 0 0 0]" {
		t.Fatalf("breadcrumb columns per server before the upgrade: %v", got)
	}
	applied, err := c.Migrate(ctx)
	if err != nil || fmt.Sprint(applied) != fmt.Sprint(versionsOf(Migrations()[i:])) {
		t.Fatalf("Migrate applied %v, %v", applied, err)
	}
	for _, table := range tables {
		for _, name := range []string{table, table + "_local"} {
			if got := count(name); fmt.Sprint(got) != "[3 3 3 3]" {
				t.Errorf("%s: breadcrumb columns per server %v, want 3 on each", name, got)
			}
		}
	}
	if applied, err := c.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Errorf("second Migrate: applied %v, %v", applied, err)
	}
	// The migration's statements again, as on a database CREATE made
	// with the columns, or a repair: every column is there, so neither
	// the ALTERs (which fail ON CLUSTER on a replicated table's leader,
	// and can hold up 18.16's DDL queue) nor the Distributed tables'
	// re-creation (which refuses inserts meanwhile) run.
	modified := func() string {
		var out []string
		for s := range cl.Shards() {
			for r := range cl.Replicas() {
				var at time.Time
				q := fmt.Sprintf("SELECT metadata_modification_time FROM system.tables WHERE database = %s AND name = %s", quote(o.Database), quote(TableCrashes))
				if err := cl.Conn(t, s, r).QueryRow(ctx, q).Scan(&at); err != nil {
					t.Fatal(err)
				}
				out = append(out, at.String())
			}
		}
		return fmt.Sprint(out)
	}
	before := modified()
	time.Sleep(1100 * time.Millisecond) // the times have whole seconds
	start := time.Now()
	if err := c.runStatements(ctx, Migrations()[i].Statements(c.dialect, o)); err != nil {
		t.Fatal(err)
	}
	if after := modified(); after != before {
		t.Errorf("the crashes Distributed table was re-created (modified %s, before %s)", after, before)
	}
	t.Logf("migration %d's statements with every column there: %v", Migrations()[i].Version, time.Since(start).Round(time.Millisecond))
	cm := testCommon(1, time.Now().UTC())
	crash := pipeline.CrashRow{Common: cm, ExceptionType: "E", Breadcrumbs: []pipeline.Breadcrumb{{Type: "screen_view", Name: "editor", OffsetMs: 60_000}}}
	if err := c.Insert(ctx, &pipeline.Rows{Crashes: []pipeline.CrashRow{crash}}); err != nil {
		t.Fatal(err)
	}
	got := stringRows(t, c, fmt.Sprintf("SELECT toString(event_id), breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms FROM %s.crashes", o.Database))
	if want := [][]string{{uuid.UUID(cm.EventID).String(), "[screen_view]", "[editor]", "[60000]"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("through the Distributed table: %v, want %v", got, want)
	}
}
