package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
)

// TestAlertsAndMappingsOnChDB runs the SQL of the alert delivery log and
// of the mapping store on a current ClickHouse (chDB 26.x, in process),
// in the modern and the legacy schema: the inserts without their
// server-stamped column, and every query, with the answers the 18.16
// integration tests get.
func TestAlertsAndMappingsOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	ch.eachDialect(t, func(t *testing.T, d Dialect) {
		o := SchemaOptions{Database: "alerts_" + dialectName(d)}.withDefaults()
		ch.migrate(d, o)
		p := o.PrivateDatabase

		ch.exec(alertInsert(p) + ` VALUES ('k1', 'a', 'app', 'claimed', 0, 0, 'hook', '{}'), ('k1', 'b', 'app', 'claimed', 0, 0, 'hook', '{}'),
('k2', 'a', 'app', 'claimed', 0, 0, 'hook', '{}'), ('k2', 'a', 'app', 'failed', 1, 1900000000, 'hook', '{}')`)
		rows := ch.rows(bind(t, alertRecordsQuery(p, []string{"k2", "x'y"})))
		if len(rows) != 2 || rows[0][0] != "k2" {
			t.Errorf("alert records: %v", rows)
		}
		for _, r := range rows {
			if r[1] < "2026" || (r[4] == "failed" && r[6] != "2030-03-17 17:46:40") {
				t.Errorf("alert record %v: at stamped by the server, next_at as stored", r)
			}
		}
		held := ch.rows(bind(t, heldAlertsQuery(p, "a", time.Now().Add(-time.Hour))))
		if fmt.Sprint(held) != "[[k1] [k2]]" {
			t.Errorf("held alerts: %v", held)
		}
		if held := ch.rows(bind(t, heldAlertsQuery(p, "a", time.Now().Add(time.Hour)))); len(held) != 0 {
			t.Errorf("held alerts claimed in the future: %v", held)
		}

		ch.exec(mappingInsert(p) + ` VALUES ('app', '4.12.0', '', 'id1', 10, 'old'), ('app', '4.13.0', '7', '', 3, 'new')`)
		time.Sleep(1100 * time.Millisecond) // uploaded_at has seconds
		ch.exec(mappingInsert(p) + ` VALUES ('app', '4.12.0', '', 'id2', 20, 'newer')`)
		list := ch.rows(bind(t, listMappingsQuery(p)))
		if len(list) != 2 || list[0][1] != "4.12.0" || list[0][4] != "20" || list[1][2] != "7" || list[1][4] != "3" {
			t.Errorf("mappings: %v", list)
		}
		content := ch.rows(bind(t, readMappingQuery(p, deobfuscate.Key{AppID: "app", AppVersion: "4.12.0"})))
		if fmt.Sprint(content) != "[[newer]]" {
			t.Errorf("mapping read: %v, want the latest upload", content)
		}
	})
}
