package consent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/consent"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// countingStore counts the reads of the apps table.
type countingStore struct {
	consent.Store
	reads atomic.Int64
}

func (s *countingStore) Apps(ctx context.Context) ([]consent.App, error) {
	s.reads.Add(1)
	return s.Store.Apps(ctx)
}

// freshReplica is a collector's consent service whose app registry runs
// as in the collector but reloads by itself only hourly: whatever it
// learns sooner, a miss made it look for.
func freshReplica(t *testing.T, store consent.Store, keys *consent.KeyRing) *consent.Service {
	t.Helper()
	apps, err := consent.NewRegistry(consent.RegistryConfig{Store: store, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	consent.RunRegistry(t, apps)
	revs, err := consent.NewRevocations(consent.RevocationsConfig{Store: store, StorePruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := revs.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	svc, err := consent.NewService(consent.ServiceConfig{Keys: keys, Store: store, Apps: apps, Revocations: revs, Secret: itSecret})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func grantWith(svc *consent.Service, app, key string) error {
	_, err := svc.Grant(context.Background(), &consentryv1.GrantRequest{
		AppId: app, AppKey: key, Scopes: []string{"analytics"}, ConsentTextVersion: "v1",
	})
	return err
}

// TestNewAppWorksAtOnce (issue 13, item 5): an app registered, or a key
// rotated, with `consentry apps` is accepted by a running replica at
// once, not up to --app-refresh later as "app id or app key not
// accepted"; the old key is refused; a missing key is a malformed
// request; and a flood of unknown app ids costs ClickHouse a bounded
// number of reads. Against the real ClickHouse.
func TestNewAppWorksAtOnce(t *testing.T) {
	db := testDB(t) // skips under -short, before shared is used
	client := openStore(t, shared.Addr(), db)
	keys := setup(t, client)
	store := &countingStore{Store: client}
	replica := freshReplica(t, store, keys)

	// `consentry apps add`, run elsewhere.
	const id = "com.example.fresh"
	added := time.Now().UTC().Truncate(time.Second)
	app := consent.App{ID: id, KeyHash: consent.HashAppKey("first-key"), Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics},
		Policy: consent.PolicyAnonymous, CreatedAt: added, UpdatedAt: added}
	if err := client.PutApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	if err := grantWith(replica, id, "first-key"); err != nil {
		t.Fatalf("grant right after `apps add`: %v", err)
	}

	// `consentry apps rotate-key` (a second later: the store orders
	// versions by their update time in whole seconds).
	app.KeyHash, app.UpdatedAt = consent.HashAppKey("second-key"), added.Add(time.Second)
	if err := client.PutApp(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	if err := grantWith(replica, id, "second-key"); err != nil {
		t.Fatalf("grant with the new key right after rotate-key: %v", err)
	}
	if err := grantWith(replica, id, "first-key"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("grant with the old key after rotate-key: %v, want Unauthenticated", err)
	}

	if err := grantWith(replica, id, ""); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("grant without a key: %v, want InvalidArgument", err)
	}

	// A flood of unknown ids from many clients.
	before := store.reads.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range 20 {
		wg.Go(func() {
			for i := range 10 {
				if err := grantWith(replica, fmt.Sprintf("com.example.guess%d-%d", c, i), "k"); status.Code(err) != codes.Unauthenticated {
					t.Errorf("grant for an unknown app: %v", err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	reads := store.reads.Load() - before
	limit := int64(elapsed/consent.DefaultRecheckInterval) + 2
	t.Logf("200 grants for unknown apps in %v cost %d reads of the apps table (limit %d)", elapsed.Round(time.Millisecond), reads, limit)
	if reads > limit {
		t.Errorf("%d reads of the apps table, want at most %d", reads, limit)
	}
}
