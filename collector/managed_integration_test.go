package collector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// newManagedHarness starts an App on its local default: a managed
// ClickHouse of its own under a fresh data dir (mutate may set another),
// storing into database consentry. h.ch is a connection as the
// collector's user.
func newManagedHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	chtest.RequireBinary(t)
	core, logs := observer.New(zap.DebugLevel)
	cfg := Config{
		GRPCAddr:   "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Anonymizer: anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: 1}, TimePrecision: time.Second},
		Logger:     zap.New(core),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	app, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	h := &harness{t: t, app: app, db: cfg.ClickHouse.DatabaseName(), logs: logs, served: make(chan error, 1)}
	go func() { h.served <- app.Serve() }()
	h.conn, err = grpc.NewClient(app.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.client = consentryv1.NewIngestServiceClient(h.conn)
	h.ch = collectorConn(t, app, cfg.DataDir)
	t.Cleanup(func() {
		h.conn.Close()
		h.ch.Close()
		h.shutdown()
	})
	return h
}

// collectorConn connects to app's managed ClickHouse as the collector's
// user, with the password from dataDir, as the consentry CLI does.
func collectorConn(t *testing.T, app *App, dataDir string) driver.Conn {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(dataDir, CollectorPasswordFileName))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{app.ClickHouseAddr()},
		Auth:        ch.Auth{Username: CollectorUser, Password: strings.TrimSpace(string(pw))},
		DialTimeout: 5 * time.Second,
		ReadTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// killManaged kills the managed ClickHouse's process group with SIGKILL
// and waits until the App sees it down.
func killManaged(t *testing.T, app *App) {
	t.Helper()
	if err := syscall.Kill(-app.storage.server.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for app.storage.server.State() == chserver.StateUp && app.storage.server.Restarts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the managed ClickHouse still counts as up 5s after SIGKILL")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitClickHouseUp waits until the App sees its ClickHouse answer again.
func waitClickHouseUp(t *testing.T, app *App, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !app.ClickHouseUp() {
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse not up %v after it was killed: state %v", within, app.storage.server.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestManagedClickHouseKilledIntegration kills the collector's own
// ClickHouse child with SIGKILL under load: the supervisor restarts it on
// the same data and ports, the spool keeps acknowledging meanwhile, the
// shipper resumes by itself, every acknowledged event is stored once,
// and consentry_clickhouse_up shows the outage. Nobody restarts anything
// by hand.
func TestManagedClickHouseKilledIntegration(t *testing.T) {
	h := newManagedHarness(t, func(c *Config) {
		c.Spool.RetryMax = 500 * time.Millisecond
		c.ClickHouseRestartBackoff = 200 * time.Millisecond
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 4, 50, 20*time.Millisecond)
	time.Sleep(time.Second)
	if got := scrape(t, h)["consentry_clickhouse_up"]; got != 1 {
		t.Errorf("consentry_clickhouse_up = %v before the kill, want 1", got)
	}
	addr := h.app.ClickHouseAddr()

	killed := time.Now()
	killManaged(t, h.app)
	before := tr.ackedCount()
	if got := scrape(t, h)["consentry_clickhouse_up"]; got != 0 && h.app.storage.server.Restarts() == 0 {
		t.Errorf("consentry_clickhouse_up = %v while ClickHouse is down, want 0", got)
	}
	waitClickHouseUp(t, h.app, 30*time.Second)
	t.Logf("ClickHouse answered again %v after SIGKILL (restart backoff 200ms)", time.Since(killed).Round(time.Millisecond))
	during := tr.ackedCount() - before
	time.Sleep(time.Second) // traffic goes on after the restart
	acked := tr.halt()
	if during == 0 {
		t.Errorf("no event was acknowledged while ClickHouse was restarting (refusals %v, last %v)", tr.refusals, tr.lastErr)
	}
	t.Logf("acknowledged %d events while ClickHouse restarted; refusals %v", during, tr.refusals)
	if h.app.ClickHouseAddr() != addr {
		t.Errorf("ClickHouse moved from %s to %s", addr, h.app.ClickHouseAddr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.app.Spool().WaitShipped(ctx); err != nil {
		t.Fatalf("the spool did not ship after the restart: %v; spool %+v", err, h.app.Spool().Stats())
	}
	// The connection of before the kill is broken: a fresh one.
	h.ch.Close()
	h.ch = collectorConn(t, h.app, h.app.cfg.DataDir)
	requireAckedOnce(t, h.ch, h.db, acked)
	m := scrape(t, h)
	if m["consentry_clickhouse_up"] != 1 || m["consentry_clickhouse_restarts_total"] != 1 {
		t.Errorf("after the restart: consentry_clickhouse_up %v, consentry_clickhouse_restarts_total %v; want 1 and 1",
			m["consentry_clickhouse_up"], m["consentry_clickhouse_restarts_total"])
	}
}

// TestManagedClickHouseKilledWriterIntegration: without a spool, a
// collector whose ClickHouse was killed refuses ingest with UNAVAILABLE
// while it is down, and accepts again once the supervisor has restarted
// it; every acknowledged event is stored once.
func TestManagedClickHouseKilledWriterIntegration(t *testing.T) {
	h := newManagedHarness(t, func(c *Config) {
		c.NoSpool = true
		c.ClickHouseRestartBackoff = time.Second // a wide window to be refused in
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 11})
	acked := make(map[string]bool)
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return h.ingestAcked(ctx, gen.Batch(20, time.Now()), acked)
	}
	for range 5 {
		if err := send(); err != nil {
			t.Fatalf("before the kill: %v", err)
		}
	}
	killManaged(t, h.app)
	began := time.Now()
	err := send()
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("ingest while ClickHouse is down: %v (code %v), want UNAVAILABLE", err, code)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the refusal took %v, want it at once", took)
	}
	waitClickHouseUp(t, h.app, 30*time.Second)
	for i := range 5 {
		if err := send(); err != nil {
			t.Fatalf("batch %d after the restart: %v", i, err)
		}
	}
	h.ch.Close()
	h.ch = collectorConn(t, h.app, h.app.cfg.DataDir)
	requireAckedOnce(t, h.ch, h.db, acked)
}

// TestShutdownWhileClickHouseDownIntegration: SIGTERM (Shutdown) while the
// managed ClickHouse is dead and cannot come back does not wait out the
// shutdown timeout and reports no error; nothing acknowledged or counted
// is lost: the next start on the same data dir ships the spooled batches
// and stores the reject counts kept in the data dir.
func TestShutdownWhileClickHouseDownIntegration(t *testing.T) {
	bin, breakFile := chtest.BreakableBinary(t)
	dataDir := t.TempDir()
	mutate := func(c *Config) {
		c.DataDir = dataDir
		c.ClickHouseBinary = bin
		c.ClickHouseMaxFailures = 1000 // keeps trying while the test runs
		c.ClickHouseRestartBackoff = 100 * time.Millisecond
		c.Rejects.FlushInterval = time.Hour // counts stay in memory until shutdown
	}
	h := newManagedHarness(t, mutate)
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 12})
	noConsent := eventgen.New(eventgen.Config{AppID: testApp, Seed: 13})
	acked := make(map[string]bool)
	var rejected uint64
	send := func() {
		t.Helper()
		ctx := context.Background()
		if err := h.ingestAcked(ctx, gen.Batch(30, time.Now()), acked); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		resp, err := h.client.Ingest(ctx, noConsent.Batch(7, time.Now()))
		if err != nil || resp.GetDropped() != 7 {
			t.Fatalf("batch without consent: %v, %v; want 7 dropped", resp, err)
		}
		rejected += uint64(resp.GetDropped())
	}
	send()
	if err := os.WriteFile(breakFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	killManaged(t, h.app)
	send() // into the spool, ClickHouse away

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	began := time.Now()
	err := h.app.Shutdown(ctx)
	took := time.Since(began)
	h.stopped = true
	if err != nil {
		t.Errorf("Shutdown with ClickHouse down: %v", err)
	}
	if took > 3500*time.Millisecond {
		t.Errorf("Shutdown with ClickHouse down took %v of its 4s bound", took)
	}
	t.Logf("Shutdown with ClickHouse down took %v", took.Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(dataDir, rejectsSpillFileName)); err != nil {
		t.Errorf("the reject counts were not kept: %v", err)
	}

	// The next start, with ClickHouse healthy again.
	if err := os.Remove(breakFile); err != nil {
		t.Fatal(err)
	}
	next := newManagedHarness(t, func(c *Config) {
		mutate(c)
		c.Rejects.FlushInterval = time.Second
	})
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := next.app.Spool().WaitShipped(sctx); err != nil {
		t.Fatal(err)
	}
	requireAckedOnce(t, next.ch, next.db, acked)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var stored uint64
		if err := next.ch.QueryRow(sctx, "SELECT sum(events) FROM consentry.rejects").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		// At least: a flush whose insert outlives its FlushInterval is
		// retried, and may then be stored twice (clickhouse.Rejects).
		if stored >= rejected {
			if stored > rejected {
				t.Logf("rejects table counts %d events for %d rejected: a slow flush was repeated", stored, rejected)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejects table counts %d events, want the %d rejected before the shutdown", stored, rejected)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dataDir, rejectsSpillFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the kept reject counts were stored but their file remains: %v", err)
	}
}

// TestShutdownWhileClickHouseRestartingIntegration: SIGTERM just after the
// managed ClickHouse died waits for its restart, then ships the spool
// and stores the reject counts before it stops.
func TestShutdownWhileClickHouseRestartingIntegration(t *testing.T) {
	h := newManagedHarness(t, func(c *Config) {
		c.ClickHouseRestartBackoff = 200 * time.Millisecond
		c.Rejects.FlushInterval = time.Hour
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 14})
	noConsent := eventgen.New(eventgen.Config{AppID: testApp, Seed: 15})
	ctx := context.Background()
	killManaged(t, h.app)
	acked := make(map[string]bool)
	if err := h.ingestAcked(ctx, gen.Batch(40, time.Now()), acked); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Ingest(ctx, noConsent.Batch(9, time.Now())); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.app.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown while ClickHouse restarts: %v", err)
	}
	h.stopped = true
	if st := h.app.Spool().Stats(); st.PendingRecords != 0 {
		t.Errorf("the spool holds %d batches after shutdown, want all shipped", st.PendingRecords)
	}
	if _, err := os.Stat(filepath.Join(h.app.cfg.DataDir, rejectsSpillFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reject counts were kept in a file instead of stored: %v", err)
	}
	// Read what was stored with a server of our own on the data dir.
	sc := h.app.cfg.managedConfig("consentry")
	sc.ReadOnlyPassword = "unused"
	srv, err := chserver.Start(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	conn, err := ch.Open(&ch.Options{Addr: []string{srv.Addr()}, Auth: ch.Auth{Username: srv.User(), Password: srv.Password()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	requireAckedOnce(t, conn, "consentry", acked)
	var stored uint64
	if err := conn.QueryRow(ctx, "SELECT sum(events) FROM consentry.rejects").Scan(&stored); err != nil || stored != 9 {
		t.Errorf("rejects table counts %d events, %v; want 9", stored, err)
	}
}

// TestManagedClickHouseGivesUpIntegration: a managed ClickHouse that keeps
// failing is given up on after ClickHouseMaxFailures: Serve returns an
// error wrapping ErrClickHouseFailed, and the shutdown that follows is
// quick and clean.
func TestManagedClickHouseGivesUpIntegration(t *testing.T) {
	bin, breakFile := chtest.BreakableBinary(t)
	h := newManagedHarness(t, func(c *Config) {
		c.ClickHouseBinary = bin
		c.ClickHouseMaxFailures = 2
		c.ClickHouseRestartBackoff = 50 * time.Millisecond
	})
	if err := os.WriteFile(breakFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	killManaged(t, h.app)
	select {
	case err := <-h.served:
		if !errors.Is(err, ErrClickHouseFailed) || !errors.Is(err, chserver.ErrGaveUp) {
			t.Fatalf("Serve = %v, want ErrClickHouseFailed", err)
		}
		t.Logf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve still running 30s after ClickHouse broke; state %v", h.app.storage.server.State())
	}
	if h.app.ClickHouseUp() {
		t.Error("ClickHouseUp after giving up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := h.app.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after giving up: %v", err)
	}
	h.stopped = true
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Shutdown after giving up took %v", took)
	}
}
