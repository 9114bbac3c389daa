package clickhouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

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
