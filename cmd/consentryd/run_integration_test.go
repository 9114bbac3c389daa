package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/consentrydtest"
)

// TestRunLocalDefault runs consentryd as main does, on its local default
// (a managed ClickHouse), and stops it the way SIGTERM does: by cancelling
// run's context. The managed server must be gone afterwards.
func TestRunLocalDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts ClickHouse")
	}
	dir := t.TempDir()
	addr := consentrydtest.FreeAddr(t)
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
	addr := consentrydtest.FreeAddr(t)
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

// startRun runs consentryd as main does, with args and the environment
// vars, in a goroutine, and waits up to a minute until its gRPC health
// service at addr reports SERVING. It fails t if run returns first.
// stop stops run as SIGTERM does, by cancelling its context; run's result
// arrives on done, and stderr holds its log (read it once run returned).
func startRun(t *testing.T, addr string, args []string, vars map[string]string) (stop context.CancelFunc, done <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	result := make(chan error, 1)
	stderr = &bytes.Buffer{}
	go func() {
		result <- run(ctx, args, stderr, environ(vars), nil)
	}()
	consentrydtest.WaitServing(t, addr, 60*time.Second, func() error {
		select {
		case err := <-result:
			return fmt.Errorf("%v\n%s", err, stderr.String())
		default:
			return nil
		}
	})
	return cancel, result, stderr
}
