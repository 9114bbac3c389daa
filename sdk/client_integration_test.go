package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/collectortest"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The integration tests run the SDK against the real collector storing
// into a real ClickHouse (the binary's shared server, a database per
// test).

// realCollector is a real collector (collectortest) that can be stopped
// and started again on the same address, data folder and database, with
// the test app registered.
type realCollector struct {
	*collectortest.Collector
	appKey string
	addr   string
}

func startRealCollector(t *testing.T) *realCollector {
	t.Helper()
	c := collectortest.Start(t, shared)
	r := &realCollector{Collector: c, appKey: "ck_sdk-integration-0123456789abcdefghijklmn", addr: c.Addr()}
	c.AddApp(t, testAppID, r.appKey)
	return r
}

// start starts the stopped collector again.
func (r *realCollector) start() { r.Restart() }

// stop stops it.
func (r *realCollector) stop() { r.Stop() }

// sdkConfig returns a client config for endpoint (the collector, or a front
// of it).
func (r *realCollector) sdkConfig(endpoint, dir string) *Config {
	return &Config{
		Endpoint: endpoint, Insecure: true, AppID: testAppID, AppKey: r.appKey, StorageDir: dir,
		ConsentTextVersion: "2026-11", AppVersion: "4.12.0", AppBuild: "4120003", DeviceClass: "phone",
		DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14", Locale: "de-AT",
		MinBackoffMs: 50, MaxBackoffMs: 500, FlushIntervalMs: 3_600_000, RequestTimeoutMs: 30_000, FlushTimeoutMs: 40_000,
	}
}

// httpConfig returns a client config for the collector's HTTP endpoint,
// over the HTTP transport.
func (r *realCollector) httpConfig(dir string) *Config {
	cfg := r.sdkConfig("http://"+r.HTTPAddr(), dir)
	cfg.Transport = TransportHTTP
	return cfg
}

// dial returns a gRPC connection to the collector, closed when the test
// ends.
func (r *realCollector) dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requireRevoked fails the test unless the collector reports the consent
// of token revoked.
func (r *realCollector) requireRevoked(t *testing.T, token string) {
	t.Helper()
	st, err := consentryv1.NewConsentServiceClient(r.dial(t)).Status(context.Background(), &consentryv1.StatusRequest{ConsentToken: token})
	if err != nil || st.GetState() != consentryv1.ConsentState_CONSENT_STATE_REVOKED {
		t.Fatalf("collector's status of the token: %v %v", st, err)
	}
}

