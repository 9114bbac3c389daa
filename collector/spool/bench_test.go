package spool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// BenchmarkWrite measures Writes of a 10-row batch by 1, 8 and 64
// concurrent writers on the real disk, reporting records/s and how many
// fsyncs each record cost (group commit makes it fall with concurrency).
func BenchmarkWrite(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			fake := newFake(b)
			fake.noKeep = true
			cfg := testConfig(b, b.TempDir(), fake)
			s := mustOpen(b, cfg)
			rows := makeRows(1, 10)
			b.ResetTimer()
			start := time.Now()
			writeN(b, s, rows, writers)
			elapsed := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/record")
			mustClose(b, s)
		})
	}
}

// BenchmarkShip measures how fast a spool replays and ships a backlog: b.N
// records of 10 rows are spooled while the inserter is down (not timed),
// then the timer covers Open (which verifies the last segment) and
// shipping everything.
func BenchmarkShip(b *testing.B) {
	dir := b.TempDir()
	down := newDownFake(b)
	cfg := testConfig(b, dir, down)
	cfg.Logger = zap.NewNop() // the inserter's failures are expected
	s := mustOpen(b, cfg)
	rows := makeRows(1, 10)
	writeN(b, s, rows, 64)
	bytes := s.Stats().Bytes
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_ = s.Close(ctx)
	cancel()

	fake := newFake(b)
	fake.noKeep = true
	cfg.Inserter = fake
	b.ResetTimer()
	start := time.Now()
	s = mustOpen(b, cfg)
	waitShipped(b, s)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/record")
	mustClose(b, s)
}

// BenchmarkResync measures how fast the shipper skips damage: the scan for
// the next valid record over 16 MiB of records whose headers are all
// damaged (each candidate found by its magic, then rejected by its header
// checksum), reporting MB/s.
func BenchmarkResync(b *testing.B) {
	var seg []byte
	h := segHeader{version: segV2, num: 1, key: fuzzKey}
	seg = append(seg, make([]byte, h.size())...)
	rec := encodeRecord(fuzzKey, pipeline.Origin{}, makeRows(1, 10), 0, 0)
	for len(seg) < 16<<20 {
		r := append([]byte(nil), rec...)
		r[44] ^= 1 // header checksum
		seg = append(seg, r...)
	}
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		var r frameReader
		r.reset(memFile{seg}, h)
		_, d, err := r.step(context.Background(), cursor{off: h.size(), rowKnown: true}, int64(len(seg)))
		if err != nil || d == nil || !d.toEnd {
			b.Fatalf("damage %+v, %v", d, err)
		}
	}
}

// writeN writes rows b.N times to s from the given number of goroutines.
func writeN(b *testing.B, s *Spool, rows *pipeline.Rows, writers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := s.Write(context.Background(), rows, pipeline.Origin{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
