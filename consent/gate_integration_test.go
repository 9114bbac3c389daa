package consent_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const (
	itErasable  = "com.example.notes"
	itAnonymous = "com.example.anon"
)

var itSecret = []byte("0123456789abcdef0123456789abcdef")

// testDB returns a database name for t, dropping any left by an earlier
// run.
func testDB(t *testing.T) string {
	t.Helper()
	chtest.Require(t, shared)
	name := "t_" + strings.ToLower(strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, t.Name()))
	for _, db := range []string{name, name + "_private"} {
		if err := chtest.Conn(t, shared).Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// openStore opens a migrated clickhouse.Client on addr (the shared
// server, or a proxy to it) in database db.
func openStore(t *testing.T, addr, db string) *clickhouse.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := clickhouse.Open(ctx, clickhouse.Config{Addr: addr, Database: db, Username: shared.User(), Password: shared.Password(), DialTimeout: time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return c
}

// replica is one collector's consent side over a store: what
// collector.App wires, refreshed by hand unless the test runs it.
type replica struct {
	revs *consent.Revocations
	gate *consent.Gate
	apps *consent.Registry
	svc  *consent.Service
}

func newReplica(t *testing.T, store consent.Store, keys *consent.KeyRing, svcMod func(*consent.ServiceConfig)) *replica {
	t.Helper()
	r := &replica{}
	var err error
	if r.revs, err = consent.NewRevocations(consent.RevocationsConfig{
		Store: store, Interval: 50 * time.Millisecond, Bound: 200 * time.Millisecond, StorePruneInterval: -1,
	}); err != nil {
		t.Fatal(err)
	}
	if r.gate, err = consent.NewGate(consent.GateConfig{Revocations: r.revs, Store: store}); err != nil {
		t.Fatal(err)
	}
	if r.apps, err = consent.NewRegistry(consent.RegistryConfig{Store: store}); err != nil {
		t.Fatal(err)
	}
	cfg := consent.ServiceConfig{Keys: keys, Store: store, Apps: r.apps, Revocations: r.revs, Gate: r.gate, Secret: itSecret}
	if svcMod != nil {
		svcMod(&cfg)
	}
	if r.svc, err = consent.NewService(cfg); err != nil {
		t.Fatal(err)
	}
	r.refresh(t)
	return r
}

// refresh reloads revocations, erasures and apps.
func (r *replica) refresh(t *testing.T) {
	t.Helper()
	for _, f := range []func(context.Context) error{r.revs.Refresh, r.gate.Refresh, r.apps.Refresh} {
		if err := f(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// grant returns a token of app and its consent id.
func (r *replica) grant(t *testing.T, keys *consent.KeyRing, app string) (token, id string) {
	t.Helper()
	resp, err := r.svc.Grant(t.Context(), &consentryv1.GrantRequest{
		AppId: app, AppKey: "key-" + app, Scopes: []string{"analytics"}, ConsentTextVersion: "v1",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := keys.Verify(resp.GetConsentToken(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConsentToken(), c.ConsentID
}

// setup returns a key ring and registers the test apps in store.
func setup(t *testing.T, store consent.Store) *consent.KeyRing {
	t.Helper()
	keys := consenttest.New(t, nil).Ring
	now := time.Now().Truncate(time.Second)
	for app, policy := range map[string]consent.Policy{itErasable: consent.PolicyErasable, itAnonymous: consent.PolicyAnonymous} {
		if err := store.PutApp(t.Context(), consent.App{ID: app, KeyHash: consent.HashAppKey("key-" + app),
			Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics}, Policy: policy, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// sessions returns n session rows of app under consentKey.
func sessions(app, consentKey string, n int) *pipeline.Rows {
	rows := &pipeline.Rows{}
	for range n {
		r := pipeline.SessionRow{Phase: "start"}
		r.AppID, r.ConsentKey, r.EventTime, r.SessionKey = app, consentKey, time.Now().UTC().Truncate(time.Minute), 7
		_, _ = rand.Read(r.EventID[:])
		rows.Sessions = append(rows.Sessions, r)
	}
	return rows
}

// count runs a count query on the shared server.
func count(t *testing.T, q string) uint64 {
	t.Helper()
	var n uint64
	if err := chtest.Conn(t, shared).QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func originOf(id, key string, received time.Time) pipeline.Origin {
	return pipeline.Origin{ConsentHash: sha256.Sum256([]byte(id)), ConsentKey: key, Received: received}
}

// TestGateIntegration: a gate over real revocations and erasures tables
// (ClickHouse 18.16) refuses what another replica revoked or erased, by
// receive time for revocation and at any time for erasure; the replica
// that erased knows at once.
func TestGateIntegration(t *testing.T) {
	db := testDB(t)
	store1, store2 := openStore(t, shared.Addr(), db), openStore(t, shared.Addr(), db)
	keys := setup(t, store1)
	// The revoking replica's clock is 10s behind, so batches received
	// after its revocations lie behind the other replica's horizon now.
	behind := func() time.Time { return time.Now().Add(-10 * time.Second) }
	r1 := newReplica(t, store1, keys, func(c *consent.ServiceConfig) { c.Now = behind })
	tokA, idA := r1.grant(t, keys, itAnonymous)
	tokB, idB := r1.grant(t, keys, itErasable)
	_, idC := r1.grant(t, keys, itErasable)
	keyB, keyC := consent.ConsentKey(itSecret, idB), consent.ConsentKey(itSecret, idC)
	if err := store1.Insert(t.Context(), sessions(itErasable, keyB, 3)); err != nil {
		t.Fatal(err)
	}
	resp, err := r1.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tokA})
	if err != nil {
		t.Fatal(err)
	}
	revokedA := time.UnixMilli(resp.GetRevokedAtUnixMs())
	if _, err := r1.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tokB, Erase: true}); err != nil {
		t.Fatal(err)
	}
	if !r1.gate.Erased(keyB) {
		t.Fatal("the erasing replica's gate does not know the erasure at once")
	}

	r2 := newReplica(t, store2, keys, nil)
	h, ok := r2.gate.Horizon()
	if !ok || h.Before(revokedA.Add(time.Second)) {
		t.Fatalf("horizon %v, %v: not past the revocation", h, ok)
	}
	skew := consent.DefaultMaxClockSkew
	for _, tt := range []struct {
		name   string
		origin pipeline.Origin
		admit  bool
	}{
		{"revoked, received before", originOf(idA, "", revokedA.Add(-skew-time.Second)), true},
		{"revoked, received at the revocation", originOf(idA, "", revokedA), false},
		{"revoked, received after", originOf(idA, "", revokedA.Add(time.Second)), false},
		{"erased, received before", originOf(idB, keyB, revokedA.Add(-time.Hour)), false},
		{"erased key without a consent hash", pipeline.Origin{ConsentKey: keyB, Received: revokedA}, false},
		{"neither", originOf(idC, keyC, revokedA.Add(time.Second)), true},
	} {
		if got := r2.gate.Admit(tt.origin); got != tt.admit {
			t.Errorf("%s: Admit = %v, want %v", tt.name, got, tt.admit)
		}
	}
	if n := count(t, fmt.Sprintf("SELECT count() FROM %s.sessions WHERE consent_key = '%s'", db, keyB)); n != 0 {
		t.Fatalf("%d rows of the erased consent left", n)
	}
}

// TestRevokeDurableIntegration: Revoke answers only once ClickHouse holds
// the revocation; while ClickHouse is unreachable it answers UNAVAILABLE
// with a retry delay within the write timeout and revokes nothing
// locally; the replica that served it refuses the consent at once,
// before any refresh.
func TestRevokeDurableIntegration(t *testing.T) {
	db := testDB(t)
	proxy := faultproxy.StartForTest(t, shared.Addr())
	store := openStore(t, proxy.Addr(), db)
	keys := setup(t, store)
	r := newReplica(t, store, keys, nil)
	tok, id := r.grant(t, keys, itAnonymous)

	proxy.Refuse(true)
	proxy.Cut()
	start := time.Now()
	_, err := r.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	took := time.Since(start)
	st, _ := status.FromError(err)
	var retry bool
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			retry = true
		}
	}
	if st.Code() != codes.Unavailable || !retry {
		t.Fatalf("Revoke with ClickHouse down: %v (retry delay %v), want UNAVAILABLE with a retry delay", err, retry)
	}
	// The catch-up refresh (bounded by the bound) and the write (by the
	// write timeout) are bounded; a margin for a loaded machine.
	if limit := consent.DefaultWriteTimeout + 200*time.Millisecond + 3*time.Second; took > limit {
		t.Errorf("Revoke took %v with ClickHouse down; want at most %v", took, limit)
	}
	if _, ok := r.revs.Revoked(id); ok {
		t.Fatal("revoked locally although ClickHouse does not hold it")
	}
	hash := consent.HashConsentID(id)
	q := fmt.Sprintf("SELECT count() FROM %s.revocations WHERE consent_hash = '%s'", db, hash)
	if n := count(t, q); n != 0 {
		t.Fatalf("%d revocations stored by a failed Revoke", n)
	}

	proxy.Refuse(false)
	resp, err := r.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if err != nil {
		t.Fatalf("Revoke with ClickHouse back: %v", err)
	}
	if n := count(t, q); n != 1 {
		t.Fatalf("Revoke returned with %d revocations stored", n)
	}
	at, ok := r.revs.Revoked(id)
	if !ok || at.UnixMilli() != resp.GetRevokedAtUnixMs() {
		t.Fatalf("the serving replica's set: %v, %v", at, ok)
	}
	if r.gate.Admit(originOf(id, "", at)) {
		t.Fatal("the serving replica's gate admits the revoked consent")
	}
}

// TestResweepAfterRestartIntegration: a replica erases a consent and
// stops before the resweep, with ClickHouse unreachable at its shutdown;
// rows of the consent stored after the first sweep (a batch that passed
// the consent check just before the revocation) are deleted by a new
// replica's resweep, which runs once and leaves the audit log with the
// two erasures.
func TestResweepAfterRestartIntegration(t *testing.T) {
	db := testDB(t)
	proxy := faultproxy.StartForTest(t, shared.Addr())
	store1, store2 := openStore(t, proxy.Addr(), db), openStore(t, shared.Addr(), db)
	keys := setup(t, store2)
	quick := func(c *consent.ServiceConfig) {
		c.ResweepAfter = 300 * time.Millisecond
		c.ResweepInterval = 100 * time.Millisecond
		c.EraseTimeout = 3 * time.Second
	}
	r1 := newReplica(t, store1, keys, quick)
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- r1.svc.Run(ctx1) }()

	tok, id := r1.grant(t, keys, itErasable)
	key := consent.ConsentKey(itSecret, id)
	if err := store2.Insert(t.Context(), sessions(itErasable, key, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true}); err != nil {
		t.Fatal(err)
	}
	if err := store2.Insert(t.Context(), sessions(itErasable, key, 2)); err != nil { // late rows
		t.Fatal(err)
	}
	proxy.Refuse(true)
	proxy.Cut()
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	rowsQ := fmt.Sprintf("SELECT count() FROM %s.sessions WHERE consent_key = '%s'", db, key)
	if n := count(t, rowsQ); n != 2 {
		t.Fatalf("%d rows before the restart; want the 2 late ones", n)
	}

	r2 := newReplica(t, store2, keys, quick)
	ctx2, stop2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- r2.svc.Run(ctx2) }()
	defer func() {
		stop2()
		if err := <-done2; err != nil {
			t.Error(err)
		}
	}()
	// Done once the rows are gone and the resweep's erasure is logged.
	auditQ := fmt.Sprintf("SELECT count() FROM %s.erasures WHERE consent_key = '%s'", db, key)
	tables := uint64(len(clickhouse.EventTables()))
	deadline := time.Now().Add(30 * time.Second)
	for count(t, rowsQ) != 0 || count(t, auditQ) < 2*tables {
		if time.Now().After(deadline) {
			t.Fatalf("the new replica did not resweep: %d rows left, %d audit rows", count(t, rowsQ), count(t, auditQ))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // ten more passes: no second resweep
	if n := count(t, auditQ); n != 2*tables {
		t.Fatalf("%d audit rows; want %d: the erasure and one resweep", n, 2*tables)
	}
}

// TestUnsweptErasuresIntegration pins the store's side of the resweep
// contract on a real server: whole-second boundaries of due and done,
// the window, order and limit.
func TestUnsweptErasuresIntegration(t *testing.T) {
	db := testDB(t)
	store := openStore(t, shared.Addr(), db)
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	const gap = 41 * time.Second
	log := map[string][]time.Duration{ // consent key: erasures, after base
		"due":          {0},
		"due-repeated": {time.Second, gap - time.Second}, // a retry, not a resweep
		"swept":        {2 * time.Second, gap + 2*time.Second},
		"not-due-yet":  {10 * time.Second},
		"before-since": {-2 * time.Minute},
	}
	conn := chtest.Conn(t, shared)
	batch, err := conn.PrepareBatch(t.Context(), fmt.Sprintf("INSERT INTO %s.erasures (erased_at, app_id, consent_key, table_name, rows)", db))
	if err != nil {
		t.Fatal(err)
	}
	for key, offsets := range log {
		for _, off := range offsets {
			for _, table := range clickhouse.EventTables() {
				if err := batch.Append(base.Add(off), itErasable, key, table, uint64(0)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	since, dueBy := base.Add(-time.Minute), base.Add(9*time.Second)
	got, err := store.UnsweptErasures(t.Context(), since, dueBy, gap, 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got {
		keys = append(keys, e.ConsentKey)
		if e.AppID != itErasable {
			t.Errorf("%s: app %q", e.ConsentKey, e.AppID)
		}
	}
	if want := "due,due-repeated"; strings.Join(keys, ",") != want {
		t.Fatalf("unswept %v; want %s", keys, want)
	}
	if e := got[1]; !e.First.Equal(base.Add(time.Second)) || !e.Last.Equal(base.Add(gap-time.Second)) {
		t.Fatalf("due-repeated: first %v, last %v", e.First, e.Last)
	}
	if got, err := store.UnsweptErasures(t.Context(), since, dueBy, gap, 1); err != nil || len(got) != 1 || got[0].ConsentKey != "due" {
		t.Fatalf("limit 1: %+v, %v", got, err)
	}
	keysErased, err := store.ErasedConsentKeys(t.Context(), since)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keysErased["before-since"]; ok || len(keysErased) != 4 {
		t.Fatalf("erased consent keys since %v: %v", since, keysErased)
	}
}
