package limits

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/abuse"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func newScanner(t testing.TB) *Scanner {
	t.Helper()
	s, err := NewScanner(Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// emptyEvents is the decode bomb of issue 13: n empty events, 2 bytes
// each on the wire, about 140 bytes each decoded.
func emptyEvents(n int) []byte { return bytes.Repeat([]byte{0x22, 0x00}, n) }

func crashWithFrames(n int) *consentryv1.Event {
	c := &consentryv1.Crash{ExceptionType: "E", Frames: make([]*consentryv1.StackFrame, n)}
	for i := range c.Frames {
		c.Frames[i] = &consentryv1.StackFrame{}
	}
	return &consentryv1.Event{Payload: &consentryv1.Event_Crash{Crash: c}}
}

func customWithAttributes(n int) *consentryv1.Event {
	c := &consentryv1.CustomEvent{Name: "n", Attributes: make(map[string]*consentryv1.AttributeValue, n)}
	for i := range n {
		c.Attributes[fmt.Sprint("k", i)] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: ""}}
	}
	return &consentryv1.Event{Payload: &consentryv1.Event_Custom{Custom: c}}
}

func marshal(t testing.TB, m proto.Message, f Format) []byte {
	t.Helper()
	var b []byte
	var err error
	if f == FormatJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScanCounts(t *testing.T) {
	s := newScanner(t)
	req := &consentryv1.IngestRequest{
		ConsentToken: "tok",
		Device:       &consentryv1.DeviceContext{AppId: "com.example.notes", OsVersion: "17"},
		Events:       []*consentryv1.Event{crashWithFrames(3), customWithAttributes(2), {EventId: []byte("0123456789abcdef")}},
	}
	for _, f := range []Format{FormatProto, FormatJSON} {
		b := marshal(t, req, f)
		c, err := s.Scan(b, f)
		if err != nil {
			t.Fatalf("format %d: %v", f, err)
		}
		if c.Events != 3 || c.Frames != 3 || c.Attributes != 2 || c.AppID != "com.example.notes" || c.Wire != int64(len(b)) || c.Decoded <= 0 {
			t.Errorf("format %d: cost %+v", f, c)
		}
	}
}

func TestScanRefuses(t *testing.T) {
	s := newScanner(t)
	cfg := DefaultConfig()
	tooManyFrames := &consentryv1.IngestRequest{}
	for range cfg.MaxEvents + 1 {
		tooManyFrames.Events = append(tooManyFrames.Events, crashWithFrames(cfg.MaxFrames))
	}
	tooManyFrames.Events = tooManyFrames.Events[:cfg.MaxEvents]
	tooManyFrames.Events[0] = crashWithFrames(cfg.MaxFrames + 1)
	tooManyAttrs := &consentryv1.IngestRequest{}
	for range cfg.MaxEvents {
		tooManyAttrs.Events = append(tooManyAttrs.Events, customWithAttributes(cfg.MaxAttributes))
	}
	tooManyAttrs.Events[0] = customWithAttributes(cfg.MaxAttributes + 1)
	tests := []struct {
		name string
		f    Format
		b    []byte
		want error
	}{
		{"2M empty events", FormatProto, emptyEvents(2_000_000), ErrBatchTooLarge},
		{"1001 events", FormatProto, emptyEvents(cfg.MaxEvents + 1), ErrBatchTooLarge},
		{"2M empty events, JSON", FormatJSON, []byte(`{"events":[` + strings.Repeat("{},", 2_000_000) + `{}]}`), ErrBatchTooLarge},
		{"frames over the batch's total", FormatProto, marshal(t, tooManyFrames, FormatProto), ErrBatchTooLarge},
		{"frames over the batch's total, JSON", FormatJSON, marshal(t, tooManyFrames, FormatJSON), ErrBatchTooLarge},
		{"attributes over the batch's total", FormatProto, marshal(t, tooManyAttrs, FormatProto), ErrBatchTooLarge},
		{"attributes over the batch's total, JSON", FormatJSON, marshal(t, tooManyAttrs, FormatJSON), ErrBatchTooLarge},
		{"truncated", FormatProto, []byte{0x22, 0x05, 0x00}, ErrMalformed},
		{"bad tag", FormatProto, []byte{0x00}, ErrMalformed},
		{"unbalanced JSON", FormatJSON, []byte(`{"events":[{}}`), ErrMalformed},
		{"unterminated JSON string", FormatJSON, []byte(`{"consentToken":"abc`), ErrMalformed},
		{"deep JSON", FormatJSON, []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), ErrMalformed},
		// Unknown fields are kept as bytes, not descended into, but
		// nested groups are walked: past protobuf's recursion limit
		// they are malformed, as decoding finds too.
		{"nested unknown groups", FormatProto, abuse.NestedGroups(100), nil},
		{"unknown groups nested past the recursion limit", FormatProto, abuse.NestedGroups(20_000), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Scan(tt.b, tt.f)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrBatchTooLarge && !errors.Is(err, pipeline.ErrBatchTooLarge) {
				t.Errorf("%v does not refuse as BATCH_TOO_LARGE", err)
			}
		})
	}
}

// TestScanCountsRefusedEvents checks that a batch over the event limit is
// refused with every event counted (for the rejects table and metrics),
// without reading into them, and that frames over the total stop the
// scan at once.
func TestScanCountsRefusedEvents(t *testing.T) {
	s := newScanner(t)
	for _, f := range []Format{FormatProto, FormatJSON} {
		b := emptyEvents(2_000_000)
		if f == FormatJSON {
			b = []byte(`{"events":[` + strings.Repeat("{},", 1_999_999) + `{}]}`)
		}
		c, err := s.Scan(b, f)
		if !errors.Is(err, ErrBatchTooLarge) || c.Events != 2_000_000 {
			t.Fatalf("format %d: cost %+v, err %v: want 2M events counted", f, c, err)
		}
		if c.Decoded > 1000*s.objectCost*2 {
			t.Errorf("format %d: estimate %d: the scan read into events past the limit", f, c.Decoded)
		}
	}
}

