package anonymizer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
)

// SaltSize is the size of a daily salt in bytes.
const SaltSize = 32

// SaltStore keeps the daily salts where every replica finds them; the
// collector uses ClickHouse (clickhouse.Client).
type SaltStore interface {
	// DailySalt returns the salt of day's UTC day, storing candidate
	// (SaltSize random bytes) first if the day has none. Replicas that
	// race must converge on one salt.
	DailySalt(ctx context.Context, day time.Time, candidate []byte) ([]byte, error)
	// DestroySalts deletes the salts of the UTC days before before's day.
	DestroySalts(ctx context.Context, before time.Time) error
}

// SaltsConfig configures Salts.
type SaltsConfig struct {
	// Store holds the salts; nil means NewMemorySaltStore(), which suits a
	// single replica and tests.
	Store SaltStore
	// Refresh is how often Run reads today's and tomorrow's salts again
	// and destroys older ones. Default one minute.
	Refresh time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger logs failures of the background refresh; nil means none.
	Logger *zap.Logger
}

// Salts hands out the salt of the current UTC day, which session ids are
// re-keyed with. Every replica gets the same salt for a day from the
// shared store; a salt is used only during its day and destroyed, in the
// store and in memory, once the day is over, so re-keyed session ids can
// neither be joined across days nor recomputed later, even from a device
// that still knows its session id.
type Salts struct {
	cfg SaltsConfig

	mu    sync.RWMutex
	cache map[int64][]byte // by UTC day number
}

// NewSalts returns Salts for cfg.
func NewSalts(cfg SaltsConfig) *Salts {
	if cfg.Store == nil {
		cfg.Store = NewMemorySaltStore()
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Salts{cfg: cfg, cache: make(map[int64][]byte)}
}

func dayNumber(t time.Time) int64 { return t.UTC().Unix() / 86400 }

// Salt returns the salt for t's UTC day, asking the store on the first use
// of a day (Run fetches it ahead of midnight). It fails when the store
// cannot be reached and the salt is not cached; storing events under a
// replica-local salt would split sessions across replicas.
func (s *Salts) Salt(ctx context.Context, t time.Time) ([]byte, error) {
	d := dayNumber(t)
	s.mu.RLock()
	salt, ok := s.cache[d]
	s.mu.RUnlock()
	if ok {
		return salt, nil
	}
	return s.fetch(ctx, d)
}

// Known returns the salt of t's UTC day if this replica holds it now,
// without asking the store: a past day's salt must not be proposed again
// once destroyed. Today's and tomorrow's are held from the first Refresh;
// yesterday's until DestroyGrace after midnight, if it was fetched.
func (s *Salts) Known(t time.Time) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	salt, ok := s.cache[dayNumber(t)]
	return salt, ok
}

// fetch reads (or proposes) day d's salt and caches it.
func (s *Salts) fetch(ctx context.Context, d int64) ([]byte, error) {
	candidate := make([]byte, SaltSize)
	_, _ = rand.Read(candidate) // crypto/rand.Read never fails (Go 1.24+).
	salt, err := s.cfg.Store.DailySalt(ctx, time.Unix(d*86400, 0).UTC(), candidate)
	if err != nil {
		return nil, fmt.Errorf("daily salt: %w", err)
	}
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("daily salt: store returned %d bytes, want %d", len(salt), SaltSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.cache[d]; ok && !hmac.Equal(old, salt) {
		// Another replica won the race to create the day's salt.
		clear(old)
	}
	s.cache[d] = salt
	return salt, nil
}

// DestroyGrace is how long after the end of its day a salt is destroyed:
// long enough that a replica whose clock is a few minutes behind still
// finds it, short enough that the salt is gone minutes after its day.
const DestroyGrace = 10 * time.Minute

// Refresh fetches today's and tomorrow's salts again (so midnight needs no
// round trip and replicas that raced converge), and forgets and destroys
// the salts of days that ended more than DestroyGrace ago.
func (s *Salts) Refresh(ctx context.Context) error {
	now := s.cfg.Now()
	today := dayNumber(now)
	keep := dayNumber(now.Add(-DestroyGrace))
	var errs []error
	for _, d := range []int64{today, today + 1} {
		if _, err := s.fetch(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	for d, salt := range s.cache {
		if d < keep {
			clear(salt)
			delete(s.cache, d)
		}
	}
	s.mu.Unlock()
	if err := s.cfg.Store.DestroySalts(ctx, time.Unix(keep*86400, 0).UTC()); err != nil {
		errs = append(errs, fmt.Errorf("destroy past salts: %w", err))
	}
	return errors.Join(errs...)
}

// Run calls Refresh every cfg.Refresh until ctx ends, starting one
// interval from now: call Refresh first to have today's salt at start.
func (s *Salts) Run(ctx context.Context) error {
	every.Tick(ctx, s.cfg.Refresh, false, func(ctx context.Context) {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("session salts refresh failed", zap.Error(err))
		}
	})
	return nil
}

// MemorySaltStore is a SaltStore in process memory.
type MemorySaltStore struct {
	mu    sync.Mutex
	salts map[int64][]byte
}

// NewMemorySaltStore returns an empty MemorySaltStore.
func NewMemorySaltStore() *MemorySaltStore { return &MemorySaltStore{salts: make(map[int64][]byte)} }

// DailySalt implements SaltStore.
func (m *MemorySaltStore) DailySalt(_ context.Context, day time.Time, candidate []byte) ([]byte, error) {
	d := dayNumber(day)
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.salts[d]; ok {
		return s, nil
	}
	m.salts[d] = append([]byte(nil), candidate...)
	return m.salts[d], nil
}

// DestroySalts implements SaltStore.
func (m *MemorySaltStore) DestroySalts(_ context.Context, before time.Time) error {
	limit := dayNumber(before)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d, s := range m.salts {
		if d < limit {
			clear(s)
			delete(m.salts, d)
		}
	}
	return nil
}

// Len returns the number of days the store holds a salt for.
func (m *MemorySaltStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.salts)
}

// keyed returns the first 64 bits of HMAC-SHA-256(salt, id), never 0; 0
// for an empty id. Salts are SaltSize bytes; ids up to maxKeyedID bytes
// are hashed without allocating (crypto/hmac allocates its hash states).
func keyed(salt, id []byte) uint64 {
	if len(id) == 0 {
		return 0
	}
	if len(salt) > sha256.BlockSize || len(id) > maxKeyedID {
		m := hmac.New(sha256.New, salt)
		m.Write(id)
		return nonZero(binary.LittleEndian.Uint64(m.Sum(nil)))
	}
	var buf [sha256.BlockSize + maxKeyedID]byte
	for i := range sha256.BlockSize {
		var k byte
		if i < len(salt) {
			k = salt[i]
		}
		buf[i] = k ^ 0x36
	}
	n := copy(buf[sha256.BlockSize:], id)
	inner := sha256.Sum256(buf[:sha256.BlockSize+n])
	for i := range sha256.BlockSize {
		buf[i] ^= 0x36 ^ 0x5c
	}
	copy(buf[sha256.BlockSize:], inner[:])
	outer := sha256.Sum256(buf[:sha256.BlockSize+sha256.Size])
	return nonZero(binary.LittleEndian.Uint64(outer[:]))
}

// maxKeyedID is the longest id keyed hashes without allocating; the
// limits stage bounds session ids well below it.
const maxKeyedID = 128

func nonZero(k uint64) uint64 {
	if k == 0 {
		return 1 // 0 means "none".
	}
	return k
}
