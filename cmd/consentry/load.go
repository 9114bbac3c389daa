package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/cli"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/grpcrr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("load", `
Sends sustained traffic to a running collector: --clients concurrent
clients each send batches of --batch mixed events, as fast as the
collector acknowledges them, for --duration. It reports acknowledged
events per second, acknowledgement latency (p50, p99, max), refusals by
gRPC code, and from the collector's metrics (read every second) its peak
resident memory and how much its spool held not yet shipped.
Tokens are issued from the collector's signing key (see consentry token).`, stderr)
	addr := fs.String("addr", "127.0.0.1:4790", "collector gRPC `host:port`, or several, comma-separated, spread round robin")
	adminAddr := fs.String("admin-addr", "127.0.0.1:4792", "collector admin `host:port`, for its memory; empty skips it")
	clients := fs.Int("clients", 32, "concurrent `clients`")
	batch := fs.Int("batch", 200, "`events` per batch")
	duration := fs.Duration("duration", time.Minute, "how long to send")
	countStored := fs.Bool("count-stored", false, "afterwards, wait until ClickHouse (--clickhouse-*) holds every acknowledged event and report the rate they were stored at, from the start of the run")
	tf := tokenFlags{appID: "com.example.load"}
	tf.register(fs)
	var ch chFlags
	ch.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	var (
		err    error
		cl     *clickhouse.Client
		before uint64
	)
	if *countStored {
		if cl, _, err = ch.open(ctx); err != nil {
			return err
		}
		defer cl.Close()
		if before, err = storedEvents(ctx, cl, tf.appID); err != nil {
			return err
		}
	}
	conns := make([]*grpc.ClientConn, max(1, *clients/8))
	for i := range conns {
		if conns[i], err = grpc.NewClient(grpcrr.Addrs(*addr), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return fmt.Errorf("dial collector: %w", err)
		}
		defer conns[i].Close()
	}
	if err := waitServing(ctx, healthpb.NewHealthClient(conns[0])); err != nil {
		return err
	}
	// The collector creates its signing key as it starts: read it once it
	// serves.
	tok, err := tf.issue(ch.dataDir)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	run := &loadRun{adminAddr: *adminAddr, refusals: make(map[string]int)}
	var wg sync.WaitGroup
	if run.adminAddr != "" {
		wg.Go(func() { run.sample(ctx) })
	}
	start := time.Now()
	for i := range *clients {
		wg.Go(func() {
			client := consentryv1.NewIngestServiceClient(conns[i%len(conns)])
			gen := eventgen.New(eventgen.Config{AppID: tf.appID, Token: tok, Seed: uint64(i + 1)})
			run.send(ctx, client, gen, *batch)
		})
	}
	wg.Wait()
	fmt.Fprintf(stdout, "load: %d clients × %d-event batches for %s\n", *clients, *batch, time.Since(start).Round(time.Second))
	run.report(ctx, stdout, time.Since(start))
	if cl == nil {
		return nil
	}
	acked := run.acked.Load()
	stored, err := waitStored(context.WithoutCancel(ctx), cl, tf.appID, before, acked, 10*time.Minute)
	took := time.Since(start)
	fmt.Fprintf(stdout, "stored %d events %s after the start: %.0f events/s stored\n", stored, took.Round(100*time.Millisecond), float64(stored)/took.Seconds())
	return err
}

// loadRun is what the clients and the sampler of one load run record.
type loadRun struct {
	adminAddr string

	acked     atomic.Int64
	peakRSS   atomic.Int64
	peakSpool atomic.Int64
	endSpool  atomic.Int64

	mu       sync.Mutex
	lat      []time.Duration
	refusals map[string]int
}

// sample reads the collector's memory and spool backlog every second
// until ctx ends.
func (r *loadRun) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if m, err := scrapeGauges(ctx, r.adminAddr); err == nil {
			r.peakRSS.Store(max(r.peakRSS.Load(), int64(m["process_resident_memory_bytes"])))
			r.peakSpool.Store(max(r.peakSpool.Load(), int64(m["consentry_spool_bytes"])))
			r.endSpool.Store(int64(m["consentry_spool_bytes"]))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// send sends batches of n events as fast as they are acknowledged until
// ctx ends, backing off after a refusal as an SDK does.
func (r *loadRun) send(ctx context.Context, client consentryv1.IngestServiceClient, gen *eventgen.Generator, n int) {
	for ctx.Err() == nil {
		req := gen.Batch(n, time.Now())
		t0 := time.Now()
		resp, err := client.Ingest(ctx, req)
		took := time.Since(t0)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		if err != nil {
			r.refusals[status.Code(err).String()]++
		} else {
			r.lat = append(r.lat, took)
		}
		r.mu.Unlock()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		r.acked.Add(int64(resp.GetAccepted()))
	}
}

// report prints the rates, latencies, refusals, peak memory and, with a
// spool, how long ClickHouse took to catch up after the traffic stopped.
func (r *loadRun) report(ctx context.Context, stdout io.Writer, elapsed time.Duration) {
	slices.Sort(r.lat)
	q := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	acked := r.acked.Load()
	fmt.Fprintf(stdout, "acknowledged %d events in %d batches: %.0f events/s\n", acked, len(r.lat), float64(acked)/elapsed.Seconds())
	fmt.Fprintf(stdout, "acknowledgement latency p50 %s, p99 %s, max %s\n", q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
	if len(r.refusals) > 0 {
		fmt.Fprintf(stdout, "refused batches by code: %v\n", r.refusals)
	}
	if peak := r.peakRSS.Load(); peak > 0 {
		fmt.Fprintf(stdout, "collector peak RSS %.0f MiB\n", float64(peak)/(1<<20))
	}
	peak := r.peakSpool.Load()
	if peak == 0 {
		return
	}
	fmt.Fprintf(stdout, "spool not yet shipped: peak %.1f MiB, at the end %.1f MiB\n", float64(peak)/(1<<20), float64(r.endSpool.Load())/(1<<20))
	// How long ClickHouse takes to catch up: the rate it stores at.
	drainStart := time.Now()
	for {
		m, err := scrapeGauges(context.WithoutCancel(ctx), r.adminAddr)
		if err != nil || m["consentry_spool_bytes"] == 0 || time.Since(drainStart) > 10*time.Minute {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	fmt.Fprintf(stdout, "spool shipped %s after the traffic stopped: stored into ClickHouse at %.0f events/s overall\n",
		drained.Round(100*time.Millisecond), float64(acked)/(elapsed+drained).Seconds())
}

// scrapeGauges reads the unlabelled samples of a collector's metrics.
func scrapeGauges(ctx context.Context, adminAddr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}
