package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// newTestEdge returns an edge for cfg and lim without listeners.
func newTestEdge(t testing.TB, cfg limits.EdgeConfig, lim limits.Config) *edge {
	t.Helper()
	e, err := newEdge(edgeParts{cfg: cfg, lim: lim})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// bomb is issue 13's decode bomb: 2M empty events in 4 MB.
func bomb() []byte { return bytes.Repeat([]byte{0x22, 0x00}, 2_000_000) }

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEdgeAdmit(t *testing.T) {
	f := newFixture(t)
	e := newTestEdge(t, limits.EdgeConfig{MaxInflightBytes: 16 << 20}, limits.Config{})
	good, _ := proto.Marshal(f.gen.Batch(100, time.Now()))
	goodJSON, _ := protojson.Marshal(f.gen.Batch(100, time.Now()))

	// The bomb is refused before anything is decoded or charged.
	_, cost, err := e.admit(bomb(), limits.FormatProto)
	if !errors.Is(err, pipeline.ErrBatchTooLarge) || e.inflight.InUse() != 0 || e.inflight.Peak() != 0 {
		t.Fatalf("bomb: %v (cost %+v), budget in use %d, peak %d", err, cost, e.inflight.InUse(), e.inflight.Peak())
	}
	// A batch is charged until released.
	for _, tt := range []struct {
		b []byte
		f limits.Format
	}{{good, limits.FormatProto}, {goodJSON, limits.FormatJSON}} {
		a, cost, err := e.admit(tt.b, tt.f)
		if err != nil || len(a.req.GetEvents()) != 100 {
			t.Fatalf("format %d: %v", tt.f, err)
		}
		if e.inflight.InUse() != cost.Charge() || cost.Charge() <= int64(len(tt.b)) {
			t.Fatalf("format %d: in use %d, charge %d", tt.f, e.inflight.InUse(), cost.Charge())
		}
		a.release()
		a.release()
		if e.inflight.InUse() != 0 {
			t.Fatalf("format %d: %d bytes left charged", tt.f, e.inflight.InUse())
		}
	}
	// A busy budget refuses with a retry delay; a request that could
	// never fit, without.
	if !e.inflight.TryAcquire(16<<20 - 1000) {
		t.Fatal("cannot fill the budget")
	}
	if _, _, err := e.admit(good, limits.FormatProto); !errors.Is(err, errInflight) || classify(err).RetryAfter == 0 {
		t.Fatalf("busy budget: %v", err)
	}
	e.inflight.Release(16<<20 - 1000)
	huge := &consentryv1.IngestRequest{}
	for range 1000 {
		huge.Events = append(huge.Events, crashEvent(256))
	}
	hb, _ := protojson.Marshal(huge)
	if _, _, err := e.admit(hb, limits.FormatJSON); !errors.Is(err, errCostTooLarge) || classify(err).RetryAfter != 0 {
		t.Fatalf("a request costing more than the budget: %v", err)
	}
	// Malformed bytes cost nothing.
	if _, _, err := e.admit([]byte{0x22, 0x05}, limits.FormatProto); !errors.Is(err, pipeline.ErrMalformed) || e.inflight.InUse() != 0 {
		t.Fatalf("malformed: %v", err)
	}
}

func crashEvent(frames int) *consentryv1.Event {
	c := &consentryv1.Crash{ExceptionType: "E"}
	for range frames {
		c.Frames = append(c.Frames, &consentryv1.StackFrame{})
	}
	return &consentryv1.Event{Payload: &consentryv1.Event_Crash{Crash: c}}
}

// TestHTTPReadBodyLimits checks the body limits that need no slow
// connection: declared and actual size, gzip output, the decompression
// ratio, broken gzip.
func TestHTTPReadBodyLimits(t *testing.T) {
	f := newFixture(t)
	const max = 64 << 10
	h := &httpIngest{svc: f.svc, edge: newTestEdge(t, limits.EdgeConfig{}, limits.Config{MaxMessageBytes: max})}
	batch, _ := protojson.Marshal(f.gen.Batch(20, time.Now()))
	tests := []struct {
		name     string
		body     []byte
		encoding string
		length   int64 // Content-Length to declare; 0: the body's, -1: none
		status   int
		reason   consentryv1.ErrorReason
	}{
		{"a batch", batch, "", 0, http.StatusOK, 0},
		{"a gzipped batch", gzipped(t, batch), "gzip", 0, http.StatusOK, 0},
		{"declared too large", batch, "", 10 << 20, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE},
		{"chunked, too large", bytes.Repeat([]byte(" "), max+1), "", -1, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE},
		{"gzip bomb", gzipped(t, bytes.Repeat([]byte(" "), 10<<20)), "gzip", 0, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE},
		{"gzip over the ratio", gzipped(t, bytes.Repeat([]byte(" "), max-1)), "gzip", 0, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE},
		{"broken gzip", []byte("not gzip"), "gzip", 0, http.StatusBadRequest, consentryv1.ErrorReason_BATCH_MALFORMED},
		{"the decode bomb in JSON", gzipped(t, []byte(`{"events":[`+strings.Repeat("{},", 20000)+`{}]}`)), "gzip", 0, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, PathIngest, bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", tt.encoding)
			switch tt.length {
			case -1:
				req.ContentLength = -1
			case 0:
			default:
				req.ContentLength = tt.length
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.reason != 0 {
				var e grpcerr.HTTPError
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Reason != tt.reason.String() {
					t.Fatalf("body %s, want reason %v", rec.Body, tt.reason)
				}
			}
			if n := h.edge.http.budget.InUse(); n != 0 {
				t.Fatalf("%d receive bytes left charged", n)
			}
			if n := h.edge.inflight.InUse(); n != 0 {
				t.Fatalf("%d in-flight bytes left charged", n)
			}
		})
	}
}

// formatOf is the format of a fuzzed body: JSON if json, else protobuf.
func formatOf(json bool) limits.Format {
	if json {
		return limits.FormatJSON
	}
	return limits.FormatProto
}

// FuzzEdgeAdmit feeds random bytes, as protobuf and as JSON, through the
// edge and the pipeline as a request arriving over gRPC or HTTP goes:
// nothing panics, refusals are statuses a client can act on, and every
// byte charged is given back.
func FuzzEdgeAdmit(f *testing.F) {
	fx := newFixture(f)
	good, _ := proto.Marshal(fx.gen.Batch(3, time.Now()))
	goodJSON, _ := protojson.Marshal(fx.gen.Batch(3, time.Now()))
	f.Add(good, false)
	f.Add(goodJSON, true)
	f.Add([]byte{}, false)
	f.Add([]byte{0x22, 0x00, 0x22, 0x00}, false)
	f.Add([]byte(`{"events":[{},{}]}`), true)
	e := newTestEdge(f, limits.EdgeConfig{}, limits.Config{})
	f.Fuzz(func(t *testing.T, data []byte, json bool) {
		_, err := e.ingest(context.Background(), fx.svc, data, formatOf(json), time.Now())
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.ResourceExhausted:
		default:
			t.Fatalf("unexpected status %v", err)
		}
		if n := e.inflight.InUse(); n != 0 {
			t.Fatalf("%d bytes left charged", n)
		}
	})
}

