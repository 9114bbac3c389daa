// Package collectortest starts real collectors for tests, in the style of
// net/http/httptest: Start runs a collector.App on free loopback ports over
// a test ClickHouse (internal/chtest), in a database of its own, and stops
// it when the test ends.
//
//	func TestMyClient(t *testing.T) {
//		c := collectortest.Start(t, srv)
//		c.AddApp(t, "com.example.notes", "ck_key-0123456789abcdef")
//		... dial c.Addr() (gRPC) or c.HTTPAddr() ...
//		n := c.Count(t, "sessions", "")
//	}
//
// The collector runs with its real defaults except where a test needs
// otherwise: k-anonymity is off (a test's few devices are fewer than k
// consents, and k-anonymity would hold their rows back for an hour), the
// app registry and revocations refresh quickly, and the ship lag that
// revocation checks impose on the spool is short. Options change the
// Config further. The collector package's own tests use a harness of
// their own (they reach into the App's parts).
package collectortest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Collector is a running collector.App of a test.
type Collector struct {
	// App is the running collector.
	App *collector.App
	// DB is its ClickHouse database.
	DB string
	// CH is a connection to its ClickHouse, as the collector's user.
	CH driver.Conn

	tb      testing.TB
	cfg     collector.Config
	served  chan error
	running bool
}

// Option changes the collector's Config before it starts.
type Option func(*collector.Config)

var dbSeq atomic.Int64

// Start starts a collector storing into srv (skipping tb under -short
// when srv is nil) and stops it in tb's cleanup.
func Start(tb testing.TB, srv *chserver.Server, opts ...Option) *Collector {
	tb.Helper()
	chtest.Require(tb, srv)
	db := fmt.Sprintf("consentry_ct_%d_%d", time.Now().UnixNano()%1e6, dbSeq.Add(1))
	cfg := collector.Config{
		GRPCAddr:   "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		DataDir:    tb.TempDir(),
		ClickHouse: clickhouse.Config{Addr: srv.Addr(), Database: db, Username: srv.User(), Password: srv.Password()},
		AppRefresh: 100 * time.Millisecond,
		Anonymizer: anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: 1}},
		// The spool ships a batch once every revocation stamped before it
		// arrived is known: keep that lag short.
		RevocationRefresh:      200 * time.Millisecond,
		RevocationWriteTimeout: 300 * time.Millisecond,
		MaxClockSkew:           10 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Collector{tb: tb, cfg: cfg, DB: cfg.ClickHouse.Database, CH: chtest.Conn(tb, srv)}
	c.start()
	// Restarts keep the addresses clients know.
	c.cfg.GRPCAddr, c.cfg.HTTPAddr, c.cfg.AdminAddr = c.App.Addr(), c.App.HTTPAddr(), c.App.AdminAddr()
	tb.Cleanup(c.Stop)
	return c
}

func (c *Collector) start() {
	c.tb.Helper()
	var err error
	for range 50 { // the address of a stopped collector may take a moment to free
		if c.App, err = collector.New(context.Background(), c.cfg); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.tb.Fatalf("collectortest: start collector: %v", err)
	}
	c.served = make(chan error, 1)
	app, served := c.App, c.served
	go func() { served <- app.Serve() }()
	c.running = true
}

// Addr returns the gRPC address.
func (c *Collector) Addr() string { return c.cfg.GRPCAddr }

// HTTPAddr returns the HTTP (ingest and consent) address.
func (c *Collector) HTTPAddr() string { return c.cfg.HTTPAddr }

// AdminAddr returns the admin (dashboard, metrics, probes) address.
func (c *Collector) AdminAddr() string { return c.cfg.AdminAddr }

// DataDir returns the collector's data directory (spool, keys, secrets).
func (c *Collector) DataDir() string { return c.cfg.DataDir }

// Stop shuts the collector down gracefully; it may be started again with
// Restart. Stopping a stopped collector does nothing.
func (c *Collector) Stop() {
	if !c.running {
		return
	}
	c.running = false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.App.Shutdown(ctx); err != nil {
		c.tb.Errorf("collectortest: shutdown: %v", err)
	}
	if err := <-c.served; err != nil {
		c.tb.Errorf("collectortest: serve: %v", err)
	}
}

// Restart stops the collector if it runs and starts it again on the same
// addresses, data directory and database.
func (c *Collector) Restart() {
	c.tb.Helper()
	c.Stop()
	c.start()
}

// AddApp registers the app id with key, anonymous and allowed every scope
// unless scopes are given.
func (c *Collector) AddApp(tb testing.TB, id, key string, scopes ...consentryv1.Scope) {
	tb.Helper()
	if len(scopes) == 0 {
		scopes = consentryv1.Scopes()
	}
	now := time.Now().UTC()
	if err := c.App.Client().PutApp(context.Background(), consent.App{
		ID: id, KeyHash: consent.HashAppKey(key), Policy: consent.PolicyAnonymous, Scopes: scopes, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		tb.Fatalf("collectortest: add app %s: %v", id, err)
	}
}

// Token signs a consent token for app with the collector's key, valid
// for ttl, covering scopes (every scope if none).
func (c *Collector) Token(tb testing.TB, app string, ttl time.Duration, scopes ...consentryv1.Scope) string {
	tb.Helper()
	if len(scopes) == 0 {
		scopes = consentryv1.Scopes()
	}
	now := time.Now()
	tok, err := c.App.Keys().Sign(consent.Claims{AppID: app, Scopes: scopes, IssuedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		tb.Fatalf("collectortest: sign token: %v", err)
	}
	return tok
}

// Shipped waits until the spool, if any, shipped everything acknowledged:
// an acknowledgement means durable in the spool, stored a moment later.
// A stopped collector ships nothing more until it is restarted.
func (c *Collector) Shipped(tb testing.TB) {
	tb.Helper()
	if sp := c.App.Spool(); c.running && sp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sp.WaitShipped(ctx); err != nil {
			tb.Fatalf("collectortest: spool: %v", err)
		}
	}
}

// Count returns the rows of table (FINAL, as analysts count) matching
// where ("" for all), once the spool shipped.
func (c *Collector) Count(tb testing.TB, table, where string) uint64 {
	tb.Helper()
	c.Shipped(tb)
	q := fmt.Sprintf("SELECT count() FROM %s.%s FINAL", c.DB, table)
	if where != "" {
		q += " WHERE " + where
	}
	var n uint64
	if err := c.CH.QueryRow(context.Background(), q).Scan(&n); err != nil {
		tb.Fatalf("collectortest: %s: %v", q, err)
	}
	return n
}
