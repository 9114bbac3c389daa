package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
	"github.com/consentry/consentry/pipeline"
)

// OtherApp is the app_id under which Rejects counts the events of apps
// beyond RejectsConfig.MaxKeys, so that a flood of made-up app ids cannot
// grow its memory.
const OtherApp = "_other"

var _ pipeline.RejectCounter = (*Rejects)(nil)

// Rejects is the pipeline.RejectCounter that stores counts of events that
// were not stored in the rejects table. Counting is a map update under a
// mutex; the counts are stored every FlushInterval and on Close. A failed
// flush keeps its counts for the next one, within MaxKeys; with a
// SpillFile, the counts Close cannot store are kept there for the next
// run.
type Rejects struct {
	cfg    RejectsConfig
	insert func(context.Context, []rejectRow) error
	logger *zap.Logger

	// ctx is the parent of the periodic flushes; cancelled when Close
	// gives up waiting for one.
	ctx    context.Context
	cancel context.CancelFunc
	stop   context.CancelFunc // ends the flush loop; Close calls it
	done   chan struct{}      // closed when the flush loop has exited

	mu     sync.Mutex
	counts map[rejectKey]uint64
	lost   uint64 // events that found no counter; logged on flush
	closed bool
	// spilled: counts loaded from SpillFile are not stored yet, so the
	// file stays until a flush succeeds.
	spilled bool
}

// rejectKey is one counter: events of app rejected for reason in a minute.
type rejectKey struct {
	minute int64 // Unix minutes
	app    string
	reason pipeline.Reason
}

// NewRejects returns a Rejects that stores counts through c and starts its
// flush loop. Close it to store the last counts. logger may be nil.
func NewRejects(cfg RejectsConfig, c *Client, logger *zap.Logger) (*Rejects, error) {
	return newRejects(cfg, func(ctx context.Context, rows []rejectRow) error {
		return insertRows(ctx, c.conn, c.schema.rejects, rows)
	}, logger)
}

func newRejects(cfg RejectsConfig, insert func(context.Context, []rejectRow) error, logger *zap.Logger) (*Rejects, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Rejects{
		cfg:    cfg.withDefaults(),
		insert: insert,
		logger: logger,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		counts: make(map[rejectKey]uint64),
	}
	if err := r.loadSpill(); err != nil {
		cancel()
		return nil, err
	}
	loop, stop := context.WithCancel(context.Background())
	r.stop = stop
	go r.run(loop)
	return r, nil
}

// spillRow is one counter in SpillFile.
type spillRow struct {
	Minute int64  `json:"minute"` // Unix minutes
	App    string `json:"app"`
	Reason string `json:"reason"`
	Events uint64 `json:"events"`
}

// loadSpill counts the contents of SpillFile, if there is one.
func (r *Rejects) loadSpill() error {
	if r.cfg.SpillFile == "" {
		return nil
	}
	b, err := os.ReadFile(r.cfg.SpillFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rejects: load spilled counts: %w", err)
	}
	var rows []spillRow
	if err := json.Unmarshal(b, &rows); err != nil {
		return fmt.Errorf("rejects: load spilled counts from %s: %w", r.cfg.SpillFile, err)
	}
	var events uint64
	for _, row := range rows {
		r.add(rejectKey{minute: row.Minute, app: row.App, reason: pipeline.Reason(row.Reason)}, row.Events)
		events += row.Events
	}
	r.spilled = true
	r.logger.Info("loaded reject counts a previous run could not store", zap.Int(logKeyKeys, len(rows)), zap.Uint64(logKeyEvents, events))
	return nil
}

