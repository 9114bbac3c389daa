package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/pipeline"
)

// fakeRejectStore records stored reject rows and fails on demand.
type fakeRejectStore struct {
	mu     sync.Mutex
	fail   error
	events map[string]uint64 // app/reason -> events
	calls  int
}

func (f *fakeRejectStore) insert(_ context.Context, rows []rejectRow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	if f.events == nil {
		f.events = make(map[string]uint64)
	}
	for _, r := range rows {
		if r.minute.Second() != 0 || r.minute.Location() != time.UTC {
			return fmt.Errorf("minute %v is not a whole UTC minute", r.minute)
		}
		f.events[r.app+"/"+r.reason] += r.events
	}
	return nil
}

func (f *fakeRejectStore) snapshot() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.events)
}

func newTestRejects(t *testing.T, cfg RejectsConfig, f *fakeRejectStore) *Rejects {
	t.Helper()
	r, err := newRejects(cfg, f.insert, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRejectsAggregateAndFlush(t *testing.T) {
	checkLeaks(t)
	f := &fakeRejectStore{}
	r := newTestRejects(t, RejectsConfig{FlushInterval: time.Hour}, f)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 100 {
				r.CountRejects("com.example.notes", "consent_revoked", 2)
				r.CountRejects("com.example.maps", pipeline.ReasonBatchTooLarge, 1)
			}
		})
	}
	wg.Wait()
	r.CountRejects("com.example.maps", "too_old", 0) // ignored
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.CountRejects("com.example.notes", "consent_revoked", 5)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"com.example.notes/consent_revoked": 2005, "com.example.maps/batch_too_large": 1000}
	if got := f.snapshot(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	r.CountRejects("com.example.notes", "consent_revoked", 1) // after Close: dropped
	if err := r.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRejectsKeepCountsWhenFlushFails(t *testing.T) {
	checkLeaks(t)
	f := &fakeRejectStore{fail: errors.New("connection refused")}
	r := newTestRejects(t, RejectsConfig{FlushInterval: time.Hour}, f)
	r.CountRejects("a", "too_old", 3)
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("Flush succeeded with a failing store")
	}
	r.CountRejects("a", "too_old", 4)
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.snapshot()["a/too_old"]; got != 7 {
		t.Errorf("stored %d events, want 7", got)
	}
}

func TestRejectsBoundKeys(t *testing.T) {
	checkLeaks(t)
	f := &fakeRejectStore{}
	r := newTestRejects(t, RejectsConfig{FlushInterval: time.Hour, MaxKeys: 3}, f)
	for i := range 10 {
		r.CountRejects(fmt.Sprintf("app%d", i), "too_old", 1)
	}
	r.mu.Lock()
	keys := len(r.counts)
	r.mu.Unlock()
	// A minute boundary may split the counters; either way they stay bounded.
	if keys > 6 {
		t.Errorf("%d counters held, want at most 2*MaxKeys", keys)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.snapshot()
	var total uint64
	for _, n := range got {
		total += n
	}
	if total != 10 || got[OtherApp+"/too_old"] < 7 {
		t.Errorf("stored %v; want 10 events, at least 7 under %s", got, OtherApp)
	}
}

func TestRejectsFlushPeriodically(t *testing.T) {
	checkLeaks(t)
	f := &fakeRejectStore{}
	r := newTestRejects(t, RejectsConfig{FlushInterval: 10 * time.Millisecond}, f)
	r.CountRejects("a", "duplicate", 1)
	deadline := time.Now().Add(5 * time.Second)
	for f.snapshot()["a/duplicate"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("counts not flushed by the loop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
