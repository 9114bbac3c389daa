package grpcrr_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/consentry/consentry/internal/grpcrr"
)

// TestRoundRobin calls three servers through one target: every server
// gets a share of the calls.
func TestRoundRobin(t *testing.T) {
	var addrs []string
	for range 3 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		addrs = append(addrs, lis.Addr().String())
	}
	conn, err := grpc.NewClient(grpcrr.Addrs(addrs[0]+", "+addrs[1]+","+addrs[2]), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	seen := map[string]int{}
	client := healthpb.NewHealthClient(conn)
	for range 30 {
		var p peer.Peer
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		seen[p.Addr.String()]++
		mu.Unlock()
	}
	if len(seen) != 3 {
		t.Errorf("calls per server: %v, want all three", seen)
	}
	if got := grpcrr.Addrs("127.0.0.1:1"); got != "127.0.0.1:1" {
		t.Errorf("one address: %q", got)
	}
}
