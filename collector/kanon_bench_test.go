package collector

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// BenchmarkEndToEndKAnonymity is BenchmarkEndToEnd's ingest with
// k-anonymity on (k = 10), without the raw-insert ceiling:
//
//   - published: every combination the requests carry was published
//     exactly before (the steady state: rows go to the event tables, the
//     cost is the router's lookup);
//   - held: none was (every row is held, as at the start of a UTC day
//     until the first release pass, or for a new app).
//
// Compare with BenchmarkEndToEnd, which runs with k-anonymity off.
func BenchmarkEndToEndKAnonymity(b *testing.B) {
	for _, published := range []bool{true, false} {
		b.Run(map[bool]string{true: "published", false: "held"}[published], func(b *testing.B) {
			h := newHarness(b, server(b), func(c *Config) {
				c.NoSpool = true
				// No release pass during the measurement.
				c.Anonymizer.Generalize = kanon.Config{K: 10, ReleaseInterval: time.Hour}
			})
			tok := h.token(b, testApp, time.Hour)
			reqs := make([]*consentryv1.IngestRequest, b.N)
			gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: 42})
			for i := range reqs {
				reqs[i] = gen.Batch(benchBatchEvents, time.Now())
			}
			if published {
				publishDevices(b, h, reqs)
			}
			b.ResetTimer()
			rate, p50, p99 := benchIngest(b, h, reqs)
			b.StopTimer()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// publishDevices publishes, exactly, the combination of every device reqs
// carry: one event of each is sent, held, and released by a pass with k
// of 1; then the router learns them.
func publishDevices(b *testing.B, h *harness, reqs []*consentryv1.IngestRequest) {
	ctx := context.Background()
	seen := map[string]bool{}
	for _, r := range reqs {
		key := r.GetDevice().String()
		if seen[key] {
			continue
		}
		seen[key] = true
		one := &consentryv1.IngestRequest{ConsentToken: r.GetConsentToken(), Device: r.GetDevice(), SentAtUnixMs: r.GetSentAtUnixMs(),
			Events: r.GetEvents()[:1]}
		if _, err := h.client.Ingest(ctx, one); err != nil {
			b.Fatal(err)
		}
	}
	rel, err := kanon.NewReleaser(kanon.ReleaserConfig{Config: kanon.Config{K: 1}, Store: h.app.Client()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rel.Pass(ctx); err != nil {
		b.Fatal(err)
	}
	k := h.app.kanon
	if _, err := kanon.RefreshRouter(ctx, h.app.Client(), k.router, k.cfg, time.Time{}); err != nil {
		b.Fatal(err)
	}
	if k.router.Len() < len(seen) {
		b.Fatalf("%d classes published for %d devices", k.router.Len(), len(seen))
	}
	// The pass's deletions and merges must not run during the measurement.
	for deadline := time.Now().Add(time.Minute); ; {
		var n uint64
		if err := h.ch.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE is_done = 0").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitForMerges(b, h)
	held := k.held.Load()
	b.Cleanup(func() {
		if n := k.held.Load() - held; n > 0 {
			b.Errorf("%d rows held while every device was published", n)
		}
	})
}
