package collector

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// probe is what each view of readiness says at one moment.
type probe struct {
	ingest, empty healthpb.HealthCheckResponse_ServingStatus
	readyz        int
	body          string
	gauge         float64
}

func (h *harness) probe(t *testing.T) probe {
	t.Helper()
	ctx := context.Background()
	hc := healthpb.NewHealthClient(h.conn)
	var p probe
	for _, s := range []struct {
		name string
		out  *healthpb.HealthCheckResponse_ServingStatus
	}{{consentryv1.IngestService_ServiceDesc.ServiceName, &p.ingest}, {"", &p.empty}} {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: s.name})
		if err != nil {
			t.Fatalf("health %q: %v", s.name, err)
		}
		*s.out = r.GetStatus()
	}
	resp, err := http.Get("http://" + h.app.AdminAddr() + PathReadyz)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p.readyz, p.body = resp.StatusCode, string(b)
	p.gauge = scrape(t, h)["consentry_ready"]
	return p
}

// waitProbe polls until every view agrees on ready (or not), and returns
// the last probe.
func (h *harness) waitProbe(t *testing.T, ready bool) probe {
	t.Helper()
	want, code, gauge := healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable, 0.0
	if ready {
		want, code, gauge = healthpb.HealthCheckResponse_SERVING, http.StatusOK, 1
	}
	var p probe
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// /readyz evaluates afresh; gRPC health and the gauge follow the
		// periodic evaluation, so probe /readyz last.
		if p = h.probe(t); p.ingest == want && p.empty == want && p.readyz == code && p.gauge == gauge {
			return p
		}
	}
	t.Fatalf("readiness did not become %v: %+v", ready, p)
	return p
}

// TestReadinessSpoolFullIntegration: while the spool is full (ClickHouse
// hung), every ingest request is refused, and health, /readyz and
// consentry_ready all say so, with the reason; once ClickHouse is back
// and the spool drains, they say ready again.
func TestReadinessSpoolFullIntegration(t *testing.T) {
	h, proxy := newProxiedHarness(t, func(c *Config) {
		c.ClickHouse.ReadTimeout = 2 * time.Second
		c.Spool.MaxBytes = 1 << 20
		c.Spool.RetryMax = 200 * time.Millisecond
		c.HealthInterval = 100 * time.Millisecond
	})
	if p := h.probe(t); p.ingest != healthpb.HealthCheckResponse_SERVING || p.readyz != http.StatusOK || p.gauge != 1 {
		t.Fatalf("not ready at start: %+v", p)
	}
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	proxy.Stall()
	proxy.Cut()
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 4, 200, 0)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tr.mu.Lock()
		full := tr.refusals[codes.ResourceExhausted]
		tr.mu.Unlock()
		if full > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool never filled")
		}
	}
	p := h.waitProbe(t, false)
	if !strings.Contains(p.body, "spool full") {
		t.Errorf("/readyz body %q does not say the spool is full", p.body)
	}
	proxy.Resume()
	acked := tr.halt()
	h.waitProbe(t, true)
	h.shipped(t)
	requireAckedOnce(t, h.ch, h.db, acked)
	h.shutdown() // while the proxy is up
}

// TestReadinessRevocationsStaleIntegration: without a spool, a collector
// that cannot refresh revocations within the bound refuses ingest, and
// says so; it is ready again once refreshes succeed.
func TestReadinessRevocationsStaleIntegration(t *testing.T) {
	h, proxy := newProxiedHarness(t, func(c *Config) {
		c.ClickHouse.ReadTimeout = time.Second
		c.NoSpool = true
		c.RevocationRefresh = 100 * time.Millisecond
		c.RevocationBound = 500 * time.Millisecond
		c.HealthInterval = 100 * time.Millisecond
	})
	h.waitProbe(t, true)
	proxy.Stall()
	proxy.Cut()
	p := h.waitProbe(t, false)
	if !strings.Contains(p.body, "revocations") {
		t.Errorf("/readyz body %q does not name the revocations", p.body)
	}
	proxy.Resume()
	h.waitProbe(t, true)
	h.shutdown() // while the proxy is up
}

// TestShutdownDelayServesWhileNotReady: with a shutdown delay, Shutdown
// first says not ready (gRPC health, /readyz, consentry_ready) and serves
// on for the delay, so that load balancers and Kubernetes' endpoints stop
// sending before the listeners close: a batch sent then is acknowledged
// and stored. After the delay the listeners close as before.
func TestShutdownDelayServesWhileNotReady(t *testing.T) {
	const delay = 3 * time.Second
	h := newHarness(t, server(t), func(c *Config) { c.ShutdownDelay = delay })
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: h.token(t, testApp, time.Hour), Seed: 1})
	h.waitProbe(t, true)

	h.stopped = true
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- h.app.Shutdown(ctx)
	}()
	if p := h.waitProbe(t, false); !strings.Contains(p.body, "shutting down") {
		t.Fatalf("/readyz during the delay: %q", p.body)
	}
	resp, err := h.client.Ingest(context.Background(), gen.Batch(20, time.Now()))
	if err != nil || resp.GetAccepted() != 20 {
		t.Fatalf("a batch during the delay: %v, %v", resp, err)
	}
	if time.Since(start) >= delay {
		t.Fatalf("the checks took longer than the delay (%v): nothing is shown", delay)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("Shutdown returned after %v, within the delay of %v", took, delay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := h.client.Ingest(ctx, gen.Batch(1, time.Now())); err == nil {
		t.Fatal("a batch was acknowledged after Shutdown returned")
	}
	if got := h.total(t); got != 20 {
		t.Fatalf("stored %d rows, want the 20 acknowledged during the delay", got)
	}
}

// TestShutdownDelayEndsWithContext: the delay is cut short when the
// shutdown's context ends (a second signal, an orchestrator's deadline).
func TestShutdownDelayEndsWithContext(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.ShutdownDelay = time.Hour })
	h.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = h.app.Shutdown(ctx) // may report what the cut-short shutdown left
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Shutdown took %v with a context of 500ms", took)
	}
}
