package chcluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// sharedTimeout bounds starting and stopping a shared cluster.
const sharedTimeout = 2 * time.Minute

// Shared is a cluster shared by the tests of one package: the first test
// that asks for it starts it, and the package's TestMain stops it after
// the tests, so a package whose tests do not run on a cluster starts
// none:
//
//	var cluster chcluster.Shared
//
//	func TestMain(m *testing.M) {
//		code := chtest.Main(m, &shared)
//		cluster.Stop()
//		os.Exit(code)
//	}
//
//	func TestOnCluster(t *testing.T) {
//		c := cluster.Get(t) // skips under -short
//		...
//	}
//
// Tests sharing it use databases of their own. The zero value is ready
// to use; Config (set before the first Get) shapes the cluster, with Dir
// made temporary and removed by Stop if empty.
type Shared struct {
	Config Config

	once    sync.Once
	cluster *Cluster
	err     error
	tmp     string
}

// Get returns the cluster, starting it on the first call. It skips tb
// under -short and fails it if the cluster cannot start (ClickHouse,
// java or Debian's zookeeper missing: run scripts/deps.sh).
func (s *Shared) Get(tb testing.TB) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a ClickHouse cluster; skipped with -short")
	}
	s.once.Do(func() {
		if s.err = Available(); s.err != nil {
			s.err = fmt.Errorf("%w: run scripts/deps.sh", s.err)
			return
		}
		cfg := s.Config
		if cfg.Dir == "" {
			if s.tmp, s.err = os.MkdirTemp("", "chcluster-"); s.err != nil {
				return
			}
			cfg.Dir = s.tmp
		}
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		s.cluster, s.err = Start(ctx, cfg)
	})
	if s.err != nil {
		tb.Fatalf("chcluster: %v", s.err)
	}
	return s.cluster
}

// Stop stops the cluster if it was started, and removes its temporary
// folder. Call it from TestMain after m.Run.
func (s *Shared) Stop() {
	if s.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		if err := s.cluster.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "chcluster: %v\n", err)
		}
	}
	if s.tmp != "" {
		if err := os.RemoveAll(s.tmp); err != nil {
			fmt.Fprintf(os.Stderr, "chcluster: %v\n", err)
		}
	}
}

// Conn opens a native connection to shard's replica (both from 0) as the
// administrative user, and closes it when tb ends.
func (c *Cluster) Conn(tb testing.TB, shard, replica int) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{c.Addr(shard, replica)},
		Auth:        clickhouse.Auth{Database: "default", Username: c.User(), Password: c.Password()},
		DialTimeout: 10 * time.Second,
		ReadTimeout: time.Minute,
	})
	if err != nil {
		tb.Fatalf("chcluster: open connection to %s: %v", c.Addr(shard, replica), err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// DropDatabases drops dbs on every server (ON CLUSTER), with their
// replicated tables' coordination data, for a test that starts afresh.
func (c *Cluster) DropDatabases(tb testing.TB, dbs ...string) {
	tb.Helper()
	conn := c.Conn(tb, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	for _, db := range dbs {
		if err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s ON CLUSTER %s", db, c.Name())); err != nil {
			tb.Fatalf("chcluster: drop %s: %v", db, err)
		}
	}
}
