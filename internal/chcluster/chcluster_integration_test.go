package chcluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/goleak"

	"github.com/consentry/consentry/internal/chcluster"
)

// cluster is started by the first test and stopped by TestMain, with an
// analyst who may read database pub.
var cluster = chcluster.Shared{Config: chcluster.Config{
	ReadOnlyUser: "analyst", ReadOnlyPassword: "analyst-pw", ReadOnlyDatabases: []string{"pub"},
}}

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// open connects to shard's replica as user.
func open(t *testing.T, c *chcluster.Cluster, shard, replica int, user, password string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{c.Addr(shard, replica)}, Auth: clickhouse.Auth{Username: user, Password: password},
		DialTimeout: 5 * time.Second, ReadTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// execAll runs stmts on conn in order and fails t at the first that
// fails.
func execAll(t *testing.T, ctx context.Context, conn driver.Conn, stmts ...string) {
	t.Helper()
	for _, stmt := range stmts {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// TestClusterLockdown: the servers of a cluster keep the managed server's
// lockdown. Nobody gets in as default or without a password; the analyst
// reads its database through a Distributed table (whose remote reads log
// in as the administrative user), but no route leads it to another
// database: not directly, not through cluster() or remote(), not through
// a Distributed table of its own; and the interserver port serves no
// part to a client without the interserver credentials.
func TestClusterLockdown(t *testing.T) {
	c := cluster.Get(t)
	ctx := context.Background()
	// Inserts into the Distributed table return once every shard has
	// its rows.
	execAll(t, clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1})), c.Conn(t, 0, 0),
		"CREATE DATABASE IF NOT EXISTS pub ON CLUSTER "+c.Name(),
		"CREATE DATABASE IF NOT EXISTS secret ON CLUSTER "+c.Name(),
		"CREATE TABLE IF NOT EXISTS pub.t_local ON CLUSTER "+c.Name()+" (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/pub/t_local', '{replica}') ORDER BY x",
		"CREATE TABLE IF NOT EXISTS pub.t ON CLUSTER "+c.Name()+" (x UInt64) ENGINE = Distributed("+c.Name()+", pub, t_local, x)",
		"CREATE TABLE IF NOT EXISTS secret.s ON CLUSTER "+c.Name()+" (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/secret/s', '{shard}-{replica}') ORDER BY x",
		"INSERT INTO pub.t SELECT number FROM system.numbers LIMIT 100",
		"INSERT INTO secret.s SELECT number FROM system.numbers LIMIT 10",
	)
	for s := range c.Shards() {
		for r := range c.Replicas() {
			for _, cred := range [][2]string{{"default", ""}, {"default", "default"}, {c.User(), ""}, {"analyst", ""}} {
				if err := open(t, c, s, r, cred[0], cred[1]).Ping(ctx); err == nil {
					t.Errorf("shard %d replica %d: %q with password %q got in", s+1, r+1, cred[0], cred[1])
				}
			}
		}
	}
	for s := range c.Shards() {
		for r := range c.Replicas() {
			if err := c.Conn(t, s, r).Exec(ctx, "SYSTEM SYNC REPLICA pub.t_local"); err != nil {
				t.Fatal(err)
			}
		}
	}
	analyst := open(t, c, 1, 1, "analyst", "analyst-pw")
	var n uint64
	if err := analyst.QueryRow(ctx, "SELECT count() FROM pub.t").Scan(&n); err != nil || n != 100 {
		t.Errorf("the analyst reads %d rows of pub.t through the Distributed table (%v), want 100", n, err)
	}
	for _, q := range []string{
		"SELECT count() FROM secret.s",
		fmt.Sprintf("SELECT count() FROM cluster('%s', 'secret', 's')", c.Name()),
		fmt.Sprintf("SELECT count() FROM remote('%s', 'secret', 's', '%s', '%s')", c.Addr(0, 0), c.User(), c.Password()),
		"SELECT count() FROM merge('secret', '.*')",
	} {
		if err := analyst.QueryRow(ctx, q).Scan(&n); err == nil {
			t.Errorf("the analyst ran %s", q)
		}
	}
	for _, stmt := range []string{
		fmt.Sprintf("CREATE TABLE pub.mine (x UInt64) ENGINE = Distributed(%s, secret, s)", c.Name()),
		"INSERT INTO pub.t SELECT 1",
	} {
		if err := analyst.Exec(ctx, stmt); err == nil {
			t.Errorf("the analyst ran %s", stmt)
		}
	}
	resp, err := http.Get("http://" + c.Server(0, 1).InterserverAddr() + "/?endpoint=DataPartsExchange:/clickhouse/tables/01/pub/t_local/replicas/r1&part=all_0_0_0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("the interserver port served a part without credentials: %s", resp.Status)
	}
}

// TestZooKeeperRestart stops ZooKeeper and starts it again on the same
// data and port: replicated inserts fail meanwhile and work after.
func TestZooKeeperRestart(t *testing.T) {
	c := cluster.Get(t)
	ctx := context.Background()
	admin := c.Conn(t, 1, 0)
	execAll(t, ctx, admin,
		"CREATE DATABASE IF NOT EXISTS zk ON CLUSTER "+c.Name(),
		"CREATE TABLE IF NOT EXISTS zk.t ON CLUSTER "+c.Name()+" (x UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/zk/t', '{shard}-{replica}') ORDER BY x",
	)
	zk := c.ZooKeeper()
	addr := zk.Addr()
	if err := zk.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if zk.Up() {
		t.Fatal("ZooKeeper still up after Stop")
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := admin.Exec(wctx, "INSERT INTO zk.t SELECT 1")
	cancel()
	if err == nil {
		t.Error("a replicated insert succeeded without ZooKeeper")
	}
	if err := zk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if zk.Addr() != addr {
		t.Errorf("ZooKeeper moved from %s to %s", addr, zk.Addr())
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := admin.Exec(ctx, "INSERT INTO zk.t SELECT 2")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inserts still fail two minutes after ZooKeeper came back: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
