package sdk

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // the server decompresses gzip
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/consentry/consentry/internal/grpcerr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// fakeCollector is an in-process collector: a real gRPC server on
// 127.0.0.1 serving IngestService and ConsentService, and an HTTP server
// with the same operations, with scriptable behaviour.
type fakeCollector struct {
	t testing.TB

	mu sync.Mutex
	// ingestFn, if set, answers Ingest instead of accepting everything.
	ingestFn func(n int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error)
	// revokeFn, if set, answers Revoke.
	revokeFn func(req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error)
	// down makes every call fail with UNAVAILABLE (no RetryInfo).
	down bool
	// attempts are the times of every Ingest call.
	attempts []time.Time
	// batches are the requests whose events were accepted.
	batches []*consentryv1.IngestRequest
	// ids counts accepted events by id.
	ids         map[string]int
	grants      []*consentryv1.GrantRequest
	revokes     []*consentryv1.RevokeRequest
	revoked     map[string]bool
	compression []string // grpc-encoding of each Ingest call
	httpHeaders []http.Header
	tokenSeq    int

	addr       string
	serverOpts []grpc.ServerOption // e.g. TLS credentials
	grpcSrv    *grpc.Server
	served     chan struct{}
	httpSrv    *httptest.Server
	consentryv1.UnimplementedIngestServiceServer
}

// consentSrv serves ConsentService for a fakeCollector (its methods would
// clash with IngestService's embedded type otherwise).
type consentSrv struct {
	consentryv1.UnimplementedConsentServiceServer
	f *fakeCollector
}

func newFakeCollector(t testing.TB) *fakeCollector {
	t.Helper()
	f := &fakeCollector{t: t, ids: map[string]int{}, revoked: map[string]bool{}}
	f.start("127.0.0.1:0")
	f.httpSrv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(func() {
		f.stop()
		f.httpSrv.Close()
	})
	return f
}

// start serves gRPC on addr.
func (f *fakeCollector) start(addr string) {
	f.t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port of a stopped server may take a moment to free
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	f.grpcSrv = grpc.NewServer(append([]grpc.ServerOption{grpc.StatsHandler(compressionRecorder{f})}, f.serverOpts...)...)
	consentryv1.RegisterIngestServiceServer(f.grpcSrv, f)
	consentryv1.RegisterConsentServiceServer(f.grpcSrv, &consentSrv{f: f})
	f.served = make(chan struct{})
	srv, served := f.grpcSrv, f.served
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
}

// stop stops the gRPC server: connections are refused until restart.
func (f *fakeCollector) stop() {
	if f.grpcSrv != nil {
		f.grpcSrv.Stop()
		<-f.served
		f.grpcSrv = nil
	}
}

// restart serves gRPC again on the same address.
func (f *fakeCollector) restart() { f.start(f.addr) }

func (f *fakeCollector) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeCollector) setIngest(fn func(n int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ingestFn = fn
}

func (f *fakeCollector) setRevoke(fn func(req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokeFn = fn
}

// accepted returns the accepted events in order.
func (f *fakeCollector) accepted() []*consentryv1.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*consentryv1.Event
	for _, b := range f.batches {
		out = append(out, b.GetEvents()...)
	}
	return out
}

func (f *fakeCollector) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.batches {
		out = append(out, len(b.GetEvents()))
	}
	return out
}

func (f *fakeCollector) attemptTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...)
}

func (f *fakeCollector) revokeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.revokes)
}

func (f *fakeCollector) lastBatch() *consentryv1.IngestRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) == 0 {
		return nil
	}
	return f.batches[len(f.batches)-1]
}

// duplicates returns how many accepted events had an id seen before.
func (f *fakeCollector) duplicates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.ids {
		n += c - 1
	}
	return n
}

// Ingest checks the batch like the collector's validate stage does, then
// answers with ingestFn or accepts every event.
func (f *fakeCollector) Ingest(_ context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	n := len(f.attempts)
	down, fn := f.down, f.ingestFn
	revoked := f.revoked[req.GetConsentToken()]
	f.mu.Unlock()
	if down {
		return nil, status.Error(codes.Unavailable, "down")
	}
	if err := checkBatch(req); err != nil {
		return nil, err
	}
	var resp *consentryv1.IngestResponse
	if revoked {
		resp = &consentryv1.IngestResponse{Dropped: uint32(len(req.GetEvents())), ConsentState: consentryv1.ConsentState_CONSENT_STATE_REVOKED,
			Drops: []*consentryv1.DropCount{{Reason: consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED, Count: uint32(len(req.GetEvents()))}}}
	} else if fn != nil {
		var err error
		if resp, err = fn(n, req); err != nil {
			return nil, err
		}
	} else {
		resp = &consentryv1.IngestResponse{Accepted: uint32(len(req.GetEvents())), ConsentState: consentryv1.ConsentState_CONSENT_STATE_VALID}
	}
	if resp.GetAccepted() > 0 {
		f.mu.Lock()
		f.batches = append(f.batches, proto.CloneOf(req))
		for _, e := range req.GetEvents() {
			f.ids[string(e.GetEventId())]++
		}
		f.mu.Unlock()
	}
	return resp, nil
}

