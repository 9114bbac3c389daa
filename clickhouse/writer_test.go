package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/pipeline"
)

// fakeInserter records inserts and fails or blocks them on demand.
type fakeInserter struct {
	// fail, if set, decides the outcome of call n (from 1): the tables that
	// failed and the error.
	fail func(n int, todo tableSet) (tableSet, error)
	// block, if set, holds every insert until it is closed or the insert's
	// context ends.
	block chan struct{}
	// started receives a value as each insert starts, if there is room.
	started chan struct{}

	mu    sync.Mutex
	calls int
	todos []tableSet
	rows  int // rows of successful inserts
}

func (f *fakeInserter) insert(ctx context.Context, rows *pipeline.Rows, todo tableSet) (tableSet, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.todos = append(f.todos, todo)
	f.mu.Unlock()
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default:
		}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return todo, ctx.Err()
		}
	}
	if f.fail != nil {
		if failed, err := f.fail(n, todo); err != nil {
			return failed, err
		}
	}
	f.mu.Lock()
	f.rows += rows.Len()
	f.mu.Unlock()
	return 0, nil
}

func (f *fakeInserter) stats() (calls, rows int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.rows
}

func unavailable(n int) error {
	return fmt.Errorf("insert into sessions: %w: call %d: connection refused", pipeline.ErrStorageUnavailable, n)
}

func startWriter(t *testing.T, cfg WriterConfig, ins inserter) *Writer {
	t.Helper()
	w, err := newWriter(cfg, ins, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// writeAll runs Writes of the given sizes concurrently and returns their
// errors.
func writeAll(ctx context.Context, w *Writer, sizes ...int) []error {
	errs := make([]error, len(sizes))
	var wg sync.WaitGroup
	for i, n := range sizes {
		rows := newRowGen(uint64(i+1), time.Now()).rows(n)
		wg.Go(func() { errs[i] = w.Write(ctx, rows, pipeline.Origin{}) })
	}
	wg.Wait()
	return errs
}

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func TestWriterGroupsConcurrentWrites(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{}
	// A group waits a second for more writes: the 50 writers start well
	// within it even on a loaded machine (with 50 ms, a make test beside
	// a fuzzer once split them into 4 inserts).
	w := startWriter(t, WriterConfig{FlushInterval: time.Second}, f)
	for i, err := range writeAll(context.Background(), w, repeat(50, 100)...) {
		if err != nil {
			t.Errorf("Write %d: %v", i, err)
		}
	}
	calls, rows := f.stats()
	if calls > 3 || rows != 5000 {
		t.Errorf("%d inserts of %d rows in all, want at most 3 of 5000", calls, rows)
	}
	if s := w.Stats(); s.Inserts != uint64(calls) || s.Rows != 5000 || s.PendingRows != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWriterSealsFullGroups(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{}
	// Full groups go at once; only the FlushInterval would hold them.
	w := startWriter(t, WriterConfig{MaxBatchRows: 100, FlushInterval: time.Hour}, f)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, err := range writeAll(ctx, w, repeat(10, 50)...) {
		if err != nil {
			t.Errorf("Write %d: %v", i, err)
		}
	}
	if calls, rows := f.stats(); calls != 5 || rows != 500 {
		t.Errorf("%d inserts, %d rows; want 5, 500", calls, rows)
	}
}

func TestWriterBackpressure(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{block: make(chan struct{}), started: make(chan struct{}, 1)}
	w := startWriter(t, WriterConfig{MaxPendingRows: 100, FlushInterval: time.Millisecond}, f)

	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), newRowGen(1, time.Now()).rows(100), pipeline.Origin{}) }()
	<-f.started // the insert of the first 100 rows is stalled

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Write(ctx, newRowGen(2, time.Now()).rows(10), pipeline.Origin{})
	if !errors.Is(err, pipeline.ErrOverloaded) {
		t.Fatalf("Write with 100 rows pending = %v, want ErrOverloaded", err)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Errorf("Write failed after %v; want it to wait for room until its context ended", waited)
	}
	if s := w.Stats(); s.PendingRows != 100 {
		t.Errorf("PendingRows = %d, want 100", s.PendingRows)
	}

	// A Write that waits long enough gets in once the insert finishes.
	second := make(chan error, 1)
	go func() { second <- w.Write(context.Background(), newRowGen(3, time.Now()).rows(10), pipeline.Origin{}) }()
	time.Sleep(20 * time.Millisecond)
	close(f.block)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Errorf("Write %d: %v", i+1, err)
		}
	}
	if _, rows := f.stats(); rows != 110 {
		t.Errorf("stored %d rows, want 110", rows)
	}
}

