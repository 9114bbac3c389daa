package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

var _ pipeline.Sink = (*Writer)(nil)

// inserter stores rows; *Client is the real one.
type inserter interface {
	// insert stores the rows of the tables in todo and returns the tables
	// that failed.
	insert(ctx context.Context, rows *pipeline.Rows, todo tableSet) (failed tableSet, err error)
}

// Writer is the pipeline.Sink that stores rows in ClickHouse. Concurrent
// Writes are grouped into one insert per table, so many small requests make
// few large inserts, which is what ClickHouse handles well; Write returns
// once the insert holding its rows succeeded.
//
// A group is inserted when it holds WriterConfig.MaxBatchRows rows, or when
// it is FlushInterval old and a flusher is free. Failed inserts are retried
// with exponential backoff and jitter while any request of the group still
// waits. When ClickHouse falls behind, rows pile up to MaxPendingRows, and
// Write then waits for room, failing with pipeline.ErrOverloaded if its
// context ends first.
type Writer struct {
	cfg    WriterConfig
	ins    inserter
	logger *zap.Logger

	// ctx is the parent of every insert; cancelled when Close gives up
	// waiting, or once every flusher has exited.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	pending int           // rows accepted and not yet finished
	cur     *group        // the group open for more requests, or nil
	ready   []*group      // sealed groups waiting for a flusher
	room    chan struct{} // closed and replaced when pending shrinks or Close starts
	free    []*pipeline.Rows

	kick chan struct{} // wakes a flusher; capacity 1
	stop chan struct{} // closed when Close starts
	done chan struct{} // closed when every flusher has exited

	inserts, rows, retries, failures atomic.Uint64
}

// group is the rows of one or more requests, inserted together.
type group struct {
	rows    *pipeline.Rows
	n       int
	opened  time.Time
	waiters []chan<- error
	// live counts the waiters still waiting; cancel, set once the group's
	// insert started, stops it when live drops to 0. Both are guarded by
	// Writer.mu.
	live   int
	cancel context.CancelFunc
}

// WriterStats are counters of a Writer's work.
type WriterStats struct {
	// Inserts counts the groups stored, each one insert per table.
	Inserts uint64
	// Rows counts the rows stored.
	Rows uint64
	// Retries counts the retried inserts.
	Retries uint64
	// Failures counts the groups given up on.
	Failures uint64
	// PendingRows is the rows accepted and not yet stored or failed.
	PendingRows int
}

// NewWriter returns a Writer that stores rows through c and starts its
// flushers. Close it to stop them. logger may be nil.
func NewWriter(cfg WriterConfig, c *Client, logger *zap.Logger) (*Writer, error) {
	return newWriter(cfg, c, logger)
}

func newWriter(cfg WriterConfig, ins inserter, logger *zap.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg:    cfg.withDefaults(),
		ins:    ins,
		logger: logger,
		ctx:    ctx,
		cancel: cancel,
		room:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range w.cfg.Flushers {
		wg.Go(w.run)
	}
	go func() {
		wg.Wait()
		cancel()
		close(w.done)
	}()
	return w, nil
}

// Write stores rows and returns once they are stored, or with an error:
// one wrapping pipeline.ErrOverloaded if the writer had no room for them
// before ctx ended, pipeline.ErrStorageUnavailable if storing failed but may
// succeed later, pipeline.ErrClosed after Close, or ctx's error if ctx ended
// while they were being stored (they may still be stored).
//
// Write copies the rows it is given, but not the slices inside them (stack
// frames, attributes): those must not be modified after Write is called.
func (w *Writer) Write(ctx context.Context, rows *pipeline.Rows, _ pipeline.Origin) error {
	n := rows.Len()
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("clickhouse writer: %w", err)
	}
	done := make(chan error, 1)
	g, err := w.enqueue(ctx, rows, n, done)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		w.leave(g)
		return fmt.Errorf("clickhouse writer: waiting for insert: %w", ctx.Err())
	}
}

// enqueue adds rows to the open group once there is room for them, and
// returns the group.
func (w *Writer) enqueue(ctx context.Context, rows *pipeline.Rows, n int, done chan<- error) (*group, error) {
	w.mu.Lock()
	for {
		if w.closing {
			w.mu.Unlock()
			return nil, fmt.Errorf("clickhouse writer: %w", pipeline.ErrClosed)
		}
		// A request larger than the bound is let in alone.
		if w.pending == 0 || w.pending+n <= w.cfg.MaxPendingRows {
			break
		}
		room, pending := w.room, w.pending
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return nil, fmt.Errorf("clickhouse writer: %d rows pending, limit %d: %w",
				pending, w.cfg.MaxPendingRows, pipeline.ErrOverloaded)
		}
		w.mu.Lock()
	}
	w.pending += n
	g := w.cur
	if g == nil {
		g = &group{rows: w.newRows(), opened: time.Now()}
		w.cur = g
		w.signal()
	}
	g.rows.Append(rows)
	g.n += n
	g.waiters = append(g.waiters, done)
	g.live++
	if g.n >= w.cfg.MaxBatchRows {
		w.ready = append(w.ready, g)
		w.cur = nil
		w.signal()
	}
	w.mu.Unlock()
	return g, nil
}

// leave records that a waiter of g gave up; once all have, g's insert and
// retries stop.
func (w *Writer) leave(g *group) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g.live--
	if g.live == 0 && g.cancel != nil {
		g.cancel()
	}
}

