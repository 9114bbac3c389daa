package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestStalledErasureReportedIntegration: one damaged byte in a part of
// the gestures table (on a server of its own) keeps every erasure of
// that table from finishing. The collector says so: the stalled-deletion
// gauge, the damaged part counted, and one error naming the table and
// the part, without the consent key.
func TestStalledErasureReportedIntegration(t *testing.T) {
	srv := chtest.Start(t)
	h := newHarness(t, srv, nil)
	const app, key = "com.example.erasable", "ck_erasable-key-0123456789abcdefghijklmnopq"
	registerApp(t, h, app, key, consent.PolicyErasable)
	tok := grantHTTP(t, h, app, key)
	gen := eventgen.New(eventgen.Config{AppID: app, Token: tok, Seed: 31})
	if _, err := h.client.Ingest(context.Background(), gen.Batch(200, time.Now())); err != nil {
		t.Fatal(err)
	}
	h.shipped(t)
	if n := h.count(t, "gestures", "1"); n == 0 {
		t.Fatal("no gestures stored")
	}
	var path string
	q := fmt.Sprintf("SELECT path FROM system.parts WHERE database = '%s' AND table = 'gestures' AND active ORDER BY name LIMIT 1", h.db)
	if err := h.ch.QueryRow(context.Background(), q).Scan(&path); err != nil {
		t.Fatal(err)
	}
	part := filepath.Base(path)
	replica := h.replica()
	h.shutdown()
	h.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	chtest.DamagePart(t, path, "app_id", "consent_key")
	srv2, err := chserver.Start(ctx, chserver.Config{DataDir: srv.DataDir(), Password: srv.Password(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Stop(context.Background()) })

	h2 := newHarness(t, srv2, func(c *Config) {
		replica(c)
		c.MutationCheckInterval = 100 * time.Millisecond
		c.StalledMutationAge = time.Second
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = consentryv1.NewConsentServiceClient(h2.conn).Revoke(rctx, &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
	rcancel()
	t.Logf("revoke with erasure: %v", err)
	defer func() {
		if t.Failed() {
			for _, e := range h2.logs.All() {
				t.Logf("%s %s %v", e.LoggerName, e.Message, e.ContextMap())
			}
			t.Log(chtest.QueryStrings(context.Background(), t, h2.ch, "SELECT concat(database, ' ', table, ' ', toString(is_done), ' ', toString(parts_to_do), ' ', toString(create_time)) FROM system.mutations"))
		}
	}()
	waitFor(t, "the stalled erasure reported", func() bool {
		m := scrape(t, h2)
		return m["consentry_clickhouse_stalled_mutations"] >= 1 && m["consentry_clickhouse_damaged_parts"] == 1
	})
	logged := h2.logs.FilterMessageSnippet("ClickHouse has not finished deletions").All()
	if len(logged) != 1 {
		t.Fatalf("%d error lines about the stalled deletion, want 1", len(logged))
	}
	fields := logged[0].ContextMap()
	if fields["table"] != "gestures" || !strings.Contains(fmt.Sprint(fields["damaged_parts"]), part) || logged[0].Level != zap.ErrorLevel {
		t.Errorf("logged %v %v; want the table and part %s", logged[0].Level, fields, part)
	}
	q = fmt.Sprintf("SELECT DISTINCT consent_key FROM %s.gestures", h2.db)
	keys := chtest.QueryStrings(context.Background(), t, h2.ch, q)
	if len(keys) == 0 {
		t.Fatal("no consent key to look for in the logs")
	}
	for _, e := range h2.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if slices.ContainsFunc(keys, func(k string) bool { return k != "" && strings.Contains(line, k) }) {
			t.Errorf("a log line holds a consent key: %s", e.Message)
		}
	}
}

// TestDetachedPartsReportedIntegration: an operator detaches the
// partition of the gestures table that holds a consent's rows, and the
// consent is revoked with erasure. The erasure finishes, but the rows
// are still on disk, in the detached part. The collector says so: the
// detached-part gauge, and one warning naming the table and the part;
// once the part is dropped, the gauge is back at 0.
func TestDetachedPartsReportedIntegration(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.MutationCheckInterval = 100 * time.Millisecond })
	ctx := context.Background()
	const app, key = "com.example.detached", "ck_detached-key-0123456789abcdefghijklmnopq"
	registerApp(t, h, app, key, consent.PolicyErasable)
	tok := grantHTTP(t, h, app, key)
	gen := eventgen.New(eventgen.Config{AppID: app, Token: tok, Seed: 32})
	if _, err := h.client.Ingest(ctx, gen.Batch(200, time.Now())); err != nil {
		t.Fatal(err)
	}
	h.shipped(t)
	var partition, path string
	q := fmt.Sprintf("SELECT partition, path FROM system.parts WHERE database = '%s' AND table = 'gestures' AND active ORDER BY name LIMIT 1", h.db)
	if err := h.ch.QueryRow(ctx, q).Scan(&partition, &path); err != nil {
		t.Fatal(err)
	}
	if err := h.ch.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.gestures DETACH PARTITION %s", h.db, partition)); err != nil {
		t.Fatal(err)
	}
	if _, err := consentryv1.NewConsentServiceClient(h.conn).Revoke(ctx, &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true}); err != nil {
		t.Fatalf("revoke with erasure: %v", err)
	}
	waitFor(t, "the detached part reported", func() bool { return scrape(t, h)["consentry_clickhouse_detached_parts"] == 1 })
	part := filepath.Base(path)
	logged := h.logs.FilterMessageSnippet("parts of the collector's tables are detached").All()
	if len(logged) != 1 || logged[0].Level != zap.WarnLevel || !strings.Contains(fmt.Sprint(logged[0].ContextMap()["detached_parts"]), h.db+".gestures "+part) {
		t.Fatalf("logged %v; want one warning naming gestures and part %s", logged, part)
	}
	for _, e := range h.logs.All() {
		if line := e.Message + fmt.Sprint(e.ContextMap()); strings.Contains(line, key) || strings.Contains(line, tok) {
			t.Errorf("a log line holds the consent's key or token: %s", e.Message)
		}
	}

	// On 18.16 a detached part is dropped by deleting its folder.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(filepath.Clean(path)), "detached", part)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dropped part no longer counted", func() bool { return scrape(t, h)["consentry_clickhouse_detached_parts"] == 0 })
	if n := len(h.logs.FilterMessage("no detached parts left").All()); n != 1 {
		t.Errorf("%d lines saying no detached parts are left, want 1", n)
	}
}
