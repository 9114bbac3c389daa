package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/pipeline"
)

func TestReapply(t *testing.T) {
	found := []clickhouse.ErasedConsent{{AppID: "a", ConsentKey: "k1", Rows: 3}, {AppID: "a", ConsentKey: "k2", Rows: 1200}, {AppID: "b", ConsentKey: "k3", Rows: 2}}
	var out strings.Builder
	var erased []string
	err := reapply(context.Background(), &out, found, false, func(_ context.Context, e clickhouse.ErasedConsent) (uint64, error) {
		erased = append(erased, e.ConsentKey)
		if e.ConsentKey == "k3" {
			return 1, fmt.Errorf("erase: rows remain after the deletion (sessions: 1): %w", pipeline.ErrStorageUnavailable)
		}
		return e.Rows, nil
	})
	if err == nil || !errors.Is(err, pipeline.ErrStorageUnavailable) || strings.Count(fmt.Sprint(erased), "k") != 3 {
		t.Fatalf("reapply = %v after erasing %v: want every consent tried and b's failure", err, erased)
	}
	for _, want := range []string{
		"a: 2 erased consents with 1,203 rows stored again; erased again: 1,203 rows\n",
		"b: 1 erased consents with 2 rows stored again; erased again: 1 rows; 1 erasures did not finish\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, k := range []string{"k1", "k2", "k3"} {
		if strings.Contains(out.String(), k) || strings.Contains(err.Error(), k) {
			t.Errorf("a consent key is printed: %s\n%v", out.String(), err)
		}
	}
	out.Reset()
	if err := reapply(context.Background(), &out, found, true, nil); err != nil || !strings.Contains(out.String(), "a: 2 erased consents with 1,203 rows stored again (dry run: nothing erased)") {
		t.Errorf("dry run: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := reapply(context.Background(), &out, nil, false, nil); err != nil || out.String() != "No erased consent has rows stored.\n" {
		t.Errorf("nothing found: %v %q", err, out.String())
	}
}

// TestReapplyErasuresIntegration erases a consent, then stores its rows
// again, as restoring a backup taken before the erasure would: consentry
// reapply-erasures reports them with --dry-run, erases them without, and
// then finds nothing; the other consent's rows stay.
func TestReapplyErasuresIntegration(t *testing.T) {
	srv := chtest.Start(t)
	ctx := context.Background()
	const db, app = "reapply", "com.example.notes"
	cl := migratedClient(t, srv, db)
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	rows := func(key string, first byte) *pipeline.Rows {
		var r pipeline.Rows
		for i := range byte(3) {
			r.Sessions = append(r.Sessions, pipeline.SessionRow{Common: pipeline.Common{AppID: app, EventID: [16]byte{first + i}, EventTime: time.Now(), ConsentKey: key}, Phase: "start"})
		}
		return &r
	}
	for _, r := range []*pipeline.Rows{rows(k1, 1), rows(k2, 10)} {
		if err := cl.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Erase(ctx, app, k1); err != nil {
		t.Fatal(err)
	}
	run := runAgainst(t, srv, db)
	if out, err := run("reapply-erasures"); err != nil || out != "No erased consent has rows stored.\n" {
		t.Fatalf("right after the erasure: %v %q", err, out)
	}
	// The backup is restored: the erased consent's rows are back.
	if err := cl.Insert(ctx, rows(k1, 1)); err != nil {
		t.Fatal(err)
	}
	out, err := run("reapply-erasures", "--dry-run", "--since", time.Now().UTC().Format(time.DateOnly))
	if err != nil || !strings.Contains(out, app+": 1 erased consents with 3 rows stored again (dry run: nothing erased)") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if out, err := run("reapply-erasures", "--since", time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)); err != nil || !strings.Contains(out, "No erased consent") {
		t.Fatalf("erasures since tomorrow: %v\n%s", err, out)
	}
	if out, err = run("reapply-erasures"); err != nil || !strings.Contains(out, app+": 1 erased consents with 3 rows stored again; erased again: 3 rows") {
		t.Fatalf("reapply: %v\n%s", err, out)
	}
	if out, err := run("reapply-erasures"); err != nil || !strings.Contains(out, "No erased consent") {
		t.Fatalf("after reapplying: %v\n%s", err, out)
	}
	var left uint64
	if err := chtest.Conn(t, srv).QueryRow(ctx, "SELECT count() FROM "+db+".sessions WHERE consent_key = '"+k2+"'").Scan(&left); err != nil || left != 3 {
		t.Errorf("the other consent's rows: %d, %v; want its 3", left, err)
	}
	if _, err := run("reapply-erasures", "--since", "yesterday"); err == nil {
		t.Error("--since yesterday accepted")
	}
}