// grant grants consent, waiting for the collector's registry to load the
// app.
func grantWhenRegistered(t *testing.T, c *Client, scopes string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := c.GrantConsent(scopes)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedIDs returns the event ids stored in every event table, with how
// often each is stored, as analysts count them: with FINAL, which merges
// the rows of a batch retried after its response was lost (the
// collector's documented deduplication by event id). It logs how many
// such rows there were before merging.
func (r *realCollector) storedIDs(t *testing.T) map[string]int {
	t.Helper()
	// An acknowledgement means durable in the collector's spool; wait
	// until it shipped to ClickHouse.
	r.Shipped(t)
	out := r.queryIDs(t, "FINAL")
	raw := 0
	for _, n := range r.queryIDs(t, "") {
		raw += n
	}
	if total := len(out); raw > total {
		t.Logf("%d rows before merging for %d events: retries after lost responses", raw, total)
	}
	return out
}

// requireStoredOnce fails t unless exactly the events ids are stored,
// each once, as storedIDs counts them. The collector stores a keyed hash
// of each id the SDK sent (App.StoredEventID).
func (r *realCollector) requireStoredOnce(t *testing.T, ids []string) {
	t.Helper()
	stored := r.storedIDs(t)
	if len(stored) != len(ids) {
		t.Errorf("%d distinct events stored, want %d", len(stored), len(ids))
	}
	for _, id := range ids {
		u := uuid.MustParse(id)
		if s := uuid.UUID(r.App.StoredEventID(testAppID, u[:])).String(); stored[s] != 1 {
			t.Errorf("event %s stored %d times, want once", id, stored[s])
		}
	}
}

func (r *realCollector) queryIDs(t *testing.T, final string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range clickhouse.EventTables() {
		for _, id := range chtest.QueryStrings(context.Background(), t, r.CH, fmt.Sprintf("SELECT toString(event_id) FROM %s.%s %s WHERE app_id = '%s'", r.DB, table, final, testAppID)) {
			out[id]++
		}
	}
	return out
}

// queuedIDs returns the ids of the events in c's queue, as UUID strings.
func queuedIDs(t *testing.T, c *Client) []string {
	t.Helper()
	b, err := c.queue.peek(1<<30, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return nil
	}
	defer c.queue.done(b)
	var ids []string
	for _, it := range b.items {
		if !it.corrupt {
			ids = append(ids, uuid.UUID(it.rec.event.GetEventId()).String())
		}
	}
	return ids
}

// recordMix records n events of every kind but location.
func recordMix(t *testing.T, c *Client, n int) {
	t.Helper()
	for i := range n {
		var err error
		switch i % 5 {
		case 0:
			err = c.RecordGesture("tap", fmt.Sprintf("screen.%d", i%7), 1, 0)
		case 1:
			a := NewAttributes()
			a.PutInt("seq", int64(i))
			err = c.RecordCustom("export_pdf", a)
		case 2:
			err = c.RecordDiagnostic("app_start", 800, "cold", "wifi", 0)
		case 3:
			err = c.RecordCrash("java.lang.IllegalStateException", "boom", "\tat com.example.notes.NoteEditor.save(NoteEditor.kt:42)", true)
		case 4:
			err = c.RecordSession(60_000)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntegrationOfflineThenDelivered: events recorded while the collector
// is down, across a restart of the app, are all stored once it is up, each
// exactly once.
func TestIntegrationOfflineThenDelivered(t *testing.T) {
	r := startRealCollector(t)
	dir := t.TempDir()
	c := newClient(t, r.sdkConfig(r.addr, dir))
	grantWhenRegistered(t, c, "analytics,crash_reports")
	// The real token's lifetime (a year by default) counts on the
	// device's clock.
	c.mu.RLock()
	expires := time.UnixMilli(c.st.ExpiresAtMs)
	c.mu.RUnlock()
	if d := time.Until(expires) - consent.DefaultTTL; d < -time.Minute || d > time.Minute {
		t.Errorf("token expires %v, want in %v", expires, consent.DefaultTTL)
	}

	r.stop()
	const n = 250
	recordMix(t, c, n)
	if err := c.Flush(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("flush while the collector is down: %v", err)
	}
	ids := queuedIDs(t, c)
	if len(ids) != n {
		t.Fatalf("%d events queued, want %d", len(ids), n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// The app restarts, still offline, records more, then the collector
	// comes back.
	c2 := newClient(t, r.sdkConfig(r.addr, dir))
	recordMix(t, c2, 50)
	ids = queuedIDs(t, c2)
	if len(ids) != n+50 {
		t.Fatalf("%d events queued after the restart, want %d", len(ids), n+50)
	}
	r.start()
	waitFor(t, 30*time.Second, "the queue to drain", func() bool { return c2.Stats().QueuedEvents == 0 })
	if st := c2.Stats(); st.SentEvents != n+50 || st.DroppedServer != 0 || st.DroppedPermanentError != 0 {
		t.Fatalf("stats %+v", st)
	}
	r.requireStoredOnce(t, ids)
}

// TestIntegrationRevocation: revoking purges the queue, reaches the
// collector, and nothing more is stored; a revocation made offline reaches
// it once it is back; a consent revoked elsewhere stops the SDK when the
// collector says so.
func TestIntegrationRevocation(t *testing.T) {
	r := startRealCollector(t)
	dir := t.TempDir()
	c := newClient(t, r.sdkConfig(r.addr, dir))
	grantWhenRegistered(t, c, "analytics,crash_reports")
	recordMix(t, c, 20)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	token := consentToken(c)

	// Offline: queued events are purged by the revocation and never
	// stored; the revocation waits.
	r.stop()
	recordMix(t, c, 30)
	if err := c.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	if c.ConsentState() != StateRevokePending || c.Stats().QueuedEvents != 0 {
		t.Fatalf("state %q, stats %+v", c.ConsentState(), c.Stats())
	}
	recordMix(t, c, 10) // no-ops
	r.start()
	waitFor(t, 15*time.Second, "the revocation", func() bool { return c.ConsentState() == StateRevoked })

	r.requireRevoked(t, token)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if stored := r.storedIDs(t); len(stored) != 20 {
		t.Fatalf("%d events stored, want the 20 sent before the revocation", len(stored))
	}

	// Consent granted again, then revoked elsewhere (not through this
	// SDK): the collector's answer stops the SDK and purges its queue.
	grantWhenRegistered(t, c, "analytics")
	token = consentToken(c)
	if _, err := consentryv1.NewConsentServiceClient(r.dial(t)).Revoke(context.Background(), &consentryv1.RevokeRequest{ConsentToken: token}); err != nil {
		t.Fatal(err)
	}
	recordMix(t, c, 10)
	if err := c.Flush(); !errors.Is(err, ErrConsentEnded) {
		t.Fatalf("flush after a revocation elsewhere: %v", err)
	}
	if c.ConsentState() != StateRevoked || c.Stats().QueuedEvents != 0 {
		t.Fatalf("state %q, stats %+v", c.ConsentState(), c.Stats())
	}
	if stored := r.storedIDs(t); len(stored) != 20 {
		t.Fatalf("%d events stored after the revocations, want 20", len(stored))
	}
}

// front is a gRPC front of the collector that refuses the first ingest
// calls with the collector's overload error (RESOURCE_EXHAUSTED,
// OVERLOADED, RetryInfo) and passes everything else through.
type front struct {
	consentryv1.UnimplementedIngestServiceServer
	ingest  consentryv1.IngestServiceClient
	consent consentryv1.ConsentServiceClient
	refuse  int
	delay   time.Duration

	mu       sync.Mutex
	attempts []time.Time
}

type frontConsent struct {
	consentryv1.UnimplementedConsentServiceServer
	f *front
}

func (f *front) Ingest(ctx context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	n := len(f.attempts)
	f.mu.Unlock()
	if n <= f.refuse {
		return nil, withReason(codes.ResourceExhausted, consentryv1.ErrorReason_OVERLOADED.String(), f.delay)
	}
	return f.ingest.Ingest(ctx, req)
}

func (f frontConsent) Grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	return f.f.consent.Grant(ctx, req)
}

func (f frontConsent) Revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	return f.f.consent.Revoke(ctx, req)
}

// TestIntegrationPushback: the collector's overload pushback is honoured:
// no retry before the delay, then everything is stored once.
func TestIntegrationPushback(t *testing.T) {
	r := startRealCollector(t)
	conn := r.dial(t)
	const delay = 700 * time.Millisecond
	fr := &front{ingest: consentryv1.NewIngestServiceClient(conn), consent: consentryv1.NewConsentServiceClient(conn), refuse: 3, delay: delay}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	consentryv1.RegisterIngestServiceServer(srv, fr)
	consentryv1.RegisterConsentServiceServer(srv, frontConsent{f: fr})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	defer func() {
		srv.Stop()
		<-done
	}()

	cfg := r.sdkConfig(lis.Addr().String(), t.TempDir())
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 20, 100 // the pushback is longer
	cfg.MaxBatchEvents = 50
	c := newClient(t, cfg)
	grantWhenRegistered(t, c, "analytics,crash_reports")
	recordMix(t, c, 200)
	ids := queuedIDs(t, c)
	waitFor(t, 30*time.Second, "the queue to drain", func() bool {
		if c.Stats().QueuedEvents == 0 {
			return true
		}
		c.Flush() // refused during the pushback without a request
		return false
	})
	fr.mu.Lock()
	at := append([]time.Time(nil), fr.attempts...)
	fr.mu.Unlock()
	for i := 1; i <= fr.refuse && i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < delay-20*time.Millisecond {
			t.Errorf("attempt %d came %v after a refusal asking for %v", i+1, gap, delay)
		}
	}
	if len(at) != fr.refuse+4 {
		t.Errorf("%d ingest calls, want %d refused + 4 batches", len(at), fr.refuse)
	}
	if len(ids) != 200 {
		t.Fatalf("%d events recorded, want 200", len(ids))
	}
	r.requireStoredOnce(t, ids)
}

// TestIntegrationConsentOverHTTP: the HTTP transport's consent calls work
// against the collector's HTTPS+JSON consent endpoints.
func TestIntegrationConsentOverHTTP(t *testing.T) {
	r := startRealCollector(t)
	c := newClient(t, r.httpConfig(t.TempDir()))
	grantWhenRegistered(t, c, "analytics,crash_reports,location")
	if got := c.Scopes(); got != "analytics,crash_reports,location" {
		t.Fatalf("scopes %q", got)
	}
	token := consentToken(c)
	if err := c.RevokeConsent(true); err != nil {
		t.Fatal(err)
	}
	if got := c.ConsentState(); got != StateRevoked {
		t.Fatalf("state %q after revoking over HTTP", got)
	}
	r.requireRevoked(t, token)
	// A wrong key is refused for good, with the collector's reason.
	cfg2 := r.httpConfig(t.TempDir())
	cfg2.AppKey = "ck_wrong"
	c2 := newClient(t, cfg2)
	if err := c2.GrantConsent("analytics"); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "APP_UNAUTHENTICATED") {
		t.Fatalf("grant with a wrong key: %v", err)
	}
}

// TestIntegrationIngestOverHTTP: the HTTP transport's batches reach
// ClickHouse through the collector's POST /v1/ingest, gzipped, each event
// once.
func TestIntegrationIngestOverHTTP(t *testing.T) {
	r := startRealCollector(t)
	c := newClient(t, r.httpConfig(t.TempDir()))
	grantWhenRegistered(t, c, "analytics,crash_reports,location")
	recordMix(t, c, 50)
	want := queuedIDs(t, c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(want) != 50 {
		t.Fatalf("%d events queued, want 50", len(want))
	}
	r.requireStoredOnce(t, want)
}

// TestIntegrationFullQueueDropsOldest: with the collector down, a queue
// over its cap drops its oldest events (counted); once the collector is
// back, exactly the newest events are stored, each once.
func TestIntegrationFullQueueDropsOldest(t *testing.T) {
	r := startRealCollector(t)
	cfg := r.sdkConfig(r.addr, t.TempDir())
	cfg.MaxQueueBytes = 16 << 10
	c := newClient(t, cfg)
	grantWhenRegistered(t, c, "analytics")
	r.stop()
	var order []string
	for i := range 400 {
		if err := c.RecordGesture("tap", fmt.Sprintf("screen.%d", i), 1, 0); err != nil {
			t.Fatal(err)
		}
		if ids := queuedIDs(t, c); len(ids) > 0 {
			order = append(order[:0], ids...) // the queue, oldest first
		}
	}
	st := c.Stats()
	if st.DroppedEvicted == 0 || st.QueuedEvents+st.DroppedEvicted != 400 {
		t.Fatalf("stats %+v: want evictions that account for every event", st)
	}
	r.start()
	waitFor(t, 30*time.Second, "the queue to drain", func() bool { return c.Stats().QueuedEvents == 0 })
	r.requireStoredOnce(t, order) // the events the queue kept, and no others
	// What was kept is the newest: the last screens recorded.
	var newest uint64
	q := fmt.Sprintf("SELECT count() FROM %s.gestures WHERE app_id = '%s' AND screen = 'screen.399'", r.DB, testAppID)
	if err := r.CH.QueryRow(context.Background(), q).Scan(&newest); err != nil || newest != 1 {
		t.Fatalf("the newest event stored %d times (%v)", newest, err)
	}
}

// TestIntegrationGroupedCrashes: crashes the app groups with its own key
// share one fingerprint in ClickHouse, whatever their stacks.
func TestIntegrationGroupedCrashes(t *testing.T) {
	r := startRealCollector(t)
	c := newClient(t, r.sdkConfig(r.addr, t.TempDir()))
	grantWhenRegistered(t, c, "crash_reports")
	for _, stack := range []string{"\tat com.example.notes.Sync.run(Sync.kt:1)", "\tat com.example.notes.Upload.go(Upload.kt:9)"} {
		if err := c.RecordCrashGrouped("java.net.SocketTimeoutException", "timeout", stack, "sync-timeout", true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	r.storedIDs(t) // waits until the collector shipped them
	var groups, rows uint64
	q := fmt.Sprintf("SELECT uniqExact(fingerprint), count() FROM %s.crashes FINAL WHERE app_id = '%s' AND fingerprint != 0", r.DB, testAppID)
	if err := r.CH.QueryRow(context.Background(), q).Scan(&groups, &rows); err != nil {
		t.Fatal(err)
	}
	if groups != 1 || rows != 2 {
		t.Fatalf("%d groups for %d grouped crashes, want 1 for 2", groups, rows)
	}
}
