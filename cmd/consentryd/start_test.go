package main

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
		result <- run(ctx, args, stderr, env(vars), nil)
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
			return cancel, result, stderr
		}
		select {
		case err := <-result:
			t.Fatalf("consentryd exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 60s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
