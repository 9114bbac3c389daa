package collector

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// outageEnv sets the ClickHouse outage of TestOutageRevocationIntegration;
// default 60s (issue 12's acceptance), far beyond the revocation bound the
// test uses. CONSENTRY_TEST_OUTAGE=4s runs it quickly.
const outageEnv = "CONSENTRY_TEST_OUTAGE"

// sentBatch is one acknowledged batch: when it was sent and answered, and
// its accepted event ids.
type sentBatch struct {
	sent, acked time.Time
	ids         []string
}

// TestOutageRevocationIntegration is issue 12's acceptance test. Replica A
// loses ClickHouse for longer than the revocation bound under load and
// keeps acknowledging into its spool, refusing nothing; during the
// outage replica B, which still reaches ClickHouse, records the
// revocation of one of the two consents sending to A. When ClickHouse is
// back, A's spool ships everything of the other consent, and of the
// revoked one everything received well before the revocation and nothing
// received at or after it.
func TestOutageRevocationIntegration(t *testing.T) {
	outage := 60 * time.Second
	if v := os.Getenv(outageEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", outageEnv, err)
		}
		outage = d
	}
	srv, proxy := proxied(t)
	a := newHarness(t, srv, func(c *Config) {
		c.ClickHouse.Addr = proxy.Addr()
		c.RevocationRefresh = 100 * time.Millisecond
		c.RevocationBound = 500 * time.Millisecond
		c.Spool.RetryMax = 300 * time.Millisecond
	})
	b := newHarness(t, srv, a.replica())
	revokedTok, keptTok := a.token(t, testApp, time.Hour), a.token(t, testApp, time.Hour)

	var (
		mu       sync.Mutex
		batches  = map[string][]sentBatch{}
		refusals = map[codes.Code]int{}
		lastErr  error
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for i, tok := range []string{revokedTok, keptTok} {
		wg.Go(func() {
			conn, err := grpc.NewClient(a.app.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			client := consentryv1.NewIngestServiceClient(conn)
			gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: uint64(300 + i)})
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := gen.Batch(20, time.Now())
				sent := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := client.Ingest(ctx, req)
				cancel()
				mu.Lock()
				if err != nil {
					refusals[status.Code(err)]++
					lastErr = err
				} else if ids := acceptedIDs(a.app.StoredEventID, req, resp); len(ids) > 0 {
					batches[tok] = append(batches[tok], sentBatch{sent: sent, acked: time.Now(), ids: ids})
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	time.Sleep(2 * time.Second)
	proxy.Refuse(true)
	proxy.Cut()
	time.Sleep(outage / 2)
	rev := b.revoke(t, revokedTok, false) // through the replica that reaches ClickHouse
	revokedAt := time.UnixMilli(rev.GetRevokedAtUnixMs())
	time.Sleep(outage - outage/2)
	proxy.Refuse(false)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	if len(refusals) > 0 {
		t.Errorf("refusals during a %v outage with room in the spool: %v (last %v)", outage, refusals, lastErr)
	}
	a.shipped(t)
	final, _ := storedIDs(t, a.ch, a.db)
	check := func(tok, name string, want func(sentBatch) (stored, known bool)) {
		t.Helper()
		var n, wrong int
		for _, sb := range batches[tok] {
			stored, known := want(sb)
			if !known {
				continue
			}
			n++
			for _, id := range sb.ids {
				if got := final[id]; (got == 1) != stored || got > 1 {
					wrong++
				}
			}
		}
		t.Logf("%s: %d batches checked", name, n)
		if n == 0 {
			t.Errorf("%s: no batch to check", name)
		}
		if wrong > 0 {
			t.Errorf("%s: %d events stored wrongly", name, wrong)
		}
	}
	check(keptTok, "other consent, everything", func(sentBatch) (bool, bool) { return true, true })
	check(revokedTok, "revoked consent, received at or after the revocation", func(sb sentBatch) (bool, bool) {
		return false, !sb.sent.Before(revokedAt)
	})
	// A batch received more than the skew allowance (2s) before the
	// revocation was accepted with consent and is stored.
	check(revokedTok, "revoked consent, received well before the revocation", func(sb sentBatch) (bool, bool) {
		return true, sb.acked.Before(revokedAt.Add(-3 * time.Second))
	})
}
