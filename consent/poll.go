package consent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
)

// poller is the refresh loop Revocations and Registry share: it runs poll
// at once and then every interval, remembers when the last successful
// poll started, signals the first success, and logs failures when they
// start and end rather than on every attempt.
type poller struct {
	name     string
	interval time.Duration
	now      func() time.Time
	log      *zap.Logger
	poll     func(ctx context.Context, start time.Time) error

	mu       sync.Mutex // serializes polls
	failures int        // consecutive failures; guarded by mu

	lastOK     atomic.Pointer[time.Time] // start of the last successful poll
	loaded     chan struct{}             // closed after the first success
	loadedOnce sync.Once
}

func newPoller(name string, interval time.Duration, now func() time.Time, log *zap.Logger,
	poll func(ctx context.Context, start time.Time) error) *poller {
	return &poller{name: name, interval: interval, now: now, log: log, poll: poll, loaded: make(chan struct{})}
}

// refresh runs one poll now. The start time is taken before the store is
// asked, so a successful poll reflects the store at least as of start.
func (p *poller) refresh(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	if err := p.poll(ctx, start); err != nil {
		if ctx.Err() != nil {
			return err // the caller gave up (shutdown): not a store failure.
		}
		p.failures++
		if p.failures == 1 {
			// Store errors here come from queries holding only times, so
			// they are safe to log.
			p.log.Warn("refresh failed; retrying", zap.String("what", p.name), zap.Error(err))
		}
		return err
	}
	if p.failures > 0 {
		p.log.Info("refresh recovered", zap.String("what", p.name), zap.Int("failed_attempts", p.failures))
		p.failures = 0
	}
	p.lastOK.Store(&start)
	p.loadedOnce.Do(func() { close(p.loaded) })
	return nil
}

// run polls at once and then every interval until ctx is done.
func (p *poller) run(ctx context.Context) {
	every.Tick(ctx, p.interval, true, func(ctx context.Context) {
		_ = p.refresh(ctx) // logged by refresh; the next tick retries.
	})
}

// lastSuccess returns when the last successful poll started.
func (p *poller) lastSuccess() (time.Time, bool) {
	t := p.lastOK.Load()
	if t == nil {
		return time.Time{}, false
	}
	return *t, true
}

// waitLoaded blocks until the first successful poll or until ctx is done.
func (p *poller) waitLoaded(ctx context.Context) error {
	select {
	case <-p.loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isLoaded reports whether a poll has succeeded.
func (p *poller) isLoaded() bool {
	select {
	case <-p.loaded:
		return true
	default:
		return false
	}
}
