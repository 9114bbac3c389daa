package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/internal/cli"
)

// TestLocalClickHouseCredentials: without --clickhouse-addr the CLI
// connects to a local consentryd's managed ClickHouse as its collector
// user, with the password from the data dir; given flags win; an external
// ClickHouse defaults to user default.
func TestLocalClickHouseCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"clickhouse.addr":                   "127.0.0.1:9123\n",
		collector.CollectorPasswordFileName: "s3cret-from-data-dir\n",
		"other-password":                    "other\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name                 string
		args                 []string
		addr, user, password string
	}{
		{"local", nil, "127.0.0.1:9123", collector.CollectorUser, "s3cret-from-data-dir"},
		{"local, other password file", []string{"--clickhouse-password-file", filepath.Join(dir, "other-password")}, "127.0.0.1:9123", collector.CollectorUser, "other"},
		{"local, other user", []string{"--clickhouse-user", "someone"}, "127.0.0.1:9123", "someone", ""},
		{"external", []string{"--clickhouse-addr", "ch:9000"}, "ch:9000", "default", ""},
		{"cluster", []string{"--clickhouse-addr", "ch1:9000,ch2:9000", "--clickhouse-cluster", "events"}, "ch1:9000,ch2:9000", "default", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ch chFlags
			fs := newFlagSet("test", "", &bytes.Buffer{})
			ch.register(fs)
			if err := cli.Parse(fs, append([]string{"--data-dir", dir}, tc.args...), noEnv); err != nil {
				t.Fatal(err)
			}
			cfg, err := ch.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tc.addr || cfg.Username != tc.user || cfg.Password != tc.password {
				t.Errorf("config: addr %q, user %q, password %q; want %q, %q, %q", cfg.Addr, cfg.Username, cfg.Password, tc.addr, tc.user, tc.password)
			}
			if want := map[bool]string{true: "events"}[tc.name == "cluster"]; cfg.Schema.Cluster != want {
				t.Errorf("cluster %q, want %q", cfg.Schema.Cluster, want)
			}
		})
	}
}
