package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
)

// counter is what Rejects and PrivacyCounts share: counts by key K in a
// map under a mutex, bounded by maxKeys (then keys are counted under their
// overflow key, up to twice maxKeys; beyond that the counts are lost),
// stored as rows R every interval and on close. A failed flush puts its
// counts back for the next one, within the same bounds.
type counter[K comparable, R any] struct {
	cfg counterConfig[K, R]

	// ctx is the parent of the periodic flushes; cancelled when close
	// gives up waiting for one.
	ctx    context.Context
	cancel context.CancelFunc
	stop   context.CancelFunc // ends the flush loop; close calls it
	done   chan struct{}      // closed when the flush loop has exited

	mu     sync.Mutex
	counts map[K]uint64
	lost   uint64 // events that found no counter; logged on flush if reportLost
	closed bool
}

// counterConfig is what a counter counts and how it stores it.
type counterConfig[K comparable, R any] struct {
	// name says what is counted in logs and errors, e.g. "reject counts".
	name     string
	maxKeys  int
	interval time.Duration
	// overflow returns the key k is counted under once maxKeys counters
	// exist: k with its app replaced by OtherApp.
	overflow func(k K) K
	// row turns one counter into the row insert stores.
	row    func(k K, n uint64) R
	insert func(context.Context, []R) error
	// stored, if set, runs after each flush that stored keys > 0
	// counters; its error is flush's.
	stored func(keys int) error
	// reportLost logs, on flush, the events that found no counter.
	reportLost bool
	logger     *zap.Logger
}

// newCounter returns an empty counter; start starts its flush loop.
// cfg.maxKeys must be positive.
func newCounter[K comparable, R any](cfg counterConfig[K, R]) *counter[K, R] {
	return &counter[K, R]{
		cfg:    cfg,
		done:   make(chan struct{}),
		counts: make(map[K]uint64),
	}
}

// start starts the flush loop; close stops it. Call it once.
func (c *counter[K, R]) start() {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	loop, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.run(loop)
}

// count adds n to counter k; after close it counts n as lost.
func (c *counter[K, R]) count(k K, n uint64) {
	c.mu.Lock()
	if c.closed {
		c.lost += n
	} else {
		c.add(k, n)
	}
	c.mu.Unlock()
}

// add adds n to counter k, or to its overflow counter once maxKeys
// counters exist. Beyond twice maxKeys it counts n as lost. Called with mu
// held.
func (c *counter[K, R]) add(k K, n uint64) {
	if _, ok := c.counts[k]; !ok && len(c.counts) >= c.cfg.maxKeys {
		k = c.cfg.overflow(k)
		if _, ok := c.counts[k]; !ok && len(c.counts) >= 2*c.cfg.maxKeys {
			c.lost += n
			return
		}
	}
	c.counts[k] += n
}

// snapshot takes the counts not stored yet out of the counter.
func (c *counter[K, R]) snapshot() map[K]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := c.counts
	c.counts = make(map[K]uint64, len(counts))
	return counts
}

// restore adds counts to the counter, within its bounds.
func (c *counter[K, R]) restore(counts map[K]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range counts {
		c.add(k, n)
	}
}

// run flushes every interval until close.
func (c *counter[K, R]) run(loop context.Context) {
	defer close(c.done)
	every.Tick(loop, c.cfg.interval, false, func(context.Context) {
		// A flush close waits for runs under c.ctx, not the loop's.
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.interval)
		defer cancel()
		if err := c.flush(ctx); err != nil {
			c.cfg.logger.Warn("storing "+c.cfg.name+" failed; kept for the next flush", zap.Error(err))
		}
	})
}

// flush stores the counts now. On error the counts are kept for the next
// flush.
func (c *counter[K, R]) flush(ctx context.Context) error {
	c.mu.Lock()
	lost := c.lost
	c.lost = 0
	c.mu.Unlock()
	if lost > 0 && c.cfg.reportLost {
		c.cfg.logger.Warn(c.cfg.name+" dropped: too many distinct apps while storage was failing", zap.Uint64(logKeyEvents, lost))
	}
	counts := c.snapshot()
	if len(counts) == 0 {
		return nil
	}
	rows := make([]R, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, c.cfg.row(k, n))
	}
	if err := c.cfg.insert(ctx, rows); err != nil {
		c.restore(counts)
		return fmt.Errorf("flush %s: %w", c.cfg.name, err)
	}
	if c.cfg.stored != nil {
		if err := c.cfg.stored(len(rows)); err != nil {
			return fmt.Errorf("flush %s: %w", c.cfg.name, err)
		}
	}
	return nil
}

// close stops the flush loop and stores the remaining counts; counts
// added later are lost. It waits for a flush in progress until ctx ends,
// then cancels it. Closing again returns nil.
func (c *counter[K, R]) close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stop()
	select {
	case <-c.done:
	default:
		// A flush is in progress: wait for it while ctx allows, then
		// cancel it (it puts its counts back for the flush below).
		select {
		case <-c.done:
		case <-ctx.Done():
			c.cancel()
			<-c.done
		}
	}
	c.cancel()
	// Only counts that cannot be stored are an error: with nothing left
	// to store, an ended ctx loses nothing.
	return c.flush(ctx)
}
