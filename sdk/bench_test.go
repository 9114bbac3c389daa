package sdk

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkEnqueue measures recording into the queue: one event sealed
// and appended to a segment file (without fsync), as the Record methods
// do. The collector is down, so nothing is sent meanwhile.
func BenchmarkEnqueue(b *testing.B) {
	f := newFakeCollector(b)
	c := grantedClient(b, f, benchConfig(b, f), "analytics,crash_reports")
	f.setDown(true)
	a := benchAttributes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := recordMixed(c, i, a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEnqueueParallel is BenchmarkEnqueue from many goroutines.
func BenchmarkEnqueueParallel(b *testing.B) {
	f := newFakeCollector(b)
	c := grantedClient(b, f, benchConfig(b, f), "analytics")
	f.setDown(true)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.RecordGesture("tap", "settings.privacy", 1, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkQueuedEventCost reports what one queued event costs: bytes on
// disk (frame, nonce, tag, record header and the encoded event), and bytes
// of heap the Client keeps for it. The queue lives on disk, so the heap
// cost is only the per-segment bookkeeping, spread over the events of a
// segment: close to zero.
func BenchmarkQueuedEventCost(b *testing.B) {
	const events = 50000
	for b.Loop() {
		b.StopTimer()
		f := newFakeCollector(b)
		cfg := benchConfig(b, f)
		cfg.MinBackoffMs, cfg.MaxBackoffMs = 3_600_000, 3_600_000 // one failed send, then quiet
		c := grantedClient(b, f, cfg, "analytics")
		f.stop()
		a := benchAttributes()
		// Warm up: the first failed send, pools, the first segment.
		for range 2000 {
			if err := c.RecordGesture("tap", "warm.up", 1, 0); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for i := range events {
			if err := recordMixed(c, i, a); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := c.Stats()
		if st.QueuedEvents != events+2000 {
			b.Fatalf("queued %d", st.QueuedEvents)
		}
		b.ReportMetric(float64(st.QueuedBytes)/float64(st.QueuedEvents), "disk-bytes/event")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/events, "heap-bytes/event")
		c.Close()
		b.StartTimer()
	}
}

// benchConfig is testConfig with a queue and batches large enough that
// the benchmarks measure recording, not eviction or batching limits.
func benchConfig(b *testing.B, f *fakeCollector) *Config {
	cfg := testConfig(f, b.TempDir())
	cfg.MaxQueueBytes = 1 << 30
	cfg.MaxBatchEvents = 1000
	return cfg
}

// benchAttributes are the attributes of the custom events the
// benchmarks record.
func benchAttributes() *Attributes {
	a := NewAttributes()
	a.PutString("format", "a4")
	a.PutInt("pages", 12)
	return a
}

// recordMixed records the i-th event of the benchmarks' mix: gestures
// and custom events in turn.
func recordMixed(c *Client, i int, a *Attributes) error {
	if i%2 == 0 {
		return c.RecordGesture("tap", "settings.privacy", 1, 0)
	}
	return c.RecordCustom("export_pdf", a)
}
