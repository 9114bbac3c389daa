package consent

import (
	"errors"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func testApp(id string, policy Policy, updated time.Time) App {
	return App{ID: id, KeyHash: HashAppKey("key-" + id), Policy: policy, UpdatedAt: updated,
		Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports}}
}

func newTestRegistry(t testing.TB, store Store) *Registry {
	t.Helper()
	r, err := NewRegistry(RegistryConfig{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistry(t *testing.T) {
	ctx := t.Context()
	store := newFakeStore(testApp("com.example.notes", PolicyAnonymous, t0))
	r := newTestRegistry(t, store)
	if r.Loaded() {
		t.Fatal("loaded before Refresh")
	}
	if _, ok := r.App("com.example.notes"); ok {
		t.Fatal("app known before the load")
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Loaded() || r.WaitLoaded(ctx) != nil {
		t.Fatal("not loaded after Refresh")
	}
	a, ok := r.App("com.example.notes")
	if !ok || a.Policy != PolicyAnonymous {
		t.Fatalf("App = %+v, %v", a, ok)
	}
	a.Scopes[0] = consentryv1.ScopeLocation
	if b, _ := r.App("com.example.notes"); b.Scopes[0] != consentryv1.ScopeAnalytics {
		t.Fatal("modifying a returned app changed the registry")
	}

	// Put takes effect at once, and survives a load that does not show it
	// yet or shows an older version.
	r.Put(testApp("com.example.new", PolicyErasable, t0))
	r.Put(testApp("com.example.notes", PolicyErasable, t0.Add(time.Minute)))
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a, ok := r.App("com.example.new"); !ok || a.Policy != PolicyErasable {
		t.Fatal("a Put app vanished on refresh")
	}
	if a, _ := r.App("com.example.notes"); a.Policy != PolicyErasable {
		t.Fatal("an older stored version replaced a newer Put")
	}

	// A newer version in the store wins.
	if err := store.PutApp(ctx, testApp("com.example.notes", PolicyAnonymous, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.App("com.example.notes"); a.Policy != PolicyAnonymous {
		t.Fatal("a newer stored version was ignored")
	}

	// A failed load keeps what was loaded.
	store.setFail(true)
	if err := r.Refresh(ctx); !errors.Is(err, errStoreDown) {
		t.Fatalf("Refresh with the store down: %v", err)
	}
	if _, ok := r.App("com.example.notes"); !ok || r.Len() != 2 {
		t.Fatal("a failed load dropped apps")
	}
}

func TestRegistryRun(t *testing.T) {
	store := newFakeStore()
	r, err := NewRegistry(RegistryConfig{Store: store, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runRegistry(t, r)
	if err := store.PutApp(t.Context(), testApp("com.example.notes", PolicyErasable, t0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the app to be loaded", func() bool { _, ok := r.App("com.example.notes"); return ok })
}

func TestNewRegistryConfig(t *testing.T) {
	if _, err := NewRegistry(RegistryConfig{}); err == nil {
		t.Error("no store accepted")
	}
	if _, err := NewRegistry(RegistryConfig{Store: newFakeStore(), Interval: -time.Second}); err == nil {
		t.Error("negative interval accepted")
	}
}
