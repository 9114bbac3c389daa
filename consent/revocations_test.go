package consent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func revocation(id string, at time.Time) Revocation {
	return Revocation{ConsentHash: HashConsentID(id), AppID: "com.example.notes", RevokedAt: at, ExpiresAt: at.Add(time.Hour)}
}

func newTestRevocations(t testing.TB, store Store, clk *clock, mod func(*RevocationsConfig)) *Revocations {
	t.Helper()
	cfg := RevocationsConfig{Store: store, Now: clk.Now, StorePruneInterval: -1}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewRevocations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRevocationsRefresh(t *testing.T) {
	ctx := t.Context()
	store := newFakeStore()
	store.addRevocation(revocation("old", t0.Add(-time.Minute)))
	clk := newClock(t0)
	r := newTestRevocations(t, store, clk, nil)
	if _, ok := r.Revoked("old"); ok {
		t.Fatal("revoked before any load")
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := r.Revoked("old"); !ok || !at.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("after the full load: Revoked = %v, %v", at, ok)
	}

	// Recorded after the load, stamped by a replica whose clock is 10s
	// behind: the overlap still catches it.
	clk.Add(2 * time.Second)
	store.addRevocation(revocation("new", t0.Add(-10*time.Second)))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Revoked("new"); !ok {
		t.Fatal("incremental refresh missed a revocation")
	}
	if _, ok := r.Revoked("other"); ok {
		t.Fatal("a consent never revoked is revoked")
	}
	calls := store.revocationCalls()
	if len(calls) != 2 || !calls[0].since.IsZero() || !calls[1].since.Equal(t0.Add(-DefaultRevocationOverlap)) {
		t.Fatalf("store asked %+v; want a full load, then since the first refresh less the overlap", calls)
	}

	// Every ReloadInterval the whole set is loaded again.
	clk.Add(DefaultRevocationReload)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if calls := store.revocationCalls(); !calls[2].since.IsZero() {
		t.Fatalf("no full reload after ReloadInterval: %+v", calls[2])
	}
}

func TestRevocationsEarliestWins(t *testing.T) {
	r := newTestRevocations(t, newFakeStore(), newClock(t0), nil)
	for _, at := range []time.Time{t0.Add(time.Second), t0, t0.Add(2 * time.Second)} {
		if err := r.Add(revocation("c", at)); err != nil {
			t.Fatal(err)
		}
	}
	if at, ok := r.Revoked("c"); !ok || !at.Equal(t0) {
		t.Fatalf("Revoked = %v, %v; want the earliest, %v", at, ok, t0)
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d", r.Len())
	}
	if err := r.Add(Revocation{ConsentHash: "not hex"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Add of a malformed hash: %v", err)
	}
}

func TestRevocationsFresh(t *testing.T) {
	ctx := t.Context()
	store := newFakeStore()
	clk := newClock(t0)
	r := newTestRevocations(t, store, clk, nil)
	if r.Fresh(t0) {
		t.Fatal("fresh before the first load")
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	bound := r.Bound()
	if !r.Fresh(t0.Add(bound)) || r.Fresh(t0.Add(bound+time.Millisecond)) {
		t.Fatal("Fresh does not follow the bound")
	}

	// The store fails: still fresh within the bound of the last success,
	// stale after it, fresh again once a refresh succeeds.
	store.setFail(true)
	clk.Add(DefaultRevocationInterval)
	if err := r.Refresh(ctx); !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh with the store down: %v", err)
	}
	if !r.Fresh(clk.Now()) {
		t.Fatal("stale although the last success is within the bound")
	}
	clk.Add(bound)
	if r.Fresh(clk.Now()) {
		t.Fatal("fresh although the store failed for longer than the bound")
	}
	store.setFail(false)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Fresh(clk.Now()) {
		t.Fatal("still stale after a successful refresh")
	}
}

// TestFilterFailsClosed: while revocations are stale, a batch with a
// valid token is refused with ErrRevocationsStale; one without a valid
// token is still only dropped.
func TestFilterFailsClosed(t *testing.T) {
	ctx := t.Context()
	ring := mustRing(t, mustKey(t))
	tok := mustSign(t, ring, claims())
	store := newFakeStore()
	clk := newClock(t0)
	r := newTestRevocations(t, store, clk, nil)
	f, err := NewFilter(FilterConfig{Keys: ring, Revocations: r, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(token string) *pipeline.Batch { return gestureBatch(token, "com.example.notes", clk.Now()) }
	if err := f.Process(ctx, batch(tok)); !errors.Is(err, ErrRevocationsStale) {
		t.Fatalf("before the first load: %v, want ErrRevocationsStale", err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if b := batch(tok); f.Process(ctx, b) != nil || b.Live() != 1 {
		t.Fatal("fresh revocations: the event was not accepted")
	}
	store.setFail(true)
	clk.Add(r.Bound() + time.Second)
	_ = r.Refresh(ctx)
	if err := f.Process(ctx, batch(tok)); !errors.Is(err, ErrRevocationsStale) {
		t.Fatalf("store down longer than the bound: %v, want ErrRevocationsStale", err)
	}
	if b := batch(""); f.Process(ctx, b) != nil || b.DropReasonOf(0) != consentryv1.DropReason_DROP_REASON_CONSENT_MISSING {
		t.Fatal("a batch without a token was not simply dropped")
	}

	// Revoked in the store while stale: once the store is back, the
	// consent is refused.
	c, _ := ring.Verify(tok, t0)
	store.setFail(false)
	store.addRevocation(revocation(c.ConsentID, clk.Now()))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	b := batch(tok)
	if err := f.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.ConsentState != consentryv1.ConsentState_CONSENT_STATE_REVOKED || b.DropReasonOf(0) != consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED {
		t.Fatalf("revoked consent: state %v, drop %v", b.ConsentState, b.DropReasonOf(0))
	}
}

func TestRevocationsPrune(t *testing.T) {
	ctx := t.Context()
	store := newFakeStore()
	clk := newClock(t0)
	r := newTestRevocations(t, store, clk, func(c *RevocationsConfig) { c.PruneInterval = time.Second })
	short := revocation("short", t0)
	short.ExpiresAt = t0.Add(time.Minute)
	long := revocation("long", t0)
	long.ExpiresAt = t0.Add(24 * time.Hour)
	for _, rv := range []Revocation{short, long} {
		store.addRevocation(rv)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Expired, but within Retain (spooled batches may still need it):
	// kept, in memory and on a full reload.
	clk.Add(DefaultRetain)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Revoked("short"); !ok {
		t.Fatal("pruned within the grace")
	}
	fresh := newTestRevocations(t, store, clk, nil)
	if err := fresh.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := fresh.Revoked("short"); !ok {
		t.Fatal("a full load skipped an expired revocation within Retain")
	}
	clk.Add(time.Minute + time.Second)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Revoked("short"); ok {
		t.Fatal("an expired revocation was not pruned")
	}
	if _, ok := r.Revoked("long"); !ok {
		t.Fatal("an unexpired revocation was pruned")
	}
}

func TestRevocationsRun(t *testing.T) {
	store := newFakeStore()
	r := newTestRevocations(t, store, &clock{}, func(c *RevocationsConfig) {
		c.Now = time.Now
		c.Interval = 5 * time.Millisecond
		c.Bound = time.Second
		c.StorePruneInterval = 10 * time.Millisecond
	})
	runUntilStopped(t, r.Run)
	if err := r.WaitLoaded(t.Context()); err != nil {
		t.Fatal(err)
	}
	store.addRevocation(revocation("c", time.Now()))
	waitFor(t, "the revocation to be picked up", func() bool { _, ok := r.Revoked("c"); return ok })
	waitFor(t, "the store to be pruned", func() bool { return len(store.pruneCalls()) > 0 })
	if p := store.pruneCalls()[0]; time.Since(p) < DefaultRetain {
		t.Fatalf("store pruned up to %v: not less Retain", p)
	}
}

func TestRevocationsWaitLoadedCanceled(t *testing.T) {
	r := newTestRevocations(t, newFakeStore(), newClock(t0), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.WaitLoaded(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitLoaded: %v", err)
	}
}

func TestNewRevocationsConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  RevocationsConfig
	}{
		{"no store", RevocationsConfig{}},
		{"interval not below bound", RevocationsConfig{Store: newFakeStore(), Interval: 5 * time.Second, Bound: 5 * time.Second}},
		{"negative", RevocationsConfig{Store: newFakeStore(), Overlap: -time.Second}},
		{"overlap below write timeout, skew and rounding", RevocationsConfig{Store: newFakeStore(),
			Overlap: 4900 * time.Millisecond, WriteTimeout: 3 * time.Second, MaxClockSkew: time.Second}},
	}
	for _, tt := range tests {
		if _, err := NewRevocations(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// TestFilterWithGateAcceptsWhenStale: with a ship-time gate downstream,
// stale revocations no longer refuse a batch; a consent known to be
// revoked is still dropped at once and the SDK told so.
func TestFilterWithGateAcceptsWhenStale(t *testing.T) {
	ctx := t.Context()
	ring := mustRing(t, mustKey(t))
	tok := mustSign(t, ring, claims())
	revokedTok := mustSign(t, ring, claims())
	store := newFakeStore()
	clk := newClock(t0)
	r := newTestRevocations(t, store, clk, nil)
	g := newTestGate(t, r, store, clk)
	f, err := NewFilter(FilterConfig{Keys: ring, Revocations: r, Gate: g, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(token string) *pipeline.Batch { return gestureBatch(token, "com.example.notes", clk.Now()) }
	c, _ := ring.Verify(revokedTok, t0)
	store.addRevocation(revocation(c.ConsentID, t0))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	store.setFail(true)
	clk.Add(time.Minute)
	_ = r.Refresh(ctx)
	if r.Fresh(clk.Now()) {
		t.Fatal("revocations fresh with the store down for a minute")
	}
	if b := batch(tok); f.Process(ctx, b) != nil || b.Live() != 1 ||
		b.ConsentState != consentryv1.ConsentState_CONSENT_STATE_VALID {
		t.Fatal("stale revocations with a gate: the batch was not accepted")
	}
	b := batch(revokedTok)
	if err := f.Process(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.ConsentState != consentryv1.ConsentState_CONSENT_STATE_REVOKED || b.Live() != 0 {
		t.Fatalf("a consent known revoked: state %v, %d live", b.ConsentState, b.Live())
	}

	other := newTestRevocations(t, store, clk, nil)
	for _, cfg := range []FilterConfig{
		{Keys: ring, Gate: g},
		{Keys: ring, Revocations: other, Gate: g},
	} {
		if _, err := NewFilter(cfg); err == nil {
			t.Error("a gate over other revocations was accepted")
		}
	}
}
