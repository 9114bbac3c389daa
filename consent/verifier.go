package consent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheSize is VerifierConfig.CacheSize's default.
const DefaultCacheSize = 65536

// MaxTokenSize is the longest token a Verifier accepts, in bytes. Consent
// tokens are a few hundred bytes; the bound keeps hashing and parsing of
// junk cheap.
const MaxTokenSize = 8 << 10

// verifierShards is the number of cache shards (a power of two), so
// concurrent batches rarely contend for a lock.
const verifierShards = 16

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys verifies tokens on a cache miss. Required.
	Keys *KeyRing
	// CacheSize bounds the number of verified tokens remembered. Default
	// DefaultCacheSize; an entry takes a few hundred bytes.
	CacheSize int
}

// Verifier verifies consent tokens like KeyRing.Verify, remembering the
// claims of tokens that verified so the Ed25519 signature check (tens of
// microseconds) runs once per token instead of once per batch. A device
// sends the same token with every batch until it expires, so the hit rate
// is high.
//
// Cache policy:
//
//   - Entries are keyed by the SHA-256 of the token: the cache holds no
//     token, and a different string never hits another token's entry.
//   - Only tokens that verified are cached. A failure is never cached: a
//     forged or malformed token costs a full check every time and never
//     occupies an entry, so a flood of forgeries cannot evict good entries
//     nor turn into a "valid" answer. Caching failures would not help
//     either, as an attacker varies each forgery at no cost.
//   - A hit still checks expiry (and "nbf") against the now it is given,
//     so caching never extends a token's life.
//   - The cache is bounded; when full, a new entry replaces the less
//     recently used of two distinct entries picked at random (sampled
//     LRU): cheap and lock-sharded; the most recently used entry is never
//     the victim, and tokens in active use rarely are. Adding entries
//     takes valid tokens, that is Grants with an app key; the worst an
//     adversary doing so can cause is more misses, which cost what an
//     uncached Verify costs. Correctness never depends on the cache.
//   - The KeyRing is immutable, so a cached verdict stays true for the
//     Verifier's life; a new key ring gets a new Verifier.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	keys   *KeyRing
	shards [verifierShards]verifierShard
}

type verifierShard struct {
	mu      sync.RWMutex
	index   map[[sha256.Size]byte]int
	entries []*cacheEntry
	max     int
	clock   atomic.Uint64
}

type cacheEntry struct {
	key       [sha256.Size]byte
	claims    Claims
	notBefore time.Time
	used      atomic.Uint64
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("new consent verifier: no key ring")
	}
	if cfg.CacheSize < 0 {
		return nil, errors.New("new consent verifier: negative cache size")
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	v := &Verifier{keys: cfg.Keys}
	perShard := max(1, cfg.CacheSize/verifierShards)
	for i := range v.shards {
		v.shards[i].max = perShard
		v.shards[i].index = make(map[[sha256.Size]byte]int)
	}
	return v, nil
}

// verifierOr returns v, or a new Verifier over keys if v is nil.
func verifierOr(v *Verifier, keys *KeyRing) (*Verifier, error) {
	if v != nil {
		return v, nil
	}
	return NewVerifier(VerifierConfig{Keys: keys})
}

// Keys returns the key ring the Verifier checks signatures with.
func (v *Verifier) Keys() *KeyRing { return v.keys }

// Verify checks token's signature, key and expiry at now and returns its
// claims, with the errors of KeyRing.Verify. Tokens longer than
// MaxTokenSize are malformed. The returned claims are the caller's to
// modify.
func (v *Verifier) Verify(token string, now time.Time) (Claims, error) {
	if token == "" {
		return Claims{}, ErrMissing
	}
	if len(token) > MaxTokenSize {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	key := tokenKey(token)
	s := &v.shards[key[0]%verifierShards]
	if e := s.get(key); e != nil {
		return e.check(now)
	}
	c, nbf, err := v.keys.verifyToken(token, now)
	if err != nil {
		return Claims{}, err
	}
	s.put(&cacheEntry{key: key, claims: c, notBefore: nbf})
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}

// tokenKey returns the SHA-256 of token, copying a token of usual size
// through a stack buffer rather than allocating.
func tokenKey(token string) [sha256.Size]byte {
	var buf [1024]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}

// check applies the time-dependent checks to a cached entry.
func (e *cacheEntry) check(now time.Time) (Claims, error) {
	if !now.Before(e.claims.ExpiresAt) {
		return Claims{}, ErrExpired
	}
	if !e.notBefore.IsZero() && now.Before(e.notBefore) {
		return Claims{}, fmt.Errorf("%w: token is not valid yet", ErrMalformed)
	}
	c := e.claims
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}

func (s *verifierShard) get(key [sha256.Size]byte) *cacheEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.index[key]
	if !ok {
		return nil
	}
	e := s.entries[i]
	e.used.Store(s.clock.Add(1))
	return e
}

func (s *verifierShard) put(e *cacheEntry) {
	e.used.Store(s.clock.Add(1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.index[e.key]; ok {
		return // another goroutine verified the same token meanwhile.
	}
	if len(s.entries) < s.max {
		s.index[e.key] = len(s.entries)
		s.entries = append(s.entries, e)
		return
	}
	// Two distinct entries, so the most recently used one is never the
	// victim.
	n := len(s.entries)
	victim := rand.IntN(n)
	if n > 1 {
		other := rand.IntN(n - 1)
		if other >= victim {
			other++
		}
		if s.entries[other].used.Load() < s.entries[victim].used.Load() {
			victim = other
		}
	}
	delete(s.index, s.entries[victim].key)
	s.entries[victim] = e
	s.index[e.key] = victim
}

// Len returns the number of tokens cached.
func (v *Verifier) Len() int {
	n := 0
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
