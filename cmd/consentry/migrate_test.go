package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestMigrateToClusterNeedsBothEnds: --to-cluster copies from a single
// server to a cluster, and says so when either is missing.
func TestMigrateToClusterNeedsBothEnds(t *testing.T) {
	for _, args := range [][]string{
		{"migrate", "--to-cluster", "--clickhouse-addr", "ch:9000", "--clickhouse-cluster", "events"},
		{"migrate", "--to-cluster", "--from-clickhouse-addr", "old:9000", "--clickhouse-addr", "ch:9000"},
		{"migrate", "--to-cluster", "--from-clickhouse-addr", "old:9000", "--clickhouse-cluster", "events"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, &out, noEnv)
		if err == nil || !strings.Contains(err.Error(), "--from-clickhouse-addr") {
			t.Errorf("%q: %v", args, err)
		}
	}
	var help bytes.Buffer
	_ = run(context.Background(), []string{"migrate", "--help"}, &help, &help, noEnv)
	for _, want := range []string{"--to-cluster", "--from-clickhouse-addr", "CONSENTRY_FROM_CLICKHOUSE_PASSWORD", "--clickhouse-cluster"} {
		if !strings.Contains(strings.ReplaceAll(help.String(), "  -", "  --"), want) {
			t.Errorf("migrate --help lacks %q", want)
		}
	}
}
