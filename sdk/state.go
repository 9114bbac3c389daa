package sdk

import (
	"bytes"
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

// copySuffix names the second copy of a file the SDK cannot lose: the
// consent state's and the generated master key's ("state.copy",
// "queue.key.copy").
const copySuffix = ".copy"

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
	// Seq numbers the saves (see stateStore): of the state file and its
	// copy, the one with the higher Seq is the newer.
	Seq uint64 `json:"seq,omitempty"`
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

// stateStore reads and writes the sealed consent state. The state is
// kept twice, in the state file and its copy (copySuffix), written one
// after the other: a damaged byte or a lost file leaves the other, and
// a start reads the newer of the two whole ones and puts the other right
// (see openState). Each save carries a sequence number one above the
// last, so that after a crash between the two writes the newer state is
// the one read.
type stateStore struct {
	paths [2]string
	aead  cipher.AEAD
	// seq is the sequence number of the state last read or saved.
	seq uint64
	// write replaces a file whole; writeFileAtomic, but for tests.
	write func(path string, data []byte) error
}

// statePaths returns the state file and its copy in dir.
func statePaths(dir string) [2]string {
	p := filepath.Join(dir, stateFileName)
	return [2]string{p, p + copySuffix}
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
	return &stateStore{paths: statePaths(dir), aead: aead, write: writeFileAtomic}, nil
}

// openedState is what openState found.
type openedState struct {
	store  *stateStore
	master []byte // the key of masters that opens the state
	st     persistedState
	// restored names the files (the state's, or its copy's) that were
	// missing, damaged or older than the other and were put right
	// (damaged: one of them was there, not only missing); restoreErr is
	// why one could not be (a full disk): the state was read all the
	// same, from the other file.
	restored   []string
	damaged    bool
	restoreErr error
}

// openState reads the consent state in dir with the first of masters
// that opens the state file or its copy (a generated key may have two
// candidates, see loadMasterKeys), taking the newer state where both
// open, and rewrites a file that is missing, does not open or holds the
// older state. With neither file there, it saves a fresh state (a new
// queue epoch) under masters[0]. With files there that no key opens, it
// fails with ErrStateUnreadable.
func openState(dir string, masters [][]byte) (openedState, error) {
	paths := statePaths(dir)
	var raw [2][]byte
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return openedState{}, fmt.Errorf("read consent state: %w", err)
		}
		raw[i] = b
	}
	for _, master := range masters {
		s, err := newStateStore(dir, master)
		if err != nil {
			return openedState{}, err
		}
		best, sts := -1, [2]persistedState{}
		for i, b := range raw {
			st, err := s.open(b)
			if err != nil {
				continue
			}
			if sts[i] = st; best < 0 || st.Seq > sts[best].Seq {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		s.seq = sts[best].Seq
		o := openedState{store: s, master: master, st: sts[best]}
		for i, p := range paths {
			if bytes.Equal(raw[i], raw[best]) {
				continue
			}
			if err := s.write(p, raw[best]); err != nil {
				o.restoreErr = errors.Join(o.restoreErr, err)
				continue
			}
			o.restored = append(o.restored, filepath.Base(p))
			o.damaged = o.damaged || raw[i] != nil
		}
		return o, nil
	}
	if raw[0] != nil || raw[1] != nil {
		return openedState{}, ErrStateUnreadable
	}
	s, err := newStateStore(dir, masters[0])
	if err != nil {
		return openedState{}, err
	}
	var st persistedState
	if err := st.newEpoch(); err != nil {
		return openedState{}, err
	}
	if err := s.save(&st); err != nil {
		return openedState{}, err
	}
	return openedState{store: s, master: masters[0], st: st}, nil
}

// open decrypts and decodes one state file's content.
func (s *stateStore) open(b []byte) (persistedState, error) {
	var st persistedState
	plain, n, err := openFrame(nil, s.aead, magicState, b)
	if err != nil || n != len(b) {
		return st, ErrStateUnreadable
	}
	if err := json.Unmarshal(plain, &st); err != nil || len(st.DataKey) != keySize {
		return st, ErrStateUnreadable
	}
	return st, nil
}

// save replaces the state, durably: the state file first, then its
// copy. If the copy cannot be written (a full disk), the state file is
// removed, which needs no space: the copy keeps the state as it was
// before the call, as the error reports, and the next start puts the
// state file right.
func (s *stateStore) save(st *persistedState) error {
	b, err := s.seal(st)
	if err != nil {
		return err
	}
	if err := s.write(s.paths[0], b); err != nil {
		return fmt.Errorf("write consent state: %w", err)
	}
	if err := s.write(s.paths[1], b); err != nil {
		if rerr := os.Remove(s.paths[0]); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("write consent state: %w", err)
	}
	return nil
}

// replace deletes both state files, durably, then writes st: for a full
// disk, where the old files' space is what the new ones need. Until the
// state file is written there is no state, which a start reads as no
// consent; if only its copy cannot be written, st is saved all the same
// (in one file, which the next save or start copies).
func (s *stateStore) replace(st *persistedState) error {
	for _, p := range s.paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replace consent state: %w", err)
		}
	}
	if err := atomicfile.SyncDir(filepath.Dir(s.paths[0])); err != nil {
		return fmt.Errorf("replace consent state: %w", err)
	}
	b, err := s.seal(st)
	if err != nil {
		return err
	}
	if err := s.write(s.paths[0], b); err != nil {
		return fmt.Errorf("replace consent state: %w", err)
	}
	_ = s.write(s.paths[1], b)
	return nil
}

// seal numbers st as the next save and encrypts it.
func (s *stateStore) seal(st *persistedState) ([]byte, error) {
	s.seq++
	st.Seq = s.seq
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode consent state: %w", err)
	}
	b, err := sealFrame(nil, s.aead, magicState, plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("seal consent state: %w", err)
	}
	return b, nil
}
