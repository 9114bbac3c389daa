package consent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// GateConfig configures a Gate.
type GateConfig struct {
	// Revocations is the replica's revocation set (its Run refreshes it);
	// the gate refreshes the erased consents at its Interval and reloads
	// them fully at its ReloadInterval, and is fresh within its Bound.
	// Required.
	Revocations *Revocations
	// Store holds the audit log of erasures. Required.
	Store Store
	// Window is how long after it was received a batch may still be
	// shipped: the gate refuses older ones, as it knows erasures (and
	// revocations of expired tokens, RevocationsConfig.Retain) only that
	// far back. At most, and by default, the revocations' Retain.
	Window time.Duration
	// Now returns the current time; nil means time.Now. It must be the
	// clock the batches' receive times were stamped with.
	Now func() time.Time
	// Logger logs refresh failures, never consent keys; nil means no
	// logging.
	Logger *zap.Logger
}

// Gate is the consent check a spool applies when it ships a batch: the
// one mechanism for revocation and erasure after ingest (it implements
// spool.Gate). It holds the replica's Revocations and the consent keys
// whose rows were erased, refreshed from the Store's erasures log by Run.
//
// Admit refuses a batch whose consent was revoked at or before it was
// received (allowing for the clock skew between replicas), or whose rows
// were erased at any time. Horizon tells the spool up to which receive
// time those answers are final: every revocation that could refuse a
// batch received by then is known. See docs/consent.md for the guarantee
// and its assumptions. A Gate is safe for concurrent use.
type Gate struct {
	cfg    GateConfig
	revs   *Revocations
	log    *zap.Logger
	poller *poller
	// erased is the set of erased consent keys; replaced, never changed
	// in place, so Admit reads it without a lock.
	erased atomic.Pointer[map[string]struct{}]
	// lag is how far the horizon trails the last refresh; skewMs is the
	// clock skew Admit allows for.
	lag    time.Duration
	skewMs int64

	// Guarded by poller.mu: only polls touch them.
	lastStart, lastFull time.Time
}

// NewGate returns a gate over cfg.Revocations and the erasures in
// cfg.Store; Run loads and refreshes the erasures.
func NewGate(cfg GateConfig) (*Gate, error) {
	switch {
	case cfg.Revocations == nil || cfg.Store == nil:
		return nil, errors.New("new consent gate: revocations and store are required")
	case cfg.Window < 0:
		return nil, errors.New("new consent gate: negative window")
	case cfg.Window > cfg.Revocations.cfg.Retain:
		return nil, fmt.Errorf("new consent gate: window %v exceeds the revocations' retention %v",
			cfg.Window, cfg.Revocations.cfg.Retain)
	}
	cfg.Window = cmp.Or(cfg.Window, cfg.Revocations.cfg.Retain)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	rc := cfg.Revocations.cfg
	g := &Gate{
		cfg:  cfg,
		revs: cfg.Revocations,
		log:  cfg.Logger,
		// A revocation is visible in the store at most WriteTimeout after
		// it was stamped, and the time it states is the stamp rounded
		// down to the second: a refresh starting at S (this clock) knows
		// every revocation whose stated time lies, in real time, at or
		// before S - WriteTimeout - 1s. Receive times are on this clock
		// too, so the skew between replicas does not enter here, only in
		// Admit's comparison of the two stamps.
		lag:    rc.WriteTimeout + time.Second,
		skewMs: rc.MaxClockSkew.Milliseconds(),
	}
	empty := map[string]struct{}{}
	g.erased.Store(&empty)
	g.poller = newPoller("erased consents", rc.Interval, cfg.Now, cfg.Logger, g.poll)
	return g, nil
}

// Run loads the erased consents, then refreshes them every Interval of
// the revocations, until ctx is done; then it returns nil. Store failures
// are retried; while they last longer than the bound, Horizon reports
// false. Call it once. The Revocations' own Run must be running too.
func (g *Gate) Run(ctx context.Context) error {
	g.poller.run(ctx)
	return nil
}

// Refresh fetches the erased consents from the store now: all of them
// the first time and every ReloadInterval, else those recorded since the
// previous refresh began, less the revocations' Overlap. Run calls it; it
// is exported for tests and tools.
func (g *Gate) Refresh(ctx context.Context) error { return g.poller.refresh(ctx) }

// WaitLoaded blocks until the erased consents and the revocations have
// been loaded once, or ctx is done.
func (g *Gate) WaitLoaded(ctx context.Context) error {
	if err := g.revs.WaitLoaded(ctx); err != nil {
		return err
	}
	return g.poller.waitLoaded(ctx)
}

