package main

import (
	"context"
	"fmt"
	"io"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("migrate", `
Applies every pending schema migration to ClickHouse and exits. Migrations
are versioned and idempotent: running it twice, or while collectors run
(they migrate at start too), is safe.`, stderr)
	var ch chFlags
	ch.register(fs)
	if err := parse(fs, args, lookup); err != nil {
		return err
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
