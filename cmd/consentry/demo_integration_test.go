package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/docs"
	"github.com/consentry/consentry/internal/chserver"
)

// TestMakeRunDataAnswersEveryExample runs what `make run`
// (scripts/run-demo.sh) runs, with its arguments: a collector with its
// defaults on its managed ClickHouse (k-anonymity's k of 10 included;
// only the release pass runs every 3 seconds instead of every 30, so the
// test does not wait; with a slot of one second, the passes, cut off at
// the end of their slots, stored nothing for minutes on a busy machine),
// then `consentry demo` and `consentry fleet
// --devices 40`. On exactly that data, every example query of
// docs/analysts.md returns rows, as the read-only analyst.
func TestMakeRunDataAnswersEveryExample(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts a collector and ClickHouse")
	}
	if _, _, err := chserver.Available(""); err != nil {
		t.Fatalf("clickhouse-server not found: run scripts/deps.sh: %v", err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	app, err := collector.New(ctx, collector.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DataDir: dir,
		AppRefresh: 200 * time.Millisecond,
		Anonymizer: anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: kanon.DefaultK, ReleaseInterval: 3 * time.Second}},
		Rejects:    clickhouse.RejectsConfig{FlushInterval: 200 * time.Millisecond},
		Logger:     zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	go app.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		app.Shutdown(ctx)
	})

	var out bytes.Buffer
	for _, args := range [][]string{
		{"demo", "--addr", app.Addr(), "--data-dir", dir, "--seed", "1"},
		{"fleet", "--addr", app.Addr(), "--http-addr", app.HTTPAddr(), "--data-dir", dir, "--devices", "40", "--seed", "1"},
	} {
		if err := run(ctx, args, &out, &out, noEnv); err != nil {
			t.Fatalf("consentry %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
	t.Logf("make run's output:\n%s", out.String())
	for _, want := range []string{`marked resolved in 4\.13\.0`, `held back +0 `} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s", want)
		}
	}

	password, err := os.ReadFile(filepath.Join(dir, "clickhouse-analyst-password"))
	if err != nil {
		t.Fatal(err)
	}
	analyst, err := ch.Open(&ch.Options{Addr: []string{app.ClickHouseAddr()},
		Auth: ch.Auth{Username: collector.AnalystUser, Password: strings.TrimSpace(string(password))}})
	if err != nil {
		t.Fatal(err)
	}
	defer analyst.Close()
	queries := docs.AnalystExamples()
	if len(queries) < 14 {
		t.Fatalf("%d example queries, want 14", len(queries))
	}
	// Rejects are counted a moment later; everything else is stored.
	deadline := time.Now().Add(15 * time.Second)
	for i, q := range queries {
		for {
			n, err := rowsOf(analyst, q)
			if err != nil {
				t.Fatalf("example %d: %v\n%s", i+1, err, q)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("example %d returns no rows on make run's data:\n%s", i+1, q)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// rowsOf runs q and counts its rows.
func rowsOf(conn driver.Conn, q string) (int, error) {
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%w", err)
	}
	return n, nil
}
