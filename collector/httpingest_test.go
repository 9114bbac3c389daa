package collector

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/internal/cors"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestHTTPIngestPushback checks that retryable refusals over HTTP carry
// the status and Retry-After an SDK honours, as RetryInfo does over gRPC,
// and that nothing is stored.
func TestHTTPIngestPushback(t *testing.T) {
	for _, tt := range []struct {
		sink   error
		status int
		reason string
	}{
		{pipeline.ErrOverloaded, http.StatusTooManyRequests, consentryv1.ErrorReason_OVERLOADED.String()},
		{pipeline.ErrStorageUnavailable, http.StatusServiceUnavailable, consentryv1.ErrorReason_STORAGE_UNAVAILABLE.String()},
		{pipeline.ErrClosed, http.StatusServiceUnavailable, consentryv1.ErrorReason_SHUTTING_DOWN.String()},
	} {
		f := newFixture(t)
		f.sink.err = tt.sink
		h := &httpIngest{svc: f.svc, edge: newTestEdge(t, limits.EdgeConfig{}, limits.Config{MaxMessageBytes: 1 << 20})}
		js, err := protojson.Marshal(f.gen.Batch(5, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, PathIngest, bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		var e grpcerr.HTTPError
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tt.status || e.Error.Reason != tt.reason {
			t.Errorf("%v: %d %s; want %d %s", tt.sink, rec.Code, rec.Body, tt.status, tt.reason)
		}
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("%v: Retry-After %q, want 1", tt.sink, got)
		}
		if f.sink.stored() != 0 {
			t.Errorf("%v: refused batch stored", tt.sink)
		}
	}
}

// lateBody returns its bytes after a pause, as a body that takes long to
// arrive does.
type lateBody struct {
	pause time.Duration
	r     io.Reader
	once  sync.Once
}

func (b *lateBody) Read(p []byte) (int, error) {
	b.once.Do(func() { time.Sleep(b.pause) })
	return b.r.Read(p)
}

// TestIngestLatencyCountsReceipt checks that an accepted request's
// acknowledgement latency is timed from when its receipt began, not from
// when it had been read and decoded: a body that took 300 ms to arrive
// is a request that took at least that long.
func TestIngestLatencyCountsReceipt(t *testing.T) {
	const pause = 300 * time.Millisecond
	f := newFixture(t)
	m := metrics.New()
	f.svc.cfg.Metrics = m
	h := &httpIngest{svc: f.svc, edge: newTestEdge(t, limits.EdgeConfig{}, limits.Config{MaxMessageBytes: 1 << 20})}
	js, err := protojson.Marshal(f.gen.Batch(5, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, PathIngest, &lateBody{pause: pause, r: bytes.NewReader(js)})
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	mrec := httptest.NewRecorder()
	m.Handler().ServeHTTP(mrec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	got, ok := parseMetrics(mrec.Body.String())[`consentry_ingest_duration_seconds_sum{outcome="ok"}`]
	if !ok {
		t.Fatalf("no ok latency observed:\n%s", mrec.Body)
	}
	if got < pause.Seconds() {
		t.Errorf("ok latency %.3f s, want at least the %v the body took to arrive", got, pause)
	}
}

// TestHTTPIngestCORS checks that a web app's SDK may send from the
// origins the collector allows, and only from them: the preflight is
// answered with the headers the SDK sends, an allowed origin's POST can
// be read by its page, and another origin's preflight is refused.
func TestHTTPIngestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	f := newFixture(t)
	policy, err := cors.New([]string{allowed}, ingestCORSHeaders...)
	if err != nil {
		t.Fatal(err)
	}
	h := &httpIngest{svc: f.svc, edge: newTestEdge(t, limits.EdgeConfig{}, limits.Config{MaxMessageBytes: 1 << 20}), cors: policy}
	serve := func(method, origin string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, PathIngest, bytes.NewReader(body))
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			req.Header.Set("Access-Control-Request-Headers", "content-type,content-encoding")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := serve(http.MethodOptions, allowed, nil)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != allowed ||
		rec.Header().Get("Access-Control-Allow-Methods") != http.MethodPost ||
		rec.Header().Get("Access-Control-Allow-Headers") != "Content-Type, Content-Encoding" {
		t.Errorf("preflight from %s: %d %v", allowed, rec.Code, rec.Header())
	}
	rec = serve(http.MethodOptions, "https://evil.example", nil)
	var e grpcerr.HTTPError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusForbidden ||
		e.Error.Reason != consentryv1.ErrorReason_ORIGIN_NOT_ALLOWED.String() || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %s %v", rec.Code, rec.Body, rec.Header())
	}

	js, err := protojson.Marshal(f.gen.Batch(3, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	rec = serve(http.MethodPost, allowed, js)
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != allowed ||
		rec.Header().Get("Access-Control-Expose-Headers") != "Retry-After" || rec.Header().Get("Vary") != "Origin" {
		t.Errorf("POST from %s: %d %v", allowed, rec.Code, rec.Header())
	}
	if rec = serve(http.MethodPost, "https://evil.example", js); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST from another origin readable by its page: %v", rec.Header())
	}
}
