package consent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/internal/every"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// ErrRevocationsStale means the replica's revocation set has not been
// refreshed within its bound, so it cannot tell whether a consent was
// revoked. A Filter without a ship-time Gate refuses the batch with it
// (the collector maps it to UNAVAILABLE with a retry delay) rather than
// store events that might be revoked.
var ErrRevocationsStale = pipeline.Refuse(codes.Unavailable, consentryv1.ErrorReason_REVOCATIONS_STALE, pipeline.ReasonStorageUnavailable, time.Second,
	"revocations not refreshed within their bound")

// Defaults of RevocationsConfig.
const (
	// DefaultRevocationInterval is the default refresh interval.
	DefaultRevocationInterval = 2 * time.Second
	// DefaultRevocationBound is the default propagation bound.
	DefaultRevocationBound = 5 * time.Second
	// DefaultRevocationOverlap is the default overlap of incremental
	// refreshes.
	DefaultRevocationOverlap = 30 * time.Second
	// DefaultRevocationReload is the default interval of full reloads.
	DefaultRevocationReload = 10 * time.Minute
	// DefaultRevocationPrune is the default interval of pruning memory.
	DefaultRevocationPrune = time.Minute
	// DefaultRevocationStorePrune is the default interval of pruning the
	// store.
	DefaultRevocationStorePrune = 6 * time.Hour
	// DefaultRevocationsLoadTimeout is the default bound of a full load.
	DefaultRevocationsLoadTimeout = time.Minute
	// DefaultWriteTimeout is the default bound of recording a revocation.
	// A one-row insert takes milliseconds; the ship-time horizon trails
	// the last refresh by this (see Gate.Horizon), so it is kept short.
	DefaultWriteTimeout = 3 * time.Second
	// DefaultMaxClockSkew is the default clock skew assumed between
	// replicas: NTP keeps servers well within it.
	DefaultMaxClockSkew = time.Second
	// DefaultRetain is how long after its token expired a revocation is
	// kept by default, in memory and in the store: longer than a batch is
	// expected to wait in a spool (see GateConfig.Window).
	DefaultRetain = 30 * 24 * time.Hour
)

// RevocationsConfig configures Revocations.
type RevocationsConfig struct {
	// Store holds the revocations durably. Required.
	Store Store
	// Interval is how often revocations recorded since the last refresh
	// are fetched. Default 2s.
	Interval time.Duration
	// Bound is the propagation bound: Fresh is true only while the last
	// successful refresh started at most Bound ago, so every revocation
	// recorded in the store more than Bound ago is known while Fresh. It
	// must exceed Interval; Bound-Interval is the time a refresh may take
	// or fail before the replica fails closed. Default 5s.
	Bound time.Duration
	// Overlap is how far before the previous refresh's start an
	// incremental refresh asks from. A revocation is stamped with the
	// revoking replica's clock before it is written, so it may become
	// visible with a time earlier than this replica's last refresh; the
	// overlap must cover WriteTimeout plus MaxClockSkew plus a second, as
	// stored times are whole seconds (NewRevocations checks it). Default
	// 30s.
	Overlap time.Duration
	// WriteTimeout bounds recording a revocation in the store: Revoke
	// stamps the revocation just before writing it and gives up after
	// WriteTimeout (answering UNAVAILABLE), so a revocation becomes
	// visible in the store at most WriteTimeout after its stamp, or never.
	// Every replica must use the same value. Default 3s.
	WriteTimeout time.Duration
	// MaxClockSkew is the largest difference assumed between the clocks
	// of any two replicas. Revocation times and receive times are stamped
	// by different replicas' clocks; the ship-time Gate allows for the
	// skew on the side of privacy. Default 1s.
	MaxClockSkew time.Duration
	// Retain is how long after its token expired a revocation is still
	// kept, in memory and in the store. A batch accepted before the token
	// expired may wait in a spool that long and still be judged against
	// it at ship time (GateConfig.Window). Default 30 days.
	Retain time.Duration
	// ReloadInterval is how often the whole set is reloaded instead of the
	// recent part, a backstop for anything an incremental refresh could
	// miss (a clock off by more than Overlap). Default 10m.
	ReloadInterval time.Duration
	// PruneInterval is how often revocations whose tokens expired more
	// than Retain ago are dropped from memory. Default 1m.
	PruneInterval time.Duration
	// StorePruneInterval is how often this replica also deletes them from
	// the store; the first time is at a random point of the first
	// interval, so replicas spread out. Negative disables. Default 6h.
	StorePruneInterval time.Duration
	// LoadTimeout bounds a full load and a store prune. An incremental
	// refresh is bounded by Bound, as a slower one is stale anyway.
	// Default 1m.
	LoadTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger logs refresh failures (never consent ids or hashes); nil
	// means no logging.
	Logger *zap.Logger
}

