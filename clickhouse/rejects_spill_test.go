package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// TestRejectsSpill: counts Close cannot store (ClickHouse away) are kept in
// SpillFile, owner-only, and stored by the next run's first flush, which
// then removes the file; without a SpillFile they are lost and Close says
// so.
func TestRejectsSpill(t *testing.T) {
	ctx := context.Background()
	spill := filepath.Join(t.TempDir(), "rejects-spill.json")
	down := &fakeRejectStore{fail: errors.New("connection refused")}
	r := newTestRejects(t, RejectsConfig{SpillFile: spill}, down)
	r.CountRejects("com.example.a", pipeline.ReasonRateLimited, 3)
	r.CountRejects("com.example.b", pipeline.ReasonSpoolFull, 2)
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close with storage down and a spill file: %v", err)
	}
	fi, err := os.Stat(spill)
	if err != nil {
		t.Fatalf("no spill file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("spill file mode %v, want 0600", fi.Mode().Perm())
	}

	// The next run: storage still away at first, then back.
	next := &fakeRejectStore{fail: errors.New("connection refused")}
	r2 := newTestRejects(t, RejectsConfig{SpillFile: spill}, next)
	if err := r2.Flush(ctx); err == nil {
		t.Fatal("Flush with storage down succeeded")
	}
	if _, err := os.Stat(spill); err != nil {
		t.Errorf("the spill file went before its counts were stored: %v", err)
	}
	next.mu.Lock()
	next.fail = nil
	next.mu.Unlock()
	r2.CountRejects("com.example.a", pipeline.ReasonRateLimited, 1)
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := next.snapshot()
	if got["com.example.a/"+string(pipeline.ReasonRateLimited)] != 4 || got["com.example.b/"+string(pipeline.ReasonSpoolFull)] != 2 {
		t.Errorf("stored %v, want a 4 (3 spilled + 1), b 2", got)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file still there after its counts were stored: %v", err)
	}

	// Without a spill file the counts are lost, and Close says so.
	r3 := newTestRejects(t, RejectsConfig{}, down)
	r3.CountRejects("com.example.a", pipeline.ReasonRateLimited, 1)
	if err := r3.Close(ctx); err == nil {
		t.Error("Close without a spill file and with storage down returned nil")
	}
}

// TestRejectsSpillDamaged: a spill file that a crash left empty, or one
// damaged byte changed, is not a reason to refuse to start (the collector
// would stay down until someone deleted it) nor counted as it reads: it
// is moved aside (SpillFile.damaged, for a look) and the counts it held
// are lost, once, with an error logged. A file that is whole loads.
func TestRejectsSpillDamaged(t *testing.T) {
	ctx := context.Background()
	spill := filepath.Join(t.TempDir(), "rejects-spill.json")
	down := &fakeRejectStore{fail: errors.New("connection refused")}
	spillCounts := func() []byte {
		t.Helper()
		r := newTestRejects(t, RejectsConfig{SpillFile: spill}, down)
		r.CountRejects("com.example.a", pipeline.ReasonRateLimited, 3)
		r.CountRejects("com.example.b", pipeline.ReasonSpoolFull, 25)
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(spill)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	whole := spillCounts()
	digit := bytes.IndexAny(whole, "3")
	if digit < 0 {
		t.Fatalf("no count in %s", whole)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"cut", func(b []byte) []byte { return b[:len(b)/2] }},
		{"a count's digit", func(b []byte) []byte { b[digit] = '8'; return b }},
		{"a flipped bit in every byte", nil},
	} {
		damages := []func([]byte) []byte{tc.damage}
		if tc.damage == nil {
			damages = nil
			for i := range whole {
				damages = append(damages, func(b []byte) []byte { b[i] ^= 0x10; return b })
			}
		}
		for i, damage := range damages {
			if err := os.Remove(spill + ".damaged"); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			if err := os.WriteFile(spill, damage(bytes.Clone(whole)), 0o600); err != nil {
				t.Fatal(err)
			}
			up := &fakeRejectStore{}
			r, err := newRejects(RejectsConfig{SpillFile: spill}, up.insert, zap.NewNop())
			if err != nil {
				t.Fatalf("%s %d: a damaged spill file stops the start: %v", tc.name, i, err)
			}
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := up.snapshot(); len(got) != 0 {
				t.Fatalf("%s %d: damaged counts stored: %v", tc.name, i, got)
			}
			if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s %d: the damaged file is still in place: %v", tc.name, i, err)
			}
			if _, err := os.Stat(spill + ".damaged"); err != nil {
				t.Fatalf("%s %d: the damaged file was not kept aside: %v", tc.name, i, err)
			}
		}
	}

	// What releases before the checksum wrote: the rows alone.
	legacy := `[{"minute":29426000,"app":"com.example.a","reason":"` + string(pipeline.ReasonRateLimited) + `","events":5}]`
	if err := os.WriteFile(spill, []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	up := &fakeRejectStore{}
	r, err := newRejects(RejectsConfig{SpillFile: spill}, up.insert, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := up.snapshot(); got["com.example.a/"+string(pipeline.ReasonRateLimited)] != 5 {
		t.Errorf("a spill file of an older release: stored %v, want a 5", got)
	}
}
