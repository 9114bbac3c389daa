package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunLocalDefault runs consentryd as main does, on its local default
// (a managed ClickHouse), and stops it the way SIGTERM does: by cancelling
// run's context. The managed server must be gone afterwards.
func TestRunLocalDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts ClickHouse")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	stop, done, _ := startRun(t, addr, []string{"--data-dir", dir, "--log-level", "warn", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--clickhouse-native-port", "0", "--clickhouse-http-port", "0"}, map[string]string{"CONSENTRY_GRPC_ADDR": addr})
	chAddr, err := os.ReadFile(filepath.Join(dir, "clickhouse.addr"))
	if err != nil {
		t.Fatal(err)
	}
	stop() // what SIGTERM does
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimSpace(string(chAddr)), time.Second); err == nil {
		c.Close()
		t.Fatalf("managed ClickHouse at %s still accepts connections after shutdown", chAddr)
	}
	if _, err := os.Stat(filepath.Join(dir, "consent-signing-key.pem")); err != nil {
		t.Fatalf("signing key not created: %v", err)
	}
}
