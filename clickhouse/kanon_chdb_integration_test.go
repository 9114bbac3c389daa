package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
)

// TestKanonOnChDB runs the k-anonymity SQL on a current ClickHouse (chDB
// 26.x, in process), in the modern and the legacy schema: every query and
// move statement, the deletion of released rows (a mutation with a
// subquery), and the generalization expressions, which must compute what
// package kanon's Go code does.
func TestKanonOnChDB(t *testing.T) {
	ch := newChdbRunner(t)
	raw := func(q string) [][]string {
		t.Helper()
		out, err := ch.db.Query(context.Background(), q, "TabSeparatedRaw")
		if err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		var rows [][]string
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if line != "" {
				rows = append(rows, strings.Split(line, "\t"))
			}
		}
		return rows
	}
	checkGeneralizationSQL(t, raw)
	ch.eachDialect(t, func(t *testing.T, d Dialect) {
		o := SchemaOptions{Database: "kanon_" + dialectName(d)}
		ch.migrate(d, o)
		s := newSchema(o)
		k := newKanonSchema(s)
		// A held row of every event table, for the queries to find.
		for _, h := range k.held {
			var cols, values []string
			for _, col := range h.columns {
				if col.dflt != "" {
					continue
				}
				cols = append(cols, col.name)
				switch col.name {
				case "app_id":
					values = append(values, "'com.example.notes'")
				case "event_date":
					values = append(values, "toDate('2026-11-29')")
				case "app_version":
					values = append(values, "'4.12.0'")
				case "app_build", "sdk_version", "device_class", "device_model", "os_name", "os_version", "locale", "country", "region":
					values = append(values, "''")
				default:
					values = append(values, literal(col))
				}
			}
			ch.exec(fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES (%s)", h.database, h.name, strings.Join(cols, ", "), strings.Join(values, ", ")))
		}
		for _, q := range kanonQueries(k, s) {
			ch.exec(q)
		}
		day := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
		for _, app := range []string{"", "com.example.notes"} {
			r := privacyReportQueries(s, k, app, day.AddDate(0, 0, -6), day)
			for _, q := range []string{r.stored, r.held, r.releases, r.smallest, r.counts, r.revoked, r.erased} {
				ch.rows(q)
			}
		}
		// The moves found the rows whose app version is 4.12.0 (the
		// first combination), once, at the first level run.
		for _, table := range EventTables() {
			if got := ch.rows(fmt.Sprintf("SELECT count(), any(app_version) FROM %s.%s", o.Database, table)); fmt.Sprint(got) != "[[1 4.12.0]]" {
				t.Errorf("%s after the moves: %v", table, got)
			}
		}
		// Released rows are deleted from the held tables.
		u := []kanon.Unit{{App: "com.example.notes", Day: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}}
		for _, h := range k.held {
			ch.exec(fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE %s", h.database, h.name, staleCondition(o.Database, h, strings.TrimPrefix(h.name, HeldTablePrefix), h.name, u)))
		}
		deadline := time.Now().Add(30 * time.Second)
		for ch.rows(heldRowsQuery(k, "com.example.notes"))[0][0] != "0" {
			if time.Now().After(deadline) {
				t.Fatalf("held rows not deleted: %v", ch.rows("SELECT table, latest_fail_reason FROM system.mutations WHERE is_done = 0"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