// spill writes the counts not yet stored to SpillFile, replacing it
// atomically, and forgets them.
func (r *Rejects) spill() error {
	r.mu.Lock()
	counts := r.counts
	r.counts = make(map[rejectKey]uint64)
	r.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	rows := make([]spillRow, 0, len(counts))
	var events uint64
	for k, n := range counts {
		rows = append(rows, spillRow{Minute: k.minute, App: k.app, Reason: string(k.reason), Events: n})
		events += n
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	tmp := r.cfg.SpillFile + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	if err := os.Rename(tmp, r.cfg.SpillFile); err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	r.logger.Warn("storage unavailable: kept reject counts for the next run", zap.String("file", r.cfg.SpillFile),
		zap.Int(logKeyKeys, len(rows)), zap.Uint64(logKeyEvents, events))
	return nil
}

// CountRejects adds n events of app rejected for reason in the current
// minute. It never blocks on storage.
func (r *Rejects) CountRejects(app string, reason pipeline.Reason, n int) {
	if n <= 0 {
		return
	}
	k := rejectKey{minute: time.Now().Unix() / 60, app: app, reason: reason}
	r.mu.Lock()
	if r.closed {
		r.lost += uint64(n)
	} else {
		r.add(k, uint64(n))
	}
	r.mu.Unlock()
}

// add adds n to counter k, or to its OtherApp counter once MaxKeys counters
// exist. Beyond twice MaxKeys it counts n as lost. Called with mu held.
func (r *Rejects) add(k rejectKey, n uint64) {
	if _, ok := r.counts[k]; !ok && len(r.counts) >= r.cfg.MaxKeys {
		k.app = OtherApp
		if _, ok := r.counts[k]; !ok && len(r.counts) >= 2*r.cfg.MaxKeys {
			r.lost += n
			return
		}
	}
	r.counts[k] += n
}

// run flushes every FlushInterval until Close.
func (r *Rejects) run(loop context.Context) {
	defer close(r.done)
	every.Tick(loop, r.cfg.FlushInterval, false, func(context.Context) {
		// A flush Close waits for runs under r.ctx, not the loop's.
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.FlushInterval)
		defer cancel()
		if err := r.Flush(ctx); err != nil {
			r.logger.Warn("storing reject counts failed; kept for the next flush", zap.Error(err))
		}
	})
}

// Flush stores the counts now. On error the counts are kept for the next
// flush.
func (r *Rejects) Flush(ctx context.Context) error {
	r.mu.Lock()
	counts, lost := r.counts, r.lost
	r.counts, r.lost = make(map[rejectKey]uint64, len(counts)), 0
	r.mu.Unlock()
	if lost > 0 {
		r.logger.Warn("reject counts dropped: too many distinct apps while storage was failing", zap.Uint64(logKeyEvents, lost))
	}
	if len(counts) == 0 {
		return nil
	}
	rows := make([]rejectRow, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, rejectRow{minute: time.Unix(k.minute*60, 0).UTC(), app: k.app, reason: string(k.reason), events: n})
	}
	if err := r.insert(ctx, rows); err != nil {
		r.mu.Lock()
		for k, n := range counts {
			r.add(k, n)
		}
		r.mu.Unlock()
		return fmt.Errorf("flush reject counts: %w", err)
	}
	r.logger.Debug("stored reject counts", zap.Int(logKeyKeys, len(rows)))
	r.mu.Lock()
	spilled := r.spilled
	r.spilled = false
	r.mu.Unlock()
	if spilled {
		// The spilled counts were in this flush.
		if err := os.Remove(r.cfg.SpillFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("flush reject counts: remove %s: %w", r.cfg.SpillFile, err)
		}
	}
	return nil
}

// Close stops the flush loop and stores the remaining counts. Counts added
// after Close are dropped. If they cannot be stored before ctx ends, they
// are written to SpillFile if set (and Close returns nil once they are);
// else they are lost and Close returns an error.
func (r *Rejects) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stop()
	var errs []error
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancel()
		<-r.done
		errs = append(errs, ctx.Err())
	}
	r.cancel()
	if err := r.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 && r.cfg.SpillFile != "" {
		serr := r.spill()
		if serr == nil {
			return nil
		}
		errs = append(errs, serr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close rejects: %w", err)
	}
	return nil
}
