// Command consentry is Consentry's operator CLI: it applies schema
// migrations (also from one server to a cluster), registers apps, issues
// development consent tokens, sends a demo batch through a running
// collector and shows what landed in ClickHouse, simulates a fleet of
// devices running the SDK, uploads the mapping files that deobfuscate
// Android crashes, prints the privacy report for staff, and runs a local
// ClickHouse cluster to try scaling out.
//
// Run `consentry help` for the subcommands and `consentry <cmd> --help` for
// their flags; each flag can also be set with the CONSENTRY_* environment
// variable its help names.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error
}

func commands() []command {
	return []command{
		{"migrate", "apply pending ClickHouse schema migrations and exit", runMigrate},
		{"apps", "register apps and manage their keys, scopes and erasure policy", runApps},
		{"mappings", "upload and list R8/ProGuard mapping files that deobfuscate Android crashes", runMappings},
		{"token", "issue a consent token signed with the collector's key (development)", runToken},
		{"demo", "send a demo batch of every event kind and print what landed", runDemo},
		{"fleet", "simulate devices running the SDK against a collector and count what landed", runFleet},
		{"load", "send sustained traffic to a collector and report events/s, latency and its memory", runLoad},
		{"bench-data", "write pre-encoded ingest requests for an independent load generator (ghz)", runBenchData},
		{"bench-raw", "measure the raw ClickHouse insert ceiling, or print the server's inserted rows", runBenchRaw},
		{"privacy-report", "print per app and day what was stored, held, generalized, scrubbed, granted, revoked and erased", runPrivacyReport},
		{"reapply-erasures", "erase again the erased consents whose rows are stored again (after restoring a backup)", runReapplyErasures},
		{"cluster", "run a local ClickHouse cluster (ZooKeeper, shards x replicas) until interrupted, for make cluster", runCluster},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // --help was asked for and printed.
		}
		fmt.Fprintln(os.Stderr, "consentry:", err)
		os.Exit(2)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: consentry <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'consentry <command> --help' for a command's flags.\n")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr, lookup)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}
