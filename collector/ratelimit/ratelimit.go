// Package ratelimit is the pipeline stage that limits how many events each
// app may send per second, so that one app's traffic cannot starve the
// others of the collector and its storage.
//
// # Buckets
//
// Each app has a token bucket of Burst events that refills at the app's
// rate (Config.EventsPerSecond, or its entry in Config.Overrides). A batch
// of n events takes n tokens. A batch that does not fit is refused as a
// whole, takes nothing, and the error says how long until it would fit
// (Error.RetryAfter); a batch larger than the bucket could never fit and
// is refused with ErrExceedsBurst. Partial acceptance would leave the
// client unsure which events to resend, so there is none.
//
// A bucket is kept as the time at which it will be full again (the
// generic cell rate algorithm): one integer per app, refilled lazily on
// each batch in constant time, with no goroutine and exact, integer retry
// delays. The limiter forgets the least recently used app when it tracks
// Config.MaxApps; a forgotten app starts again with a full bucket, so
// forgetting can make the limiter more lenient, never stricter.
//
// # Placement
//
// The stage charges a batch to b.AppID, the app its consent token was
// verified for, so it must run after the consent stage:
//
//	limits → consent → ratelimit → validate → anonymize
//
// Before the consent stage only the app id the client claims is known, and
// anyone could then exhaust another app's budget with batches that carry
// no valid token. After it, a batch whose token does not verify has every
// event dropped and costs nothing, and only a holder of a token granted
// with the app's key spends the app's budget. A batch that reaches the
// stage with live events but no verified app id is refused: the stage is
// misplaced.
//
// The stage charges the events still live when it runs: events the
// consent stage dropped (outside the consent's scopes) are never stored
// and cost nothing.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// ErrRateLimited is wrapped by every Error: the batch does not fit in its
// app's bucket now but will after Error.RetryAfter. The edge reports it as
// RESOURCE_EXHAUSTED with a RetryInfo, or HTTP 429 with Retry-After.
var ErrRateLimited = pipeline.Refuse(codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED, pipeline.ReasonRateLimited, 0, "rate limited")

// ErrExceedsBurst is returned for a batch with more events than its app's
// burst: it could never fit, so retrying it unchanged cannot succeed; the
// client should split it.
var ErrExceedsBurst = pipeline.ErrBatchTooLarge.Specialize("batch exceeds the rate limit's burst", pipeline.ReasonBatchTooLarge, 0)

// errNoApp is returned for a batch that reaches the stage with live events
// but no verified app id: the stage runs before the consent stage.
var errNoApp = errors.New("ratelimit: batch has no verified app id; the stage must run after the consent stage")

// Error is returned for a batch that does not fit in its app's bucket now.
// It wraps ErrRateLimited; RetryAfter says when the same batch will fit,
// provided the app sends nothing else meanwhile.
type Error struct {
	// AppID is the app the batch was charged to.
	AppID string
	// Events is how many events the batch asked for.
	Events int
	// Limit is the app's rate, in events per second.
	Limit float64

	delay time.Duration
}

// Error describes the refusal without any payload.
func (e *Error) Error() string {
	return fmt.Sprintf("%v: app %q: %d events exceed its limit of %g events/s; retry after %v",
		ErrRateLimited, e.AppID, e.Events, e.Limit, e.delay)
}

// Unwrap returns ErrRateLimited with the delay after which the batch
// fits.
func (e *Error) Unwrap() error { return ErrRateLimited.After(e.delay) }

// RetryAfter returns how long until the batch fits in its app's bucket:
// always positive. HTTP's Retry-After, in whole seconds, should round it
// up.
func (e *Error) RetryAfter() time.Duration { return e.delay }

// limit is the shape of an app's bucket.
type limit struct {
	rate       float64 // events per second
	nsPerEvent float64 // the time one token takes to refill
	burst      int     // the bucket's size, in events
	tau        int64   // the time an empty bucket takes to fill, in ns
}

func newLimit(rate float64, burst int) *limit {
	ns := 1e9 / rate
	return &limit{rate: rate, nsPerEvent: ns, burst: burst, tau: int64(math.Round(float64(burst) * ns))}
}

// cost returns the time n tokens take to refill, in ns. It is monotonic in
// n, so a batch of at most burst events costs at most tau.
func (l *limit) cost(n int) int64 { return int64(math.Round(float64(n) * l.nsPerEvent)) }