func TestWriterRetriesFailedTables(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{fail: func(n int, todo tableSet) (tableSet, error) {
		if n <= 2 {
			return todo & setGestures, unavailable(n) // only gestures failed
		}
		return 0, nil
	}}
	w := startWriter(t, WriterConfig{FlushInterval: time.Millisecond, RetryBackoff: time.Millisecond}, f)
	if err := w.Write(context.Background(), newRowGen(1, time.Now()).rows(200), pipeline.Origin{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	f.mu.Lock()
	todos := f.todos
	f.mu.Unlock()
	if want := []tableSet{allTables, setGestures, setGestures}; fmt.Sprint(todos) != fmt.Sprint(want) {
		t.Errorf("inserted tables %v, want %v", todos, want)
	}
	if s := w.Stats(); s.Retries != 2 || s.Inserts != 1 || s.Failures != 0 {
		t.Errorf("Stats = %+v, want 2 retries, 1 insert", s)
	}
}

func TestWriterPermanentError(t *testing.T) {
	checkLeaks(t)
	permanent := errors.New("insert into crashes: code: 16, message: No such column frame_lines")
	f := &fakeInserter{fail: func(int, tableSet) (tableSet, error) { return setCrashes, permanent }}
	w := startWriter(t, WriterConfig{FlushInterval: time.Millisecond, RetryBackoff: time.Millisecond}, f)
	err := w.Write(context.Background(), newRowGen(1, time.Now()).rows(10), pipeline.Origin{})
	if !errors.Is(err, permanent) || errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Errorf("Write = %v, want the permanent error", err)
	}
	if calls, _ := f.stats(); calls != 1 {
		t.Errorf("%d attempts, want 1", calls)
	}
}

func TestWriterOutOfRetries(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{fail: func(n int, todo tableSet) (tableSet, error) { return todo, unavailable(n) }}
	w := startWriter(t, WriterConfig{FlushInterval: time.Millisecond, RetryBackoff: time.Millisecond, MaxRetries: 2}, f)
	err := w.Write(context.Background(), newRowGen(1, time.Now()).rows(10), pipeline.Origin{})
	if !errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Errorf("Write = %v, want ErrStorageUnavailable", err)
	}
	if calls, _ := f.stats(); calls != 3 {
		t.Errorf("%d attempts, want 3", calls)
	}
	if s := w.Stats(); s.Failures != 1 || s.PendingRows != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWriterStopsRetryingWhenRequestsGiveUp(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{fail: func(n int, todo tableSet) (tableSet, error) { return todo, unavailable(n) }}
	w := startWriter(t, WriterConfig{FlushInterval: time.Millisecond, RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond, MaxRetries: 1000}, f)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Write(ctx, newRowGen(1, time.Now()).rows(10), pipeline.Origin{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write = %v, want DeadlineExceeded", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for w.Stats().PendingRows != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still retrying after the only request gave up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	calls, _ := f.stats()
	time.Sleep(50 * time.Millisecond)
	if later, _ := f.stats(); later != calls {
		t.Errorf("%d more attempts after the request gave up", later-calls)
	}
}

func TestWriterCloseFlushesQueuedRows(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{}
	w, err := newWriter(WriterConfig{FlushInterval: time.Hour}, f, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 5)
	for i := range 5 {
		rows := newRowGen(uint64(i), time.Now()).rows(30)
		go func() { errs <- w.Write(context.Background(), rows, pipeline.Origin{}) }()
	}
	for w.Stats().PendingRows != 150 {
		time.Sleep(time.Millisecond)
	}
	if calls, _ := f.stats(); calls != 0 {
		t.Fatalf("%d inserts before Close, want 0 (FlushInterval is an hour)", calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Errorf("Write: %v", err)
		}
	}
	if calls, rows := f.stats(); calls != 1 || rows != 150 {
		t.Errorf("%d inserts, %d rows; want 1, 150", calls, rows)
	}
	if err := w.Write(ctx, newRowGen(9, time.Now()).rows(1), pipeline.Origin{}); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWriterCloseGivesUp(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{block: make(chan struct{}), started: make(chan struct{}, 1)}
	w, err := newWriter(WriterConfig{FlushInterval: time.Millisecond, MaxPendingRows: 10}, f, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stalled := make(chan error, 1)
	go func() { stalled <- w.Write(context.Background(), newRowGen(1, time.Now()).rows(10), pipeline.Origin{}) }()
	<-f.started
	// This one waits for room behind the stalled insert.
	waiting := make(chan error, 1)
	go func() { waiting <- w.Write(context.Background(), newRowGen(2, time.Now()).rows(10), pipeline.Origin{}) }()
	time.Sleep(10 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if err := <-stalled; !errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Errorf("stalled Write = %v, want ErrStorageUnavailable", err)
	}
	if err := <-waiting; !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("waiting Write = %v, want ErrClosed", err)
	}
}

func TestWriterEmptyWrite(t *testing.T) {
	checkLeaks(t)
	f := &fakeInserter{}
	w := startWriter(t, WriterConfig{}, f)
	if err := w.Write(context.Background(), &pipeline.Rows{}, pipeline.Origin{}); err != nil {
		t.Errorf("Write(empty) = %v", err)
	}
	if calls, _ := f.stats(); calls != 0 {
		t.Errorf("%d inserts for no rows", calls)
	}
}

func TestBackoff(t *testing.T) {
	w := &Writer{cfg: WriterConfig{RetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second}}
	for attempt, max := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		max *= time.Millisecond
		for range 20 {
			if d := w.backoff(attempt); d < max/2 || d > max {
				t.Errorf("backoff(%d) = %v, want in [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
	if d := w.backoff(1000); d > time.Second {
		t.Errorf("backoff(1000) = %v", d)
	}
}

// checkLeaks fails t if goroutines started during t outlive it. Registered
// first, it runs after every other cleanup.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
