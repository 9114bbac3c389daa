package sdk

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/consentry/consentry/internal/atomicfile"
)

// stateFileName is the consent state's file in the storage folder.
const stateFileName = "state"

// Consent states, as ConsentState returns them.
const (
	// StateNone: consent was never granted (or the storage was deleted).
	StateNone = "none"
	// StateGranted: a token is held and unexpired; recording is on.
	StateGranted = "granted"
	// StateRevoked: the user revoked, or the collector reported the
	// consent revoked, and the collector knows.
	StateRevoked = "revoked"
	// StateRevokePending: the user revoked; the revocation waits to be
	// delivered to the collector. Nothing is recorded.
	StateRevokePending = "revoke_pending"
	// StateExpired: the token expired, or the collector refused it as
	// expired or invalid; ask the user for consent again.
	StateExpired = "expired"
)

// persistedState is the consent state, sealed in the state file.
type persistedState struct {
	// Epoch numbers the queue's generations: a purge starts a new one.
	Epoch uint64 `json:"epoch"`
	// DataKey encrypts the queue records of the epoch.
	DataKey []byte `json:"data_key"`
	// Token is the consent token while consent is granted, else "".
	Token string `json:"token,omitempty"`
	// ExpiresAtMs is the token's expiry (Unix ms).
	ExpiresAtMs int64 `json:"expires_at_ms,omitempty"`
	// Scopes are the scopes the token grants.
	Scopes []string `json:"scopes,omitempty"`
	// Ended is why the last consent ended when there is no token:
	// "", StateRevoked or StateExpired.
	Ended string `json:"ended,omitempty"`
	// Revocations are revocations the collector has not confirmed yet.
	// They are removed only when it does.
	Revocations []pendingRevocation `json:"pending_revocations,omitempty"`
}

// pendingRevocation is a revocation to deliver.
type pendingRevocation struct {
	Token string `json:"token"`
	Erase bool   `json:"erase"`
	// RequestedAtMs is when the user revoked (Unix ms), for logs.
	RequestedAtMs int64 `json:"requested_at_ms"`
}

func (s *persistedState) clone() persistedState {
	c := *s
	c.DataKey = slices.Clone(s.DataKey)
	c.Scopes = slices.Clone(s.Scopes)
	c.Revocations = slices.Clone(s.Revocations)
	return c
}

// newEpoch starts a new queue epoch with a fresh data key.
func (s *persistedState) newEpoch() error {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate data key: %w", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("draw epoch: %w", err)
	}
	e := binary.BigEndian.Uint64(b[:])
	if e == s.Epoch {
		e++
	}
	s.Epoch, s.DataKey = e, key
	return nil
}

// stateStore reads and writes the sealed state file.
type stateStore struct {
	path string
	aead cipher.AEAD
}

func newStateStore(dir string, master []byte) (*stateStore, error) {
	key, err := deriveKey(master, "state v1")
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &stateStore{path: filepath.Join(dir, stateFileName), aead: aead}, nil
}

// load reads the state; a missing file is a fresh state with a new epoch.
func (s *stateStore) load() (persistedState, error) {
	var st persistedState
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := st.newEpoch(); err != nil {
			return st, err
		}
		return st, s.save(&st)
	}
	if err != nil {
		return st, fmt.Errorf("read consent state: %w", err)
	}
	plain, n, err := openFrame(nil, s.aead, magicState, b)
	if err != nil || n != len(b) {
		return st, ErrStateUnreadable
	}
	if err := json.Unmarshal(plain, &st); err != nil || len(st.DataKey) != keySize {
		return st, ErrStateUnreadable
	}
	return st, nil
}

// replace deletes the state file, durably, then saves st: for a full disk,
// where the old file's space is what the new one needs. Until the save
// ends there is no state file, which a start reads as no consent.
func (s *stateStore) replace(st *persistedState) error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace consent state: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("replace consent state: %w", err)
	}
	return s.save(st)
}

// save replaces the state file with st, durably.
func (s *stateStore) save(st *persistedState) error {
	plain, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode consent state: %w", err)
	}
	b, err := sealFrame(nil, s.aead, magicState, plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal consent state: %w", err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("write consent state: %w", err)
	}
	return nil
}
