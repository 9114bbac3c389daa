package collector

import (
	"bytes"
	"runtime"
	"testing"

	"google.golang.org/grpc/mem"
)

// countingPool is a mem.BufferPool that counts the buffers given back.
type countingPool struct{ puts int }

func (p *countingPool) Get(n int) *[]byte { b := make([]byte, n); return &b }

func (p *countingPool) Put(*[]byte) { p.puts++ }

// TestCodecKeepsWireMessage checks that an ingest message handed to the
// edge as bytes is not copied out of gRPC's buffer when it is one buffer
// (as gRPC reads messages), and copied once when it is several, and that
// the buffer goes back to its pool when the edge releases the message,
// not when gRPC frees its own reference after Unmarshal.
func TestCodecKeepsWireMessage(t *testing.T) {
	c := newCodec()
	c.gzipMarker = []byte("\x00gzip-marker")
	msg := bytes.Repeat([]byte("x"), 4<<20)
	for _, compressed := range []bool{false, true} {
		for _, pieces := range []int{1, 3} {
			in := msg
			if compressed {
				in = append(append([]byte(nil), c.gzipMarker...), msg...)
			}
			pool := &countingPool{}
			var data mem.BufferSlice
			for i := range pieces {
				part := in[i*len(in)/pieces : (i+1)*len(in)/pieces]
				data = append(data, mem.NewBuffer(&part, pool))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var w wireMessage
			if err := c.Unmarshal(data, &w); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			if !bytes.Equal(w.b, msg) || w.compressed != compressed {
				t.Fatalf("compressed %v, %d pieces: got %d bytes, compressed %v", compressed, pieces, len(w.b), w.compressed)
			}
			n := after.TotalAlloc - before.TotalAlloc
			switch {
			case pieces == 1 && n > 64<<10:
				t.Errorf("compressed %v: %d bytes allocated for a %d-byte message in one buffer (copied)", compressed, n, len(in))
			case n > uint64(len(in))*3/2:
				t.Errorf("compressed %v, %d pieces: %d bytes allocated for a %d-byte message", compressed, pieces, n, len(in))
			}
			data.Free() // gRPC's own references, dropped after Unmarshal
			if want := pieces; pieces == 1 && pool.puts != 0 || pieces > 1 && pool.puts != want {
				t.Fatalf("compressed %v, %d pieces: %d buffers back in the pool before the edge released the message", compressed, pieces, pool.puts)
			}
			w.release()
			if pool.puts != pieces {
				t.Errorf("compressed %v, %d pieces: %d of %d buffers back in the pool after release", compressed, pieces, pool.puts, pieces)
			}
			w.release() // a second release does nothing
		}
	}
}
