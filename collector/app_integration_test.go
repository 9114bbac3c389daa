package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/faultproxy"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const testApp = "com.example.notes"

// harness is a collector App on a real ClickHouse, with a gRPC client.
type harness struct {
	t      testing.TB
	app    *App
	conn   *grpc.ClientConn
	client consentryv1.IngestServiceClient
	ch     driver.Conn
	db     string
	logs   *observer.ObservedLogs
	served chan error
	// stopped: the test shut the App down itself, expecting an error.
	stopped bool
}

var dbSeq atomic.Int64

// newHarness starts an App storing into srv, in a database of its own.
func newHarness(t testing.TB, srv *chserver.Server, mutate func(*Config)) *harness {
	t.Helper()
	h, err := tryHarness(t, srv, mutate)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	return h
}

// tryHarness is newHarness returning the error of an App that does not
// start.
func tryHarness(t testing.TB, srv *chserver.Server, mutate func(*Config)) (*harness, error) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	db := fmt.Sprintf("consentry_test_%d", dbSeq.Add(1))
	cfg := Config{
		GRPCAddr:   "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		AdminAddr:  "127.0.0.1:0",
		DataDir:    t.TempDir(),
		ClickHouse: clickhouse.Config{Addr: srv.Addr(), Database: db, Username: srv.User(), Password: srv.Password()},
		// Tests that check stored device values send them from one
		// consent, and check skew correction to the second;
		// generalization and the default precision have their own tests.
		Anonymizer: anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: 1}, TimePrecision: time.Second},
		// The spool ships a batch once every revocation stamped before it
		// arrived is known: keep that lag short in tests.
		RevocationRefresh:      200 * time.Millisecond,
		RevocationWriteTimeout: 300 * time.Millisecond,
		MaxClockSkew:           10 * time.Millisecond,
		Logger:                 zap.New(core),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	db = cfg.ClickHouse.Database
	ctx := context.Background()
	app, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h := &harness{t: t, app: app, db: db, logs: logs, served: make(chan error, 1)}
	go func() { h.served <- app.Serve() }()
	h.conn, err = grpc.NewClient(app.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.client = consentryv1.NewIngestServiceClient(h.conn)
	h.ch = chtest.Conn(t, srv)
	t.Cleanup(func() {
		h.conn.Close()
		h.shutdown()
	})
	return h, nil
}

// replica returns a mutation that makes a harness another replica of h:
// the same database, consent secret and signing key.
func (h *harness) replica() func(*Config) {
	return func(c *Config) {
		c.ClickHouse.Database = h.db
		c.ConsentSecretFile = h.app.cfg.ConsentSecretFile
		c.ConsentSigningKeyFile = h.app.cfg.ConsentSigningKeyFile
	}
}

func (h *harness) shutdown() {
	if h.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.app.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
}

