package collector

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
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

// TestAnalystsIntegration runs the collector's local default, seeds it,
// and checks, as the read-only analyst user it creates: every example
// query of docs/analysts.md runs and returns rows; every table and column
// analysts can see is described there; the user cannot write, and cannot
// read the private database of the session salts.
func TestAnalystsIntegration(t *testing.T) {
	chtest.RequireBinary(t)
	ctx := context.Background()
	dir := t.TempDir()
	app, err := New(ctx, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	go app.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		app.Shutdown(ctx)
	})

	collectorPassword, err := os.ReadFile(filepath.Join(dir, CollectorPasswordFileName))
	if err != nil {
		t.Fatal(err)
	}
	env, err := triagetest.Open(ctx, triagetest.Config{ClickHouse: clickhouse.Config{Addr: app.ClickHouseAddr(),
		Username: CollectorUser, Password: strings.TrimSpace(string(collectorPassword))}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Client.Close()
	bug, _ := seed.BugNamed(seed.BugSyncNullTitle)
	if err := env.Store.SetStatus(ctx, triage.Decision{AppID: triagetest.AppID, Fingerprint: bug.Fingerprint, State: triage.StateResolved, ResolvedIn: "4.12.1", ChangedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	rejects, err := clickhouse.NewRejects(clickhouse.RejectsConfig{}, env.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	rejects.CountRejects(triagetest.AppID, pipeline.DropReason(consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED), 3)
	if err := rejects.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A salt exists, so reading it can be refused.
	salt, err := env.Client.DailySalt(ctx, time.Now(), make([]byte, clickhouse.SaltSize))
	if err != nil {
		t.Fatal(err)
	}

	password, err := os.ReadFile(filepath.Join(dir, "clickhouse-analyst-password"))
	if err != nil {
		t.Fatal(err)
	}
	analyst, err := ch.Open(&ch.Options{
		Addr: []string{app.ClickHouseAddr()},
		Auth: ch.Auth{Username: AnalystUser, Password: strings.TrimSpace(string(password))},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer analyst.Close()

	t.Run("examples", func(t *testing.T) {
		queries := docs.AnalystExamples()
		if len(queries) < 10 {
			t.Fatalf("%d example queries, want at least 10", len(queries))
		}
		for i, q := range queries {
			if n := countRows(t, analyst, q); n == 0 {
				t.Errorf("example %d returns no rows:\n%s", i+1, q)
			}
		}
	})

	t.Run("every column described", func(t *testing.T) {
		documented := docs.AnalystColumns()
		var columns []struct {
			Table string `ch:"table"`
			Name  string `ch:"name"`
		}
		q := "SELECT table, name FROM system.columns WHERE database = 'consentry' AND table NOT LIKE '%_mv' ORDER BY table, name"
		if err := analyst.Select(ctx, &columns, q); err != nil {
			t.Fatal(err)
		}
		tables := make(map[string]bool)
		for _, c := range columns {
			tables[c.Table] = true
			if !slices.Contains(documented[c.Table], c.Name) && !(slices.Contains(clickhouse.EventTables(), c.Table) && slices.Contains(documented[""], c.Name)) {
				t.Errorf("%s.%s is not described in docs/analysts.md", c.Table, c.Name)
			}
		}
		for table, cols := range documented {
			if table == "" {
				continue
			}
			if !tables[table] {
				t.Errorf("docs/analysts.md describes a table %s that analysts do not see", table)
			}
			for _, c := range cols {
				if !slices.ContainsFunc(columns, func(x struct {
					Table string `ch:"table"`
					Name  string `ch:"name"`
				}) bool {
					return x.Table == table && x.Name == c
				}) {
					t.Errorf("docs/analysts.md describes a column %s.%s that does not exist", table, c)
				}
			}
		}
	})

	t.Run("read-only", func(t *testing.T) {
		for _, stmt := range []string{
			"INSERT INTO consentry.rejects (minute, app_id, reason, events) SELECT now(), 'x', 'y', 1",
			"CREATE TABLE consentry.mine (x UInt8) ENGINE = Memory",
			"ALTER TABLE consentry.crashes DELETE WHERE 1",
			"DROP TABLE consentry.crash_group_status",
			"TRUNCATE TABLE consentry.sessions",
			"OPTIMIZE TABLE consentry.sessions FINAL",
		} {
			if err := analyst.Exec(ctx, stmt); err == nil {
				t.Errorf("the analyst ran %s", stmt)
			}
		}
		for _, q := range []string{
			"SELECT count() FROM consentry_private.session_salts",
			"SELECT count() FROM default.nothing",
		} {
			var n uint64
			if err := analyst.QueryRow(ctx, q).Scan(&n); err == nil {
				t.Errorf("the analyst ran %s", q)
			}
		}
		// The salt is still there: another candidate does not replace it.
		again, err := env.Client.DailySalt(ctx, time.Now(), bytes.Repeat([]byte{1}, clickhouse.SaltSize))
		if err != nil || !bytes.Equal(again, salt) {
			t.Errorf("the salt is gone: %v", err)
		}
	})
}

// countRows runs q and counts its rows.
func countRows(t *testing.T, conn driver.Conn, q string) int {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(fmt.Errorf("%w\n%s", err, q))
	}
	return n
}
