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

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("load", `
Sends sustained traffic to a running collector: --clients concurrent
clients each send batches of --batch mixed events, as fast as the
collector acknowledges them, for --duration. It reports acknowledged
events per second, acknowledgement latency (p50, p99, max), refusals by
gRPC code, and the collector's peak resident memory, read from
process_resident_memory_bytes on its admin port every second.
Tokens are issued from the collector's signing key (see consentry token).`, stderr)
	addr := fs.String("addr", "127.0.0.1:4790", "collector gRPC `host:port`")
	adminAddr := fs.String("admin-addr", "127.0.0.1:4792", "collector admin `host:port`, for its memory; empty skips it")
	clients := fs.Int("clients", 32, "concurrent `clients`")
	batch := fs.Int("batch", 200, "`events` per batch")
	duration := fs.Duration("duration", time.Minute, "how long to send")
	var tf tokenFlags
	tf.register(fs)
	var ch chFlags
	ch.register(fs)
	if err := parse(fs, args, lookup); err != nil {
		return err
	}
	if tf.appID == "com.example.demo" {
		tf.appID = "com.example.load"
	}
	tok, err := tf.issue(ch.dataDir)
	if err != nil {
		return err
	}
	conns := make([]*grpc.ClientConn, max(1, *clients/8))
	for i := range conns {
		if conns[i], err = grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return fmt.Errorf("dial collector: %w", err)
		}
		defer conns[i].Close()
	}
	if err := waitServing(ctx, healthpb.NewHealthClient(conns[0])); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	var (
		acked    atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		refusals = make(map[string]int)
		peakRSS  atomic.Int64
		wg       sync.WaitGroup
	)
	if *adminAddr != "" {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				if rss, err := residentMemory(ctx, *adminAddr); err == nil && rss > peakRSS.Load() {
					peakRSS.Store(rss)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	start := time.Now()
	for i := range *clients {
		wg.Go(func() {
			client := consentryv1.NewIngestServiceClient(conns[i%len(conns)])
			gen := eventgen.New(eventgen.Config{AppID: tf.appID, Token: tok, Seed: uint64(i + 1)})
			for ctx.Err() == nil {
				req := gen.Batch(*batch, time.Now())
				t0 := time.Now()
				resp, err := client.Ingest(ctx, req)
				took := time.Since(t0)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil {
					refusals[status.Code(err).String()]++
				} else {
					lat = append(lat, took)
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(100 * time.Millisecond) // as an SDK backs off
					continue
				}
				acked.Add(int64(resp.GetAccepted()))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Fprintf(stdout, "load: %d clients × %d-event batches for %s\n", *clients, *batch, elapsed.Round(time.Second))
	fmt.Fprintf(stdout, "acknowledged %d events in %d batches: %.0f events/s\n", acked.Load(), len(lat), float64(acked.Load())/elapsed.Seconds())
	fmt.Fprintf(stdout, "acknowledgement latency p50 %s, p99 %s, max %s\n", q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
	if len(refusals) > 0 {
		fmt.Fprintf(stdout, "refused batches by code: %v\n", refusals)
	}
	if peak := peakRSS.Load(); peak > 0 {
		fmt.Fprintf(stdout, "collector peak RSS %.0f MiB\n", float64(peak)/(1<<20))
	}
	return nil
}

// residentMemory reads process_resident_memory_bytes from a collector's
// metrics.
func residentMemory(ctx context.Context, adminAddr string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("no process_resident_memory_bytes at %s", adminAddr)
}