func (h *harness) token(t testing.TB, app string, ttl time.Duration, scopes ...consentryv1.Scope) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}
	}
	tok, err := h.app.Keys().Sign(consent.Claims{AppID: app, Scopes: scopes, IssuedAt: time.Now().Add(-2 * ttl), ExpiresAt: time.Now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (h *harness) count(t testing.TB, table, where string) uint64 {
	t.Helper()
	h.shipped(t)
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s", h.db, table)
	if where != "" {
		q += " WHERE " + where
	}
	if err := h.ch.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// shipped waits until the spool, if any, shipped everything acknowledged:
// an acknowledgement means durable in the spool, stored a moment later.
func (h *harness) shipped(t testing.TB) {
	t.Helper()
	if sp := h.app.Spool(); sp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sp.WaitShipped(ctx); err != nil {
			t.Fatalf("spool: %v", err)
		}
	}
}

func (h *harness) total(t testing.TB) uint64 {
	var n uint64
	for _, tbl := range eventTables {
		n += h.count(t, tbl, "")
	}
	return n
}

var eventTables = []string{"sessions", "gestures", "crashes", "custom_events", "diagnostics"}

// shared is the ClickHouse server of this test binary; nil under -short.
// Each harness uses a database of its own.
var shared *chserver.Server

func TestMain(m *testing.M) {
	code := chtest.Main(m, &shared)
	cluster.Stop() // if a cluster test started it: cluster_integration_test.go
	os.Exit(code)
}

func server(t testing.TB) *chserver.Server {
	t.Helper()
	chtest.Require(t, shared)
	return shared
}

// proxied returns the package's server and a fault proxy in front of it;
// the proxy closes after the test's harnesses shut down (cleanups run in
// reverse), so a harness's last flush goes through it.
func proxied(t testing.TB) (*chserver.Server, *faultproxy.Proxy) {
	t.Helper()
	srv := server(t)
	proxy, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatalf("start fault proxy: %v", err)
	}
	t.Cleanup(func() { proxy.Close() })
	return srv, proxy
}

// newProxiedHarness starts a harness that reaches the package's server
// through a fault proxy (see proxied), its Config changed by mutate.
func newProxiedHarness(t testing.TB, mutate func(*Config)) (*harness, *faultproxy.Proxy) {
	t.Helper()
	srv, proxy := proxied(t)
	h := newHarness(t, srv, func(c *Config) {
		c.ClickHouse.Addr = proxy.Addr()
		if mutate != nil {
			mutate(c)
		}
	})
	return h, proxy
}

func TestEndToEndStoresEveryKind(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	now := time.Now()
	age := int64(90_000)
	id := func(b byte) []byte { v := make([]byte, 16); v[0], v[6], v[15] = b, 0x40, 1; return v }
	req := &consentryv1.IngestRequest{
		ConsentToken: h.token(t, testApp, time.Hour),
		SentAtUnixMs: now.Add(-time.Hour).UnixMilli(), // device clock an hour behind
		Device: &consentryv1.DeviceContext{
			AppId: testApp, AppVersion: "4.12.0", AppBuild: "4120003", SdkVersion: "consentry-go/0.1.0",
			DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_TABLET, DeviceModel: "iPad13,4",
			OsName: consentryv1.OsName_OS_NAME_IPADOS, OsVersion: "17.4.1", Locale: "de_AT",
			Location: &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"},
		},
		Events: []*consentryv1.Event{
			{EventId: id(1), AgeMs: &age, SessionId: []byte("session-0000000001"), Payload: &consentryv1.Event_Session{Session: &consentryv1.Session{
				Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: 120_000, ForegroundMs: 100_000}}},
			{EventId: id(2), CreatedAtUnixMs: now.Add(-time.Hour - time.Minute).UnixMilli(), SessionId: []byte("session-0000000001"),
				Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_SWIPE, Screen: "editor", Count: 3, DurationMs: 450}}},
			{EventId: id(3), AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "java.lang.IllegalStateException", Message: "boom for jane@example.com", Thread: "main",
				AppState: consentryv1.AppState_APP_STATE_BACKGROUND, Handled: true,
				Frames: []*consentryv1.StackFrame{{Module: "com.example.notes", Function: "NoteEditor.save", File: "NoteEditor.kt", Line: 42, InApp: true},
					{Module: "android.app", Function: "Activity.performResume", File: "Activity.java", Line: 8422}}}}},
			{EventId: id(4), AgeMs: &age, Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "export_pdf",
				Attributes: map[string]*consentryv1.AttributeValue{
					"pages":   {Value: &consentryv1.AttributeValue_IntValue{IntValue: 12}},
					"ratio":   {Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: 0.5}},
					"format":  {Value: &consentryv1.AttributeValue_StringValue{StringValue: "a4"}},
					"dark":    {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}},
					"user_id": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301"}},
				}}}},
			{EventId: id(5), AgeMs: &age, Payload: &consentryv1.Event_Diagnostic{Diagnostic: &consentryv1.Diagnostic{
				Kind: consentryv1.DiagnosticKind_DIAGNOSTIC_KIND_APP_START, DurationMs: 830,
				StartType: consentryv1.AppStartType_APP_START_TYPE_COLD, NetworkType: consentryv1.NetworkType_NETWORK_TYPE_CELLULAR}}},
		},
	}
	resp, err := h.client.Ingest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 5 || resp.GetDropped() != 0 || resp.GetConsentState() != consentryv1.ConsentState_CONSENT_STATE_VALID {
		t.Fatalf("resp = %v", resp)
	}
	// Acknowledged means stored: no waiting.
	for _, tbl := range eventTables {
		if n := h.count(t, tbl, "app_id = '"+testApp+"'"); n != 1 {
			t.Errorf("%s: %d rows, want 1", tbl, n)
		}
	}
	var (
		devClass, model, osName, osVer, locale, country, region, appVer string
		sessionKey                                                      uint64
		evTime                                                          time.Time
	)
	if err := h.ch.QueryRow(ctx, fmt.Sprintf(`SELECT device_class, device_model, os_name, os_version, locale, country, region,
		app_version, session_key, event_time FROM %s.gestures`, h.db)).Scan(&devClass, &model, &osName, &osVer, &locale, &country, &region, &appVer, &sessionKey, &evTime); err != nil {
		t.Fatal(err)
	}
	if devClass != "tablet" || model != "iPad13,4" || osName != "ipados" || osVer != "17.4.1" || locale != "de-AT" ||
		country != "AT" || region != "AT-9" || appVer != "4.12.0" || sessionKey == 0 {
		t.Errorf("common columns: %q %q %q %q %q %q %q %q %d", devClass, model, osName, osVer, locale, country, region, appVer, sessionKey)
	}
	if d := now.Add(-time.Minute).Sub(evTime); d < -3*time.Second || d > 3*time.Second {
		t.Errorf("skew-corrected event time %v, want about %v", evTime, now.Add(-time.Minute))
	}
	var gType, screen string
	var gCount, gDur uint32
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT gesture_type, screen, gesture_count, duration_ms FROM %s.gestures", h.db)).Scan(&gType, &screen, &gCount, &gDur); err != nil {
		t.Fatal(err)
	}
	if gType != "swipe" || screen != "editor" || gCount != 3 || gDur != 450 {
		t.Errorf("gesture = %q %q %d %d", gType, screen, gCount, gDur)
	}
	var phase string
	var dur, fg uint64
	var sk2 uint64
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT phase, duration_ms, foreground_ms, session_key FROM %s.sessions", h.db)).Scan(&phase, &dur, &fg, &sk2); err != nil {
		t.Fatal(err)
	}
	if phase != "end" || dur != 120_000 || fg != 100_000 || sk2 != sessionKey {
		t.Errorf("session = %q %d %d key %d vs %d", phase, dur, fg, sk2, sessionKey)
	}
	var (
		exType, msg, thread, appState string
		handled                       uint8
		fmods, ffuncs, ffiles         []string
		flines                        []uint32
		finapp                        []uint8
	)
	if err := h.ch.QueryRow(ctx, fmt.Sprintf(`SELECT exception_type, message, thread, app_state, handled,
		frame_module, frame_function, frame_file, frame_line, frame_in_app FROM %s.crashes`, h.db)).Scan(
		&exType, &msg, &thread, &appState, &handled, &fmods, &ffuncs, &ffiles, &flines, &finapp); err != nil {
		t.Fatal(err)
	}
	if exType != "java.lang.IllegalStateException" || msg != "boom for [email]" || thread != "main" || appState != "background" || handled != 1 {
		t.Errorf("crash = %q %q %q %q %d", exType, msg, thread, appState, handled)
	}
	if strings.Join(ffuncs, ",") != "NoteEditor.save,Activity.performResume" || flines[0] != 42 || finapp[0] != 1 || finapp[1] != 0 || ffiles[1] != "Activity.java" || fmods[1] != "android.app" {
		t.Errorf("frames = %v %v %v %v %v", fmods, ffuncs, ffiles, flines, finapp)
	}
	var (
		name           string
		sk, sv, nk, bk []string
		nv             []float64
		bv             []uint8
	)
	if err := h.ch.QueryRow(ctx, fmt.Sprintf(`SELECT name, string_keys, string_values, number_keys, number_values, bool_keys, bool_values
		FROM %s.custom_events`, h.db)).Scan(&name, &sk, &sv, &nk, &nv, &bk, &bv); err != nil {
		t.Fatal(err)
	}
	if name != "export_pdf" || strings.Join(sk, ",") != "format" || sv[0] != "a4" || strings.Join(nk, ",") != "pages,ratio" ||
		nv[0] != 12 || nv[1] != 0.5 || bk[0] != "dark" || bv[0] != 1 {
		t.Errorf("custom = %q %v %v %v %v %v %v", name, sk, sv, nk, nv, bk, bv)
	}
	var kind, startType, network string
	var ddur uint32
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT kind, duration_ms, start_type, network_type FROM %s.diagnostics", h.db)).Scan(&kind, &ddur, &startType, &network); err != nil {
		t.Fatal(err)
	}
	if kind != "app_start" || ddur != 830 || startType != "cold" || network != "cellular" {
		t.Errorf("diagnostic = %q %d %q %q", kind, ddur, startType, network)
	}
}

