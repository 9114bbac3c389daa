package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/collector/spool"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// environ returns m as os.Environ would: "KEY=value" entries.
func environ(m map[string]string) []string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	return kv
}

// mustParseFlags parses args with the environment variables vars, and
// fails t if that fails.
func mustParseFlags(t *testing.T, args []string, vars map[string]string) *options {
	t.Helper()
	o, err := parseFlags(args, &bytes.Buffer{}, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestHelpNamesEveryFlagAndVariable(t *testing.T) {
	var buf bytes.Buffer
	_, err := parseFlags([]string{"--help"}, &buf, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"--grpc-addr", "CONSENTRY_GRPC_ADDR", "--clickhouse-addr", "CONSENTRY_CLICKHOUSE_PASSWORD", "--clickhouse-cluster", "CONSENTRY_CLICKHOUSE_CLUSTER",
		"--max-event-age", "--writer-max-pending-rows", "managed local server"} {
		if !strings.Contains(strings.ReplaceAll(buf.String(), "  -", "  --"), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	o := mustParseFlags(t, []string{"--grpc-addr", "127.0.0.1:1", "--max-event-age", "48h"}, map[string]string{
		"CONSENTRY_GRPC_ADDR":                "127.0.0.1:2", // the flag wins
		"CONSENTRY_CLICKHOUSE_ADDR":          "ch:9000",
		"CONSENTRY_CONSENT_VERIFY_KEY_FILES": "a.pem,b.pem",
	})
	c := o.cfg
	if c.GRPCAddr != "127.0.0.1:1" || c.ClickHouse.Addr != "ch:9000" || c.Validation.MaxAge != 48*time.Hour ||
		len(c.ConsentVerifyKeyFiles) != 2 {
		t.Fatalf("config = %+v", c)
	}
	if c.Spool.MaxBatchRows != spool.DefaultMaxBatchRows {
		t.Errorf("spool rounds of %d rows by default, want %d", c.Spool.MaxBatchRows, spool.DefaultMaxBatchRows)
	}
	if o := mustParseFlags(t, nil, map[string]string{"CONSENTRY_SPOOL_MAX_BATCH_ROWS": "5000"}); o.cfg.Spool.MaxBatchRows != 5000 {
		t.Errorf("CONSENTRY_SPOOL_MAX_BATCH_ROWS=5000: rounds of %d rows", o.cfg.Spool.MaxBatchRows)
	}
	if _, err := parseFlags(nil, &bytes.Buffer{}, env(map[string]string{"CONSENTRY_MAX_BATCH_EVENTS": "many"})); err == nil {
		t.Fatal("bad environment value accepted")
	}
	if _, err := parseFlags([]string{"extra"}, &bytes.Buffer{}, env(nil)); err == nil {
		t.Fatal("stray argument accepted")
	}
}

// TestClusterFlag: --clickhouse-cluster sets the schema's cluster, and
// needs the servers' addresses, as the managed ClickHouse is one server.
func TestClusterFlag(t *testing.T) {
	o := mustParseFlags(t, []string{"--clickhouse-cluster", "events", "--clickhouse-addr", "ch1:9000,ch2:9000"}, nil)
	if got := o.cfg.ClickHouse.Schema.Cluster; got != "events" {
		t.Errorf("cluster = %q", got)
	}
	if err := o.cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	o = mustParseFlags(t, []string{"--clickhouse-cluster", "events"}, nil)
	if err := o.cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Errorf("a cluster without --clickhouse-addr: %v", err)
	}
	o, err := parseFlags([]string{"--clickhouse-cluster", "a;b", "--clickhouse-addr", "ch:9000"}, &bytes.Buffer{}, env(nil))
	if err == nil {
		err = o.cfg.Validate()
	}
	if err == nil {
		t.Error("a cluster name that is not an identifier was accepted")
	}
}

func TestAnonymizerFlags(t *testing.T) {
	o := mustParseFlags(t, []string{"--scrub-disable", "coordinates, phone", "--generalize-k", "25", "--geoip-db", "/var/lib/geoip/city.mmdb"}, nil)
	a := o.cfg.Anonymizer
	if got := fmt.Sprint(a.Scrub.Disabled); got != "[coordinates phone]" {
		t.Errorf("disabled detectors = %s", got)
	}
	if a.Generalize.K != 25 || a.TimePrecision != anonymizer.DefaultTimePrecision || o.cfg.GeoIPFile != "/var/lib/geoip/city.mmdb" {
		t.Errorf("anonymizer config = %+v, geoip %q", a, o.cfg.GeoIPFile)
	}
	if _, err := parseFlags([]string{"--scrub-disable", "emails"}, &bytes.Buffer{}, env(nil)); err == nil {
		t.Error("an unknown detector was accepted")
	}
}
