package collector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// memSink counts the rows it is given; it stands in for storage in unit
// tests only (the integration tests store into a real ClickHouse).
type memSink struct {
	mu   sync.Mutex
	rows int
	err  error
}

func (m *memSink) Write(_ context.Context, r *pipeline.Rows, _ pipeline.Origin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.rows += r.Len()
	return nil
}

// stored returns how many rows m was given.
func (m *memSink) stored() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rows
}

type memRejects struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *memRejects) CountRejects(app string, r pipeline.Reason, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[app+"/"+string(r)] += n
}

type fixture struct {
	svc     *Service
	sink    *memSink
	rejects *memRejects
	gen     *eventgen.Generator
	keys    *consent.KeyRing
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	signer := consenttest.New(t, nil)
	keys := signer.Ring
	tok := signer.Token(t, consent.Claims{AppID: "com.example.notes", ExpiresAt: time.Now().Add(time.Hour),
		Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}})
	lim, _ := limits.New(limits.Config{})
	con, _ := consent.NewFilter(consent.FilterConfig{Keys: keys})
	val, _ := validate.New(validate.Config{})
	anon, _ := anonymizer.New(anonymizer.Config{})
	f := &fixture{sink: &memSink{}, rejects: &memRejects{}, keys: keys,
		gen: eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: tok, Seed: 1})}
	var err error
	f.svc, err = NewService(ServiceConfig{Stages: []pipeline.Stage{lim, con, val, anon}, Sink: f.sink, Rejects: f.rejects})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestIngestAccepts(t *testing.T) {
	f := newFixture(t)
	req := f.gen.Batch(100, time.Now())
	resp, err := f.svc.Ingest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 100 || resp.GetDropped() != 0 || resp.GetConsentState() != consentryv1.ConsentState_CONSENT_STATE_VALID {
		t.Fatalf("resp = %v", resp)
	}
	if f.sink.stored() != 100 {
		t.Fatalf("stored %d rows", f.sink.stored())
	}
}

func TestIngestDropsAndCounts(t *testing.T) {
	f := newFixture(t)
	req := f.gen.Batch(10, time.Now())
	req.Events[3].EventId = nil
	req.Events[5].Payload = nil
	resp, err := f.svc.Ingest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 8 || resp.GetDropped() != 2 || len(resp.GetEventDrops()) != 2 {
		t.Fatalf("resp = %v", resp)
	}
	if resp.GetEventDrops()[0].GetIndex() != 3 || resp.GetEventDrops()[1].GetReason() != consentryv1.DropReason_DROP_REASON_UNKNOWN_KIND {
		t.Fatalf("event drops = %v", resp.GetEventDrops())
	}
	if f.rejects.n["com.example.notes/invalid_field"] != 1 || f.rejects.n["com.example.notes/unknown_kind"] != 1 {
		t.Fatalf("rejects = %v", f.rejects.n)
	}
	req = f.gen.Batch(4, time.Now())
	req.ConsentToken = ""
	resp, err = f.svc.Ingest(context.Background(), req)
	if err != nil || resp.GetAccepted() != 0 || resp.GetConsentState() != consentryv1.ConsentState_CONSENT_STATE_MISSING {
		t.Fatalf("no-consent batch: %v, %v", resp, err)
	}
	if f.sink.stored() != 8 {
		t.Fatalf("stored %d rows, want 8", f.sink.stored())
	}
}

func TestIngestStatuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*consentryv1.IngestRequest)
		sink   error
		code   codes.Code
		reason string
		retry  bool
	}{
		{"no device", func(r *consentryv1.IngestRequest) { r.Device = nil }, nil, codes.InvalidArgument, consentryv1.ErrorReason_DEVICE_MISSING.String(), false},
		{"bad app id", func(r *consentryv1.IngestRequest) { r.Device.AppId = "bad app" }, nil, codes.InvalidArgument, consentryv1.ErrorReason_APP_ID_INVALID.String(), false},
		{"no sent_at", func(r *consentryv1.IngestRequest) { r.SentAtUnixMs = 0 }, nil, codes.InvalidArgument, consentryv1.ErrorReason_SENT_AT_MISSING.String(), false},
		{"too many events", func(r *consentryv1.IngestRequest) {
			r.Events = append(r.Events, make([]*consentryv1.Event, 1001)...)
		}, nil, codes.ResourceExhausted, consentryv1.ErrorReason_BATCH_TOO_LARGE.String(), false},
		{"long device field", func(r *consentryv1.IngestRequest) { r.Device.OsVersion = string(make([]byte, 300)) }, nil, codes.InvalidArgument, consentryv1.ErrorReason_FIELD_TOO_LARGE.String(), false},
		{"storage down", nil, pipeline.ErrStorageUnavailable, codes.Unavailable, consentryv1.ErrorReason_STORAGE_UNAVAILABLE.String(), true},
		{"overloaded", nil, pipeline.ErrOverloaded, codes.ResourceExhausted, consentryv1.ErrorReason_OVERLOADED.String(), true},
		{"shutting down", nil, pipeline.ErrClosed, codes.Unavailable, consentryv1.ErrorReason_SHUTTING_DOWN.String(), true},
		{"deadline", nil, context.DeadlineExceeded, codes.DeadlineExceeded, "", false},
		{"unexpected", nil, errors.New("boom"), codes.Internal, "", false},
		{"rate limited", nil, rateLimited(t, 5), codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED.String(), true},
		{"batch over the rate limit's burst", nil, rateLimited(t, 50), codes.ResourceExhausted, consentryv1.ErrorReason_BATCH_TOO_LARGE.String(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.sink.err = tt.sink
			req := f.gen.Batch(5, time.Now())
			if tt.mutate != nil {
				tt.mutate(req)
			}
			_, err := f.svc.Ingest(context.Background(), req)
			code, _, reason, delay := grpcerr.Details(err)
			if code != tt.code {
				t.Fatalf("code = %v (%v), want %v", code, err, tt.code)
			}
			if retry := delay > 0; reason != tt.reason || retry != tt.retry {
				t.Fatalf("reason = %q retry = %v, want %q %v", reason, retry, tt.reason, tt.retry)
			}
			if f.sink.stored() != 0 {
				t.Fatalf("refused batch stored %d rows", f.sink.stored())
			}
		})
	}
}

// rateLimited returns the error a limiter of 10 events/s with a burst of
// 10 gives a batch of n events after a batch of 10.
func rateLimited(t *testing.T, n int) error {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Config{EventsPerSecond: 10, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Allow("com.example.app", 10); err != nil {
		t.Fatal(err)
	}
	err = l.Allow("com.example.app", n)
	if err == nil {
		t.Fatal("the limiter let the batch through")
	}
	return err
}

func TestMalformedRequest(t *testing.T) {
	f := newFixture(t)
	var req consentryv1.IngestRequest
	// Field 1 (consent_token) as a string holding invalid UTF-8.
	bad := []byte{0x0a, 0x02, 0xff, 0xfe}
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &req); err != nil {
		t.Fatalf("codec failed the decode: %v", err)
	}
	_, err := f.svc.Ingest(context.Background(), &req)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	if f.rejects.n["_invalid/batch_malformed"] != 1 {
		t.Fatalf("rejects = %v", f.rejects.n)
	}
	// A well-formed request is not marked.
	good, _ := proto.Marshal(f.gen.Batch(1, time.Now()))
	var ok consentryv1.IngestRequest
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(good)}, &ok); err != nil || malformed(&ok) {
		t.Fatalf("good request marked malformed: %v", err)
	}
}
