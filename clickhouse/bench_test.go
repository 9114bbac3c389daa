package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// BenchmarkInsert measures Client.Insert, the ceiling of what the raw
// clickhouse-go path stores, on realistic mixed rows against the test
// server.
func BenchmarkInsert(b *testing.B) {
	for _, bc := range []struct {
		rows        int
		compression string
	}{
		{1_000, "lz4"},
		{10_000, "lz4"},
		{50_000, "lz4"},
		{50_000, "none"},
	} {
		b.Run(fmt.Sprintf("rows=%d/compression=%s", bc.rows, bc.compression), func(b *testing.B) {
			c := migrated(b, Config{Compression: bc.compression})
			batches := make([]*pipeline.Rows, 4)
			for i := range batches {
				batches[i] = newRowGen(uint64(i+1), time.Now()).rows(bc.rows)
			}
			ctx := context.Background()
			if err := c.Insert(ctx, batches[0]); err != nil { // warm the pool
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := c.Insert(ctx, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bc.rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkEncode measures the client-side part of an insert: collecting
// 10 000 mixed rows into column buffers, without the driver and server.
func BenchmarkEncode(b *testing.B) {
	s := newSchema(SchemaOptions{})
	rows := newRowGen(1, time.Now()).rows(10_000)
	b.ReportAllocs()
	for b.Loop() {
		encodeAll(s.sessions, rows.Sessions)
		encodeAll(s.gestures, rows.Gestures)
		encodeAll(s.crashes, rows.Crashes)
		encodeAll(s.customs, rows.Customs)
		encodeAll(s.diagnostics, rows.Diagnostics)
	}
	b.ReportMetric(float64(b.N*rows.Len())/b.Elapsed().Seconds(), "rows/s")
}

func encodeAll[R any](t *rowTable[R], rows []R) {
	enc := t.encoders.Get().(*encoder[R])
	enc.encode(rows)
	enc.reset()
	t.encoders.Put(enc)
}
