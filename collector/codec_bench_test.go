package collector

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// BenchmarkCodecUnmarshal decodes a realistic batch of 500 events with the
// gRPC codec: valid, as nearly every batch is, and with one crash message
// that is not UTF-8, which takes the lenient path. Run with -short: it
// needs no ClickHouse.
func BenchmarkCodecUnmarshal(b *testing.B) {
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: "token", Seed: 5})
	req := gen.Batch(500, time.Now())
	valid, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range req.GetEvents() {
		if c := e.GetCrash(); c != nil {
			c.Message = utf8Placeholder
			break
		}
	}
	invalid, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	invalid = bytes.ReplaceAll(invalid, []byte(utf8Placeholder), []byte(utf8Bad))
	c := newCodec()
	for _, in := range []struct {
		name string
		data []byte
	}{{"valid", valid}, {"invalid", invalid}} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			data := mem.BufferSlice{mem.SliceBuffer(in.data)}
			for b.Loop() {
				var got consentryv1.IngestRequest
				if err := c.Unmarshal(data, &got); err != nil || malformed(&got) {
					b.Fatal("not decoded")
				}
			}
		})
	}
}

// BenchmarkEdgeAdmit admits a realistic batch of 200 events as the edge
// does for every request (scan, charge, decode) and releases it, as its
// call's end does. Run with -short: it needs no ClickHouse.
func BenchmarkEdgeAdmit(b *testing.B) {
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: "token", Seed: 5})
	body, err := proto.Marshal(gen.Batch(200, time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	e := newTestEdge(b, limits.EdgeConfig{MaxInflightBytes: 64 << 20}, limits.Config{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		a, _, err := e.admit(body, limits.FormatProto)
		if err != nil || len(a.req.GetEvents()) != 200 {
			b.Fatal("not admitted: ", err)
		}
		a.release()
	}
}
