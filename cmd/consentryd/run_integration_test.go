package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestRunLocalDefault runs consentryd as main does, on its local default
// (a managed ClickHouse), and stops it the way SIGTERM does: by cancelling
// run's context. The managed server must be gone afterwards.
func TestRunLocalDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts ClickHouse")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--data-dir", dir, "--log-level", "warn", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--clickhouse-native-port", "0", "--clickhouse-http-port", "0"}, &stderr, env(map[string]string{"CONSENTRY_GRPC_ADDR": addr}), nil)
	}()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("consentryd exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 60s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	chAddr, err := os.ReadFile(filepath.Join(dir, "clickhouse.addr"))
	if err != nil {
		t.Fatal(err)
	}
	cancel() // what SIGTERM does
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
