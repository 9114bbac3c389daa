package collector

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const (
	benchBatchEvents = 500 // events per request
	benchClients     = 64  // concurrent gRPC clients
	benchConns       = 4   // HTTP/2 connections they share
)

// BenchmarkEndToEnd measures events stored per second through gRPC with
// concurrent clients into a real ClickHouse, and, in the same run, the
// ceiling: the same rows inserted with the raw clickhouse-go column-wise
// insert (no gRPC, no pipeline) in the largest inserts the writer allows
// (50,000 rows), as many at once as the writer runs: the best the server
// does. b.N is the number of requests of benchBatchEvents events.
// Reported: events/s, best-raw-events/s, their ratio, p50/p99
// acknowledgement latency, the writer's rows per insert, and for context
// the raw rate in inserts of the size the writer made
// (same-size-raw-events/s; a ceiling that moves with what is measured, so
// not the ratio's). Run with `make bench` (scripts/bench.sh), which uses
// -benchtime=400x -count=6 and benchstat; `make bench-ghz` measures the
// real consentryd with an independent client.
func BenchmarkEndToEnd(b *testing.B) {
	// Without the spool an acknowledgement means stored in ClickHouse,
	// which is what the raw inserts are compared with (make load measures
	// the spool).
	h := newHarness(b, server(b), func(c *Config) { c.NoSpool = true })
	tok := h.token(b, testApp, time.Hour)
	// Pre-build requests so generating them is not measured.
	reqs := make([]*consentryv1.IngestRequest, b.N)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: 42})
	for i := range reqs {
		reqs[i] = gen.Batch(benchBatchEvents, time.Now())
	}
	b.ResetTimer()
	e2e, p50, p99 := benchIngest(b, h, reqs)
	b.StopTimer()

	// The raw rates: the same rows, raw inserts, grouped as the writer
	// grouped them and in the largest inserts, once the server has
	// finished merging the parts the first phase made (merges would
	// otherwise slow the raw inserts and flatter the ratio).
	st := h.app.sink.writer.Stats()
	perInsert := int(st.Rows / max(st.Inserts, 1))
	rows := benchRows(b, h, reqs)
	waitForMerges(b, h)
	sameSize := rawInsertRate(b, h, rows, perInsert)
	waitForMerges(b, h)
	bestRaw := rawInsertRate(b, h, rows, clickhouse.DefaultMaxBatchRows)

	b.ReportMetric(e2e, "events/s")
	b.ReportMetric(bestRaw, "best-raw-events/s")
	b.ReportMetric(e2e/bestRaw, "ratio")
	b.ReportMetric(sameSize, "same-size-raw-events/s")
	b.ReportMetric(float64(perInsert), "rows/insert")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchIngest sends reqs from benchClients clients over benchConns
// connections, as BenchmarkEndToEnd does, and returns events per second
// and the p50 and p99 acknowledgement latency in milliseconds.
func benchIngest(b *testing.B, h *harness, reqs []*consentryv1.IngestRequest) (rate, p50, p99 float64) {
	conns := make([]consentryv1.IngestServiceClient, benchConns)
	for i := range conns {
		c, err := grpc.NewClient(h.app.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = consentryv1.NewIngestServiceClient(c)
	}
	var next, events atomic.Int64
	lat := make([][]time.Duration, benchClients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range benchClients {
		wg.Go(func() {
			client := conns[c%benchConns]
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				t0 := time.Now()
				resp, err := client.Ingest(context.Background(), reqs[i])
				if err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				events.Add(int64(resp.GetAccepted()))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if int(events.Load()) != len(reqs)*benchBatchEvents {
		b.Fatalf("accepted %d events, sent %d", events.Load(), len(reqs)*benchBatchEvents)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return float64(events.Load()) / elapsed.Seconds(), ms(all[len(all)/2]), ms(all[len(all)*99/100])
}

// waitForMerges waits until the server runs no merges, for up to a minute.
func waitForMerges(b *testing.B, h *harness) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n uint64
		if err := h.ch.QueryRow(context.Background(), "SELECT count() FROM system.merges").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Log("merges still running after a minute")
}

// benchRows runs reqs through the stages of the service the App serves,
// as Ingest does, and returns the rows it would store. (A second service
// would register the App's metrics again.)
func benchRows(b *testing.B, h *harness, reqs []*consentryv1.IngestRequest) []*pipeline.Rows {
	svc := h.app.ingest
	out := make([]*pipeline.Rows, len(reqs))
	for i, r := range reqs {
		batch := pipeline.NewBatch(r, time.Now(), netip.Addr{})
		for _, st := range svc.cfg.Stages {
			if err := st.Process(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		out[i] = &batch.Rows
	}
	return out
}

// rawInsertRate inserts rows with Client.Insert in inserts of about
// perInsert rows, as many at once as the writer runs flushers, and returns
// rows per second.
func rawInsertRate(b *testing.B, h *harness, rows []*pipeline.Rows, perInsert int) float64 {
	var groups []*pipeline.Rows
	g := &pipeline.Rows{}
	for _, r := range rows {
		g.Append(r)
		if g.Len() >= perInsert {
			groups = append(groups, g)
			g = &pipeline.Rows{}
		}
	}
	if g.Len() > 0 {
		groups = append(groups, g)
	}
	var next atomic.Int64
	var n atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clickhouse.DefaultFlushers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(groups)) {
					return
				}
				if err := h.app.Client().Insert(context.Background(), groups[i]); err != nil {
					b.Error(err)
					return
				}
				n.Add(int64(groups[i].Len()))
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
