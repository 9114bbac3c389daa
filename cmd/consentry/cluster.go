package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/internal/chcluster"
	"github.com/consentry/consentry/internal/cli"
)

// Files runCluster writes into its folder for scripts/cluster.sh and
// users: the servers' addresses and the two users' passwords.
const (
	clusterAddrsFile       = "clickhouse.addrs"
	clusterPasswordFile    = "clickhouse-collector-password"
	clusterAnalystPassword = "clickhouse-analyst-password"
)

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("cluster", `
Runs a ClickHouse cluster on this machine for trying Consentry's scale-out
(make cluster) until interrupted: a ZooKeeper server (Debian's zookeeper
package) and --shards x --replicas ClickHouse servers, each in its own
folder under --dir, on loopback ports, locked down as consentryd's managed
server is (users collector and analyst, passwords in --dir). It writes the
servers' native addresses, shard by shard, to --dir/clickhouse.addrs and
prints how to connect; Ctrl-C stops everything. Data is kept in --dir.`, stderr)
	dir := fs.String("dir", "consentry-cluster", "`folder` of the cluster's data, addresses and passwords")
	name := fs.String("name", chcluster.DefaultName, "cluster `name` (for --clickhouse-cluster)")
	shards := fs.Int("shards", chcluster.DefaultShards, "`shards`")
	replicas := fs.Int("replicas", chcluster.DefaultReplicas, "`replicas` per shard")
	database := fs.String("database", "consentry", "`database` the analyst may read")
	logLevel := fs.String("log-level", "info", "log `level`")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	log, err := cli.NewLogger(*logLevel, "console")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	password, err := collector.LoadPassword(filepath.Join(*dir, clusterPasswordFile), "collector password")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	analyst, err := collector.LoadPassword(filepath.Join(*dir, clusterAnalystPassword), "analyst password")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The interserver password never leaves the servers' config.
	c, err := chcluster.Start(ctx, chcluster.Config{
		Dir: *dir, Name: *name, Shards: *shards, Replicas: *replicas, Password: password,
		ReadOnlyUser: "analyst", ReadOnlyPassword: analyst, ReadOnlyDatabases: []string{*database},
		Logger: log,
	})
	if err != nil {
		return err
	}
	addrs := strings.Join(c.Addrs(), ",")
	if err := os.WriteFile(filepath.Join(*dir, clusterAddrsFile), []byte(addrs+"\n"), 0o600); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("cluster: %w", err)
	}
	fmt.Fprintf(stdout, `cluster %s up: %d shards x %d replicas of ClickHouse, ZooKeeper on %s
servers (shard by shard): %s
collectors: consentryd --clickhouse-cluster %s --clickhouse-addr <servers of one shard, comma-separated> \
    --clickhouse-user collector --clickhouse-password-file %s
analysts:   clickhouse-client --port <a server's port> --user analyst --password "$(cat %s)"
Ctrl-C stops the cluster; its data stays in %s.
`, c.Name(), c.Shards(), c.Replicas(), c.ZooKeeper().Addr(), addrs, c.Name(),
		filepath.Join(*dir, clusterPasswordFile), filepath.Join(*dir, clusterAnalystPassword), *dir)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping the cluster")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	log.Info("stopping", zap.String("cluster", c.Name()))
	return c.Stop(sctx)
}
