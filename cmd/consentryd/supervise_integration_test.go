package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chserver"
)

// TestRunExitsWhenClickHouseFails runs consentryd on its local default
// with a managed ClickHouse that breaks for good once killed: run returns,
// after a graceful shutdown, an error main turns into exit status 3.
func TestRunExitsWhenClickHouseFails(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts ClickHouse")
	}
	real, args, err := chserver.Available("")
	if err != nil {
		t.Fatalf("clickhouse-server not found: run scripts/deps.sh: %v", err)
	}
	dir := t.TempDir()
	breakFile := filepath.Join(dir, "broken")
	bin := filepath.Join(dir, "clickhouse-server")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then exit 1; fi\nexec %q %s \"$@\"\n", breakFile, real, strings.Join(args, " "))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	data := filepath.Join(dir, "data")
	_, done, stderr := startRun(t, addr, []string{"--data-dir", data, "--grpc-addr", addr, "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--clickhouse-native-port", "0", "--clickhouse-http-port", "0", "--log-level", "error", "--clickhouse-binary", bin, "--clickhouse-max-failures", "2"}, nil)
	// ClickHouse writes its pid to the status file in its data path.
	status, err := os.ReadFile(filepath.Join(data, "clickhouse", "data", "status"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`PID: (\d+)`).FindSubmatch(status)
	if m == nil {
		t.Fatalf("no pid in the status file: %q", status)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if err := os.WriteFile(breakFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if code := exitCode(err); code != exitClickHouseFailed {
			t.Fatalf("run = %v: exit status %d, want %d", err, code, exitClickHouseFailed)
		}
		t.Logf("run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("consentryd still running 60s after its ClickHouse broke\n%s", stderr.String())
	}
}
