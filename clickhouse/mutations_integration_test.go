package clickhouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// TestDamagedPartStallsErasuresIntegration damages one byte of one part
// of the gestures table on a server of its own: every erasure of that
// table stops finishing, whoever's rows it deletes (the first mutation
// cannot rewrite the part, and the later ones wait behind it).
// StalledMutations names the table and the part; once the part is moved
// out of the table, as docs/operations.md says for a single server, the
// erasure finishes and nothing of the consent is left.
func TestDamagedPartStallsErasuresIntegration(t *testing.T) {
	chtest.RequireBinary(t)
	if testing.Short() {
		t.Skip("starts a server of its own")
	}
	ctx := context.Background()
	dir := t.TempDir()
	cfg := chserver.Config{DataDir: dir, Logger: zaptest.NewLogger(t)}
	srv := startServer(t, cfg)
	cfg.Password = srv.Password()
	open := func(srv *chserver.Server) *Client {
		t.Helper()
		c, err := Open(ctx, Config{Addr: srv.Addr(), Username: srv.User(), Password: srv.Password(), Database: "stalled"}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open(srv)
	const app = "com.example.notes"
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	if err := c.Insert(ctx, keyedRows(k1, k2)); err != nil {
		t.Fatal(err)
	}
	// The gestures part that holds rows of consent 1, and one of its
	// column files that the erasure's count does not read.
	var part struct {
		Name string `ch:"name"`
		Path string `ch:"path"`
	}
	q := fmt.Sprintf("SELECT any(_part) AS name, '' AS path FROM stalled.gestures WHERE consent_key = %s", quote(k1))
	if err := c.conn.QueryRow(ctx, q).ScanStruct(&part); err != nil {
		t.Fatal(err)
	}
	q = fmt.Sprintf("SELECT name, path FROM system.parts WHERE database = 'stalled' AND table = 'gestures' AND name = %s", quote(part.Name))
	if err := c.conn.QueryRow(ctx, q).ScanStruct(&part); err != nil {
		t.Fatal(err)
	}
	c.Close()
	stopServer(t, srv)
	damaged := chtest.DamagePart(t, part.Path, "app_id", columnConsentKey)
	t.Logf("damaged one byte of %s in part %s", damaged, part.Name)

	srv = startServer(t, cfg)
	c = open(srv)
	for _, key := range []string{k1, k2} {
		ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.Erase(ectx, app, key)
		cancel()
		if err == nil {
			t.Fatal("an erasure finished although a part it must rewrite cannot be read")
		}
		t.Logf("erase: %v", err)
	}
	if got, err := c.StalledMutations(ctx, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("mutations made seconds ago stalled for an hour: %v, %v", got, err)
	}
	stalled, err := c.StalledMutations(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(stalled, func(m StalledMutation) bool { return m.Table == TableGestures })
	if i >= 0 && stalled[i].FailedPart == "" {
		if stalled[i].Damaged, err = c.DamagedParts(ctx, TableGestures); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stalled: %v", stalled)
	if i < 0 || stalled[i].Count < 2 || !slices.Equal(stalled[i].Damage(), []string{part.Name}) {
		t.Fatalf("stalled mutations %v; want the two erasures of gestures, blamed on part %s", stalled, part.Name)
	}
	if s := stalled[i].String(); strings.Contains(s, k1) || strings.Contains(s, k2) || !strings.Contains(s, part.Name) {
		t.Errorf("described as %q: want the part, and no consent key", s)
	}

	// A single server: stop it, move the part out of the table, start.
	c.Close()
	stopServer(t, srv)
	if err := os.Rename(part.Path, filepath.Join(t.TempDir(), part.Name)); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, cfg)
	c = open(srv)
	defer c.Close()
	for _, key := range []string{k1, k2} {
		if _, err := c.Erase(ctx, app, key); err != nil {
			t.Fatalf("erase once the damaged part is gone: %v", err)
		}
		for _, table := range EventTables() {
			if n := consentRows(t, c, table, app, key); n != 0 {
				t.Errorf("%s: %d rows of an erased consent left", table, n)
			}
		}
	}
	if stalled, err := c.StalledMutations(ctx, 0); err != nil || len(stalled) != 0 {
		t.Fatalf("stalled after the part was removed: %v, %v", stalled, err)
	}
}

// startServer starts a managed server of cfg and stops it, if it still
// runs, when the test ends.
func startServer(t *testing.T, cfg chserver.Config) *chserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(t, srv) })
	return srv
}

// stopServer stops srv.
func stopServer(t *testing.T, srv *chserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
