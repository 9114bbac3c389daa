package consent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// newTestGate returns a gate over revs and store on clk's time.
func newTestGate(t testing.TB, revs *Revocations, store Store, clk *clock) *Gate {
	t.Helper()
	g, err := NewGate(GateConfig{Revocations: revs, Store: store, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// gateFixture is a gate over a fake store, both sets loaded at t0.
type gateFixture struct {
	store *fakeStore
	clk   *clock
	revs  *Revocations
	gate  *Gate
}

func newGateFixture(t testing.TB) *gateFixture {
	t.Helper()
	f := &gateFixture{store: newFakeStore(), clk: newClock(t0)}
	f.store.now = f.clk.Now
	f.revs = newTestRevocations(t, f.store, f.clk, nil)
	f.gate = newTestGate(t, f.revs, f.store, f.clk)
	f.refresh(t)
	return f
}

// refresh refreshes both sets at the clock's time.
func (f *gateFixture) refresh(t testing.TB) {
	t.Helper()
	if err := f.revs.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.gate.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func origin(id string, key string, received time.Time) pipeline.Origin {
	return pipeline.Origin{ConsentHash: sha256.Sum256([]byte(id)), ConsentKey: key, Received: received}
}

func TestGateAdmit(t *testing.T) {
	f := newGateFixture(t)
	revokedAt := t0.Add(-time.Hour)
	f.store.addRevocation(revocation("revoked", revokedAt))
	f.store.logErasure(erasableApp, "erased-key", t0.Add(-2*time.Hour))
	f.clk.Add(DefaultRevocationReload) // a full reload of both
	f.refresh(t)
	skew := DefaultMaxClockSkew
	tests := []struct {
		name   string
		origin pipeline.Origin
		admit  bool
	}{
		{"never revoked", origin("other", "", revokedAt), true},
		{"received before the revocation", origin("revoked", "", revokedAt.Add(-skew-time.Millisecond)), true},
		{"received within the skew before it", origin("revoked", "", revokedAt.Add(-skew)), false},
		{"received at the revocation", origin("revoked", "", revokedAt), false},
		{"received after it", origin("revoked", "", revokedAt.Add(time.Minute)), false},
		{"revoked, no receive time", origin("revoked", "", time.Time{}), false},
		{"not revoked, no receive time", origin("other", "", time.Time{}), true},
		{"erased, received before the erasure", origin("other", "erased-key", t0.Add(-3*time.Hour)), false},
		{"erased, received after it", origin("other", "erased-key", t0), false},
		{"another consent key", origin("other", "other-key", t0), true},
		{"no consent hash", pipeline.Origin{Received: t0}, true},
		{"no consent hash, erased key", pipeline.Origin{ConsentKey: "erased-key", Received: t0}, false},
		{"received just within the window", origin("other", "", f.clk.Now().Add(-DefaultRetain)), true},
		{"received before the window", origin("other", "", f.clk.Now().Add(-DefaultRetain-time.Millisecond)), false},
	}
	for _, tt := range tests {
		if got := f.gate.Admit(tt.origin); got != tt.admit {
			t.Errorf("%s: Admit = %v, want %v", tt.name, got, tt.admit)
		}
	}
}

// TestGateHorizon walks the horizon's boundaries on a fake clock: none
// before both sets are loaded, the older refresh less WriteTimeout and a
// second, none once either set is staler than the bound, back after a
// successful refresh.
func TestGateHorizon(t *testing.T) {
	ctx := t.Context()
	store := newFakeStore()
	clk := newClock(t0)
	revs := newTestRevocations(t, store, clk, nil)
	g := newTestGate(t, revs, store, clk)
	lag := DefaultWriteTimeout + time.Second
	wantHorizon := func(what string, want time.Time, ok bool) {
		t.Helper()
		got, gotOK := g.Horizon()
		if gotOK != ok || (ok && !got.Equal(want)) {
			t.Fatalf("%s: Horizon = %v, %v; want %v, %v", what, got, gotOK, want, ok)
		}
	}
	wantHorizon("nothing loaded", time.Time{}, false)
	if err := revs.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantHorizon("only revocations loaded", time.Time{}, false)
	clk.Add(time.Second)
	if err := g.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantHorizon("both loaded", t0.Add(-lag), true) // the older refresh counts
	clk.Add(time.Second)
	if err := revs.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantHorizon("revocations newer", t0.Add(time.Second-lag), true)

	// The erasures refresh started at t0+1s: fresh up to the bound after.
	clk.Set(t0.Add(time.Second + DefaultRevocationBound))
	wantHorizon("at the bound", t0.Add(time.Second-lag), true)
	clk.Set(t0.Add(time.Second + DefaultRevocationBound + time.Nanosecond))
	wantHorizon("erasures past the bound", time.Time{}, false)

	store.setFail(true)
	if err := g.Refresh(ctx); !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh with the store down: %v", err)
	}
	wantHorizon("store down", time.Time{}, false)
	store.setFail(false)
	if err := g.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := revs.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantHorizon("store back", clk.Now().Add(-lag), true)
}

// TestGateGuarantee checks the promise of docs/consent.md on a grid of
// clocks and times: once a batch's receive time is at or before the
// horizon, Admit refuses it if it reached the collector (in real time)
// at or after the moment the revoking replica's clock read the
// revocation's stated time, with the clocks of the two replicas up to
// MaxClockSkew apart either way and the revocation's write taking up to
// WriteTimeout; and it admits batches received more than twice the skew
// plus a second before that.
func TestGateGuarantee(t *testing.T) {
	const id = "the consent"
	w, k := DefaultWriteTimeout, DefaultMaxClockSkew
	base := t0.Add(time.Hour)
	checked := 0
	// self is this replica's clock error; rev the revoking replica's.
	for _, self := range []time.Duration{-k, 0, k / 2} {
		for _, rev := range []time.Duration{self - k, self, self + k} {
			for _, stampAt := range []time.Duration{0, 300 * time.Millisecond, 999 * time.Millisecond} {
				for _, writeTook := range []time.Duration{0, w / 2, w} {
					for _, refreshAt := range []time.Duration{0, w - time.Second, w - 500*time.Millisecond, w - time.Millisecond, w, w + 700*time.Millisecond, w + 3*time.Second} {
						tR := base.Add(stampAt)                     // real time of the stamp
						stated := tR.Add(rev).Truncate(time.Second) // the revocation's stated time
						tStated := stated.Add(-rev)                 // real time the revoker's clock read it
						visible := tR.Add(writeTook)                // real time the store shows it
						tS := tR.Add(refreshAt)                     // real time the refresh starts
						store := newFakeStore()
						if !visible.After(tS) {
							store.addRevocation(Revocation{ConsentHash: HashConsentID(id), AppID: erasableApp,
								RevokedAt: stated, ExpiresAt: base.Add(DefaultTTL)})
						}
						clk := newClock(tS.Add(self))
						revs := newTestRevocations(t, store, clk, nil)
						g := newTestGate(t, revs, store, clk)
						if err := revs.Refresh(t.Context()); err != nil {
							t.Fatal(err)
						}
						if err := g.Refresh(t.Context()); err != nil {
							t.Fatal(err)
						}
						h, ok := g.Horizon()
						if !ok {
							t.Fatal("no horizon after a refresh")
						}
						for d := -4 * time.Second; d <= 4*time.Second; d += 100 * time.Millisecond {
							tB := tStated.Add(d)     // real receive time
							received := tB.Add(self) // as this replica stamped it
							if received.After(h) {
								continue // the spool waits for the horizon
							}
							checked++
							admit := g.Admit(origin(id, "", received))
							where := fmt.Sprintf("self %v, revoker %v, stamp +%v, write %v, refresh +%v, received %v after the stated time: Admit = %v",
								self, rev, stampAt, writeTook, refreshAt, d, admit)
							if !tB.Before(tStated) && admit {
								t.Fatalf("%s; a batch received after the revocation would be stored", where)
							}
							if tB.Before(tStated.Add(-2*k-time.Second)) && !admit {
								t.Fatalf("%s; a batch received well before the revocation is refused", where)
							}
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no case reached the horizon")
	}
}

// TestGateErasures: erasures recorded by any replica are picked up by the
// next refresh (incrementally, or in a full reload), one this replica
// made is known at once, and those older than the window are dropped by
// the next full reload.
func TestGateErasures(t *testing.T) {
	f := newGateFixture(t)
	f.store.logErasure(erasableApp, "k1", t0.Add(-5*time.Second)) // another replica, clock behind
	f.clk.Add(time.Second)
	f.refresh(t)
	if !f.gate.Erased("k1") {
		t.Fatal("an incremental refresh missed an erasure")
	}
	f.gate.markErased("k2")
	if !f.gate.Erased("k2") || f.gate.Admit(origin("x", "k2", f.clk.Now())) {
		t.Fatal("an erasure made here is not known at once")
	}
	f.clk.Add(DefaultRetain + time.Minute) // k1 is older than the window now
	f.refresh(t)
	if f.gate.Erased("k1") {
		t.Fatal("an erasure older than the window is still held")
	}
}

// TestGateRestart: a new gate (a restarted collector) over the same
// store refuses what the old one refused, once loaded, and ships nothing
// before.
func TestGateRestart(t *testing.T) {
	f := newGateFixture(t)
	f.store.addRevocation(revocation("revoked", t0))
	f.store.logErasure(erasableApp, "erased-key", t0)
	rec := []pipeline.Origin{origin("revoked", "", t0.Add(time.Second)), origin("other", "erased-key", t0.Add(-time.Minute))}

	f.clk.Add(time.Minute)
	revs := newTestRevocations(t, f.store, f.clk, nil)
	g := newTestGate(t, revs, f.store, f.clk)
	if _, ok := g.Horizon(); ok {
		t.Fatal("a horizon before loading")
	}
	if err := revs.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := g.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, o := range rec {
		if g.Admit(o) {
			t.Errorf("record %d admitted after the restart", i)
		}
	}
}

func TestNewGateConfig(t *testing.T) {
	store := newFakeStore()
	revs := newTestRevocations(t, store, newClock(t0), nil)
	for _, tt := range []struct {
		name string
		cfg  GateConfig
	}{
		{"no revocations", GateConfig{Store: store}},
		{"no store", GateConfig{Revocations: revs}},
		{"negative window", GateConfig{Revocations: revs, Store: store, Window: -time.Second}},
		{"window beyond the retention", GateConfig{Revocations: revs, Store: store, Window: DefaultRetain + time.Second}},
	} {
		if _, err := NewGate(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// TestGateAdmitAllocates nothing: it runs per shipped record.
func TestGateAdmitAllocates(t *testing.T) {
	f := newGateFixture(t)
	if err := f.revs.Add(revocation("revoked", t0)); err != nil {
		t.Fatal(err)
	}
	f.gate.markErased("erased-key")
	origins := []pipeline.Origin{origin("revoked", "", t0), origin("other", "erased-key", t0), origin("other", "k", t0)}
	if n := testing.AllocsPerRun(100, func() {
		for _, o := range origins {
			f.gate.Admit(o)
		}
	}); n != 0 {
		t.Fatalf("Admit allocates %v times", n)
	}
}
