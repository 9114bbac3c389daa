package consent

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// runRegistry starts r.Run until the test ends and waits for the first
// load.
func runRegistry(t *testing.T, r *Registry) {
	t.Helper()
	runUntilStopped(t, r.Run)
	if err := r.WaitLoaded(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// slowRegistry returns a running registry over store that reloads by
// itself only hourly, so every reload a test sees was asked by a miss.
func slowRegistry(t *testing.T, store Store, mod func(*RegistryConfig)) *Registry {
	t.Helper()
	cfg := RegistryConfig{Store: store, Interval: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runRegistry(t, r)
	return r
}

// replicaOver returns a Service with its own running registry, over a store
// other replicas share.
func replicaOver(t *testing.T, store *fakeStore) (*Service, *Registry, *fakeRegistry) {
	t.Helper()
	apps := slowRegistry(t, store, nil)
	revs := newTestRevocations(t, store, newClock(time.Now()), nil)
	if err := revs.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := &fakeRegistry{}
	svc, err := NewService(ServiceConfig{Keys: mustRing(t, mustKey(t)), Store: store, Apps: apps, Revocations: revs,
		Secret: testSecret, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return svc, apps, m
}

// TestGrantNewAppAtOnce: an app added to the store (`consentry apps add`
// on another replica) is granted at once, not after the reload interval,
// and the miss that found it is not counted as a failed grant.
func TestGrantNewAppAtOnce(t *testing.T) {
	store := newFakeStore()
	svc, _, m := replicaOver(t, store)
	const id = "com.example.new"
	if err := store.PutApp(t.Context(), testApp(id, PolicyAnonymous, time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Grant(t.Context(), grantReq(id, appKey(id))); err != nil {
		t.Fatalf("grant right after the app was added: %v", err)
	}
	if n := m.value("consent_grants_failed_total"); n != 0 {
		t.Errorf("failed grants = %v, want 0: a miss that turned into a hit counted as a failure", n)
	}
}

// TestGrantRotatedKeyAtOnce: after the key is rotated elsewhere, the new
// key is accepted at once and the old one refused.
func TestGrantRotatedKeyAtOnce(t *testing.T) {
	const id = "com.example.notes"
	created := time.Now().Add(-time.Hour)
	store := newFakeStore(testApp(id, PolicyAnonymous, created))
	svc, _, m := replicaOver(t, store)
	if _, err := svc.Grant(t.Context(), grantReq(id, appKey(id))); err != nil {
		t.Fatal(err)
	}
	rotated := testApp(id, PolicyAnonymous, time.Now())
	rotated.KeyHash = HashAppKey("new key")
	if err := store.PutApp(t.Context(), rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Grant(t.Context(), grantReq(id, "new key")); err != nil {
		t.Fatalf("grant with the new key right after rotation: %v", err)
	}
	_, err := svc.Grant(t.Context(), grantReq(id, appKey(id)))
	wantStatus(t, err, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String())
	if n := m.value("consent_grants_failed_total"); n != 1 {
		t.Errorf("failed grants = %v, want 1 (the old key)", n)
	}
}

// TestRecheckFloodBounded: a flood of grants for unknown app ids costs
// the store at most one read per RecheckInterval (50 clients, each
// guessing one id after another), and every one of them is refused.
func TestRecheckFloodBounded(t *testing.T) {
	store := newFakeStore()
	apps := slowRegistry(t, store, func(c *RegistryConfig) { c.RecheckInterval = 50 * time.Millisecond })
	before := store.appsCalls()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("com.example.guess%d.%d", g, i)
				if _, ok, err := apps.Recheck(t.Context(), id, HashAppKey("k")); ok || err != nil {
					t.Errorf("Recheck(%s) = %v, %v", id, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	reads := store.appsCalls() - before
	limit := int(elapsed/(50*time.Millisecond)) + 2
	t.Logf("500 misses in %v cost %d store reads (limit %d)", elapsed.Round(time.Millisecond), reads, limit)
	if reads > limit {
		t.Errorf("%d store reads for 500 misses in %v, want at most %d", reads, elapsed, limit)
	}
	if reads == 0 {
		t.Error("no store read at all: misses were not rechecked")
	}
}

// TestRecheckMissCache: repeating a miss reuses its outcome for MissTTL
// without reading, and a different key for the same id reads again.
func TestRecheckMissCache(t *testing.T) {
	const id = "com.example.notes"
	store := newFakeStore(testApp(id, PolicyAnonymous, time.Now()))
	apps := slowRegistry(t, store, func(c *RegistryConfig) { c.RecheckInterval = time.Millisecond })
	before := store.appsCalls()
	for range 20 {
		if _, _, err := apps.Recheck(t.Context(), id, HashAppKey("wrong")); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.appsCalls() - before; n != 1 {
		t.Errorf("20 repeats of one miss cost %d reads, want 1", n)
	}
	if _, _, err := apps.Recheck(t.Context(), id, HashAppKey("another")); err != nil {
		t.Fatal(err)
	}
	if n := store.appsCalls() - before; n != 2 {
		t.Errorf("another key cost %d reads in all, want 2", n)
	}
	// A store failure is an error, remembered like a miss.
	store.setFail(true)
	if _, _, err := apps.Recheck(t.Context(), "com.example.other", ""); !errors.Is(err, errStoreDown) {
		t.Errorf("Recheck with the store down: %v", err)
	}
}

// TestRecheckNotRunning: without Run there is nothing to reload with.
func TestRecheckNotRunning(t *testing.T) {
	store := newFakeStore()
	r := newTestRegistry(t, store)
	if _, ok, err := r.Recheck(t.Context(), "com.example.x", ""); ok || !errors.Is(err, ErrRegistryStopped) {
		t.Errorf("Recheck = %v, %v; want ErrRegistryStopped", ok, err)
	}
	if n := store.appsCalls(); n != 0 {
		t.Errorf("%d store reads", n)
	}
}

// TestFilterFindsNewErasableApp: the consent stage of a replica that
// has not reloaded yet has its registry look for an app a valid token
// names, without waiting: within about RecheckInterval the app's batches
// carry their pseudonym. A stream of batches for an app that is not
// registered costs one read per MissTTL.
func TestFilterFindsNewErasableApp(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	store := newFakeStore()
	apps := slowRegistry(t, store, nil)
	const id = "com.example.erasable"
	if err := store.PutApp(t.Context(), testApp(id, PolicyErasable, time.Now())); err != nil {
		t.Fatal(err)
	}
	f, err := NewFilter(FilterConfig{Keys: ring, Apps: apps, Secret: testSecret, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(app string) *pipeline.Batch {
		c := claims()
		c.AppID = app
		return gestureBatch(mustSign(t, ring, c), app, t0)
	}
	start := time.Now()
	if err := f.Process(t.Context(), batch(id)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("the consent stage waited %v for the registry", d)
	}
	waitFor(t, "the registry to hold the new app", func() bool { _, ok := apps.App(id); return ok })
	b := batch(id)
	if err := f.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if b.ConsentKey == "" {
		t.Fatal("an erasable app's batch got no consent key once the registry held it")
	}

	before := store.appsCalls()
	for range 50 {
		if err := f.Process(t.Context(), batch("com.example.unregistered")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * DefaultRecheckInterval)
	if n := store.appsCalls() - before; n != 1 {
		t.Errorf("50 batches of an unregistered app cost %d reads, want 1", n)
	}
}

// TestRecheckMissesBounded: the misses remembered stay within MaxMisses,
// however many distinct ones there are and however often one repeats.
func TestRecheckMissesBounded(t *testing.T) {
	store := newFakeStore()
	apps := slowRegistry(t, store, func(c *RegistryConfig) {
		c.RecheckInterval, c.MissTTL, c.MaxMisses = time.Millisecond, time.Millisecond, 10
	})
	for i := range 60 {
		if _, _, err := apps.Recheck(t.Context(), fmt.Sprintf("com.example.x%d", i%15), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond / 2)
	}
	apps.rmu.Lock()
	defer apps.rmu.Unlock()
	if len(apps.misses) > 10 || len(apps.missOrder) > 11 {
		t.Errorf("%d misses held, %d queued; want at most 10 and 11", len(apps.misses), len(apps.missOrder))
	}
}
