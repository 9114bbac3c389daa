package collector

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/internal/tlsconfig"
	"github.com/consentry/consentry/internal/tlsconfig/tlstest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestRateLimitIntegration: an app over its rate gets RESOURCE_EXHAUSTED
// (RATE_LIMITED) with the delay after which its batch fits, and fits then;
// other apps are not affected.
func TestRateLimitIntegration(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) {
		c.Limits.MaxEvents = 100
		c.RateLimit = ratelimit.Config{EventsPerSecond: 100, Burst: 100, Overrides: map[string]float64{"com.example.big": 0}}
	})
	ctx := context.Background()
	scopes := []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports}
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: h.token(t, testApp, time.Hour, scopes...), Seed: 5})
	big := eventgen.New(eventgen.Config{AppID: "com.example.big", Token: h.token(t, "com.example.big", time.Hour, scopes...), Seed: 6})
	if _, err := h.client.Ingest(ctx, gen.Batch(100, time.Now())); err != nil {
		t.Fatal(err)
	}
	_, err := h.client.Ingest(ctx, gen.Batch(50, time.Now()))
	code, _, reason, delay := grpcerr.Details(err)
	if code != codes.ResourceExhausted || reason != consentryv1.ErrorReason_RATE_LIMITED.String() || delay <= 0 || delay > 500*time.Millisecond {
		t.Fatalf("over the limit: %v, reason %q, retry after %v; want RESOURCE_EXHAUSTED, RATE_LIMITED, at most 500ms (50 events at 100/s)", err, reason, delay)
	}
	for range 3 { // an unlimited app goes on
		if _, err := h.client.Ingest(ctx, big.Batch(100, time.Now())); err != nil {
			t.Fatalf("unlimited app: %v", err)
		}
	}
	time.Sleep(delay)
	if _, err := h.client.Ingest(ctx, gen.Batch(50, time.Now())); err != nil {
		t.Fatalf("after the retry delay: %v", err)
	}
	if got := scrape(t, h)[`consentry_events_rejected_total{reason="rate_limited"}`]; got != 50 {
		t.Errorf("rate-limited events counted %v, want 50", got)
	}
}

// TestTLSIntegration serves gRPC, HTTP and the admin port over TLS with
// client certificates required on gRPC and HTTP: a client with a
// certificate of the CA gets through, one without (or without TLS) does
// not, and the admin port needs no client certificate.
func TestTLSIntegration(t *testing.T) {
	ca := tlstest.NewCA(t, "consentry-test")
	srv := ca.Server("collector")
	client := ca.Client("app-proxy")
	other := tlstest.NewCA(t, "other").Client("stranger")
	h := newHarness(t, server(t), func(c *Config) {
		c.TLS = tlsconfig.Config{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File}
	})
	ctx := context.Background()
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics), Seed: 8})

	dial := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(h.app.Addr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = consentryv1.NewIngestServiceClient(conn).Ingest(ctx, gen.Batch(5, time.Now()))
		return err
	}
	withCert := &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{client.Cert}, ServerName: "localhost"}
	if err := dial(credentials.NewTLS(withCert)); err != nil {
		t.Fatalf("gRPC with a client certificate: %v", err)
	}
	for name, creds := range map[string]credentials.TransportCredentials{
		"no client certificate":    credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}),
		"another CA's certificate": credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{other.Cert}, ServerName: "localhost"}),
		"plaintext":                insecure.NewCredentials(),
	} {
		if err := dial(creds); err == nil {
			t.Errorf("gRPC with %s got through", name)
		}
	}

	get := func(addr string, cfg *tls.Config) (int, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := get(h.app.HTTPAddr(), withCert); err != nil {
		t.Errorf("HTTPS with a client certificate: %v", err)
	}
	if _, err := get(h.app.HTTPAddr(), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}); err == nil {
		t.Error("HTTPS without a client certificate got through")
	}
	if code, err := get(h.app.AdminAddr(), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}); err != nil || code >= 500 {
		t.Errorf("admin port over TLS: %d, %v", code, err)
	}
	if resp, err := http.Get("http://" + h.app.AdminAddr() + "/metrics"); err == nil {
		resp.Body.Close()
		if !strings.HasPrefix(resp.Status, "400") {
			t.Errorf("plain HTTP to the TLS admin port: %s", resp.Status)
		}
	}
}
