package collector

import (
	"context"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// TestSpoolDropsErasedConsentsIntegration: rows of a consent accepted
// before its erasure but still in the spool (as when ClickHouse was away
// during the revocation) are not stored once the erasure is on record;
// other consents' rows are.
func TestSpoolDropsErasedConsentsIntegration(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.RevocationRefresh = 100 * time.Millisecond })
	ctx := context.Background()
	const erased, kept = "0a1b2c3d4e5f", "f5e4d3c2b1a0"
	if _, err := h.app.Client().Erase(ctx, testApp, erased); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !h.app.consent.erased.has(erased) {
		if time.Now().After(deadline) {
			t.Fatal("the collector did not learn of the erasure")
		}
		time.Sleep(20 * time.Millisecond)
	}
	row := func(key string, id byte) pipeline.SessionRow {
		r := pipeline.SessionRow{Phase: "start"}
		r.AppID, r.ConsentKey, r.EventTime, r.SessionKey = testApp, key, time.Now().UTC().Truncate(time.Second), 7
		r.EventID[0] = id
		return r
	}
	rows := &pipeline.Rows{Sessions: []pipeline.SessionRow{row(erased, 1), row(kept, 2), row(erased, 3)}}
	if err := h.app.Spool().Write(ctx, rows, pipeline.Origin{}); err != nil {
		t.Fatal(err)
	}
	if n := h.count(t, "sessions", "consent_key = '"+erased+"'"); n != 0 {
		t.Errorf("%d rows of the erased consent stored", n)
	}
	if n := h.count(t, "sessions", "consent_key = '"+kept+"'"); n != 1 {
		t.Errorf("%d rows of the other consent stored, want 1", n)
	}
}
