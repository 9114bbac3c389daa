package consent

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/peer"
)

// ErrGrantsThrottled: too many grants with a wrong app key came from the
// client's address, or for the app while it is being guessed at; retry
// after the delay the error carries (see GrantThrottledError).
var ErrGrantsThrottled = errors.New("too many failed grants")

// GrantThrottledError is returned by Grant while failed grants are
// throttled; it wraps ErrGrantsThrottled and says when to retry.
type GrantThrottledError struct {
	// After is how long until the next grant from this client may be
	// tried.
	After time.Duration
}

func (e *GrantThrottledError) Error() string {
	return fmt.Sprintf("%v: retry in %v", ErrGrantsThrottled, e.After.Round(time.Second))
}

// Unwrap returns ErrGrantsThrottled.
func (e *GrantThrottledError) Unwrap() error { return ErrGrantsThrottled }

// RetryAfter returns the delay after which a grant may be tried again.
func (e *GrantThrottledError) RetryAfter() time.Duration { return e.After }

// Defaults of GrantLimitConfig.
const (
	// DefaultGrantSourceBurst is how many failed grants one address may
	// make at once.
	DefaultGrantSourceBurst = 20
	// DefaultGrantSourceRefill is how often an address earns one more.
	DefaultGrantSourceRefill = 3 * time.Second
	// DefaultGrantAppBurst is how many failed grants an app may see at
	// once, from all addresses, before it counts as under attack.
	DefaultGrantAppBurst = 200
	// DefaultGrantAppRefill is how often an app earns one more.
	DefaultGrantAppRefill = 300 * time.Millisecond
	// DefaultGrantMaxSources bounds the addresses tracked.
	DefaultGrantMaxSources = 65536
	// DefaultGrantMaxApps bounds the app ids tracked (claimed ones, so
	// unregistered ids count too).
	DefaultGrantMaxApps = 4096
	// DefaultGrantLogWindow is how often at most a burst is logged.
	DefaultGrantLogWindow = time.Minute
)

// GrantLimitConfig configures the throttling of failed grants (a wrong
// app key, or an app id that is not registered: the two look the same).
// Each client address and each app id has a bucket of failures that
// refills at a steady pace. A failed grant takes one from both. An
// address whose bucket is empty is refused every grant, right or wrong,
// without its key being checked, until the bucket refills: so a guesser
// learns nothing while throttled. An app whose bucket is empty is under
// attack: then an address that failed recently is refused grants for it
// as well, so guessing spread over many addresses gets one guess per
// address. Addresses that have not failed are never throttled, so
// devices granting with the right key are unaffected.
//
// The address is the connection's peer: behind a proxy or load balancer
// that terminates connections every client shares the proxy's address and
// its failures throttle them all; forwarded-for headers are not trusted.
// IPv6 addresses are grouped by /64, as one host is handed a whole /64.
type GrantLimitConfig struct {
	// SourceBurst is how many failed grants one address may make at once.
	// Negative disables throttling altogether (failures are still
	// counted). Default DefaultGrantSourceBurst.
	SourceBurst int
	// SourceRefill is how often an address earns back one failed grant.
	// Default DefaultGrantSourceRefill.
	SourceRefill time.Duration
	// AppBurst is how many failed grants one app id may see at once from
	// all addresses. Default DefaultGrantAppBurst.
	AppBurst int
	// AppRefill is how often an app earns back one. Default
	// DefaultGrantAppRefill.
	AppRefill time.Duration
	// MaxSources and MaxApps bound the addresses and app ids tracked; the
	// least recently failed are forgotten first. Defaults
	// DefaultGrantMaxSources and DefaultGrantMaxApps.
	MaxSources, MaxApps int
	// LogWindow is the shortest time between two log lines about a burst.
	// Default DefaultGrantLogWindow.
	LogWindow time.Duration
}

