package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/cli"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("migrate", `
Applies every pending schema migration to ClickHouse and exits. Migrations
are versioned and idempotent: running it twice, or while collectors run
(they migrate at start too), is safe. With --clickhouse-cluster they run
ON CLUSTER.

With --to-cluster it moves a single server's database (--from-clickhouse-*)
to the cluster (--clickhouse-addr, --clickhouse-cluster): it migrates both,
then copies every table, the consent store first and the event rows through
the Distributed tables (the aggregates rebuild from them), skipping tables
that hold rows on the cluster already, and prints what it copied. Stop the
collectors first, and start them with --clickhouse-cluster after
(docs/operations.md, "Moving to a cluster").`, stderr)
	var ch chFlags
	ch.register(fs)
	toCluster := fs.Bool("to-cluster", false, "copy the database of the single server --from-clickhouse-addr to the cluster")
	var from clickhouse.Config
	var fromPasswordFile string
	fs.StringVar(&from.Addr, "from-clickhouse-addr", "", "with --to-cluster: the single server's native `host:port`")
	fs.StringVar(&from.Database, "from-clickhouse-database", "consentry", "with --to-cluster: the single server's `database`")
	fs.StringVar(&from.Username, "from-clickhouse-user", clickhouse.DefaultUsername, "with --to-cluster: the single server's `user`")
	fs.StringVar(&fromPasswordFile, "from-clickhouse-password-file", "", "with --to-cluster: `file` holding that user's password (or set CONSENTRY_FROM_CLICKHOUSE_PASSWORD)")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	if *toCluster {
		pw, err := cli.Secret(cli.EnvPrefix+"FROM_CLICKHOUSE_PASSWORD", fromPasswordFile)
		if err != nil {
			return err
		}
		from.Password = pw
		return migrateToCluster(ctx, ch, from, stdout)
	}
	c, applied, err := ch.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "schema up to date (ClickHouse %s)\n", c.Dialect().Version)
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v (ClickHouse %s)\n", applied, c.Dialect().Version)
	return nil
}

// migrateToCluster migrates the single server from and the cluster ch
// names, and copies from's tables to the cluster.
func migrateToCluster(ctx context.Context, ch chFlags, from clickhouse.Config, stdout io.Writer) error {
	if from.Addr == "" || ch.cfg.Schema.Cluster == "" || ch.cfg.Addr == "" {
		return errors.New("migrate --to-cluster: give --from-clickhouse-addr, and the cluster's --clickhouse-addr and --clickhouse-cluster")
	}
	src, err := clickhouse.Open(ctx, from, zap.NewNop())
	if err != nil {
		return fmt.Errorf("migrate --to-cluster: the single server: %w", err)
	}
	defer src.Close()
	if _, err := src.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate --to-cluster: the single server: %w", err)
	}
	dst, applied, err := ch.open(ctx)
	if err != nil {
		return fmt.Errorf("migrate --to-cluster: the cluster: %w", err)
	}
	defer dst.Close()
	fmt.Fprintf(stdout, "cluster %s: applied migrations %v; copying %s.%s from %s\n", dst.Cluster(), applied, src.Database(), "*", from.Addr)
	st, err := clickhouse.CopyToCluster(ctx, src, dst, zap.NewNop())
	names := make([]string, 0, len(st.Rows))
	for name := range st.Rows {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(stdout, "  %-20s %d rows\n", name, st.Rows[name])
	}
	if len(st.Skipped) > 0 {
		fmt.Fprintf(stdout, "  not copied again (rows on the cluster already): %s\n", strings.Join(st.Skipped, ", "))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied in %s; the aggregates were rebuilt from the event rows\n", st.Took.Round(1e6))
	for _, a := range st.AggregateOnly {
		fmt.Fprintf(stdout, `%s holds %d days its event table no longer does (%s to %s); move them with
  clickhouse-client --host <the server> --query %q |
  clickhouse-client --host <one server of the cluster> --query %q
`, a.Table, len(a.Days), a.Days[0], a.Days[len(a.Days)-1], a.Select, a.Insert)
	}
	return nil
}
