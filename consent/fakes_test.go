package consent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/testclock"
)

// errStoreDown is what a failing fakeStore returns.
var errStoreDown = errors.New("fake store down")

// fakeStore is an in-memory Store that records calls. Tests against a
// real ClickHouse live in package clickhouse.
type fakeStore struct {
	mu        sync.Mutex
	apps      map[string]App
	revs      []Revocation
	fail      bool // every call fails
	failErase int  // the next failErase Erase calls fail
	rows      map[string]uint64
	revCalls  []revCall
	erases    []eraseCall
	prunes    []time.Time
	puts      int
	appReads  int             // Apps calls
	erasures  []erasureRecord // the audit log
	now       func() time.Time
	// failErasures makes ErasedConsentKeys and UnsweptErasures fail.
	failErasures bool
}

// erasureRecord is one erasure in the fake audit log.
type erasureRecord struct {
	app, key string
	at       time.Time
}

type revCall struct{ since, now time.Time }

type eraseCall struct{ app, key string }

func newFakeStore(apps ...App) *fakeStore {
	s := &fakeStore{apps: make(map[string]App), rows: map[string]uint64{"events": 3, "crashes": 1}, now: time.Now}
	for _, a := range apps {
		s.apps[a.ID] = a
	}
	return s
}

func (s *fakeStore) setFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

func (s *fakeStore) addRevocation(r Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revs = append(s.revs, r)
}

func (s *fakeStore) appsCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appReads
}

func (s *fakeStore) eraseCalls() []eraseCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.erases)
}

func (s *fakeStore) revocationCalls() []revCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revCalls)
}

func (s *fakeStore) storedRevocations() []Revocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revs)
}

func (s *fakeStore) pruneCalls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.prunes)
}

func (s *fakeStore) PutApp(_ context.Context, a App) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errStoreDown
	}
	s.apps[a.ID] = a
	return nil
}

func (s *fakeStore) Apps(context.Context) ([]App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appReads++
	if s.fail {
		return nil, errStoreDown
	}
	return slices.Collect(maps.Values(s.apps)), nil
}

func (s *fakeStore) PutRevocation(_ context.Context, r Revocation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errStoreDown
	}
	s.puts++
	s.revs = append(s.revs, r)
	return nil
}

func (s *fakeStore) Revocations(_ context.Context, since, now time.Time) ([]Revocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revCalls = append(s.revCalls, revCall{since, now})
	if s.fail {
		return nil, errStoreDown
	}
	var out []Revocation
	for _, r := range s.revs {
		if !r.RevokedAt.Before(since) && r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *fakeStore) PruneRevocations(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunes = append(s.prunes, now)
	if s.fail {
		return errStoreDown
	}
	s.revs = slices.DeleteFunc(s.revs, func(r Revocation) bool { return r.ExpiresAt.Before(now) })
	return nil
}

func (s *fakeStore) Erase(_ context.Context, appID, consentKey string) (map[string]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erases = append(s.erases, eraseCall{appID, consentKey})
	if s.fail {
		return nil, errStoreDown
	}
	if s.failErase > 0 {
		s.failErase--
		return nil, errors.New("fake erase failed for " + consentKey)
	}
	s.erasures = append(s.erasures, erasureRecord{appID, consentKey, s.now()})
	return maps.Clone(s.rows), nil
}

// logErasure records an erasure in the audit log as another replica
// would.
func (s *fakeStore) logErasure(app, key string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erasures = append(s.erasures, erasureRecord{app, key, at})
}

func (s *fakeStore) ErasedConsentKeys(_ context.Context, since time.Time) (map[string]struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail || s.failErasures {
		return nil, errStoreDown
	}
	keys := make(map[string]struct{})
	for _, e := range s.erasures {
		if !e.at.Truncate(time.Second).Before(since.Truncate(time.Second)) {
			keys[e.key] = struct{}{}
		}
	}
	return keys, nil
}

// UnsweptErasures works on whole seconds, as ClickHouse's DateTime does.
func (s *fakeStore) UnsweptErasures(_ context.Context, since, dueBy time.Time, gap time.Duration, limit int) ([]Erasure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail || s.failErasures {
		return nil, errStoreDown
	}
	byKey := make(map[[2]string]*Erasure)
	for _, e := range s.erasures {
		at := e.at.Truncate(time.Second)
		if at.Before(since.Truncate(time.Second)) {
			continue
		}
		k := [2]string{e.app, e.key}
		if g, ok := byKey[k]; ok {
			g.First, g.Last = minTime(g.First, at), maxTime(g.Last, at)
		} else {
			byKey[k] = &Erasure{AppID: e.app, ConsentKey: e.key, First: at, Last: at}
		}
	}
	var out []Erasure
	for _, g := range byKey {
		if !g.First.After(dueBy.Truncate(time.Second)) && g.Last.Before(g.First.Add(gap)) {
			out = append(out, *g)
		}
	}
	slices.SortFunc(out, func(a, b Erasure) int { return a.First.Compare(b.First) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// clock is a settable time source.
type clock = testclock.Clock

func newClock(t time.Time) *clock { return testclock.New(t) }

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t interface {
	Helper()
	Fatalf(string, ...any)
}, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
