package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chcluster"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/fleet"
	"github.com/consentry/consentry/internal/grpcrr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// cluster is the ClickHouse cluster of this test binary (ZooKeeper and 2
// shards of 2 replicas of 18.16), started by the first test that needs
// it; TestMain stops it.
var cluster chcluster.Shared

// collectors are two collectors storing into one database of the shared
// cluster, each with its own data dir and spool, sharing the signing key
// and the consent secret: collector 0 connects to shard 1 (replica 1,
// else 2), collector 1 to shard 2.
type collectors struct {
	c  *chcluster.Cluster
	db string
	h  []*harness
}

// startCollectors starts the two collectors in a fresh database; mutate,
// if not nil, changes each one's config.
func startCollectors(t *testing.T, db string, mutate func(i int, c *Config)) *collectors {
	t.Helper()
	c := cluster.Get(t)
	c.DropDatabases(t, db, db+"_private")
	shared := t.TempDir()
	cs := &collectors{c: c, db: db}
	for i := range 2 {
		core, logs := observer.New(zap.InfoLevel)
		cfg := Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			DataDir: t.TempDir(),
			ClickHouse: clickhouse.Config{
				Addr:     c.Addr(i, 0) + "," + c.Addr(i, 1),
				Database: db, Username: c.User(), Password: c.Password(),
				Schema: clickhouse.SchemaOptions{Cluster: c.Name()},
			},
			ConsentSigningKeyFile: filepath.Join(shared, "consent-signing-key.pem"),
			ConsentSecretFile:     filepath.Join(shared, "consent-secret"),
			Anonymizer:            anonymizer.Config{Generalize: anonymizer.GeneralizeConfig{K: 1}},
			AppRefresh:            time.Second,
			// As the single-server harness: a short ship-time horizon.
			RevocationRefresh:      200 * time.Millisecond,
			RevocationWriteTimeout: 2 * time.Second,
			MaxClockSkew:           10 * time.Millisecond,
			Logger:                 zap.New(core),
		}
		cfg.Spool.RetryMax = 500 * time.Millisecond
		if mutate != nil {
			mutate(i, &cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		app, err := New(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("collector %d: %v", i, err)
		}
		h := &harness{t: t, app: app, db: db, logs: logs, served: make(chan error, 1)}
		go func() { h.served <- app.Serve() }()
		if h.conn, err = grpc.NewClient(app.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			t.Fatal(err)
		}
		h.client = consentryv1.NewIngestServiceClient(h.conn)
		h.ch = c.Conn(t, 0, 0)
		t.Cleanup(func() {
			h.conn.Close()
			h.shutdown()
		})
		cs.h = append(cs.h, h)
	}
	return cs
}

// target is the gRPC target that spreads calls over both collectors.
func (cs *collectors) target() string { return grpcrr.Target(cs.h[0].app.Addr(), cs.h[1].app.Addr()) }

// shipped waits until both spools shipped what they acknowledged.
func (cs *collectors) shipped(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, h := range cs.h {
		if err := h.app.Spool().WaitShipped(ctx); err != nil {
			t.Fatalf("collector %d's spool: %v (%+v)", i, err, h.app.Spool().Stats())
		}
	}
}

// replicasAlike waits until the replicas of each shard hold the same rows
// of every event table, and fails t if they do not within two minutes.
func (cs *collectors) replicasAlike(t *testing.T) {
	t.Helper()
	eventuallyAlike(t, cs.c, cs.h[0].app.Client(), clickhouse.EventTables())
}

// eventuallyAlike waits until both replicas of each shard of c hold the
// same rows of tables, counted through cl, and fails t if they do not
// within two minutes.
func eventuallyAlike(t *testing.T, c *chcluster.Cluster, cl *clickhouse.Client, tables []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var diff []string
		for _, table := range tables {
			counts, err := cl.ReplicaCounts(context.Background(), table)
			if err != nil {
				diff = append(diff, err.Error())
				continue
			}
			for s := range c.Shards() {
				if a, b := counts[c.Addr(s, 0)], counts[c.Addr(s, 1)]; a != b {
					diff = append(diff, fmt.Sprintf("%s shard %d: %d and %d rows", table, s+1, a, b))
				}
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas differ after two minutes: %s", strings.Join(diff, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// both reports what each collector wrote to its spool.
func (cs *collectors) rows() []uint64 {
	return []uint64{cs.h[0].app.Spool().Stats().WrittenRows, cs.h[1].app.Spool().Stats().WrittenRows}
}

// TestClusterFleetIntegration: two collectors, each with its own spool,
// behind client-side round robin; a fleet of SDK devices sends through
// both; every event they acknowledged is stored exactly once, as
// analysts count (FINAL through the Distributed tables), on both shards.
func TestClusterFleetIntegration(t *testing.T) {
	cs := startCollectors(t, "t_cluster_fleet", nil)
	ctx := context.Background()
	const app, key = "com.example.fleet", "ck_fleet-key-0123456789abcdefghijklmnopqrstu"
	now := time.Now().UTC()
	if err := cs.h[0].app.Client().PutApp(ctx, consent.App{ID: app, KeyHash: consent.HashAppKey(key), Policy: consent.PolicyAnonymous,
		CreatedAt: now, UpdatedAt: now, Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}}); err != nil {
		t.Fatal(err)
	}
	res, err := fleet.Run(ctx, fleet.Config{Endpoint: cs.target(), AppID: app, AppKey: key, Devices: 40, Sessions: 3, Concurrency: 8, Dir: t.TempDir(), Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cs.shipped(t, time.Minute)
	written := cs.rows()
	t.Logf("fleet: %d devices sent %d events in %v; collectors wrote %v rows", res.Devices, res.Sent, res.Elapsed.Round(time.Millisecond), written)
	if written[0] == 0 || written[1] == 0 {
		t.Errorf("round robin left a collector idle: rows written %v", written)
	}
	// A read through a Distributed table asks one replica of each shard,
	// which may not have fetched the newest parts yet: wait until the
	// replicas are alike.
	cs.replicasAlike(t)
	var final, distinct uint64
	for _, table := range clickhouse.EventTables() {
		for q, sum := range map[string]*uint64{
			"SELECT count() FROM %s.%s FINAL WHERE app_id = %s":       &final,
			"SELECT uniqExact(event_id) FROM %s.%s WHERE app_id = %s": &distinct,
		} {
			var n uint64
			if err := cs.h[1].ch.QueryRow(ctx, fmt.Sprintf(q, cs.db, table, quoteSQL(app))).Scan(&n); err != nil {
				t.Fatal(err)
			}
			*sum += n
		}
	}
	if int64(final) != res.Sent || int64(distinct) != res.Sent {
		t.Errorf("%d events acknowledged; stored %d distinct event ids, %d rows under FINAL", res.Sent, distinct, final)
	}
}

// quoteSQL quotes s as an SQL string literal.
func quoteSQL(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// startClusterTraffic sends through both collectors, round robin, with
// tokens of the collectors' key.
func startClusterTraffic(t *testing.T, cs *collectors) *traffic {
	t.Helper()
	token := cs.h[0].token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	return startTraffic(t, cs.h[0].app.StoredEventID, cs.target, token, 4, 50, 20*time.Millisecond)
}

// TestClusterReplicaKilledIntegration kills the replica that collector 0
// connects to with SIGKILL in the middle of traffic; its supervisor starts
// it again. No acknowledged event is lost or stored twice, and the
// replica catches up: both replicas of each shard hold the same rows.
func TestClusterReplicaKilledIntegration(t *testing.T) {
	cs := startCollectors(t, "t_cluster_kill", nil)
	tr := startClusterTraffic(t, cs)
	time.Sleep(1500 * time.Millisecond)
	srv := cs.c.Server(0, 0)
	restarts := srv.Restarts()
	if err := syscall.Kill(-srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := tr.ackedCount()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for srv.Restarts() == restarts {
		if err := ctx.Err(); err != nil {
			t.Fatalf("the killed replica did not restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := srv.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	acked := tr.halt()
	t.Logf("%d events acknowledged, %d of them after the kill; refusals %v", len(acked), len(acked)-killed, tr.refusals)
	if len(acked) == killed {
		t.Errorf("nothing acknowledged after the kill (refusals %v, last %v)", tr.refusals, tr.lastErr)
	}
	cs.shipped(t, 2*time.Minute)
	cs.replicasAlike(t)
	requireAckedOnce(t, cs.h[1].ch, cs.db, acked)
}

// TestClusterZooKeeperOutageIntegration stops ZooKeeper for 20 seconds in
// the middle of traffic: replicated tables turn read-only and inserts
// fail, but ingest rides through on the spools, and once ZooKeeper is
// back every acknowledged event is stored once.
func TestClusterZooKeeperOutageIntegration(t *testing.T) {
	cs := startCollectors(t, "t_cluster_zk", nil)
	tr := startClusterTraffic(t, cs)
	time.Sleep(1500 * time.Millisecond)
	zk := cs.c.ZooKeeper()
	ctx := context.Background()
	if err := zk.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before := tr.ackedCount()
	time.Sleep(20 * time.Second)
	during := tr.ackedCount() - before
	if err := zk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	time.Sleep(2 * time.Second)
	acked := tr.halt()
	t.Logf("%d events acknowledged while ZooKeeper was away; refusals %v", during, tr.refusals)
	if during == 0 {
		t.Errorf("nothing was acknowledged while ZooKeeper was away (refusals %v, last %v)", tr.refusals, tr.lastErr)
	}
	cs.shipped(t, 3*time.Minute)
	t.Logf("spools shipped %v after ZooKeeper came back", time.Since(back).Round(time.Millisecond))
	cs.replicasAlike(t)
	requireAckedOnce(t, cs.h[1].ch, cs.db, acked)
}

// TestClusterRevokeAndEraseIntegration revokes a consent through collector
// 0: collector 1, on the other shard, refuses it within the propagation
// bound. Revoking with erasure deletes the consent's rows from every
// shard and replica, and the receipt counts the rows that were there.
func TestClusterRevokeAndEraseIntegration(t *testing.T) {
	cs := startCollectors(t, "t_cluster_revoke", nil)
	a, b := cs.h[0], cs.h[1]
	const key = "ck_erasable-key-0123456789abcdefghijklmnopq"
	registerApp(t, a, testApp, key, consent.PolicyErasable)
	if err := b.app.consent.apps.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	erased, kept := grantHTTP(t, a, testApp, key), grantHTTP(t, b, testApp, key)
	send := func(h *harness, tok string, seed uint64, n int) *consentryv1.IngestResponse {
		t.Helper()
		return h.ingestAnalyticsAndCrashes(t, eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: seed}).Batch(n, time.Now()))
	}
	var stored, keptRows uint32
	for i := range 10 {
		stored += send(cs.h[i%2], erased, uint64(i), 100).GetAccepted()
		keptRows += send(cs.h[i%2], kept, uint64(100+i), 50).GetAccepted()
	}
	cs.shipped(t, time.Minute)
	cs.replicasAlike(t)
	perShard := make([]uint64, cs.c.Shards())
	for _, table := range clickhouse.EventTables() {
		counts, err := a.app.Client().ReplicaCounts(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		for s := range cs.c.Shards() {
			perShard[s] += counts[cs.c.Addr(s, 0)]
		}
	}
	if slices.Contains(perShard, 0) {
		t.Fatalf("rows per shard %v: want both shards to hold some", perShard)
	}

	rev := a.revoke(t, erased, false)
	revoked := time.Now()
	bound := time.Duration(rev.GetPropagationBoundMs()) * time.Millisecond
	for {
		r := send(b, erased, 999, 10)
		if r.GetConsentState() == consentryv1.ConsentState_CONSENT_STATE_REVOKED && r.GetAccepted() == 0 {
			break
		}
		if time.Since(revoked) > bound {
			t.Fatalf("the collector on the other shard still accepts %v after the revocation (bound %v)", time.Since(revoked), bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the collector on the other shard refused the revoked consent %v after Revoke returned (bound %v)", time.Since(revoked).Round(time.Millisecond), bound)

	// Revoking again, with erasure.
	rc := a.revoke(t, erased, true).GetReceipt()
	if deleted := erasedRows(rc); rc.GetOutcome() != consent.OutcomeErased || deleted != uint64(stored) {
		t.Errorf("receipt %v: %d rows deleted, %d stored under the consent", rc, deleted, stored)
	}
	// No replica of any shard keeps a row of the erased consent: each
	// holds the other consent's rows alone, and its shard's replicas
	// hold the same; through the Distributed tables every kept row is
	// there.
	for _, table := range clickhouse.EventTables() {
		for s := range cs.c.Shards() {
			for r := range cs.c.Replicas() {
				var keys uint64
				q := fmt.Sprintf("SELECT uniqExact(consent_key) FROM %s.%s_local WHERE app_id = %s", cs.db, table, quoteSQL(testApp))
				if err := cs.c.Conn(t, s, r).QueryRow(context.Background(), q).Scan(&keys); err != nil {
					t.Fatal(err)
				}
				if keys > 1 {
					t.Errorf("%s: shard %d replica %d still holds rows of %d consents, want the kept one's alone", table, s+1, r+1, keys)
				}
			}
		}
	}
	cs.replicasAlike(t)
	if n := a.total(t); n != uint64(keptRows) {
		t.Errorf("%d rows left, want the %d of the kept consent", n, keptRows)
	}
}