func (c *GrantLimitConfig) withDefaults() error {
	c.SourceBurst = cmp.Or(c.SourceBurst, DefaultGrantSourceBurst)
	c.AppBurst = cmp.Or(c.AppBurst, DefaultGrantAppBurst)
	c.MaxSources = cmp.Or(c.MaxSources, DefaultGrantMaxSources)
	c.MaxApps = cmp.Or(c.MaxApps, DefaultGrantMaxApps)
	c.SourceRefill = cmp.Or(c.SourceRefill, DefaultGrantSourceRefill)
	c.AppRefill = cmp.Or(c.AppRefill, DefaultGrantAppRefill)
	c.LogWindow = cmp.Or(c.LogWindow, DefaultGrantLogWindow)
	if c.AppBurst < 0 || c.MaxSources < 0 || c.MaxApps < 0 || c.SourceRefill < 0 || c.AppRefill < 0 || c.LogWindow < 0 {
		return errors.New("grant limits: negative value")
	}
	return nil
}

// grantLimiter throttles failed grants (see GrantLimitConfig). It is safe
// for concurrent use; its memory is bounded by MaxSources and MaxApps.
type grantLimiter struct {
	cfg GrantLimitConfig
	log *zap.Logger

	failed, throttled atomic.Uint64 // totals, for metrics

	mu      sync.Mutex
	sources *lru[netip.Prefix]
	apps    *lru[string]
	// The current log window: when it started, its counts, and whether
	// its burst was logged.
	windowStart                 time.Time
	windowFailed, windowRefused uint64
	logged                      bool
}

func newGrantLimiter(cfg GrantLimitConfig, log *zap.Logger) (*grantLimiter, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return &grantLimiter{
		cfg: cfg, log: log,
		sources: newLRU[netip.Prefix](cfg.MaxSources),
		apps:    newLRU[string](cfg.MaxApps),
	}, nil
}

// check reports, before the key is checked, whether a grant for app from
// src may go ahead, and if not, when to retry. An unknown source (zero
// prefix: no peer address) is limited by the app alone.
func (l *grantLimiter) check(src netip.Prefix, app string, now time.Time) (retry time.Duration, ok bool) {
	if l.cfg.SourceBurst < 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var s *bucket
	if src.IsValid() {
		s = l.sources.get(src)
	}
	if s != nil {
		s.refill(now, l.cfg.SourceRefill, l.cfg.SourceBurst)
		if s.tokens < 1 {
			return l.refuse(app, now, s.wait(1, l.cfg.SourceRefill))
		}
	}
	if a := l.apps.get(app); a != nil {
		a.refill(now, l.cfg.AppRefill, l.cfg.AppBurst)
		// Under attack: an address that failed recently waits until it
		// is clean again; one that never failed goes ahead.
		if a.tokens < 1 && (s != nil && s.tokens < float64(l.cfg.SourceBurst) || s == nil && !src.IsValid()) {
			// It may go ahead once the app earned a failure back or the
			// address is clean again, whichever comes first.
			wait := a.wait(1, l.cfg.AppRefill)
			if s != nil {
				wait = min(wait, s.wait(float64(l.cfg.SourceBurst), l.cfg.SourceRefill))
			}
			return l.refuse(app, now, wait)
		}
	}
	return 0, true
}

// refuse counts a throttled grant and logs the window's burst once. l.mu
// is held.
func (l *grantLimiter) refuse(app string, now time.Time, wait time.Duration) (time.Duration, bool) {
	l.throttled.Add(1)
	l.roll(now)
	l.windowRefused++
	if !l.logged {
		l.logged = true
		// Counts and the claimed app id only: never keys or addresses.
		l.log.Warn("failed grants throttled: app keys may be being guessed",
			zap.String("app_id", loggableAppID(app)), zap.Uint64("failed_in_window", l.windowFailed),
			zap.Uint64("throttled_in_window", l.windowRefused), zap.Int("sources_tracked", l.sources.len()),
			zap.Duration("window", l.cfg.LogWindow))
	}
	return max(wait, time.Second), false
}

