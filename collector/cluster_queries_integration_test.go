package collector

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/docs"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/seed"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestClusterQueriesMatchSingleServerIntegration stores the same rows on a
// single server and on the cluster, and checks that the dashboard (every
// page's data, for several filters) and every example query of
// docs/analysts.md give the same answers on both: the aggregates merge
// across shards, FINAL and distinct counts stay exact, and nothing is
// counted twice or missed.
func TestClusterQueriesMatchSingleServerIntegration(t *testing.T) {
	srv := server(t)
	c := cluster.Get(t)
	const db = "t_compare"
	ctx := context.Background()
	now := time.Now().UTC()
	conn := chtest.Conn(t, srv)
	for _, d := range []string{db, db + "_private"} {
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d); err != nil {
			t.Fatal(err)
		}
	}
	c.DropDatabases(t, db, db+"_private")
	single, err := triagetest.Open(ctx, triagetest.Config{Now: now, ClickHouse: clickhouse.Config{
		Addr: srv.Addr(), Database: db, Username: srv.User(), Password: srv.Password()}})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Client.Close()
	onCluster, err := triagetest.Open(ctx, triagetest.Config{Now: now, ClickHouse: clickhouse.Config{
		Addr: c.Addr(1, 0), Database: db, Username: c.User(), Password: c.Password(),
		Schema: clickhouse.SchemaOptions{Cluster: c.Name()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer onCluster.Client.Close()

	// The same triage decisions and rejects on both; and sessions that
	// report a handled exception again and again, whose events the
	// cluster spreads over both shards: counted from each shard's state
	// instead of the merged one, such a session would count twice.
	bugs := seed.Bugs()
	var handled seed.Bug
	for _, b := range bugs {
		if b.Handled && b.OSName == "android" {
			handled = b
		}
	}
	repeats := &pipeline.Rows{}
	for i := range 20 * 6 {
		cm := pipeline.Common{AppID: triagetest.AppID, EventTime: now.Add(-time.Hour).Truncate(time.Minute), SessionKey: uint64(1_000_000 + i/6),
			QI: pipeline.QI{AppVersion: "4.12.0", OSName: "android", OSVersion: "14", DeviceClass: "phone", DeviceModel: "Pixel 8", Country: "AT", Region: "AT-9"}}
		cm.EventID[0], cm.EventID[1], cm.EventID[15] = 0xc1, byte(i), byte(i>>8)
		repeats.Crashes = append(repeats.Crashes, pipeline.CrashRow{Common: cm, ExceptionType: "java.io.IOException", Fingerprint: handled.Fingerprint,
			Message: "Upload failed", Handled: true, Frames: []pipeline.Frame{{Function: "AttachmentUploader.checkResponse", InApp: true}}})
	}
	for _, env := range []*triagetest.Env{single, onCluster} {
		if err := env.Client.Insert(ctx, repeats); err != nil {
			t.Fatal(err)
		}
		for i, d := range []triage.Decision{
			{AppID: triagetest.AppID, Fingerprint: bugs[0].Fingerprint, State: triage.StateResolved, ResolvedIn: "4.12.1", ChangedBy: "alice", ChangedAt: now.Add(-time.Hour).Truncate(time.Second)},
			{AppID: triagetest.AppID, Fingerprint: bugs[1].Fingerprint, State: triage.StateIgnored, ChangedBy: "bob", ChangedAt: now.Add(-time.Minute).Truncate(time.Second)},
		} {
			if err := env.Client.RecordDecisions(ctx, []triage.Decision{d}); err != nil {
				t.Fatalf("decision %d: %v", i, err)
			}
		}
		rejects, err := clickhouse.NewRejects(clickhouse.RejectsConfig{}, env.Client, nil)
		if err != nil {
			t.Fatal(err)
		}
		rejects.CountRejects(triagetest.AppID, pipeline.DropReason(consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED), 3)
		rejects.CountRejects(triagetest.AppID, pipeline.DropReason(consentryv1.DropReason_DROP_REASON_TOO_OLD), 5)
		if err := rejects.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Reads through a Distributed table ask one replica of each shard:
	// let the replicas catch up first.
	eventuallyAlike(t, c, onCluster.Client, append(clickhouse.EventTables(), clickhouse.TableSessionsDaily, clickhouse.TableCrashGroupsDaily, clickhouse.TableRejects))

	t.Run("analysts' examples", func(t *testing.T) {
		queries := docs.AnalystExamples()
		if len(queries) < 10 {
			t.Fatalf("%d example queries", len(queries))
		}
		clusterConn := c.Conn(t, 0, 1)
		for i, q := range queries {
			// Rows that tie in the ORDER BY come in any order, and a
			// LIMIT may cut ties apart anywhere: compare every row, in
			// a canonical order.
			q = strings.ReplaceAll(q, "consentry.", db+".")
			q = trailingLimit.ReplaceAllString(q, "")
			want, got := queryRows(t, conn, q), queryRows(t, clusterConn, q)
			if len(want) == 0 {
				t.Errorf("example %d returns no rows on the single server:\n%s", i+1, q)
			}
			// any() picks one value of its rows, another one where
			// states merge otherwise (on one server too, as parts merge).
			for _, col := range arbitraryColumns(q) {
				clearColumn(want, col)
				clearColumn(got, col)
			}
			sortRows(want)
			sortRows(got)
			if !sameRows(want, got) {
				t.Errorf("example %d differs:\nsingle server %v\ncluster       %v\n%s", i+1, want, got, q)
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		filters := []triage.Filter{
			{AppID: triagetest.AppID},
			{AppID: triagetest.AppID, Days: 7, Status: triage.StatusAll},
			{AppID: triagetest.AppID, OSName: "android", Status: triage.StatusAll},
			{AppID: triagetest.AppID, AppVersion: "4.12.0", Region: "AT", Status: triage.StatusResolved},
			{AppID: triagetest.AppID, Status: triage.StatusIgnored},
		}
		same := func(what string, f triage.Filter, want, got any) {
			t.Helper()
			clearSamples(want)
			clearSamples(got)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("%s for %+v differs:\nsingle server %+v\ncluster       %+v", what, f, want, got)
			}
		}
		for _, f := range filters {
			o1, err1 := single.Store.Overview(ctx, f)
			o2, err2 := onCluster.Store.Overview(ctx, f)
			if err1 != nil || err2 != nil {
				t.Fatalf("overview: %v, %v", err1, err2)
			}
			same("overview", f, o1, o2)
			p1, err1 := single.Store.Options(ctx, f)
			p2, err2 := onCluster.Store.Options(ctx, f)
			if err1 != nil || err2 != nil {
				t.Fatalf("options: %v, %v", err1, err2)
			}
			same("options", f, p1, p2)
			l1, err1 := single.Store.List(ctx, f, triage.ListOptions{PerPage: triage.MaxPerPage})
			l2, err2 := onCluster.Store.List(ctx, f, triage.ListOptions{PerPage: triage.MaxPerPage})
			if err1 != nil || err2 != nil {
				t.Fatalf("groups: %v, %v", err1, err2)
			}
			same("groups", f, l1, l2)
			g1 := l1.Groups
			if f.Status == triage.StatusAll && len(g1) == 0 {
				t.Fatalf("no crash groups for %+v", f)
			}
			for _, g := range g1 {
				d1, err1 := single.Store.Group(ctx, f, g.Fingerprint, 0)
				d2, err2 := onCluster.Store.Group(ctx, f, g.Fingerprint, 0)
				if err1 != nil || err2 != nil {
					t.Fatalf("group %x: %v, %v", g.Fingerprint, err1, err2)
				}
				same(fmt.Sprintf("group %x", g.Fingerprint), f, d1, d2)
			}
		}
	})
}

// trailingLimit matches the LIMIT clause that ends a query.
var trailingLimit = regexp.MustCompile(`\nLIMIT \d+\s*$`)

// sortRows puts rows in the order of their printed values.
func sortRows(rows [][]any) {
	slices.SortFunc(rows, func(a, b []any) int { return strings.Compare(fmt.Sprint(a...), fmt.Sprint(b...)) })
}

// arbitraryColumns returns the indexes, among the SELECT list of q, of
// the columns computed with any() or anyMerge(): one value of several,
// whichever the server meets first.
func arbitraryColumns(q string) []int {
	sel, _, _ := strings.Cut(q, "\nFROM ")
	var out []int
	depth, col, start := 0, 0, 0
	for i, r := range sel {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				if isArbitrary(sel[start:i]) {
					out = append(out, col)
				}
				col, start = col+1, i+1
			}
		}
	}
	if isArbitrary(sel[start:]) {
		out = append(out, col)
	}
	return out
}

func isArbitrary(expr string) bool {
	expr = strings.TrimSpace(expr)
	return strings.Contains(expr, "any(") || strings.Contains(expr, "anyMerge(")
}

// clearColumn sets column col of every row to nil.
func clearColumn(rows [][]any, col int) {
	for _, r := range rows {
		if col < len(r) {
			r[col] = nil
		}
	}
}

// clearSamples clears, in the dashboard's data v (a group list or a
// group's detail), what is one sample of several: a group's message and
// culprit (anyMerge), and the sample crash and the page of crashes, of
// which only the times are kept (the latest crash of a minute is any of
// that minute's).
func clearSamples(v any) {
	switch v := v.(type) {
	case *triage.GroupList:
		for i := range v.Groups {
			v.Groups[i].Message, v.Groups[i].Culprit = "", ""
		}
	case *triage.Detail:
		v.Message, v.Culprit = "", ""
		v.Sample = triage.CrashView{EventTime: v.Sample.EventTime}
		v.GroupingInputs = nil
		// Crashes of one minute come in any order: keep their times.
		for i := range v.CrashList {
			v.CrashList[i] = triage.CrashView{EventTime: v.CrashList[i].EventTime}
		}
	}
}

// queryRows runs q and returns its rows, each value as Go scanned it.
func queryRows(t *testing.T, conn driver.Conn, q string) [][]any {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		var dest []any
		for _, ct := range rows.ColumnTypes() {
			dest = append(dest, reflect.New(ct.ScanType()).Interface())
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(dest))
		for i, d := range dest {
			row[i] = reflect.ValueOf(d).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return out
}

// sameRows reports whether a and b hold the same rows in the same order,
// floating-point values to within a relative 1e-9 (sums of floats may
// add up in another order on a cluster).
func sameRows(a, b [][]any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			fx, okx := x.(float64)
			fy, oky := y.(float64)
			if okx && oky {
				if math.Abs(fx-fy) > 1e-9*math.Max(1, math.Abs(fx)) {
					return false
				}
				continue
			}
			if !reflect.DeepEqual(x, y) {
				return false
			}
		}
	}
	return true
}