// Horizon returns the receive time up to which Admit's answers are final,
// and false while the gate may not ship anything: before the first
// refresh of both sets, and while the last successful refresh of either
// started more than the revocations' Bound ago. It is the start of the
// older of the two last refreshes less WriteTimeout and a second: a
// revocation becomes visible in the store at most WriteTimeout after it
// was stamped, and states its stamp rounded down to the second, so every
// revocation stating a time at or before a batch received by the horizon
// was visible when that refresh began. A spool ships a batch only once
// its receive time is at or before the horizon.
func (g *Gate) Horizon() (time.Time, bool) {
	last, ok := g.revs.LastRefresh()
	if !ok {
		return time.Time{}, false
	}
	erased, ok := g.poller.lastSuccess()
	if !ok {
		return time.Time{}, false
	}
	if erased.Before(last) {
		last = erased
	}
	if g.cfg.Now().Sub(last) > g.revs.cfg.Bound {
		return time.Time{}, false
	}
	return last.Add(-g.lag), true
}

// Admit reports whether rows from origin may still be stored. It is false
// when the rows' consent key was erased, when the consent was revoked at
// or before origin.Received plus MaxClockSkew (revocation times are
// stamped by the revoking replica's clock, in whole seconds), when the
// consent was revoked and origin has no receive time, and when the batch
// was received longer ago than the Window. An origin without a consent
// hash (tools, tests) is checked for erasure and age only. It allocates
// nothing.
func (g *Gate) Admit(origin pipeline.Origin) bool {
	if origin.ConsentKey != "" {
		if _, erased := (*g.erased.Load())[origin.ConsentKey]; erased {
			return false
		}
	}
	if origin.Received.IsZero() {
		if origin.ConsentHash != ([32]byte{}) {
			_, revoked := g.revs.revokedAtMilli(origin.ConsentHash)
			return !revoked
		}
		return true
	}
	received := origin.Received.UnixMilli()
	if origin.ConsentHash != ([32]byte{}) {
		if at, revoked := g.revs.revokedAtMilli(origin.ConsentHash); revoked && at-g.skewMs <= received {
			return false
		}
	}
	return received >= g.cfg.Now().Add(-g.cfg.Window).UnixMilli()
}

// Erased reports whether the rows of consentKey were erased, as far as
// the gate knows.
func (g *Gate) Erased(consentKey string) bool {
	_, ok := (*g.erased.Load())[consentKey]
	return ok
}

// markErased adds consentKey to the erased consents at once: the replica
// that erased it adds it after the store recorded the erasure.
func (g *Gate) markErased(consentKey string) {
	g.addErased(map[string]struct{}{consentKey: {}})
}

// addErased adds keys to the erased consents, copying the set only when
// some key is new (erasures are rare, reads are per record).
func (g *Gate) addErased(keys map[string]struct{}) {
	for {
		old := g.erased.Load()
		fresh := false
		for k := range keys {
			if _, ok := (*old)[k]; !ok {
				fresh = true
				break
			}
		}
		if !fresh {
			return
		}
		m := make(map[string]struct{}, len(*old)+len(keys))
		maps.Copy(m, *old)
		maps.Copy(m, keys)
		if g.erased.CompareAndSwap(old, &m) {
			return
		}
	}
}

// poll is one refresh of the erased consents; the poller serializes
// calls.
func (g *Gate) poll(ctx context.Context, start time.Time) error {
	rc := g.revs.cfg
	full := g.lastFull.IsZero() || start.Sub(g.lastFull) >= rc.ReloadInterval
	since, timeout := start.Add(-g.cfg.Window), rc.LoadTimeout
	if !full {
		// An erasure is stamped when it was complete, by the erasing
		// replica's clock, and written just after: the overlap covers
		// both, and the full reloads are the backstop.
		since, timeout = g.lastStart.Add(-rc.Overlap), rc.Bound
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	keys, err := g.cfg.Store.ErasedConsentKeys(qctx, since)
	cancel()
	if err != nil {
		return fmt.Errorf("load erased consents: %w", err)
	}
	if full {
		// Replacing the set drops the erasures older than the window.
		if keys == nil {
			keys = map[string]struct{}{}
		}
		g.erased.Store(&keys)
		g.lastFull = start
	} else {
		g.addErased(keys)
	}
	g.lastStart = start
	return nil
}
