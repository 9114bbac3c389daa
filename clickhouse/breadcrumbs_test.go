package clickhouse

import (
	"slices"
	"strings"
	"testing"
)

// breadcrumbsMigrationIndex returns the index of the breadcrumbs
// migration in Migrations(): the ones before it make a database as the
// release before left it.
func breadcrumbsMigrationIndex(t testing.TB) int {
	t.Helper()
	i := slices.IndexFunc(Migrations(), func(m Migration) bool { return strings.HasPrefix(m.Name, "breadcrumbs on crashes") })
	if i < 0 {
		t.Fatal("no breadcrumbs migration")
	}
	return i
}

// versionsOf returns the versions of ms: what Migrate applies to a
// database that has the migrations before them, whatever later branches
// add.
func versionsOf(ms []Migration) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out
}

// TestBreadcrumbsMigration checks the breadcrumbs migration's statements:
// the three columns after app_state, on the crashes table and its held
// table, in each dialect's way, on a cluster on both tables of each.
func TestBreadcrumbsMigration(t *testing.T) {
	i := breadcrumbsMigrationIndex(t)
	m := Migrations()[i]
	if k := slices.IndexFunc(Migrations(), func(m Migration) bool { return strings.HasPrefix(m.Name, "k-anonymity") }); k < 0 || k > i {
		t.Fatalf("migration %d must come after the k-anonymity migration, which makes the held table", m.Version)
	}
	ds := dialects(t)
	const comment = "'Breadcrumbs\\' screen (screen_view and gestures) or event name (custom), e.g. settings.privacy; scrubbed like other names.'"
	want := map[string][]string{
		ds[0].Version: {
			"ALTER TABLE consentry.crashes ADD COLUMN breadcrumb_types Array(String) AFTER app_state",
			"ALTER TABLE consentry.crashes COMMENT COLUMN breadcrumb_types ",
			"ALTER TABLE consentry.crashes ADD COLUMN breadcrumb_names Array(String) AFTER breadcrumb_types",
			"ALTER TABLE consentry.crashes COMMENT COLUMN breadcrumb_names " + comment,
			"ALTER TABLE consentry.crashes ADD COLUMN breadcrumb_offsets_ms Array(Int64) AFTER breadcrumb_names",
			"ALTER TABLE consentry.crashes COMMENT COLUMN breadcrumb_offsets_ms ",
			"ALTER TABLE consentry_private.held_crashes ADD COLUMN breadcrumb_types Array(String) AFTER app_state",
		},
		ds[1].Version: {
			"ALTER TABLE consentry.crashes ADD COLUMN IF NOT EXISTS breadcrumb_types Array(LowCardinality(String)) COMMENT ",
			"ALTER TABLE consentry.crashes ADD COLUMN IF NOT EXISTS breadcrumb_names Array(LowCardinality(String)) COMMENT " + comment + " CODEC(ZSTD(1)) AFTER breadcrumb_types",
			"ALTER TABLE consentry.crashes ADD COLUMN IF NOT EXISTS breadcrumb_offsets_ms Array(Int64) COMMENT ",
			"ALTER TABLE consentry_private.held_crashes ADD COLUMN IF NOT EXISTS breadcrumb_types Array(LowCardinality(String)) COMMENT ",
		},
	}
	for _, d := range ds {
		stmts := m.Statements(d, SchemaOptions{})
		if n := 2 * 3 * map[bool]int{false: 2, true: 1}[d.Modern]; len(stmts) != n {
			t.Errorf("%s: %d statements, want %d: %q", d, len(stmts), n, stmts)
		}
		for i, w := range want[d.Version] {
			if i >= len(stmts) || !strings.HasPrefix(stmts[i], w) {
				t.Errorf("%s: statement %d\n got %q\nwant %q...", d, i, stmts[min(i, len(stmts)-1)], w)
			}
		}
	}
	// On a cluster, the storage and the Distributed tables of both.
	stmts := m.Statements(ds[1], SchemaOptions{Cluster: "events"})
	for _, table := range []string{"consentry.crashes_local", "consentry.crashes", "consentry_private.held_crashes_local", "consentry_private.held_crashes"} {
		if !slices.ContainsFunc(stmts, func(s string) bool {
			return strings.HasPrefix(s, "ALTER TABLE "+table+" ON CLUSTER events ADD COLUMN IF NOT EXISTS breadcrumb_offsets_ms ")
		}) {
			t.Errorf("cluster statements lack %s: %q", table, stmts)
		}
	}
	// New tables have the columns where upgraded ones get them.
	s := newSchema(SchemaOptions{})
	names := s.crashes.def.columnNames()
	if i := slices.Index(names, "app_state"); i < 0 || !slices.Equal(names[i+1:], breadcrumbColumns) {
		t.Errorf("crashes columns %v: want the breadcrumbs last, after app_state", names)
	}
}