// retained measures the heap that what f returns keeps alive.
func retained(f func() any) int64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&b)
	runtime.KeepAlive(v)
	return int64(b.HeapAlloc) - int64(a.HeapAlloc)
}

// TestDecodedEstimateBoundsHeap measures what decoding requests of every
// shape retains, and checks the scanner's estimate is at least that, and
// not wildly more (so the budget admits what it can hold). The ratios
// measured (estimate / retained) are logged.
func TestDecodedEstimateBoundsHeap(t *testing.T) {
	s := newScanner(t)
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: strings.Repeat("t", 300), Seed: 3})
	now := time.Now()
	shapes := []struct {
		name string
		req  *consentryv1.IngestRequest
	}{
		{"realistic, 100 events", gen.Batch(100, now)},
		{"realistic, 1000 events", gen.Batch(1000, now)},
		{"1000 empty events", &consentryv1.IngestRequest{Events: make([]*consentryv1.Event, 1000)}},
		{"1000 events with 1-byte ids", func() *consentryv1.IngestRequest {
			r := &consentryv1.IngestRequest{}
			for range 1000 {
				r.Events = append(r.Events, &consentryv1.Event{EventId: []byte{1}, SessionId: []byte{2}})
			}
			return r
		}()},
		{"1000 crashes of 256 empty frames", func() *consentryv1.IngestRequest {
			r := &consentryv1.IngestRequest{}
			for range 1000 {
				r.Events = append(r.Events, crashWithFrames(256))
			}
			return r
		}()},
		{"1000 custom events of 64 attributes", func() *consentryv1.IngestRequest {
			r := &consentryv1.IngestRequest{}
			for range 1000 {
				r.Events = append(r.Events, customWithAttributes(64))
			}
			return r
		}()},
	}
	for i := range shapes[2].req.Events {
		shapes[2].req.Events[i] = &consentryv1.Event{}
	}
	for _, sh := range shapes {
		for _, f := range []Format{FormatProto, FormatJSON} {
			b := marshal(t, sh.req, f)
			c, err := s.Scan(b, f)
			if err != nil {
				t.Fatalf("%s: %v", sh.name, err)
			}
			// Take the smallest of three measurements: GC noise only adds.
			var heap int64 = 1 << 62
			for range 3 {
				heap = min(heap, retained(func() any {
					r := &consentryv1.IngestRequest{}
					if f == FormatJSON {
						err = protojson.Unmarshal(b, r)
					} else {
						err = proto.Unmarshal(b, r)
					}
					return r
				}))
			}
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(c.Decoded) / float64(heap)
			t.Logf("%-36s format %d: wire %8d, decoded %9d, estimate %9d (%.2f×)", sh.name, f, len(b), heap, c.Decoded, ratio)
			if c.Decoded < heap {
				t.Errorf("%s, format %d: estimate %d below the %d bytes decoding retains", sh.name, f, c.Decoded, heap)
			}
			if ratio > 4 {
				t.Errorf("%s, format %d: estimate %d is %.1f× the %d bytes decoding retains", sh.name, f, c.Decoded, ratio, heap)
			}
		}
	}
}

// TestScanAgreesWithDecoding checks the counts against what decoding
// builds, for messages with unknown fields, fields of a wrong wire type,
// and repeated oneofs.
func TestScanAgreesWithDecoding(t *testing.T) {
	s := newScanner(t)
	ev := marshal(t, crashWithFrames(2), FormatProto)
	var b []byte
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, ev)
	b = protowire.AppendTag(b, 99, protowire.BytesType) // unknown
	b = protowire.AppendBytes(b, bytes.Repeat([]byte{'x'}, 1000))
	b = protowire.AppendTag(b, 4, protowire.VarintType) // events with a wrong wire type: unknown
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)
	c, err := s.Scan(b, FormatProto)
	if err != nil {
		t.Fatal(err)
	}
	var req consentryv1.IngestRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	if c.Events != len(req.GetEvents()) || c.Frames != 2 {
		t.Errorf("scan counted %d events, %d frames; decoding built %d events", c.Events, c.Frames, len(req.GetEvents()))
	}
	if c.Decoded < 2000 {
		t.Errorf("estimate %d does not count the unknown field's 1000 bytes", c.Decoded)
	}
}

func BenchmarkScan(b *testing.B) {
	s := newScanner(b)
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: strings.Repeat("t", 300), Seed: 3})
	req := gen.Batch(1000, time.Now())
	for _, f := range []Format{FormatProto, FormatJSON} {
		w := marshal(b, req, f)
		b.Run(fmt.Sprint("format=", f), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				if _, err := s.Scan(w, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConsumeTag checks the one-byte fast path against protowire for
// every first byte, alone and followed by continuation and final bytes.
func TestConsumeTag(t *testing.T) {
	for c := range 256 {
		for _, rest := range [][]byte{nil, {0x01}, {0x80}, {0x80, 0x01}, {0xff, 0xff, 0xff, 0xff, 0x0f}} {
			b := append([]byte{byte(c)}, rest...)
			num, typ, n := consumeTag(b)
			wnum, wtyp, wn := protowire.ConsumeTag(b)
			if num != wnum || typ != wtyp || n != wn {
				t.Errorf("consumeTag(%x) = %d, %d, %d; protowire says %d, %d, %d", b, num, typ, n, wnum, wtyp, wn)
			}
		}
	}
}