// TestAdmitReusesMessages checks that a released request's messages
// serve the next request (fewer allocations than decoding into new
// messages), and that nothing of one request shows through in the next:
// each decodes as it would into new messages, whatever came before.
func TestAdmitReusesMessages(t *testing.T) {
	f := newFixture(t)
	e := newTestEdge(t, limits.EdgeConfig{MaxInflightBytes: 64 << 20}, limits.Config{})
	// Batches of different sizes and kinds, the later ones lacking what
	// the earlier ones had: ids, payloads, device, breadcrumbs.
	full := f.gen.Batch(200, time.Now())
	sparse := f.gen.Batch(50, time.Now())
	sparse.Device = nil
	for i, ev := range sparse.GetEvents() {
		if i%2 == 0 {
			ev.SessionId, ev.EventId = nil, nil
		}
		if i%3 == 0 {
			ev.Payload = nil
		}
		if c := ev.GetCrash(); c != nil {
			c.Breadcrumbs, c.Frames = nil, nil
		}
	}
	var bodies [][]byte
	for _, req := range []*consentryv1.IngestRequest{full, sparse, {}, full, f.gen.Batch(300, time.Now()), sparse} {
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	for round := range 3 {
		for i, b := range bodies {
			a, _, err := e.admit(b, limits.FormatProto)
			if err != nil {
				t.Fatalf("round %d, batch %d: %v", round, i, err)
			}
			want := &consentryv1.IngestRequest{}
			if err := proto.Unmarshal(b, want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(a.req, want) {
				t.Fatalf("round %d, batch %d: decoded into reused messages, the request differs from its encoding", round, i)
			}
			a.release()
		}
	}
	if raceEnabled {
		t.Skip("allocations: sync.Pool drops what it is given at random under the race detector")
	}
	// Decoding into new messages costs about 9.7 allocations per event of
	// this batch (a message per event and payload, then its strings);
	// reused, the strings and oneof wrappers remain, about 5.3.
	allocs := testing.AllocsPerRun(20, func() {
		a, _, err := e.admit(bodies[0], limits.FormatProto)
		if err != nil {
			t.Fatal(err)
		}
		a.release()
	})
	if perEvent := allocs / float64(len(full.GetEvents())); perEvent > 7 {
		t.Fatalf("%.1f allocations per event admitted: the request's messages are not reused", perEvent)
	}
}

// FuzzAdmitReuse admits two arbitrary bodies one after the other, the
// first released (its messages recycled, however far its decoding got)
// before the second is admitted: the second must decode exactly as it
// does into new messages. A field, list element, map entry or unknown
// field that outlived its request would carry one request's consent
// token, app or events into the next.
func FuzzAdmitReuse(f *testing.F) {
	fx := newFixture(f)
	full := fx.gen.Batch(200, time.Now())
	sparse := proto.Clone(full).(*consentryv1.IngestRequest)
	sparse.Device, sparse.ConsentToken = nil, ""
	for i, ev := range sparse.GetEvents() {
		if i%2 == 0 {
			ev.EventId, ev.Payload = nil, nil
		}
		// What the full batch's messages had and these lack.
		if c := ev.GetCrash(); c != nil {
			c.Frames = []*consentryv1.StackFrame{{Function: "f"}, {}}
			c.Breadcrumbs = []*consentryv1.Breadcrumb{{}}
		}
		if c := ev.GetCustom(); c != nil {
			c.Attributes = nil
		}
		if g := ev.GetGesture(); g != nil {
			g.Count = 0
		}
		if s := ev.GetSession(); s != nil {
			s.ForegroundMs = 0
		}
		if d := ev.GetDiagnostic(); d != nil {
			d.NetworkType = 0
		}
	}
	fullPB, _ := proto.Marshal(full)
	sparsePB, _ := proto.Marshal(sparse)
	thin := proto.Clone(sparse).(*consentryv1.IngestRequest)
	thin.Device = &consentryv1.DeviceContext{AppId: full.GetDevice().GetAppId()}
	thinPB, _ := proto.Marshal(thin)
	fullJSON, _ := protojson.Marshal(full)
	f.Add(fullPB, sparsePB, false, false)
	f.Add(fullPB, thinPB, false, false)
	f.Add(fullPB, []byte{}, false, false)
	f.Add(fullPB[:len(fullPB)/2], sparsePB, false, false)
	f.Add(fullJSON, sparsePB, true, false)
	f.Add(fullPB, []byte(`{"events":[{"crash":{}},{}]}`), false, true)
	e := newTestEdge(f, limits.EdgeConfig{MaxInflightBytes: 64 << 20}, limits.Config{})
	f.Fuzz(func(t *testing.T, first, second []byte, firstJSON, secondJSON bool) {
		if a, _, err := e.admit(first, formatOf(firstJSON)); err == nil {
			a.release()
		}
		a, _, err := e.admit(second, formatOf(secondJSON))
		if err != nil && !errors.Is(err, errMalformed) {
			return // refused before decoding
		}
		// The reference decodes by reflection (UnmarshalScannedRequest
		// told the scan found bad UTF-8, or protojson): new messages
		// throughout, where vtproto's UnmarshalVT would take its nested
		// messages from the same pools.
		want := &consentryv1.IngestRequest{}
		var werr error
		if secondJSON {
			werr = validate.UnmarshalRequestJSON(second, want)
		} else {
			werr = validate.UnmarshalScannedRequest(second, want, false)
		}
		switch {
		case err != nil && werr == nil:
			t.Fatalf("after a released request the body is refused (%v); into new messages it decodes", err)
		case err == nil && werr != nil:
			t.Fatalf("after a released request the body decodes; into new messages it does not (%v)", werr)
		case err == nil:
			defer a.release()
			if !proto.Equal(a.req, want) {
				t.Fatalf("decoded into released messages, the request differs from the same body decoded into new ones:\n%v\nwant\n%v", a.req, want)
			}
		}
	})
}