func TestEndToEndConsentAndRejects(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	gen := eventgen.New(eventgen.Config{AppID: testApp, Seed: 7})
	other, err := consent.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	foreignRing, _ := consent.NewKeyRing(consent.KeyRingConfig{SigningKey: other})
	forged, _ := foreignRing.Sign(consent.Claims{AppID: testApp, Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics}, ExpiresAt: time.Now().Add(time.Hour)})
	tests := []struct {
		name  string
		token string
		state consentryv1.ConsentState
	}{
		{"missing", "", consentryv1.ConsentState_CONSENT_STATE_MISSING},
		{"forged", forged, consentryv1.ConsentState_CONSENT_STATE_INVALID},
		{"tampered signature", tamper(h.token(t, testApp, time.Hour)), consentryv1.ConsentState_CONSENT_STATE_INVALID},
		{"expired", h.token(t, testApp, -time.Minute), consentryv1.ConsentState_CONSENT_STATE_EXPIRED},
		{"other app", h.token(t, "com.example.other", time.Hour), consentryv1.ConsentState_CONSENT_STATE_INVALID},
	}
	for _, tt := range tests {
		req := gen.Batch(20, time.Now())
		req.ConsentToken = tt.token
		resp, err := h.client.Ingest(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.GetAccepted() != 0 || resp.GetDropped() != 20 || resp.GetConsentState() != tt.state {
			t.Errorf("%s: resp = %v", tt.name, resp)
		}
	}
	// Crash-only consent: everything else is dropped by scope.
	req := gen.Batch(200, time.Now())
	req.ConsentToken = h.token(t, testApp, time.Hour, consentryv1.ScopeCrashReports)
	resp, err := h.client.Ingest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var crashes uint32
	for _, e := range req.GetEvents() {
		if e.GetCrash() != nil {
			crashes++
		}
	}
	if resp.GetAccepted() != crashes || resp.GetDropped() != 200-crashes {
		t.Errorf("scope: resp = %v, want %d accepted", resp, crashes)
	}
	if n := h.total(t); n != uint64(crashes) {
		t.Errorf("stored %d rows, want %d crashes only", n, crashes)
	}
	// Location is not derived without the location scope.
	if n := h.count(t, "crashes", "country != ''"); n != 0 {
		t.Errorf("%d crashes stored with a country without location consent", n)
	}
	// A refused batch is counted too.
	bad := gen.Batch(3, time.Now())
	bad.Device = nil
	if _, err := h.client.Ingest(ctx, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no device: %v", err)
	}
	h.conn.Close()
	h.shutdown() // flushes the rejects counter
	var missing, scope, malformed uint64
	q := fmt.Sprintf("SELECT sumIf(events, reason = 'consent_missing'), sumIf(events, reason = 'consent_scope'), sumIf(events, reason = 'batch_malformed') FROM %s.rejects", h.db)
	if err := h.ch.QueryRow(ctx, q).Scan(&missing, &scope, &malformed); err != nil {
		t.Fatal(err)
	}
	if missing != 20 || scope != uint64(200-crashes) || malformed != 3 {
		t.Errorf("rejects: missing %d scope %d malformed %d", missing, scope, malformed)
	}
}