// failed records a grant for app from src that failed authentication.
func (l *grantLimiter) fail(src netip.Prefix, app string, now time.Time) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.windowFailed++
	if l.cfg.SourceBurst < 0 {
		return
	}
	if src.IsValid() {
		l.sources.take(src, now, l.cfg.SourceRefill, l.cfg.SourceBurst)
	}
	l.apps.take(app, now, l.cfg.AppRefill, l.cfg.AppBurst)
}

// roll starts a new log window if the current one has ended. l.mu is
// held.
func (l *grantLimiter) roll(now time.Time) {
	if now.Sub(l.windowStart) >= l.cfg.LogWindow || now.Before(l.windowStart) {
		l.windowStart, l.windowFailed, l.windowRefused, l.logged = now, 0, 0, false
	}
}

// loggableAppID returns id if it is a well-formed app id: a claimed id is
// client input.
func loggableAppID(id string) string {
	if len(id) == 0 || len(id) > 128 {
		return "_invalid"
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return "_invalid"
		}
	}
	return id
}

// bucket is a token bucket of failures allowed.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill adds the tokens earned since the last refill, up to burst.
func (b *bucket) refill(now time.Time, every time.Duration, burst int) {
	if d := now.Sub(b.last); d > 0 && every > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+float64(d)/float64(every))
	}
	b.last = now
}

// wait returns how long until the bucket holds n tokens.
func (b *bucket) wait(n float64, every time.Duration) time.Duration {
	if b.tokens >= n {
		return 0
	}
	return time.Duration(math.Ceil((n - b.tokens) * float64(every)))
}

// lru is a map of buckets bounded by size, forgetting the least recently
// failed first.
type lru[K comparable] struct {
	size  int
	order *list.List // of *entry[K], most recent first
	m     map[K]*list.Element
}

type entry[K comparable] struct {
	key K
	b   bucket
}

func newLRU[K comparable](size int) *lru[K] {
	return &lru[K]{size: size, order: list.New(), m: make(map[K]*list.Element)}
}

func (c *lru[K]) len() int { return len(c.m) }

// get returns k's bucket, nil if k is not tracked.
func (c *lru[K]) get(k K) *bucket {
	if e, ok := c.m[k]; ok {
		return &e.Value.(*entry[K]).b
	}
	return nil
}

// take takes a token from k's bucket, starting it full if k is new.
func (c *lru[K]) take(k K, now time.Time, every time.Duration, burst int) {
	if c.size == 0 {
		return
	}
	e, ok := c.m[k]
	if ok {
		c.order.MoveToFront(e)
	} else {
		if c.order.Len() >= c.size {
			old := c.order.Back()
			delete(c.m, old.Value.(*entry[K]).key)
			c.order.Remove(old)
		}
		e = c.order.PushFront(&entry[K]{key: k, b: bucket{tokens: float64(burst), last: now}})
		c.m[k] = e
	}
	b := &e.Value.(*entry[K]).b
	b.refill(now, every, burst)
	b.tokens = math.Max(b.tokens-1, 0)
}

// sourcePrefix returns the prefix a client address is throttled by: the
// address itself for IPv4, its /64 for IPv6; the zero prefix if unknown.
func sourcePrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	switch {
	case a.Is4():
		return netip.PrefixFrom(a, 32)
	case a.Is6():
		p, _ := a.Prefix(64)
		return p
	default:
		return netip.Prefix{}
	}
}

// sourceKey is the context key of a client's address the HTTP handler
// knows (gRPC's is the peer).
type sourceKey struct{}

// withSource returns ctx carrying the client's address.
func withSource(ctx context.Context, a netip.Addr) context.Context {
	return context.WithValue(ctx, sourceKey{}, a)
}

// sourceOf returns the address of the client of ctx: the one the HTTP
// handler set, else the gRPC peer's.
func sourceOf(ctx context.Context) netip.Addr {
	if a, ok := ctx.Value(sourceKey{}).(netip.Addr); ok {
		return a
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if tcp, ok := p.Addr.(*net.TCPAddr); ok {
			a, _ := netip.AddrFromSlice(tcp.IP)
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
