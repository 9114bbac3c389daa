package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// TestTriageQueriesIntegration runs every query of the triage Backend on
// the server, and checks that values are bound, not spliced into the
// text: an app id or a filter value that is SQL matches nothing.
// (package triage's tests check the answers over seeded rows.)
func TestTriageQueriesIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	if err := c.Insert(ctx, retryRows(day, 30)); err != nil {
		t.Fatal(err)
	}
	for _, q := range triageQueries(c.Database(), "com.example.notes", day) {
		rows, err := c.conn.Query(ctx, q.sql, q.args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, q.sql)
		}
		rows.Close()
	}
	s := triage.Scope{AppID: "com.example.notes", First: day.AddDate(0, 0, -1), Last: day}
	if days, err := c.GroupDays(ctx, s); err != nil || len(days) != 3 {
		t.Fatalf("GroupDays = %d rows, %v; want 3 groups of one day", len(days), err)
	}
	for _, bad := range []triage.Scope{
		{AppID: "x' OR 1 = 1 OR app_id = '", First: s.First, Last: s.Last},
		{AppID: s.AppID, First: s.First, Last: s.Last, Region: "AT-9' OR '1' = '1"},
		{AppID: s.AppID, First: s.First, Last: s.Last, AppVersion: `4.12.0\' OR 1 = 1 --`},
	} {
		days, err := c.GroupDays(ctx, bad)
		if err != nil || len(days) != 0 {
			t.Errorf("GroupDays(%+v) = %d rows, %v; want none", bad, len(days), err)
		}
	}
	if ids, err := c.AppIDs(ctx); err != nil || len(ids) != 1 || ids[0] != "com.example.notes" {
		t.Errorf("AppIDs = %v, %v; want the app seen in sessions", ids, err)
	}
}
