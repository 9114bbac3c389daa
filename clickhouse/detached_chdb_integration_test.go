package clickhouse

import (
	"fmt"
	"testing"
	"time"
)

// TestMaintenanceQueriesOnChDB runs the queries the collector watches its
// tables with on a current ClickHouse (chDB 26.x, in process): a
// partition an operator detached is listed with no reason and a folder
// being attached is not; the stalled-mutation query with the columns of
// 21.8 and later (the part the last attempt failed on) runs; and an
// erased consent's rows stored again are found, in both schemas.
func TestMaintenanceQueriesOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	ch.exec("CREATE DATABASE IF NOT EXISTS watched")
	ch.exec("CREATE TABLE watched.t (day Date, x UInt64) ENGINE = MergeTree PARTITION BY toYYYYMMDD(day) ORDER BY x")
	ch.exec("INSERT INTO watched.t VALUES ('2026-12-07', 1), ('2026-12-08', 2)")
	ch.exec("ALTER TABLE watched.t DETACH PARTITION 20261207")
	got := ch.rows(detachedPartsQuery([]string{"watched", "watched_private"}))
	if len(got) != 1 || got[0][1] != "t" || got[0][3] != "" {
		t.Fatalf("detached parts: %v; want the partition detached, with no reason", got)
	}
	ch.exec("ALTER TABLE watched.t ATTACH PARTITION 20261207")
	if got := ch.rows(detachedPartsQuery([]string{"watched"})); len(got) != 0 {
		t.Fatalf("detached parts once attached: %v", got)
	}

	// The query runs (ch.rows fails the test if not); whether the
	// deletion is done by then is chDB's business.
	ch.exec("ALTER TABLE watched.t DELETE WHERE x = 1")
	t.Logf("stalled mutations: %v", ch.rows(stalledMutationsQuery(ch.modern, "watched", 0)))

	// An erased consent's rows stored again are found, in both schemas.
	ch.eachDialect(t, func(t *testing.T, d Dialect) {
		o := SchemaOptions{Database: "erased_" + dialectName(d)}.withDefaults()
		ch.migrate(d, o)
		ch.exec("INSERT INTO " + o.Database + ".sessions (app_id, consent_key, event_id, event_time, event_date) VALUES " +
			"('app', 'k1', generateUUIDv4(), now(), today()), ('app', 'k1', generateUUIDv4(), now(), today()), ('app', 'k2', generateUUIDv4(), now(), today())")
		ch.exec("INSERT INTO " + o.Database + ".erasures (erased_at, app_id, consent_key, table_name, rows) VALUES (now(), 'app', 'k1', 'sessions', 2)")
		got := ch.rows(erasedWithRowsQuery(o.Database, o.Database, EventTables(), "", time.Time{}))
		if fmt.Sprint(got) != "[[app k1 2]]" {
			t.Errorf("erased consents with rows: %v, want k1's 2", got)
		}
	})
}
