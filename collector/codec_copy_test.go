package collector

import (
	"bytes"
	"runtime"
	"testing"

	"google.golang.org/grpc/mem"
)

// TestCodecCopiesWireMessageOnce checks that an ingest message handed to
// the edge as bytes is copied out of gRPC's buffers once, not once to
// look for the gzip marker and again to keep it.
func TestCodecCopiesWireMessageOnce(t *testing.T) {
	c := newCodec()
	c.gzipMarker = []byte("\x00gzip-marker")
	msg := bytes.Repeat([]byte("x"), 4<<20)
	for _, compressed := range []bool{false, true} {
		in := msg
		if compressed {
			in = append(append([]byte(nil), c.gzipMarker...), msg...)
		}
		data := mem.BufferSlice{mem.SliceBuffer(in)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var w wireMessage
		if err := c.Unmarshal(data, &w); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if !bytes.Equal(w.b, msg) || w.compressed != compressed {
			t.Fatalf("compressed %v: got %d bytes, compressed %v", compressed, len(w.b), w.compressed)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(in))*3/2 {
			t.Errorf("compressed %v: %d bytes allocated for a %d-byte message", compressed, n, len(in))
		}
	}
}
