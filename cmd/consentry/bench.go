package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/cli"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// runBenchData writes pre-encoded ingest requests for an independent load
// generator (scripts/bench-ghz.sh runs ghz with them).
func runBenchData(_ context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("bench-data", `
Writes --batches distinct ingest requests of --batch mixed events each
(unique event ids, each batch with a consent token of its own, signed with
the collector's key) to --out as varint length-delimited binary protobuf
messages: the call data format of ghz --binary-file, which sends them in
turn.`, stderr)
	out := fs.String("out", "bench-data.bin", "output `file`")
	batches := fs.Int("batches", 150, "distinct `requests`")
	batch := fs.Int("batch", 200, "`events` per request")
	dataDir := fs.String("data-dir", "consentry-data", "consentryd's data `dir` (for its signing key)")
	tf := tokenFlags{appID: "com.example.load"}
	tf.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	toks, err := tf.issueN(*dataDir, *batches)
	if err != nil {
		return err
	}
	// ghz parses its call data as a Go template, binary or not: draw again
	// any request whose bytes would hold the template delimiter "{{".
	var file []byte
	gen := eventgen.New(eventgen.Config{AppID: tf.appID, Seed: 17})
	now := time.Now()
	for _, tok := range toks {
		for {
			req := gen.Batch(*batch, now)
			req.ConsentToken = tok
			var buf bytes.Buffer
			if _, err := protodelim.MarshalTo(&buf, req); err != nil {
				return fmt.Errorf("bench-data: %w", err)
			}
			joined := append(file[max(0, len(file)-1):len(file):len(file)], buf.Bytes()...)
			if !bytes.Contains(joined, []byte("{{")) {
				file = append(file, buf.Bytes()...)
				break
			}
		}
	}
	if err := os.WriteFile(*out, file, 0o644); err != nil {
		return fmt.Errorf("bench-data: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d requests of %d events to %s\n", *batches, *batch, *out)
	return nil
}

// runBenchRaw measures the raw insert ceiling: anonymized mixed rows
// inserted with clickhouse.Client.Insert (no gRPC, no pipeline).
func runBenchRaw(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("bench-raw", `
Measures the raw ClickHouse insert ceiling: mixed events, anonymized once
beforehand, inserted with the collector's own column-wise insert
(clickhouse.Client.Insert: no gRPC, no pipeline) in inserts of --rows rows,
--concurrency at once, for --duration. Prints rows per second, then the
rows per second the server counted (system.events InsertedRows). With
--inserted-rows it prints instead the server's InsertedRows counter
(system.events), which counts the rows of every INSERT; with --wait-merges
it waits until the server's merges (system.merges) have stopped for 2 s.`, stderr)
	rowsPer := fs.Int("rows", clickhouse.DefaultMaxBatchRows, "`rows` per insert")
	conc := fs.Int("concurrency", clickhouse.DefaultFlushers, "concurrent `inserts`")
	duration := fs.Duration("duration", 10*time.Second, "how long to start inserts for (the last ones end, and count, after it)")
	inserted := fs.Bool("inserted-rows", false, "print system.events InsertedRows and exit")
	settle := fs.Duration("wait-merges", 0, "wait up to this long until the server runs no merges (system.merges) for 2 s, print the seconds waited and exit")
	var ch chFlags
	ch.register(fs)
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	// A busy 18.16 takes long over a 50,000-row insert while it merges.
	ch.cfg.ReadTimeout = 5 * time.Minute
	cl, _, err := ch.open(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *settle > 0 {
		waited, err := waitMerges(ctx, cl, *settle)
		if err != nil {
			return fmt.Errorf("bench-raw: %w", err)
		}
		fmt.Fprintf(stdout, "%.1f\n", waited.Seconds())
		return nil
	}
	if *inserted {
		n, err := cl.InsertedRows(ctx)
		if err != nil {
			return fmt.Errorf("bench-raw: %w", err)
		}
		fmt.Fprintln(stdout, n)
		return nil
	}
	rows, err := benchRawRows(ctx, *rowsPer)
	if err != nil {
		return err
	}
	before, err := cl.InsertedRows(ctx)
	if err != nil {
		return fmt.Errorf("bench-raw: %w", err)
	}
	// No insert is cut short at the end: each inserter starts no new
	// insert after the duration and the time counted includes the last
	// ones. (A deadline on the inserts themselves cut the last one off
	// mid-read, which a busy server reported as a failed run.)
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if err := cl.Insert(ctx, rows); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					return
				}
				n.Add(int64(rows.Len()))
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("bench-raw: %w", firstErr)
	}
	elapsed := time.Since(start)
	after, err := cl.InsertedRows(ctx)
	if err != nil {
		return fmt.Errorf("bench-raw: %w", err)
	}
	fmt.Fprintf(stdout, "%.0f %.0f\n", float64(n.Load())/elapsed.Seconds(), float64(after-before)/elapsed.Seconds())
	return nil
}

// waitMerges waits up to limit until cl's server has run no merge for
// two seconds, polling every 200 ms, and returns how long it waited.
func waitMerges(ctx context.Context, cl *clickhouse.Client, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var quietSince time.Time
	for time.Since(start) < limit {
		n, err := cl.RunningMerges(ctx)
		if err != nil {
			return 0, err
		}
		switch {
		case n > 0:
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince = time.Now()
		case time.Since(quietSince) >= 2*time.Second:
			return quietSince.Sub(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// benchRawRows returns about n anonymized mixed rows.
func benchRawRows(ctx context.Context, n int) (*pipeline.Rows, error) {
	st, err := anonymizer.New(anonymizer.Config{})
	if err != nil {
		return nil, err
	}
	gen := eventgen.New(eventgen.Config{AppID: "com.example.raw", Seed: 18})
	rows := &pipeline.Rows{}
	now := time.Now()
	for i := 0; rows.Len() < n; i++ {
		req := gen.Batch(200, now)
		b := pipeline.NewBatch(req, now, netip.Addr{})
		b.AppID, b.ConsentID = "com.example.raw", fmt.Sprint("raw-", i)
		b.Scopes = []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}
		b.EventTimes = make([]time.Time, len(req.GetEvents()))
		for j := range b.EventTimes {
			b.EventTimes[j] = now
		}
		if err := st.Process(ctx, b); err != nil {
			return nil, fmt.Errorf("bench-raw: anonymize: %w", err)
		}
		rows.Append(&b.Rows)
	}
	return rows, nil
}
