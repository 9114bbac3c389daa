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
	cfg := testConfig(f, b.TempDir())
	cfg.MaxQueueBytes = 1 << 30
	cfg.MaxBatchEvents = 1000
	c := grantedClient(b, f, cfg, "analytics,crash_reports")
	f.setDown(true)
	a := NewAttributes()
	a.PutString("format", "a4")
	a.PutInt("pages", 12)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var err error
		if i%2 == 0 {
			err = c.RecordGesture("tap", "settings.privacy", 1, 0)
		} else {
			err = c.RecordCustom("export_pdf", a)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEnqueueParallel is BenchmarkEnqueue from many goroutines.
func BenchmarkEnqueueParallel(b *testing.B) {
	f := newFakeCollector(b)
	cfg := testConfig(f, b.TempDir())
	cfg.MaxQueueBytes = 1 << 30
	cfg.MaxBatchEvents = 1000
	c := grantedClient(b, f, cfg, "analytics")
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
		cfg := testConfig(f, b.TempDir())
		cfg.MaxQueueBytes = 1 << 30
		cfg.MaxBatchEvents = 1000
		cfg.MinBackoffMs, cfg.MaxBackoffMs = 3_600_000, 3_600_000 // one failed send, then quiet
		c := grantedClient(b, f, cfg, "analytics")
		f.stop()
		a := NewAttributes()
		a.PutString("format", "a4")
		a.PutInt("pages", 12)
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
			var err error
			if i%2 == 0 {
				err = c.RecordGesture("tap", "settings.privacy", 1, 0)
			} else {
				err = c.RecordCustom("export_pdf", a)
			}
			if err != nil {
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