// checkBatch refuses a batch the collector would refuse, and events it
// would drop, as errors: the SDK must never send them.
func checkBatch(req *consentryv1.IngestRequest) error {
	switch {
	case req.GetDevice().GetAppId() == "":
		return status.Error(codes.InvalidArgument, "device missing")
	case req.GetSentAtUnixMs() <= 0:
		return status.Error(codes.InvalidArgument, "sent_at missing")
	case req.GetConsentToken() == "":
		return status.Error(codes.InvalidArgument, "no token")
	}
	for i, e := range req.GetEvents() {
		id := e.GetEventId()
		if len(id) != 16 || bytes.Equal(id, make([]byte, 16)) || e.GetCreatedAtUnixMs() <= 0 ||
			(len(e.GetSessionId()) != 0 && (len(e.GetSessionId()) < 8 || len(e.GetSessionId()) > 64)) || e.GetPayload() == nil {
			return status.Errorf(codes.InvalidArgument, "event %d malformed", i)
		}
	}
	return nil
}

func (s *consentSrv) Grant(_ context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, status.Error(codes.Unavailable, "down")
	}
	if req.GetAppKey() != testAppKey {
		return nil, withReason(codes.Unauthenticated, "APP_UNAUTHENTICATED", 0)
	}
	if req.GetConsentTextVersion() == "" {
		return nil, status.Error(codes.InvalidArgument, "consent_text_version")
	}
	f.grants = append(f.grants, req)
	f.tokenSeq++
	return &consentryv1.GrantResponse{
		ConsentToken:    fmt.Sprintf("tok-%d-%s", f.tokenSeq, "SECRETTOKENMARKER"),
		ExpiresAtUnixMs: time.Now().Add(time.Hour).UnixMilli(),
		Scopes:          req.GetScopes(),
	}, nil
}

func (s *consentSrv) Revoke(_ context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	f := s.f
	f.mu.Lock()
	down, fn := f.down, f.revokeFn
	f.mu.Unlock()
	if down {
		return nil, status.Error(codes.Unavailable, "down")
	}
	if fn != nil {
		if resp, err := fn(req); err != nil {
			return resp, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, req)
	f.revoked[req.GetConsentToken()] = true
	return &consentryv1.RevokeResponse{RevokedAtUnixMs: time.Now().UnixMilli(), PropagationBoundMs: 5000}, nil
}

// withReason returns a status error with an ErrorInfo reason and, if
// retry > 0, a RetryInfo.
func withReason(code codes.Code, reason string, retry time.Duration) error {
	st := status.New(code, reason)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: "consentry.dev"}}
	if retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	}
	for _, d := range details {
		if s, err := st.WithDetails(d); err == nil {
			st = s
		}
	}
	return st.Err()
}

// compressionRecorder records the grpc-encoding of each Ingest call.
type compressionRecorder struct{ f *fakeCollector }

func (r compressionRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}
func (r compressionRecorder) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok && h.FullMethod == consentryv1.IngestService_Ingest_FullMethodName {
		r.f.mu.Lock()
		r.f.compression = append(r.f.compression, h.Compression)
		r.f.mu.Unlock()
	}
}
func (r compressionRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r compressionRecorder) HandleConn(context.Context, stats.ConnStats) {}

// serveHTTP is the HTTP transport's contract: POST /v1/ingest and
// /v1/consent/grant|revoke with protojson bodies, JSON errors and
// Retry-After.
func (f *fakeCollector) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.httpHeaders = append(f.httpHeaders, r.Header.Clone())
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		writeHTTPError(w, status.Error(codes.InvalidArgument, "bad request"))
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeHTTPError(w, status.Error(codes.InvalidArgument, "bad gzip"))
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		writeHTTPError(w, status.Error(codes.InvalidArgument, "bad body"))
		return
	}
	var resp proto.Message
	switch r.URL.Path {
	case pathIngest:
		req := new(consentryv1.IngestRequest)
		if err = protojson.Unmarshal(data, req); err == nil {
			resp, err = f.Ingest(r.Context(), req)
		}
	case pathGrant:
		req := new(consentryv1.GrantRequest)
		if err = protojson.Unmarshal(data, req); err == nil {
			resp, err = (&consentSrv{f: f}).Grant(r.Context(), req)
		}
	case pathRevoke:
		req := new(consentryv1.RevokeRequest)
		if err = protojson.Unmarshal(data, req); err == nil {
			resp, err = (&consentSrv{f: f}).Revoke(r.Context(), req)
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		writeHTTPError(w, err)
		return
	}
	out, _ := protojson.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// writeHTTPError writes a gRPC status as the collector's HTTP error,
// with the collector's encoder (grpcerr.WriteHTTP) and, as the collector
// does, 413 for a batch too large.
func writeHTTPError(w http.ResponseWriter, err error) {
	code, msg, reason, retryDelay := grpcerr.Details(err)
	httpStatus := grpcerr.HTTPStatus(code)
	if reason == reasonBatchTooLarge {
		httpStatus = http.StatusRequestEntityTooLarge
	}
	grpcerr.WriteHTTP(w, httpStatus, code, reason, msg, retryDelay)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