// signal wakes a flusher, if one is waiting.
func (w *Writer) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// newRows returns an empty Rows, recycled if possible. Called with mu held.
func (w *Writer) newRows() *pipeline.Rows {
	if n := len(w.free); n > 0 {
		r := w.free[n-1]
		w.free = w.free[:n-1]
		return r
	}
	return new(pipeline.Rows)
}

// recycle keeps r for reuse, dropping its references to the requests' data.
// Called with mu held.
func (w *Writer) recycle(r *pipeline.Rows) {
	if len(w.free) > w.cfg.Flushers {
		return
	}
	r.Recycle()
	w.free = append(w.free, r)
}

// run is a flusher: it inserts groups until Close and the queue is empty.
func (w *Writer) run() {
	for {
		g := w.take()
		if g == nil {
			return
		}
		w.flush(g)
	}
}

// take waits for a group to insert: a sealed one, or the open one once it
// is FlushInterval old. It returns nil once the writer is closing and
// nothing is queued.
func (w *Writer) take() *group {
	for {
		var timer *time.Timer
		w.mu.Lock()
		if len(w.ready) > 0 {
			g := w.ready[0]
			w.ready[0] = nil
			w.ready = w.ready[1:]
			w.mu.Unlock()
			return g
		}
		if g := w.cur; g != nil {
			wait := w.cfg.FlushInterval - time.Since(g.opened)
			if w.closing || wait <= 0 {
				w.cur = nil
				w.mu.Unlock()
				return g
			}
			timer = time.NewTimer(wait)
		} else if w.closing {
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		var expired <-chan time.Time
		if timer != nil {
			expired = timer.C
		}
		select {
		case <-w.kick:
		case <-expired:
		case <-w.stop:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// flush inserts g and tells its waiters the outcome.
func (w *Writer) flush(g *group) {
	ctx, cancel := context.WithCancel(w.ctx)
	w.mu.Lock()
	live := g.live
	g.cancel = cancel
	w.mu.Unlock()

	var err error
	if live == 0 {
		// Every request gave up before the insert began; their clients
		// send the rows again.
		err = errors.New("clickhouse writer: every request gave up")
	} else {
		err = w.insert(ctx, g)
	}
	cancel()
	if err != nil {
		w.failures.Add(1)
	} else {
		w.inserts.Add(1)
		w.rows.Add(uint64(g.n))
	}
	// Release the rows before answering, so that a Write that returned no
	// longer counts as pending.
	w.mu.Lock()
	w.pending -= g.n
	close(w.room)
	w.room = make(chan struct{})
	w.recycle(g.rows)
	g.rows = nil
	w.mu.Unlock()

	for _, d := range g.waiters {
		d <- err
	}
}

// insert stores g, retrying the tables that failed in a way worth
// retrying while ctx allows.
func (w *Writer) insert(ctx context.Context, g *group) error {
	todo := allTables
	for attempt := 0; ; attempt++ {
		failed, err := w.ins.insert(ctx, g.rows, todo)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("clickhouse writer: insert abandoned: %w: %w", pipeline.ErrStorageUnavailable, err)
		}
		if !errors.Is(err, pipeline.ErrStorageUnavailable) {
			w.logger.Error("insert failed permanently", zap.Int(logKeyRows, g.n), zap.Error(err))
			return fmt.Errorf("clickhouse writer: %w", err)
		}
		if attempt >= w.cfg.MaxRetries {
			w.logger.Error("insert failed; out of retries", zap.Int(logKeyRows, g.n), zap.Int(logKeyAttempt, attempt+1), zap.Error(err))
			return fmt.Errorf("clickhouse writer: %d attempts: %w", attempt+1, err)
		}
		todo = failed
		backoff := w.backoff(attempt)
		w.logger.Warn("insert failed; retrying", zap.Int(logKeyRows, g.n), zap.Int(logKeyAttempt, attempt+1),
			zap.Duration(logKeyBackoff, backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("clickhouse writer: insert abandoned: %w", err)
		}
		w.retries.Add(1)
	}
}

// backoff returns the pause before retry attempt+1: RetryBackoff doubled per
// attempt, capped at MaxRetryBackoff, with the upper half jittered so that
// collectors do not retry in step.
func (w *Writer) backoff(attempt int) time.Duration {
	d := w.cfg.MaxRetryBackoff
	if attempt < 30 {
		d = min(w.cfg.RetryBackoff<<attempt, d)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	pending := w.pending
	w.mu.Unlock()
	return WriterStats{
		Inserts:     w.inserts.Load(),
		Rows:        w.rows.Load(),
		Retries:     w.retries.Load(),
		Failures:    w.failures.Load(),
		PendingRows: pending,
	}
}

// Close stops accepting rows (Write then fails with pipeline.ErrClosed),
// inserts everything queued and waits for the inserts to finish. If ctx
// ends first, it aborts the inserts and retries, whose requests then fail,
// waits for the flushers to exit, and returns ctx's error. Close may be
// called more than once.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		close(w.stop)
		// Wake the Writes waiting for room: they fail with ErrClosed.
		close(w.room)
		w.room = make(chan struct{})
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.done
		return fmt.Errorf("clickhouse writer: close: %w", ctx.Err())
	}
}
