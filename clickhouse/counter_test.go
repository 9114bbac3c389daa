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
)

// testKey is a counter key for the counter's own tests.
type testKey struct{ app, name string }

// testStore records what a counter stores and fails on demand.
type testStore struct {
	mu     sync.Mutex
	fail   error
	during func() // called by a failing insert, without mu
	stored map[testKey]uint64
}

func (s *testStore) insert(_ context.Context, rows []countRow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if s.during != nil {
			s.mu.Unlock()
			s.during()
			s.mu.Lock()
		}
		return s.fail
	}
	if s.stored == nil {
		s.stored = make(map[testKey]uint64)
	}
	for _, r := range rows {
		s.stored[testKey{r.app, r.name}] += r.count
	}
	return nil
}

func (s *testStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *testStore) snapshot() map[testKey]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.stored)
}

func newTestCounter(t *testing.T, maxKeys int, interval time.Duration, s *testStore) *counter[testKey, countRow] {
	t.Helper()
	c := newCounter(counterConfig[testKey, countRow]{
		name:       "test counts",
		maxKeys:    maxKeys,
		interval:   interval,
		overflow:   func(k testKey) testKey { k.app = OtherApp; return k },
		row:        func(k testKey, n uint64) countRow { return countRow{app: k.app, name: k.name, count: n} },
		insert:     s.insert,
		reportLost: true,
		logger:     zaptest.NewLogger(t),
	})
	c.start()
	return c
}

// add is one count in a test case.
type add struct {
	app, name string
	n         uint64
}

func TestCounter(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		maxKeys int
		// before are counted, then flushed with the store failing if
		// failFirst (during are counted while that flush runs), then
		// after are counted, then close.
		before    []add
		failFirst bool
		during    []add
		after     []add
		want      map[testKey]uint64
		wantLost  uint64 // events that found no counter, before close
	}{{
		name:    "within bounds: one counter per key, summed",
		maxKeys: 3,
		before:  []add{{"a", "x", 1}, {"a", "x", 2}, {"b", "x", 4}, {"a", "y", 8}},
		want:    map[testKey]uint64{{"a", "x"}: 3, {"b", "x"}: 4, {"a", "y"}: 8},
	}, {
		name:    "beyond maxKeys: new apps counted under OtherApp",
		maxKeys: 2,
		before:  []add{{"a", "x", 1}, {"b", "x", 1}, {"c", "x", 1}, {"d", "x", 2}, {"a", "x", 1}, {"e", "y", 5}},
		want:    map[testKey]uint64{{"a", "x"}: 2, {"b", "x"}: 1, {OtherApp, "x"}: 3, {OtherApp, "y"}: 5},
	}, {
		name:     "beyond twice maxKeys: lost",
		maxKeys:  1,
		before:   []add{{"a", "x", 1}, {"b", "y", 2}, {"c", "z", 4}, {"d", "y", 8}},
		want:     map[testKey]uint64{{"a", "x"}: 1, {OtherApp, "y"}: 10},
		wantLost: 4,
	}, {
		name:      "failed flush puts the counts back",
		maxKeys:   3,
		before:    []add{{"a", "x", 3}, {"b", "x", 1}},
		failFirst: true,
		after:     []add{{"a", "x", 4}},
		want:      map[testKey]uint64{{"a", "x"}: 7, {"b", "x"}: 1},
	}, {
		name:      "put back within bounds",
		maxKeys:   1,
		before:    []add{{"a", "x", 1}},
		failFirst: true,
		// While the flush runs, c/x takes the one slot and d/y the one
		// OtherApp slot, so a/x comes back to find no room.
		during:   []add{{"c", "x", 4}, {"d", "y", 8}},
		want:     map[testKey]uint64{{"c", "x"}: 4, {OtherApp, "y"}: 8},
		wantLost: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			s := &testStore{}
			c := newTestCounter(t, tt.maxKeys, time.Hour, s)
			for _, a := range tt.before {
				c.count(testKey{a.app, a.name}, a.n)
			}
			c.mu.Lock()
			if len(c.counts) > 2*tt.maxKeys {
				t.Errorf("%d counters held, want at most %d", len(c.counts), 2*tt.maxKeys)
			}
			c.mu.Unlock()
			if tt.failFirst {
				s.setFail(down)
				s.during = func() {
					for _, a := range tt.during {
						c.count(testKey{a.app, a.name}, a.n)
					}
				}
				if err := c.flush(context.Background()); !errors.Is(err, down) {
					t.Fatalf("flush with the store down: %v, want %v", err, down)
				}
				s.setFail(nil)
			}
			for _, a := range tt.after {
				c.count(testKey{a.app, a.name}, a.n)
			}
			c.mu.Lock()
			lost := c.lost
			c.mu.Unlock()
			if lost != tt.wantLost {
				t.Errorf("%d events lost, want %d", lost, tt.wantLost)
			}
			if err := c.close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := s.snapshot(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("stored %v, want %v", got, tt.want)
			}
			c.count(testKey{"a", "x"}, 1) // after close: lost
			c.mu.Lock()
			held, lost := len(c.counts), c.lost
			c.mu.Unlock()
			if held != 0 || lost != 1 {
				t.Errorf("after close a count went to %d counters, %d lost; want none held, 1 lost", held, lost)
			}
			if err := c.close(context.Background()); err != nil {
				t.Errorf("second close: %v", err)
			}
		})
	}
}

