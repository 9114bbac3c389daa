package collector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// resendTraffic sends batches of n events from clients goroutines to
// addr until stop is closed, and sends every third batch a second time,
// as an SDK does when it lost the answer; it counts the batches sent.
func resendTraffic(addr func() string, token string, clients, n int, stop <-chan struct{}) (wait func() int64) {
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range clients {
		wg.Go(func() {
			gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: uint64(500 + i)})
			conn, err := grpc.NewClient(addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return
			}
			defer conn.Close()
			client := consentryv1.NewIngestServiceClient(conn)
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				req := gen.Batch(n, time.Now())
				times := 1
				if b%3 == 2 {
					times = 2
				}
				for range times {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if _, err := client.Ingest(ctx, req); err != nil {
						time.Sleep(100 * time.Millisecond) // the collector is restarting
					}
					cancel()
					sent.Add(1)
				}
			}
		})
	}
	return func() int64 { wg.Wait(); return sent.Load() }
}

// aggregateOvercount returns how many events the aggregates of db count
// beyond the distinct events the event tables hold (FINAL): for sessions
// (starts and ends) and for crashes.
func aggregateOvercount(t *testing.T, ch driver.Conn, db string) (sessions, crashes int64, stored [2]uint64) {
	t.Helper()
	one := func(q string) uint64 {
		var n uint64
		if err := ch.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		return n
	}
	// The -Merge function of a count column: uniqExact since migration
	// 10, sum before.
	merge := func(table, col string) string {
		var typ string
		q := fmt.Sprintf("SELECT type FROM system.columns WHERE database = '%s' AND table = '%s' AND name = '%s'", db, table, col)
		if err := ch.QueryRow(context.Background(), q).Scan(&typ); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
		fn := strings.TrimPrefix(typ, "AggregateFunction(")
		return fn[:strings.Index(fn, ",")] + "Merge(" + col + ")"
	}
	stored[0] = one(fmt.Sprintf("SELECT count() FROM %s.sessions FINAL", db))
	stored[1] = one(fmt.Sprintf("SELECT count() FROM %s.crashes FINAL", db))
	aggSessions := one(fmt.Sprintf("SELECT %s + %s FROM %s.sessions_daily", merge("sessions_daily", "starts"), merge("sessions_daily", "ends"), db))
	aggCrashes := one(fmt.Sprintf("SELECT %s FROM %s.crash_groups_daily", merge("crash_groups_daily", "crashes"), db))
	return int64(aggSessions) - int64(stored[0]), int64(aggCrashes) - int64(stored[1]), stored
}

// TestAggregatesAfterKillIntegration runs consentryd behind a slow proxy
// (so its spool holds a backlog), with clients that resend a third of
// their batches, kills it with SIGKILL twice and starts it again on its
// data directory (its spool repeats the inserts it was in the middle
// of), and checks that the aggregates count exactly the events the event
// tables hold once merged (FINAL): no overcount.
func TestAggregatesAfterKillIntegration(t *testing.T) {
	srv, proxy := proxied(t)
	proxy.SetLatency(50 * time.Millisecond)
	p := startConsentryd(t, srv, proxy) // k-anonymity off: the test compares the event tables with the aggregates
	token := tokenFromKeyFile(t, p.data, time.Hour)

	stop := make(chan struct{})
	wait := resendTraffic(func() string { return p.addr }, token, 4, 100, stop)
	// Three seconds of traffic from the moment it serves, each time: a
	// start on a busy machine takes seconds of its own.
	p.waitServing()
	for range 2 {
		time.Sleep(3 * time.Second)
		p.kill()
		p.start()
		p.waitServing()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	batches := wait()
	proxy.SetLatency(0)
	p.stop()
	sessions, crashes, stored := aggregateOvercount(t, chtest.Conn(t, srv), p.db)
	t.Logf("%d batches sent (a third twice); %d session events and %d crashes stored", batches, stored[0], stored[1])
	if stored[0] == 0 || stored[1] == 0 {
		t.Fatal("nothing stored")
	}
	if sessions != 0 || crashes != 0 {
		t.Errorf("the aggregates count %d session events (%.2f%%) and %d crashes (%.2f%%) more than are stored",
			sessions, 100*float64(sessions)/float64(stored[0]), crashes, 100*float64(crashes)/float64(stored[1]))
	}
}