// tamper changes one character in a token's signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// rawCodec sends pre-encoded bytes and decodes responses as protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (rawCodec) Name() string { return "proto" }

func TestEndToEndBadInput(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.Limits.MaxMessageBytes = 64 << 10 })
	ctx := context.Background()
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: h.token(t, testApp, time.Hour), Seed: 3})

	var out consentryv1.IngestResponse
	err := h.conn.Invoke(ctx, consentryv1.IngestService_Ingest_FullMethodName, []byte{0x0a, 0x02, 0xff, 0xfe}, &out,
		grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("invalid UTF-8: %v, want InvalidArgument", err)
	}
	err = h.conn.Invoke(ctx, consentryv1.IngestService_Ingest_FullMethodName, []byte{0xff, 0xff, 0xff}, &out, grpc.ForceCodec(rawCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: %v, want InvalidArgument", err)
	}
	big := gen.Batch(10, time.Now())
	big.Device.Locale = strings.Repeat("x", 100<<10)
	if _, err := h.client.Ingest(ctx, big); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized message: %v, want ResourceExhausted", err)
	}
	tooMany := gen.Batch(1001, time.Now())
	if _, err := h.client.Ingest(ctx, tooMany); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("too many events: %v", err)
	}
	mixed := gen.Batch(10, time.Now())
	old := int64(60 * 24 * time.Hour / time.Millisecond)
	mixed.Events[0].AgeMs = &old
	mixed.Events[1].CreatedAtUnixMs, mixed.Events[1].AgeMs = time.Now().Add(24*time.Hour).UnixMilli(), nil
	mixed.Events[2].Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: 42}}
	resp, err := h.client.Ingest(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 7 || resp.GetDropped() != 3 {
		t.Fatalf("mixed: %v", resp)
	}
	if n := h.total(t); n != 7 {
		t.Fatalf("stored %d rows, want 7 (only the mixed batch's valid events)", n)
	}
}