// Revocations is a replica's in-memory set of revoked consents, refreshed
// from the Store by Run. It holds SHA-256 hashes of consent ids, never the
// ids. Revocations are kept until their token has expired plus Retain:
// the token is refused at ingest then, and no spooled batch of it is
// still shipped (see Gate). It is safe for concurrent use.
type Revocations struct {
	cfg    RevocationsConfig
	log    *zap.Logger
	poller *poller
	shards [revocationShards]revocationShard

	// Guarded by poller.mu: only polls touch them.
	lastStart, lastFull, lastPrune time.Time
}

const revocationShards = 16

type revocationShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]revocationEntry
}

// revocationEntry holds times as Unix milliseconds: compact, and wide
// enough for any expiry a foreign token may state.
type revocationEntry struct {
	revokedAt, expiresAt int64
}

// NewRevocations returns an empty set for cfg; Run fills it.
func NewRevocations(cfg RevocationsConfig) (*Revocations, error) {
	if cfg.Store == nil {
		return nil, errors.New("new revocations: no store")
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultRevocationInterval)
	cfg.Bound = cmp.Or(cfg.Bound, DefaultRevocationBound)
	cfg.Overlap = cmp.Or(cfg.Overlap, DefaultRevocationOverlap)
	cfg.ReloadInterval = cmp.Or(cfg.ReloadInterval, DefaultRevocationReload)
	cfg.PruneInterval = cmp.Or(cfg.PruneInterval, DefaultRevocationPrune)
	cfg.StorePruneInterval = cmp.Or(cfg.StorePruneInterval, DefaultRevocationStorePrune)
	cfg.LoadTimeout = cmp.Or(cfg.LoadTimeout, DefaultRevocationsLoadTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.MaxClockSkew = cmp.Or(cfg.MaxClockSkew, DefaultMaxClockSkew)
	cfg.Retain = cmp.Or(cfg.Retain, DefaultRetain)
	switch {
	case cfg.Interval < 0 || cfg.Bound < 0 || cfg.Overlap < 0 || cfg.ReloadInterval < 0 ||
		cfg.PruneInterval < 0 || cfg.LoadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.MaxClockSkew < 0 || cfg.Retain < 0:
		return nil, errors.New("new revocations: negative duration")
	case cfg.Interval >= cfg.Bound:
		return nil, fmt.Errorf("new revocations: interval %v must be shorter than the bound %v", cfg.Interval, cfg.Bound)
	case cfg.Overlap < cfg.WriteTimeout+cfg.MaxClockSkew+time.Second:
		// Stored revocation times are whole seconds: one more second.
		return nil, fmt.Errorf("new revocations: overlap %v must cover the write timeout %v plus the clock skew %v plus a second",
			cfg.Overlap, cfg.WriteTimeout, cfg.MaxClockSkew)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	r := &Revocations{cfg: cfg, log: cfg.Logger}
	for i := range r.shards {
		r.shards[i].m = make(map[[sha256.Size]byte]revocationEntry)
	}
	r.poller = newPoller("revocations", cfg.Interval, cfg.Now, cfg.Logger, r.poll)
	return r, nil
}

// Run loads every revocation, then refreshes every Interval, and prunes
// the store every StorePruneInterval, until ctx is done; then it returns
// nil once its goroutines have ended. Store failures are retried, and
// Fresh turns false when they last longer than the bound. Call it once.
func (r *Revocations) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if r.cfg.StorePruneInterval > 0 {
		wg.Go(func() { r.pruneStoreLoop(ctx) })
	}
	r.poller.run(ctx)
	wg.Wait()
	return nil
}

// Refresh fetches revocations from the store now: all of them the first
// time and every ReloadInterval, else those recorded since the previous
// refresh began, less Overlap. Run calls it; it is exported for tests and
// tools.
func (r *Revocations) Refresh(ctx context.Context) error {
	return r.poller.refresh(ctx)
}

// WaitLoaded blocks until the first full load has succeeded or ctx is
// done. A collector waits for it before serving ingest.
func (r *Revocations) WaitLoaded(ctx context.Context) error {
	return r.poller.waitLoaded(ctx)
}

// Fresh reports whether the last successful refresh started at most Bound
// before now: only then is every revocation older than Bound known.
func (r *Revocations) Fresh(now time.Time) bool {
	last, ok := r.poller.lastSuccess()
	return ok && now.Sub(last) <= r.cfg.Bound
}

// LastRefresh returns when the last successful refresh started, and false
// before the first one.
func (r *Revocations) LastRefresh() (time.Time, bool) { return r.poller.lastSuccess() }

// Bound returns the propagation bound.
func (r *Revocations) Bound() time.Duration { return r.cfg.Bound }

// WriteTimeout returns the bound of recording a revocation.
func (r *Revocations) WriteTimeout() time.Duration { return r.cfg.WriteTimeout }

// Revoked reports whether the consent with id consentID was revoked, and
// when (the earliest revocation recorded).
func (r *Revocations) Revoked(consentID string) (revokedAt time.Time, ok bool) {
	return r.RevokedHash(sha256.Sum256([]byte(consentID)))
}

// RevokedHash is Revoked for the consent whose id has the SHA-256 hash
// (the key revocations are stored by, and pipeline.Origin.ConsentHash).
func (r *Revocations) RevokedHash(hash [sha256.Size]byte) (revokedAt time.Time, ok bool) {
	ms, ok := r.revokedAtMilli(hash)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// revokedAtMilli returns when the consent with hash was revoked, in Unix
// milliseconds. It allocates nothing: the Gate calls it for every record
// it ships.
func (r *Revocations) revokedAtMilli(hash [sha256.Size]byte) (int64, bool) {
	s := &r.shards[hash[0]%revocationShards]
	s.mu.RLock()
	e, ok := s.m[hash]
	s.mu.RUnlock()
	return e.revokedAt, ok
}

// Add records a revocation in memory with immediate effect: the replica
// that served a Revoke adds it after the store has it. It fails only for
// a ConsentHash that is not a hex SHA-256.
func (r *Revocations) Add(rv Revocation) error {
	key, ok := decodeConsentHash(rv.ConsentHash)
	if !ok {
		return fmt.Errorf("add revocation: %w: consent hash is not a hex SHA-256", ErrMalformed)
	}
	r.put(key, rv)
	return nil
}

// Len returns the number of revocations held.
func (r *Revocations) Len() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

func (r *Revocations) put(key [sha256.Size]byte, rv Revocation) {
	e := revocationEntry{revokedAt: rv.RevokedAt.UnixMilli(), expiresAt: rv.ExpiresAt.UnixMilli()}
	s := &r.shards[key[0]%revocationShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[key]; ok {
		e.revokedAt = min(e.revokedAt, old.revokedAt)
		e.expiresAt = max(e.expiresAt, old.expiresAt)
	}
	s.m[key] = e
}

func decodeConsentHash(h string) ([sha256.Size]byte, bool) {
	var key [sha256.Size]byte
	if len(h) != hex.EncodedLen(sha256.Size) {
		return key, false
	}
	if _, err := hex.Decode(key[:], []byte(h)); err != nil {
		return key, false
	}
	return key, true
}

// poll is one refresh; the poller serializes calls.
func (r *Revocations) poll(ctx context.Context, start time.Time) error {
	full := r.lastFull.IsZero() || start.Sub(r.lastFull) >= r.cfg.ReloadInterval
	var since time.Time
	timeout := r.cfg.LoadTimeout
	if !full {
		since = r.lastStart.Add(-r.cfg.Overlap)
		timeout = r.cfg.Bound
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	// Revocations of tokens expired within Retain still refuse spooled
	// batches at ship time, so they are loaded too.
	revs, err := r.cfg.Store.Revocations(qctx, since, start.Add(-r.cfg.Retain))
	cancel()
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	bad := 0
	for _, rv := range revs {
		key, ok := decodeConsentHash(rv.ConsentHash)
		if !ok {
			bad++
			continue
		}
		r.put(key, rv)
	}
	if bad > 0 {
		r.log.Warn("skipped malformed revocations from the store", zap.Int("count", bad))
	}
	r.lastStart = start
	if full {
		r.lastFull = start
	}
	if start.Sub(r.lastPrune) >= r.cfg.PruneInterval {
		r.lastPrune = start
		if n := r.prune(start.Add(-r.cfg.Retain)); n > 0 {
			r.log.Debug("pruned expired revocations", zap.Int("count", n))
		}
	}
	return nil
}

// prune drops revocations whose tokens expired before t and returns how
// many it dropped.
func (r *Revocations) prune(t time.Time) int {
	cut := t.UnixMilli()
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.expiresAt < cut {
				delete(s.m, k)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// pruneStoreLoop deletes expired revocations from the store every
// StorePruneInterval, first at a random point of the first interval so
// replicas spread out. It runs beside the refresh loop, so a slow delete
// never delays a refresh. Failures are logged and retried next time.
func (r *Revocations) pruneStoreLoop(ctx context.Context) {
	first := time.NewTimer(rand.N(r.cfg.StorePruneInterval))
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	every.Tick(ctx, r.cfg.StorePruneInterval, true, r.pruneStore)
}

// pruneStore deletes the revocations that expired more than Retain ago
// from the store.
func (r *Revocations) pruneStore(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	defer cancel()
	if err := r.cfg.Store.PruneRevocations(pctx, r.cfg.Now().Add(-r.cfg.Retain)); err != nil && ctx.Err() == nil {
		r.log.Warn("pruning revocations in the store failed", zap.Error(err))
	}
}
