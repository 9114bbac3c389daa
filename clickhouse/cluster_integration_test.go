package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chcluster"
	"github.com/consentry/consentry/internal/chtest"
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

// clusterMigrated returns clusterClient(t, db, at...), after migrating
// db with it.
func clusterMigrated(t testing.TB, db string, at ...[2]int) *Client {
	t.Helper()
	c := clusterClient(t, db, at...)
	if _, err := c.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
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
			got := chtest.QueryStrings(context.Background(), t, c.Conn(t, s, r),
				"SELECT concat(database, '.', name) FROM system.tables WHERE database IN (?, ?) ORDER BY 1", o.Database, o.PrivateDatabase)
			if !slices.Equal(got, want) {
				t.Errorf("shard %d replica %d tables:\n got %v\nwant %v", s, r, got, want)
			}
		}
	}
	applied, err := b.Migrate(context.Background())
	if err != nil || len(applied) != 0 {
		t.Errorf("second Migrate: applied %v, %v", applied, err)
	}
	// A server that lacks tables (a replaced replica, a new shard) gets
	// them back from the next Migrate.
	for _, table := range []string{"sessions", "apps", "sessions_daily_mv"} {
		if err := c.Conn(t, 1, 1).Exec(context.Background(), fmt.Sprintf("DROP TABLE %s.%s", o.Database, table)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate with tables missing on a server: %v", err)
	}
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name IN ('sessions', 'apps', 'sessions_daily_mv')", o.Database)
	if err := c.Conn(t, 1, 1).QueryRow(context.Background(), q).Scan(&n); err != nil || n != 3 {
		t.Errorf("the server has %d of the 3 tables it lacked (%v)", n, err)
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
			EventID: uuid.New(), SessionKey: uint64(i/4 + 1),
			QI:         pipeline.QI{AppVersion: "4.12.0", OSName: "android", OSVersion: "14", Country: "AT", Region: "AT-9"},
			ConsentKey: consentKey,
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
	a := clusterMigrated(t, db, [2]int{0, 0})
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
	a := clusterMigrated(t, db, [2]int{0, 0})
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
	// Revocations through both at once: 18.16 takes one quorum insert
	// into a table at a time, and PutRevocation waits its turn.
	var wg sync.WaitGroup
	start := time.Now()
	errs := make([]error, 20)
	for i := range errs {
		c := []*Client{a, b}[i%2]
		wg.Go(func() {
			r := consent.Revocation{ConsentHash: consent.HashConsentID(fmt.Sprintf("concurrent-%d", i)), AppID: "com.example.notes",
				RevokedAt: now, ExpiresAt: now.AddDate(0, 0, 30)}
			// Each waits its turn behind up to nine others: the bound is
			// generous, for a loaded test machine.
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			errs[i] = c.PutRevocation(wctx, r)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent revocations: %v", err)
	}
	t.Logf("20 revocations through two servers at once: %v", time.Since(start).Round(time.Millisecond))
	if revs, err := a.Revocations(ctx, now.Add(-time.Hour), now); err != nil || len(revs) != 40 {
		t.Fatalf("%d revocations after the concurrent ones (%v), want 40", len(revs), err)
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

// sharedClusterDB is a database migrated once for the cluster tests that
// need no fresh one; they use apps of their own.
var sharedClusterDB struct {
	once sync.Once
	err  error
}

// sharedClusterClient returns a Client on sharedClusterDB's database,
// connected to the servers at.
func sharedClusterClient(t *testing.T, at ...[2]int) *Client {
	t.Helper()
	const db = "t_cluster_shared"
	cluster.Get(t)
	sharedClusterDB.once.Do(func() {
		clusterDB(t, db)
		_, sharedClusterDB.err = clusterClient(t, db).Migrate(context.Background())
	})
	if sharedClusterDB.err != nil {
		t.Fatalf("migrate %s: %v", db, sharedClusterDB.err)
	}
	return clusterClient(t, db, at...)
}

// TestClusterEraseIntegration erases a consent's rows stored on both
// shards: the receipt counts every row that was there (once per shard,
// not once per replica), no replica of any shard keeps one, and nothing
// else is deleted.
func TestClusterEraseIntegration(t *testing.T) {
	c := sharedClusterClient(t, [2]int{1, 0})
	ctx := context.Background()
	const app = "com.example.erase"
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	rows := keyedRows(k1, k2, "")
	eachCommon(rows, func(_ string, cm *pipeline.Common) { cm.AppID = app })
	want := countRows(rows, func(cm *pipeline.Common) bool { return cm.ConsentKey == k1 })
	others := countRows(rows, func(cm *pipeline.Common) bool { return cm.ConsentKey != k1 })
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// The insert is on a replica of each shard; the receipt counts what
	// the shards hold, whichever replica answers, once they caught up.
	eventually(t, "consent 1's rows on both replicas of both shards", func() error {
		for _, table := range EventTables() {
			perServer := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.%s_local WHERE app_id = %s AND consent_key = %s", c.Database(), table, quote(app), quote(k1)))
			if perServer[0] == 0 || perServer[2] == 0 || perServer[0] != perServer[1] || perServer[2] != perServer[3] || perServer[0]+perServer[2] != want[table] {
				return fmt.Errorf("%s: consent 1's rows per server %v: want some on each shard, replicas alike, %d in all", table, perServer, want[table])
			}
		}
		return nil
	})
	deleted, err := c.Erase(ctx, app, k1)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if !maps.Equal(deleted, want) {
		t.Errorf("receipt counts %v, want %v", deleted, want)
	}
	for _, table := range EventTables() {
		if left := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.%s_local WHERE app_id = %s AND consent_key = %s", c.Database(), table, quote(app), quote(k1))); slices.Max(left) != 0 {
			t.Errorf("%s: consent 1's rows left per server: %v", table, left)
		}
		kept := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.%s_local WHERE app_id = %s", c.Database(), table, quote(app)))
		if kept[0] != kept[1] || kept[2] != kept[3] || kept[0]+kept[2] != others[table] {
			t.Errorf("%s: rows kept per server %v, want replicas alike and %d in all", table, kept, others[table])
		}
	}
	// Every server has the audit log.
	audit := onEveryServer(t, fmt.Sprintf("SELECT sum(rows) FROM %s.erasures WHERE app_id = %s", c.Database(), quote(app)))
	var total uint64
	for _, n := range want {
		total += n
	}
	for i, n := range audit {
		if n != total {
			t.Errorf("server %d's audit log counts %d rows erased, want %d", i, n, total)
		}
	}
}

// TestClusterRetentionIntegration drops expired day partitions on every
// shard and replica, salts of past days and expired revocations too,
// whichever server the collector is connected to.
func TestClusterRetentionIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_retention")
	c := clusterMigrated(t, db, [2]int{0, 1})
	ctx := context.Background()
	now := time.Date(2025, 11, 28, 15, 0, 0, 0, time.UTC)
	rows := &pipeline.Rows{}
	for _, age := range []int{0, 89, 90, 400} {
		for range 20 {
			cm := testCommon(byte(age), now.AddDate(0, 0, -age))
			cm.EventID = uuid.New()
			rows.Sessions = append(rows.Sessions, pipeline.SessionRow{Common: cm, Phase: "start"})
		}
	}
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	dropped, err := c.EnforceRetention(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dropped)
	if want := []string{"sessions/20241024", "sessions/20250830", "sessions_daily/20241024"}; !slices.Equal(dropped, want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}
	eventually(t, "partitions dropped on every replica", func() error {
		if got := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.sessions_local WHERE event_date < '2025-08-31'", db)); slices.Max(got) != 0 {
			return fmt.Errorf("expired sessions per server: %v", got)
		}
		if got := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.sessions_local", db)); got[0] != got[1] || got[2] != got[3] || got[0]+got[2] != 40 {
			return fmt.Errorf("sessions kept per server %v, want 40 in all", got)
		}
		return nil
	})

	// Salts of past days, and revocations whose tokens expired.
	if _, err := c.DailySalt(ctx, now.AddDate(0, 0, -2), make([]byte, SaltSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DailySalt(ctx, now, make([]byte, SaltSize)); err != nil {
		t.Fatal(err)
	}
	if err := c.DestroySalts(ctx, now); err != nil {
		t.Fatal(err)
	}
	r := consent.Revocation{ConsentHash: consent.HashConsentID("gone"), AppID: "com.example.notes", RevokedAt: now.AddDate(0, -3, 0), ExpiresAt: now.AddDate(0, 0, -1)}
	if err := c.PutRevocation(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := c.PruneRevocations(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "salts and revocations gone on every server", func() error {
		if got := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s_private.session_salts", db)); !slices.Equal(got, []uint64{1, 1, 1, 1}) {
			return fmt.Errorf("salts per server %v, want today's alone", got)
		}
		if got := onEveryServer(t, fmt.Sprintf("SELECT count() FROM %s.revocations", db)); slices.Max(got) != 0 {
			return fmt.Errorf("revocations per server %v, want none", got)
		}
		return nil
	})
}

// TestClusterReleaseIntegration runs TestReleaseIntegration's release
// passes on the cluster: held rows on both shards, compared with the
// public rows of their shard.
func TestClusterReleaseIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_release")
	c := clusterMigrated(t, db, [2]int{1, 1})
	testRelease(t, c)
}

// TestClusterSlotClaimsIntegration has replicas connected to different
// servers claim the same release slots: each reads the same winner, at
// once, whatever server it asks.
func TestClusterSlotClaimsIntegration(t *testing.T) {
	clients := []*Client{sharedClusterClient(t, [2]int{0, 0}), sharedClusterClient(t, [2]int{0, 1}), sharedClusterClient(t, [2]int{1, 0})}
	ctx := context.Background()
	for slot := uint64(1); slot <= 5; slot++ {
		var wg sync.WaitGroup
		errs := make([]error, len(clients))
		for i, c := range clients {
			wg.Go(func() { errs[i] = c.ClaimSlot(ctx, slot, fmt.Sprintf("holder-%d", i)) })
		}
		wg.Wait()
		winners := map[string]bool{}
		for i, c := range clients {
			if errs[i] != nil {
				t.Logf("slot %d: claim %d: %v", slot, i, errs[i])
			}
			w, err := c.SlotHolder(ctx, slot)
			if err != nil {
				t.Fatal(err)
			}
			winners[w] = true
		}
		if len(winners) != 1 || winners[""] {
			t.Errorf("slot %d: replicas read the winners %v, want one", slot, winners)
		}
	}
}

// TestCopyToClusterIntegration moves a single server's database, with
// rows in every table, to the cluster: every row is copied once (the
// event rows to the shard of their event), the aggregates are rebuilt
// from them, a second run copies nothing again, and the aggregate days
// that the event tables no longer hold are reported and move with the
// documented clickhouse-client pipe.
func TestCopyToClusterIntegration(t *testing.T) {
	ctx := context.Background()
	from := migrated(t, Config{})
	now := time.Now().UTC()
	rows := newRowGen(21, now).rows(2000)
	rows.Append(newRowGen(22, now.AddDate(0, 0, -1)).rows(2000))
	if err := from.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	// A day whose crashes are gone (retention) but whose aggregate stays.
	old := now.AddDate(0, 0, -200)
	oldRows := newRowGen(23, old).rows(300)
	if err := from.Insert(ctx, &pipeline.Rows{Crashes: oldRows.Crashes, Sessions: oldRows.Sessions}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{TableCrashes, TableSessions} {
		if err := from.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", from.Database(), table, old.Format("20060102"))); err != nil {
			t.Fatal(err)
		}
	}
	held := newRowGen(24, now).rows(200)
	if err := from.InsertHeld(ctx, held, ""); err != nil {
		t.Fatal(err)
	}
	if err := from.PutApp(ctx, consent.App{ID: "com.example.notes", KeyHash: "h", Policy: consent.PolicyErasable, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := from.PutRevocation(ctx, consent.Revocation{ConsentHash: consent.HashConsentID("moved"), AppID: "com.example.notes", RevokedAt: now, ExpiresAt: now.AddDate(0, 0, 30)}); err != nil {
		t.Fatal(err)
	}
	salt, err := from.DailySalt(ctx, now, make([]byte, SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	if err := insertRows(ctx, from.conn, from.schema.erasures, []erasureRow{{erasedAt: now, app: "com.example.notes", consentKey: "k", table: TableSessions, rows: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := insertRows(ctx, from.conn, from.schema.rejects, []rejectRow{{minute: now.Truncate(time.Minute), app: "com.example.notes", reason: "too_old", events: 4}}); err != nil {
		t.Fatal(err)
	}

	db := clusterDB(t, "t_cluster_copy")
	to := clusterMigrated(t, db, [2]int{1, 0})
	st, err := CopyToCluster(ctx, from, to, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %v in %v; aggregate-only days %+v", st.Rows, st.Took.Round(time.Millisecond), st.AggregateOnly)
	want := map[string]uint64{}
	for _, name := range copyOrder(from) {
		want[name] = queryUint64(t, from, fmt.Sprintf("SELECT count() FROM %s.%s", tableIndex(from)[name].database, name))
	}
	if !maps.Equal(st.Rows, want) {
		t.Errorf("copied %v\n  want %v", st.Rows, want)
	}
	if len(st.AggregateOnly) != 2 {
		t.Fatalf("aggregate-only days %+v, want %s of both aggregates", st.AggregateOnly, old.Format(time.DateOnly))
	}
	for _, a := range st.AggregateOnly {
		if !slices.Equal(a.Days, []string{old.Format(time.DateOnly)}) {
			t.Errorf("%s: aggregate-only days %v, want %s", a.Table, a.Days, old.Format(time.DateOnly))
		}
	}
	eventually(t, "replicas alike", func() error {
		for _, table := range append(EventTables(), TableCrashGroupsDaily) {
			counts, err := to.ReplicaCounts(ctx, table)
			if err != nil {
				return err
			}
			hosts := to.Hosts()
			if counts[hosts[0]] != counts[hosts[1]] || counts[hosts[2]] != counts[hosts[3]] {
				return fmt.Errorf("%s: %v", table, counts)
			}
		}
		return nil
	})
	for _, name := range copyOrder(from) {
		if got := queryUint64(t, to, fmt.Sprintf("SELECT count() FROM %s.%s", tableIndex(to)[name].database, name)); got != want[name] {
			t.Errorf("%s: %d rows on the cluster, want %d", name, got, want[name])
		}
	}
	// The views rebuilt the aggregates of the days the events cover.
	q := "SELECT uniqExactMerge(crashes) FROM %s.crash_groups_daily WHERE event_date > today() - 100"
	if a, b := queryUint64(t, from, fmt.Sprintf(q, from.Database())), queryUint64(t, to, fmt.Sprintf(q, db)); a != b || a == 0 {
		t.Errorf("crashes counted by the aggregate: %d on the server, %d on the cluster", a, b)
	}
	if got, err := to.DailySalt(ctx, now, make([]byte, SaltSize)); err != nil || string(got) != string(salt) {
		t.Errorf("the day's salt did not move: %v", err)
	}
	again, err := CopyToCluster(ctx, from, to, zaptest.NewLogger(t))
	var copiedAgain uint64
	for _, n := range again.Rows {
		copiedAgain += n
	}
	if err != nil || copiedAgain != 0 || len(again.Skipped) == 0 {
		t.Errorf("second copy: copied %v, skipped %v, %v", again.Rows, again.Skipped, err)
	}

	// The manual step for the aggregate-only days (docs/operations.md):
	// their states, in ClickHouse's Native format, into one shard.
	c := cluster.Get(t)
	for _, a := range st.AggregateOnly {
		name := a.Table
		host, port, _ := strings.Cut(shared.Addr(), ":")
		dump := exec.Command("clickhouse-client", "--host", host, "--port", port, "--user", shared.User(), "--password", shared.Password(), "--query", a.Select)
		host, port, _ = strings.Cut(c.Addr(0, 0), ":")
		load := exec.Command("clickhouse-client", "--host", host, "--port", port, "--user", c.User(), "--password", c.Password(), "--query", a.Insert)
		pipe, err := dump.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		load.Stdin = pipe
		var stderr strings.Builder
		dump.Stderr, load.Stderr = &stderr, &stderr
		if err := dump.Start(); err != nil {
			t.Fatal(err)
		}
		if err := load.Run(); err != nil {
			t.Fatalf("%s: %v: %s", name, err, stderr.String())
		}
		if err := dump.Wait(); err != nil {
			t.Fatalf("%s: %v: %s", name, err, stderr.String())
		}
	}
	// The states went to one replica of shard 1; a read through the
	// Distributed table may ask the other, once it fetched them.
	q = "SELECT uniqExactMerge(crashes) FROM %s.crash_groups_daily WHERE event_date = '" + old.Format(time.DateOnly) + "'"
	eventually(t, "the aggregate-only day on the cluster", func() error {
		if a, b := queryUint64(t, from, fmt.Sprintf(q, from.Database())), queryUint64(t, to, fmt.Sprintf(q, db)); a != b || a == 0 {
			return fmt.Errorf("crashes of the aggregate-only day: %d on the server, %d on the cluster", a, b)
		}
		return nil
	})
}