// bucket is one tracked app, a node of the limiter's LRU list.
type bucket struct {
	app string
	// full is when the bucket is full again, in ns since Limiter.epoch:
	// at time t it holds (t + tau - full) / nsPerEvent tokens, at most
	// burst.
	full       int64
	prev, next *bucket
}

// Limiter limits the events each app may send per second. It is a
// pipeline.Stage and is safe for concurrent use.
type Limiter struct {
	cfg       Config
	epoch     time.Time
	def       *limit            // nil: unlimited
	overrides map[string]*limit // read-only after New; a nil value: unlimited

	mu   sync.Mutex
	apps map[string]*bucket
	lru  bucket // sentinel: lru.next is the most, lru.prev the least recently used
}

// New returns a limiter for cfg.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Limiter{
		cfg:       cfg,
		epoch:     cfg.Now(),
		overrides: make(map[string]*limit, len(cfg.Overrides)),
		apps:      make(map[string]*bucket),
	}
	shape := func(rate float64) *limit {
		if rate == 0 {
			return nil
		}
		return newLimit(rate, cfg.burst(rate))
	}
	l.def = shape(cfg.EventsPerSecond)
	for app, rate := range cfg.Overrides {
		l.overrides[app] = shape(rate)
	}
	l.cfg.Overrides = maps.Clone(cfg.Overrides)
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l, nil
}

// Config returns the effective configuration.
func (l *Limiter) Config() Config {
	c := l.cfg
	c.Overrides = maps.Clone(c.Overrides)
	return c
}

// Process charges b's live events to b.AppID, the app its consent was
// verified for. It refuses b with an *Error (wrapping ErrRateLimited) when
// they do not fit in the app's bucket now, and with an error wrapping
// ErrExceedsBurst when they never could. A batch without live events costs
// nothing.
func (l *Limiter) Process(_ context.Context, b *pipeline.Batch) error {
	n := b.Live()
	if n == 0 {
		return nil
	}
	if b.AppID == "" {
		return errNoApp
	}
	return l.Allow(b.AppID, n)
}

// Allow takes n tokens from app's bucket and returns nil, or takes nothing
// and returns an *Error, wrapping ErrRateLimited, when they are not all
// available, or an error wrapping ErrExceedsBurst when n exceeds the
// app's burst. n <= 0 and unlimited apps are always allowed.
func (l *Limiter) Allow(app string, n int) error {
	if n <= 0 {
		return nil
	}
	lim := l.limitOf(app)
	if lim == nil {
		return nil
	}
	if n > lim.burst {
		return fmt.Errorf("%w: app %q: %d events, at most %d at once", ErrExceedsBurst, app, n, lim.burst)
	}
	cost := lim.cost(n)

	l.mu.Lock()
	now := int64(l.cfg.Now().Sub(l.epoch))
	b := l.bucket(app, now)
	full := max(b.full, now) + cost
	if wait := full - lim.tau - now; wait > 0 {
		l.mu.Unlock()
		return &Error{AppID: app, Events: n, Limit: lim.rate, delay: time.Duration(wait)}
	}
	b.full = full
	l.mu.Unlock()
	return nil
}

// Apps returns how many apps the limiter tracks, at most Config.MaxApps.
func (l *Limiter) Apps() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.apps)
}

// limitOf returns app's limit, or nil if app is unlimited.
func (l *Limiter) limitOf(app string) *limit {
	if lim, ok := l.overrides[app]; ok {
		return lim
	}
	return l.def
}

// bucket returns app's bucket, marked most recently used, tracking it with
// a full bucket if it is new and forgetting the least recently used app if
// that exceeds MaxApps. l.mu must be held.
func (l *Limiter) bucket(app string, now int64) *bucket {
	if b, ok := l.apps[app]; ok {
		if l.lru.next != b {
			b.unlink()
			l.pushFront(b)
		}
		return b
	}
	var b *bucket
	if len(l.apps) >= l.cfg.MaxApps {
		b = l.lru.prev // reuse the least recently used app's bucket
		b.unlink()
		delete(l.apps, b.app)
	} else {
		b = new(bucket)
	}
	*b = bucket{app: app, full: now}
	l.apps[app] = b
	l.pushFront(b)
	return b
}

func (l *Limiter) pushFront(b *bucket) {
	b.prev, b.next = &l.lru, l.lru.next
	l.lru.next.prev = b
	l.lru.next = b
}

func (b *bucket) unlink() {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}
