package sdk

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestReadyAfterReconnectMeanwhile: a request that finds the channel in
// TRANSIENT_FAILURE resets gRPC's reconnect backoff and waits for the
// dial that starts. When a dial of gRPC's own succeeded just before that
// (the collector came back and gRPC's backoff timer fired first), no
// dial follows: the request waited for one until its deadline, 30 s by
// default, with the collector up. The Go SDK's integration tests
// timed out so, now and then, after restarting the collector.
func TestReadyAfterReconnectMeanwhile(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // down, for now

	s := &settings{Config: Config{Endpoint: addr, Insecure: true}, minBackoff: time.Minute, maxBackoff: time.Minute, requestTimeout: 10 * time.Second}
	tr, err := newGRPCTransport(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	tr.conn.Connect()
	waitState(t, tr.conn, connectivity.TransientFailure)

	// The collector comes back.
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.Stop()

	// gRPC dials on its own between the request's look at the state and
	// its wait for a dial.
	tr.testHookBeforeWatch = func() {
		dialed := tr.dials.watch()
		tr.conn.ResetConnectBackoff()
		if err := <-dialed; err != nil {
			t.Errorf("gRPC's own dial: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	tr.ready(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("ready took %v with the collector up", took)
	}
	if st := tr.conn.GetState(); st != connectivity.Ready {
		t.Fatalf("state %v after ready", st)
	}
}

// waitState waits up to 10 s for conn to reach want.
func waitState(t *testing.T, conn *grpc.ClientConn, want connectivity.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for st := conn.GetState(); st != want; st = conn.GetState() {
		if !conn.WaitForStateChange(ctx, st) {
			t.Fatalf("channel in %v, want %v", st, want)
		}
	}
}