// TestCounterConcurrent counts from many goroutines while the loop and
// explicit flushes store, some of them failing: run it with -race. Every
// event within bounds is stored exactly once.
func TestCounterConcurrent(t *testing.T) {
	checkLeaks(t)
	s := &testStore{}
	c := newTestCounter(t, 8, time.Millisecond, s)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				c.count(testKey{fmt.Sprint("app", g), fmt.Sprint("n", i%2)}, 1)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			var err error
			if i%2 == 0 {
				err = errors.New("connection refused")
			}
			s.setFail(err)
			_ = c.flush(context.Background())
		}
		s.setFail(nil)
	})
	wg.Wait()
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, n := range s.snapshot() {
		total += n
	}
	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if total+lost != 8*500 {
		t.Errorf("stored %d + lost %d events, want %d", total, lost, 8*500)
	}
}

// TestCounterFlushesPeriodically: the loop stores without a Flush call.
func TestCounterFlushesPeriodically(t *testing.T) {
	checkLeaks(t)
	s := &testStore{}
	c := newTestCounter(t, 8, 10*time.Millisecond, s)
	c.count(testKey{"a", "x"}, 1)
	deadline := time.Now().Add(5 * time.Second)
	for s.snapshot()[testKey{"a", "x"}] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("counts not flushed by the loop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCounterCloseGivesUp: close waits for a flush in progress only until
// its ctx ends, then cancels it, keeps its counts and says so.
func TestCounterCloseGivesUp(t *testing.T) {
	checkLeaks(t)
	const interval = 500 * time.Millisecond // the loop's flush would wait this long
	inserting := make(chan struct{})
	c := newCounter(counterConfig[testKey, countRow]{
		name:     "test counts",
		maxKeys:  8,
		interval: interval,
		overflow: func(k testKey) testKey { k.app = OtherApp; return k },
		row:      func(k testKey, n uint64) countRow { return countRow{app: k.app, name: k.name, count: n} },
		insert: func(ctx context.Context, rows []countRow) error {
			select {
			case inserting <- struct{}{}:
			default:
			}
			<-ctx.Done() // storage hangs
			return ctx.Err()
		},
		logger: zaptest.NewLogger(t),
	})
	c.start()
	c.count(testKey{"a", "x"}, 1)
	<-inserting
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("close with storage hanging: %v, want %v", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > interval*4/5 {
		t.Errorf("close took %v: it waited for the loop's flush", d)
	}
	if n := c.snapshot()[testKey{"a", "x"}]; n != 1 {
		t.Errorf("%d events kept after close gave up, want 1", n)
	}
}

// TestCounterCloseWithEndedContext: a collector shutting down while
// ClickHouse is away closes with a context that has already ended. With
// every count stored before, close loses nothing and returns nil; with
// counts left, it reports them.
func TestCounterCloseWithEndedContext(t *testing.T) {
	checkLeaks(t)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		pending bool
	}{
		{"nothing to store", false},
		{"counts left", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &testStore{}
			c := newTestCounter(t, 8, time.Millisecond, s)
			c.count(testKey{"a", "x"}, 1)
			if err := c.flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.pending {
				s.setFail(context.Canceled)
				c.count(testKey{"a", "y"}, 1)
			}
			err := c.close(ended)
			if got := err != nil; got != tt.pending {
				t.Errorf("close with an ended context: %v, want an error: %v", err, tt.pending)
			}
		})
	}
}