func TestHealthAndReflection(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	r, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: consentryv1.IngestService_ServiceDesc.ServiceName})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", r, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "consentry.v1.IngestService") {
		t.Fatalf("reflection lists %v", names)
	}
}

// TestGracefulShutdownKeepsAcknowledged sends from concurrent clients while
// the collector shuts down: every acknowledged event is stored.
func TestGracefulShutdownKeepsAcknowledged(t *testing.T) {
	h := newHarness(t, server(t), nil)
	tok := h.token(t, testApp, time.Hour)
	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: seed})
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := h.client.Ingest(context.Background(), gen.Batch(50, time.Now()))
				if err != nil {
					return // refused during shutdown: not acknowledged
				}
				acked.Add(int64(resp.GetAccepted()))
			}
		}(uint64(c))
	}
	time.Sleep(1500 * time.Millisecond)
	h.shutdown()
	close(stop)
	wg.Wait()
	if err := <-h.served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if acked.Load() == 0 {
		t.Fatal("nothing acknowledged before shutdown")
	}
	if got := h.total(t); got != uint64(acked.Load()) {
		t.Fatalf("stored %d rows, acknowledged %d", got, acked.Load())
	}
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message, "eyJ") || strings.Contains(fmt.Sprint(e.Context), "eyJ") {
			t.Fatalf("log holds a token: %v", e)
		}
	}
}

// TestLocalDefault: without a ClickHouse address the App runs its own
// server and stops it on shutdown.
func TestLocalDefault(t *testing.T) {
	chtest.RequireBinary(t)
	dir := t.TempDir()
	app, err := New(context.Background(), Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	go app.Serve()
	b, err := os.ReadFile(filepath.Join(dir, "clickhouse.addr"))
	if err != nil || strings.TrimSpace(string(b)) != app.ClickHouseAddr() {
		t.Fatalf("clickhouse.addr = %q, %v", b, err)
	}
	pid := app.storage.server.PID()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/proc", fmt.Sprint(pid))); err == nil {
		t.Fatalf("managed clickhouse (pid %d) still running after shutdown", pid)
	}
}
