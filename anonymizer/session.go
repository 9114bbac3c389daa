package anonymizer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// SaltSource returns the salt for a UTC day. A salt must be secret, shared
// by every replica for its day, and destroyed once the day is over, so a
// re-keyed session id cannot be joined across days or recomputed later.
type SaltSource interface {
	Salt(day time.Time) ([]byte, error)
}

// MemorySalts is a SaltSource that draws a random salt per day and keeps
// only today's and yesterday's (for events that straddle midnight), in
// memory. It suits a single replica; replicas that must agree on session
// keys need a shared source.
type MemorySalts struct {
	mu    sync.Mutex
	salts map[int64][]byte
}

// NewMemorySalts returns an empty MemorySalts.
func NewMemorySalts() *MemorySalts { return &MemorySalts{salts: make(map[int64][]byte)} }

// Salt returns the salt for day, drawing it on first use and forgetting
// salts more than a day older.
func (m *MemorySalts) Salt(day time.Time) ([]byte, error) {
	d := day.UTC().Unix() / 86400
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.salts[d]; ok {
		return s, nil
	}
	s := make([]byte, 32)
	_, _ = rand.Read(s) // crypto/rand.Read never fails (Go 1.24+).
	m.salts[d] = s
	for k := range m.salts {
		if k < d-1 {
			clear(m.salts[k])
			delete(m.salts, k)
		}
	}
	return s, nil
}

// sessionKey re-keys an SDK session id under salt.
func sessionKey(salt, sessionID []byte) uint64 {
	if len(sessionID) == 0 {
		return 0
	}
	m := hmac.New(sha256.New, salt)
	m.Write(sessionID)
	var sum [sha256.Size]byte
	k := binary.LittleEndian.Uint64(m.Sum(sum[:0]))
	if k == 0 {
		k = 1 // 0 means "no session".
	}
	return k
}
