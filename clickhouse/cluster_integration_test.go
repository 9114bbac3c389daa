package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chcluster"
	"github.com/consentry/consentry/pipeline"
)

// cluster is the ClickHouse cluster of this test binary (ZooKeeper and 2
// shards of 2 replicas of 18.16), started by the first test that needs
// it and stopped by TestMain.
var cluster chcluster.Shared

// clusterClient opens a Client on database db of the shared cluster,
// connected to the servers at addrs (shard, replica pairs from 0).
func clusterClient(t testing.TB, db string, at ...[2]int) *Client {
	t.Helper()
	c := cluster.Get(t)
	var addrs []string
	for _, sr := range at {
		addrs = append(addrs, c.Addr(sr[0], sr[1]))
	}
	if len(addrs) == 0 {
		addrs = []string{c.Addr(0, 0)}
	}
	cfg := Config{Addr: joinAddrs(addrs), Database: db, Username: c.User(), Password: c.Password(),
		Schema: SchemaOptions{Cluster: c.Name()}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := Open(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open on the cluster: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func joinAddrs(addrs []string) string {
	s := ""
	for i, a := range addrs {
		if i > 0 {
			s += ","
		}
		s += a
	}
	return s
}

// clusterDB returns a database name for t on the cluster, dropping any
// left by an earlier run.
func clusterDB(t testing.TB, name string) string {
	t.Helper()
	cluster.Get(t).DropDatabases(t, name, name+"_private")
	return name
}

// onEveryServer runs q, a count, on every server, in shard and replica
// order.
func onEveryServer(t *testing.T, q string) []uint64 {
	t.Helper()
	c := cluster.Get(t)
	var out []uint64
	for s := range c.Shards() {
		for r := range c.Replicas() {
			var n uint64
			if err := c.Conn(t, s, r).QueryRow(context.Background(), q).Scan(&n); err != nil {
				t.Fatalf("shard %d replica %d: %s: %v", s, r, q, err)
			}
			out = append(out, n)
		}
	}
	return out
}

// eventually retries check until it returns nil or a minute has passed.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterMigrateIntegration migrates one database from two collectors
// connected to different shards at once, and checks that every server has
// every table, the sharded ones behind Distributed tables, and that a
// second migration has nothing to do.
func TestClusterMigrateIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_migrate")
	a, b := clusterClient(t, db, [2]int{0, 0}), clusterClient(t, db, [2]int{1, 1})
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { _, errA = a.Migrate(context.Background()) })
	wg.Go(func() { _, errB = b.Migrate(context.Background()) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("concurrent Migrate on the cluster: %v, %v", errA, errB)
	}
	o := a.schema.opts
	var want []string
	for _, tbl := range a.tables() {
		want = append(want, tbl.database+"."+tbl.storage(o))
		if tbl.distributed(o) {
			want = append(want, tbl.database+"."+tbl.name)
		}
	}
	for _, a := range a.schema.aggregates() {
		want = append(want, o.Database+"."+a.view)
	}
	slices.Sort(want)
	c := cluster.Get(t)
	for s := range c.Shards() {
		for r := range c.Replicas() {
			var got []string
			rows, err := c.Conn(t, s, r).Query(context.Background(),
				"SELECT concat(database, '.', name) FROM system.tables WHERE database IN (?, ?) ORDER BY 1", o.Database, o.PrivateDatabase)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var name string
				if err := rows.Scan(&name); err != nil {
					t.Fatal(err)
				}
				got = append(got, name)
			}
			rows.Close()
			if !slices.Equal(got, want) {
				t.Errorf("shard %d replica %d tables:\n got %v\nwant %v", s, r, got, want)
			}
		}
	}
	applied, err := b.Migrate(context.Background())
	if err != nil || len(applied) != 0 {
		t.Errorf("second Migrate: applied %v, %v", applied, err)
	}
	if got := len(a.Hosts()); got != c.Shards()*c.Replicas() {
		t.Errorf("the client knows %d servers, want %d", got, c.Shards()*c.Replicas())
	}
}

// clusterRows returns n sessions of app, spread over two days, each with
// its own event id; erasable rows carry consentKey.
func clusterRows(app, consentKey string, n int, day time.Time) *pipeline.Rows {
	rows := &pipeline.Rows{}
	for i := range n {
		common := pipeline.Common{
			AppID: app, EventTime: day.Add(time.Duration(i%2) * 24 * time.Hour).Add(time.Duration(i) * time.Second),
			EventID: uuid.New(), SessionKey: uint64(i/4 + 1), AppVersion: "4.12.0", OSName: "android", OSVersion: "14",
			Country: "AT", Region: "AT-9", ConsentKey: consentKey,
		}
		rows.Sessions = append(rows.Sessions, pipeline.SessionRow{Common: common, Phase: "start"})
		rows.Crashes = append(rows.Crashes, pipeline.CrashRow{Common: common, ExceptionType: "SIGSEGV", Fingerprint: uint64(i % 3)})
	}
	return rows
}

// TestClusterInsertDedupIntegration stores a batch through one server,
// then repeats it, in full and through another server, as the spool does
// after a crash or a failover: every event is on one shard, once on
// both of its replicas (without FINAL), and the aggregates count it once.
func TestClusterInsertDedupIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_dedup")
	a := clusterClient(t, db, [2]int{0, 0})
	if _, err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := clusterClient(t, db, [2]int{1, 1})
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	rows := clusterRows("com.example.notes", "", 200, day)
	if err := a.InsertDedup(ctx, rows, "spool-1-0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b} {
		if err := c.InsertDedup(ctx, rows, "spool-1-0"); err != nil {
			t.Fatal(err)
		}
	}
	perServer := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.sessions_local", db))
	t.Logf("sessions per server (shard 1: r1 r2, shard 2: r1 r2): %v", perServer)
	if perServer[0] != perServer[1] || perServer[2] != perServer[3] || perServer[0]+perServer[2] != 200 || perServer[0] == 0 || perServer[2] == 0 {
		t.Errorf("sessions per server %v: want both shards to hold some, their replicas the same, 200 in all", perServer)
	}
	distinct := onEveryServer(t, fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.crashes_local", db))
	raw := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.crashes_local", db))
	if !slices.Equal(raw, distinct) {
		t.Errorf("crashes stored twice on some replica: rows %v, distinct events %v", raw, distinct)
	}
	for _, q := range []string{
		"SELECT count() FROM %s.sessions",
		"SELECT count() FROM %s.crashes FINAL",
		"SELECT uniqExactMerge(starts) FROM %s.sessions_daily",
		"SELECT uniqExactMerge(crashes) FROM %s.crash_groups_daily",
	} {
		if n := queryUint64(t, b, fmt.Sprintf(q, db)); n != 200 {
			t.Errorf("%s: %d, want 200", fmt.Sprintf(q, db), n)
		}
	}
}

// TestClusterConsentStoreIntegration records revocations, apps and salts
// through one server and reads them at once through another: what a
// collector acknowledges, every collector sees on its next read.
func TestClusterConsentStoreIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_store")
	a := clusterClient(t, db, [2]int{0, 0})
	if _, err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := clusterClient(t, db, [2]int{1, 1})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	for i := range 20 {
		r := consent.Revocation{ConsentHash: consent.HashConsentID(fmt.Sprintf("consent-%d", i)), AppID: "com.example.notes",
			RevokedAt: now, ExpiresAt: now.AddDate(0, 0, 30)}
		if err := a.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
		revs, err := b.Revocations(ctx, now.Add(-time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != i+1 {
			t.Fatalf("after %d revocations through shard 1, shard 2 reads %d", i+1, len(revs))
		}
	}
	salt, err := a.DailySalt(ctx, now, make([]byte, SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, SaltSize)
	other[0] = 1
	if got, err := b.DailySalt(ctx, now, other); err != nil || string(got) != string(salt) {
		t.Errorf("shard 2's salt differs from shard 1's: %v", err)
	}
	counts := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.revocations", db))
	t.Logf("revocations per server: %v", counts)
}
