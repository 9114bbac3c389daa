package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/internal/cli"
)

// newFlagSet returns a flag set for subcommand name whose usage prints
// synopsis and the flags with their environment variables.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("consentry "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: consentry %s [flags]\n\n%s\n\nFlags:\n", name, strings.TrimSpace(synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// subcommand splits the subcommand off the args of command name, which
// has several (consentry apps add ...), and returns it with its flag set.
// Without one, or when help is asked for, it prints usage and returns
// flag.ErrHelp.
func subcommand(name string, args []string, usage string, stderr io.Writer) (sub string, fs *flag.FlagSet, rest []string, err error) {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		return "", nil, nil, flag.ErrHelp
	}
	return args[0], newFlagSet(name+" "+args[0], usage, stderr), args[1:], nil
}

// chFlags are the flags that locate ClickHouse: an external one, or the
// one a local consentryd manages, whose address and collector password
// are in its data dir.
type chFlags struct {
	cfg          clickhouse.Config
	passwordFile string
	dataDir      string
}

func (c *chFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.cfg.Addr, "clickhouse-addr", "", "ClickHouse native-protocol `host:port` (or a comma-separated list tried in order); empty reads the address a local consentryd wrote to <data-dir>/clickhouse.addr")
	fs.StringVar(&c.cfg.Schema.Cluster, "clickhouse-cluster", "", "ClickHouse `cluster` the schema lives on (as consentryd's --clickhouse-cluster): migrations run ON CLUSTER")
	fs.StringVar(&c.cfg.Database, "clickhouse-database", "consentry", "ClickHouse `database`")
	fs.StringVar(&c.cfg.Username, "clickhouse-user", "", "ClickHouse `user` (default: "+collector.CollectorUser+" for a local consentryd's ClickHouse, else "+clickhouse.DefaultUsername+")")
	fs.StringVar(&c.passwordFile, "clickhouse-password-file", "", "`file` holding the ClickHouse password (or set CONSENTRY_CLICKHOUSE_PASSWORD; default for a local consentryd's ClickHouse: <data-dir>/"+collector.CollectorPasswordFileName+")")
	fs.StringVar(&c.dataDir, "data-dir", "consentry-data", "consentryd's data `dir`")
}

// connect connects to ClickHouse and leaves the schema as it is: for
// commands that read what a running collector, which migrated it, stored.
func (c *chFlags) connect(ctx context.Context) (*clickhouse.Client, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	return clickhouse.Open(ctx, cfg, zap.NewNop())
}

// open connects to ClickHouse and applies pending migrations.
func (c *chFlags) open(ctx context.Context) (*clickhouse.Client, []int, error) {
	cl, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	applied, err := cl.Migrate(ctx)
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return cl, applied, nil
}

// config returns the ClickHouse config, resolving the address, the user
// and the secret. Without --clickhouse-addr it connects to the ClickHouse
// a local consentryd manages, as its user collector with the password
// from the data dir, unless told otherwise.
func (c *chFlags) config() (clickhouse.Config, error) {
	cfg := c.cfg
	local := cfg.Addr == ""
	if local {
		b, err := os.ReadFile(filepath.Join(c.dataDir, "clickhouse.addr"))
		if err != nil {
			return cfg, fmt.Errorf("no --clickhouse-addr, and no local consentryd address: %w", err)
		}
		cfg.Addr = strings.TrimSpace(string(b))
	}
	passwordFile := c.passwordFile
	switch {
	case cfg.Username != "":
	case local:
		cfg.Username = collector.CollectorUser
		passwordFile = cmp.Or(passwordFile, filepath.Join(c.dataDir, collector.CollectorPasswordFileName))
	default:
		cfg.Username = clickhouse.DefaultUsername
	}
	pw, err := cli.Secret(cli.EnvPrefix+"CLICKHOUSE_PASSWORD", passwordFile)
	if err != nil {
		return cfg, err
	}
	cfg.Password = pw
	return cfg, nil
}
