package collector

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestStartWaitsForClickHouseIntegration starts a collector while its
// ClickHouse hangs, then refuses connections: the collector retries and
// comes up once the server answers, and then stores what it is sent.
// Before, the first handshake that timed out ended the start, so a
// collector restarted during an outage, or next to a busy server, exited.
func TestStartWaitsForClickHouseIntegration(t *testing.T) {
	srv, proxy := proxied(t)
	proxy.Stall()
	const outage = 5 * time.Second
	go func() {
		time.Sleep(outage / 2)
		proxy.Refuse(true)
		proxy.Resume()
		time.Sleep(outage / 2)
		proxy.Refuse(false)
	}()
	start := time.Now()
	h := newHarness(t, srv, func(c *Config) {
		c.ClickHouse.Addr = proxy.Addr()
		c.ClickHouse.DialTimeout = time.Second
		c.ClickHouse.ReadTimeout = time.Second
		c.ClickHouseStartTimeout = time.Minute
	})
	if took := time.Since(start); took < outage {
		t.Fatalf("started after %v, while ClickHouse was away for %v", took, outage)
	}
	if n := h.logs.FilterMessage("clickhouse does not answer at start; retrying").Len(); n == 0 {
		t.Error("no retry logged")
	}
	tok := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics)
	if _, err := h.client.Ingest(context.Background(), gestureBatch(tok, &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_IOS, OsVersion: "17.4"}, "", 1)); err != nil {
		t.Fatal(err)
	}
	if n := h.count(t, "gestures", ""); n != 1 {
		t.Fatalf("%d gestures stored, want 1", n)
	}
}

// TestStartWrongPasswordFailsAtOnceIntegration: an error that waiting
// cannot cure ends the start at once, with the server's reason.
func TestStartWrongPasswordFailsAtOnceIntegration(t *testing.T) {
	srv := server(t)
	start := time.Now()
	app, err := New(context.Background(), Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		ClickHouse:             clickhouse.Config{Addr: srv.Addr(), Database: "consentry_wrong_password", Username: srv.User(), Password: "wrong"},
		ClickHouseStartTimeout: time.Minute,
		Logger:                 zap.NewNop(),
	})
	if err == nil {
		app.Shutdown(context.Background())
		t.Fatal("started with a wrong password")
	}
	if clickhouse.Unavailable(err) {
		t.Errorf("a wrong password classified as unavailable: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("gave up after %v; want at once", took)
	}
}
