package clickhouse

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// TestAgreeFingerprintIntegration checks that replicas racing to record
// the first fingerprint of a secret agree on one, that later candidates
// do not change it, and that an adopted fingerprint replaces it once.
func TestAgreeFingerprintIntegration(t *testing.T) {
	a := migrated(t, Config{})
	b := openClient(t, Config{Database: a.Database()})
	ctx := context.Background()
	var (
		wg   sync.WaitGroup
		got  [2]string
		errs [2]error
	)
	for i, c := range []*Client{a, b} {
		wg.Go(func() { got[i], errs[i] = c.AgreeFingerprint(ctx, "s", []string{"fp-a", "fp-b"}[i]) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	agreed, err := a.AgreeFingerprint(ctx, "s", "fp-c")
	if err != nil || (agreed != "fp-a" && agreed != "fp-b") {
		t.Fatalf("agreed %q, %v; want one of the racing candidates", agreed, err)
	}
	if again, _ := b.AgreeFingerprint(ctx, "s", "fp-d"); again != agreed {
		t.Fatalf("replicas disagree: %q vs %q", agreed, again)
	}
	if other, err := b.AgreeFingerprint(ctx, "other", "fp-o"); err != nil || other != "fp-o" {
		t.Fatalf("another secret's fingerprint: %q, %v", other, err)
	}

	for _, step := range []struct {
		fp      string
		adopted bool
		agreed  string
	}{
		{"fp-e", true, "fp-e"},
		{"fp-f", true, "fp-f"},
		{"fp-e", false, "fp-f"}, // adopted before: not again
		{agreed, true, agreed},  // recorded first, never adopted: may be
	} {
		adopted, err := a.AdoptFingerprint(ctx, "s", step.fp)
		if err != nil || adopted != step.adopted {
			t.Fatalf("adopt %s: %v, %v; want %v", step.fp, adopted, err, step.adopted)
		}
		for _, c := range []*Client{a, b} {
			if fp, err := c.AgreeFingerprint(ctx, "s", "fp-x"); err != nil || fp != step.agreed {
				t.Fatalf("after adopting %s: agreed %q, %v; want %q", step.fp, fp, err, step.agreed)
			}
		}
	}
	// A set of fingerprints (the signing keys' ids): each recorded once,
	// in the order first recorded.
	for _, fp := range []string{"k1", "k2", "k1", "k2"} {
		if err := b.RecordFingerprint(ctx, "keys", fp); err != nil {
			t.Fatal(err)
		}
	}
	if fps, err := a.Fingerprints(ctx, "keys"); err != nil || !slices.Equal(fps, []string{"k1", "k2"}) {
		t.Fatalf("Fingerprints = %v, %v; want [k1 k2]", fps, err)
	}
}
