package collector

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestUnmarshalVT checks the fast decoding: a valid batch decodes as
// proto.Unmarshal decodes it; a batch with a string that is not UTF-8,
// and bytes that do not parse, are left empty for the ordinary decoder.
func TestUnmarshalVT(t *testing.T) {
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: "token", Seed: 5})
	req := gen.Batch(200, time.Now())
	valid, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var got consentryv1.IngestRequest
	if !unmarshalVT(mem.BufferSlice{mem.SliceBuffer(valid)}, &got) {
		t.Fatal("valid batch not decoded")
	}
	if !proto.Equal(&got, req) {
		t.Fatal("UnmarshalVT decoded another batch")
	}
	for _, e := range req.GetEvents() {
		if c := e.GetCrash(); c != nil {
			c.Message = utf8Placeholder
			break
		}
	}
	invalid, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	invalid = bytes.ReplaceAll(invalid, []byte(utf8Placeholder), []byte(utf8Bad))
	for name, data := range map[string][]byte{"not UTF-8": invalid, "truncated": valid[:len(valid)-3]} {
		var got consentryv1.IngestRequest
		if unmarshalVT(mem.BufferSlice{mem.SliceBuffer(data)}, &got) {
			t.Errorf("%s: decoded", name)
		}
		if !proto.Equal(&got, &consentryv1.IngestRequest{}) {
			t.Errorf("%s: left %v", name, &got)
		}
	}
	// Other messages are not decoded here.
	var resp consentryv1.IngestResponse
	if unmarshalVT(mem.BufferSlice{mem.SliceBuffer(valid)}, &resp) {
		t.Error("decoded a message that is not an IngestRequest")
	}
}

// TestMarshalVT checks that the fast encoding is proto.Marshal's.
func TestMarshalVT(t *testing.T) {
	resp := &consentryv1.IngestResponse{Accepted: 198, Dropped: 2,
		Drops: []*consentryv1.DropCount{{Reason: consentryv1.DropReason_DROP_REASON_UNKNOWN_KIND, Count: 2}}}
	out, ok, err := marshalVT(resp)
	if !ok || err != nil {
		t.Fatalf("marshalVT: %v, %v", ok, err)
	}
	defer out.Free()
	var got consentryv1.IngestResponse
	if err := proto.Unmarshal(out.Materialize(), &got); err != nil || !proto.Equal(&got, resp) {
		t.Fatalf("round trip: %v, %v", &got, err)
	}
}

// BenchmarkUnmarshalVT decodes a realistic batch of 500 events as the
// codec's fast path does (compare BenchmarkCodecUnmarshal/valid).
func BenchmarkUnmarshalVT(b *testing.B) {
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: "token", Seed: 5})
	valid, err := proto.Marshal(gen.Batch(500, time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(valid)}
	b.SetBytes(int64(len(valid)))
	b.ReportAllocs()
	for b.Loop() {
		var got consentryv1.IngestRequest
		if !unmarshalVT(data, &got) {
			b.Fatal("not decoded")
		}
	}
}
