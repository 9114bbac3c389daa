package consent

import (
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// quickResweeps makes Run look for due resweeps every millisecond; the
// fixture's fake clock decides what is due.
func quickResweeps(c *ServiceConfig) { c.ResweepInterval = time.Millisecond }

// runSvc runs svc until the returned stop is called or the test ends.
func runSvc(t *testing.T, svc *Service) (stop func()) {
	t.Helper()
	return runUntilStopped(t, svc.Run)
}

// eraseVia revokes tok with erasure through svc.
func eraseVia(t *testing.T, svc *Service, tok string) {
	t.Helper()
	if _, err := svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true}); err != nil {
		t.Fatal(err)
	}
}

// settle gives a running Service time for a few passes.
func settle() { time.Sleep(30 * time.Millisecond) }

// requireEraseCalls lets the services settle, then fails the test unless
// the store has had want Erase calls; why says what want stands for.
func (f *fixture) requireEraseCalls(t *testing.T, want int, why string) {
	t.Helper()
	settle()
	if n := len(f.store.eraseCalls()); n != want {
		t.Fatalf("%d Erase calls, want %d: %s", n, want, why)
	}
}

// requireResweepsAt sets the clock to at and waits until the store has
// had want Erase calls (what names the last of them), then moves the clock
// past every replica's turn and fails the test if any more come: what was
// due by at ran, once.
func (f *fixture) requireResweepsAt(t *testing.T, at time.Time, want int, what string) {
	t.Helper()
	f.clk.Set(at)
	waitFor(t, what, func() bool { return len(f.store.eraseCalls()) == want })
	f.clk.Add(DefaultEraseTimeout + time.Hour)
	f.requireEraseCalls(t, want, what+" ran more than once")
}

// replica returns another Service over f's store, apps and revocations,
// as a second or restarted replica is; it looks for due resweeps every
// millisecond.
func (f *fixture) replica(t *testing.T) *Service {
	t.Helper()
	svc, err := NewService(ServiceConfig{
		Keys: f.ring, Store: f.store, Apps: f.apps, Revocations: f.revs, Secret: testSecret,
		Now: f.clk.Now, ResweepInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestResweepOnTime: the replica that erased a consent sweeps it again
// once ResweepAfter has passed (in whole seconds, plus one for the
// store's rounding), not before, and only once: its own erasure is the
// record that it is done. A repeated erasure does not add a resweep.
func TestResweepOnTime(t *testing.T) {
	f := newFixture(t, nil, quickResweeps)
	runSvc(t, f.svc)
	tok := f.grant(t, erasableApp, "analytics")
	eraseVia(t, f.svc, tok)
	eraseVia(t, f.svc, tok) // a client's retry
	gap := DefaultResweepAfter + time.Second

	f.clk.Set(t0.Add(gap - time.Second))
	f.requireEraseCalls(t, 2, "before the resweep is due: only the 2 erasures")
	f.requireResweepsAt(t, t0.Add(gap), 3, "the resweep")
	if calls := f.store.eraseCalls(); calls[2] != calls[0] {
		t.Fatalf("Erase calls %+v; want 2 erasures and one resweep of the same consent", calls)
	}
}

// TestResweepSurvivesRestart: the resweep is derived from the erasures
// log, not held in memory. A replica erases and stops before the resweep
// (with the store down at shutdown, too); a new Service over the same
// store finishes it once the erasing replica's turn has passed.
func TestResweepSurvivesRestart(t *testing.T) {
	f := newFixture(t, nil, quickResweeps)
	stopFirst := runSvc(t, f.svc)
	tok := f.grant(t, erasableApp, "analytics")
	eraseVia(t, f.svc, tok)
	f.store.setFail(true)
	stopFirst()
	f.store.setFail(false)

	second := f.replica(t)
	runSvc(t, second)
	due := t0.Add(DefaultResweepAfter + time.Second)
	takeover := DefaultEraseTimeout + time.Millisecond
	f.clk.Set(due.Add(takeover - time.Second))
	f.requireEraseCalls(t, 1, "before the takeover: only the erasure")
	f.requireResweepsAt(t, due.Add(takeover), 2, "the resweep after the restart")
}

// TestResweepOncePerConsentAcrossReplicas: two replicas run; the one that
// erased sweeps on time, and the other, at its takeover time, finds the
// resweep on record and leaves it.
func TestResweepOncePerConsentAcrossReplicas(t *testing.T) {
	f := newFixture(t, nil, quickResweeps)
	other := f.replica(t)
	runSvc(t, f.svc)
	runSvc(t, other)
	eraseVia(t, f.svc, f.grant(t, erasableApp, "analytics"))
	f.requireResweepsAt(t, t0.Add(DefaultResweepAfter+time.Second), 2, "the resweep")
}

// TestResweepRetries: a resweep that fails stays due and runs again
// ResweepAfter later; one whose look-up fails runs once the store is
// back.
func TestResweepRetries(t *testing.T) {
	f := newFixture(t, nil, quickResweeps)
	runSvc(t, f.svc)
	eraseVia(t, f.svc, f.grant(t, erasableApp, "analytics"))
	f.store.mu.Lock()
	f.store.failErase = 1
	f.store.failErasures = true
	f.store.mu.Unlock()
	due := t0.Add(DefaultResweepAfter + time.Second)
	f.clk.Set(due)
	f.requireEraseCalls(t, 1, "while the erasures log cannot be read")
	f.store.mu.Lock()
	f.store.failErasures = false
	f.store.mu.Unlock()
	waitFor(t, "the failing resweep", func() bool { return len(f.store.eraseCalls()) == 2 })
	f.requireEraseCalls(t, 2, "a failed resweep was retried at once")
	f.requireResweepsAt(t, due.Add(DefaultResweepAfter), 3, "the retried resweep")
}

// TestResweepBoundedPerPass: one pass sweeps at most MaxResweepsPerPass
// consents, oldest first; the rest follow in later passes.
func TestResweepBoundedPerPass(t *testing.T) {
	f := newFixture(t, nil, func(c *ServiceConfig) { c.MaxResweepsPerPass = 2 })
	for i, key := range []string{"k3", "k1", "k2"} {
		f.store.logErasure(erasableApp, key, t0.Add(time.Duration(i)*time.Second))
	}
	f.clk.Set(t0.Add(time.Hour))
	f.svc.resweep(t.Context()) // one pass
	calls := f.store.eraseCalls()
	if len(calls) != 2 || calls[0].key != "k3" || calls[1].key != "k1" {
		t.Fatalf("first pass erased %+v; want k3 and k1", calls)
	}
	f.svc.resweep(t.Context())
	if calls := f.store.eraseCalls(); len(calls) != 3 || calls[2].key != "k2" {
		t.Fatalf("second pass: %+v", calls)
	}
	f.svc.resweep(t.Context())
	if n := len(f.store.eraseCalls()); n != 3 {
		t.Fatalf("%d Erase calls after everything was swept", n)
	}
}
