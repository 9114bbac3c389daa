package spool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// fakeGate is a Gate whose horizon the test moves, with revocations (by
// consent hash, at a time) and erased consent keys.
type fakeGate struct {
	mu       sync.Mutex
	horizon  time.Time
	known    bool
	revoked  map[[32]byte]time.Time
	erased   map[string]bool
	horizons int // calls of Horizon
	admits   []pipeline.Origin
}

func newGate() *fakeGate {
	return &fakeGate{revoked: map[[32]byte]time.Time{}, erased: map[string]bool{}}
}

func (g *fakeGate) Horizon() (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.horizons++
	return g.horizon, g.known
}

func (g *fakeGate) Admit(o pipeline.Origin) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.admits = append(g.admits, o)
	if at, ok := g.revoked[o.ConsentHash]; ok && !at.After(o.Received) {
		return false
	}
	return !g.erased[o.ConsentKey]
}

func (g *fakeGate) setHorizon(t time.Time) {
	g.mu.Lock()
	g.horizon, g.known = t, true
	g.mu.Unlock()
}

func (g *fakeGate) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.horizons
}

// consent returns a consent hash for n.
func consent(n byte) [32]byte { return [32]byte{0: n, 31: 0xee} }

// writeFrom writes batch b of n rows with origin o and returns its ids.
func writeFrom(t *testing.T, s *Spool, b, n int, o pipeline.Origin) [][16]byte {
	t.Helper()
	r := makeRows(b, n)
	if err := s.Write(context.Background(), r, o); err != nil {
		t.Fatalf("Write batch %d: %v", b, err)
	}
	return rowIDs(r)
}

// TestGateWaitsForHorizon: nothing ships before the gate has loaded
// revocations, or while its horizon has not passed a record's receive
// time; the shipper polls without spinning, ships what came before the
// horizon first, and the rest once the horizon passes it.
func TestGateWaitsForHorizon(t *testing.T) {
	fake := newFake(t)
	gate := newGate()
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.Gate = gate
	s := mustOpen(t, cfg)
	t0 := time.Now()
	early := writeFrom(t, s, 0, 3, pipeline.Origin{ConsentHash: consent(1), Received: t0.Add(-time.Minute)})
	late := writeFrom(t, s, 1, 3, pipeline.Origin{ConsentHash: consent(1), Received: t0.Add(time.Hour)})

	time.Sleep(300 * time.Millisecond)
	if calls, _ := fake.snapshot(); len(calls) != 0 {
		t.Fatalf("%d inserts before the gate knew any revocation", len(calls))
	}
	if n := gate.calls(); n > 15 {
		t.Errorf("Horizon called %d times in 300ms: the shipper spins", n)
	}

	gate.setHorizon(t0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, stored := fake.snapshot(); len(stored) == len(early) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record received before the horizon was not shipped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	fake.checkExactlyOnce(t, early, nil) // not the late one
	if st := s.Stats(); st.PendingRecords != 1 {
		t.Errorf("pending %d records while the late one waits, want 1", st.PendingRecords)
	}

	gate.setHorizon(t0.Add(2 * time.Hour))
	waitShipped(t, s)
	mustClose(t, s)
	fake.checkExactlyOnce(t, append(early, late...), nil)
}

// TestGateRefuses: records the gate refuses — revoked at or before they
// were received, or erased — are not stored, are counted, and the
// checkpoint moves past them (a batch of refused records alone makes no
// insert); the rest ship.
func TestGateRefuses(t *testing.T) {
	dir := t.TempDir()
	fake := newFake(t)
	gate := newGate()
	t0 := time.Now()
	gate.revoked[consent(1)] = t0
	gate.erased["key-2"] = true
	gate.setHorizon(t0.Add(time.Hour))
	down := errors.New("down")
	fake.setFail(down) // let the records pile up, so batches mix them
	cfg := testConfig(t, dir, fake)
	cfg.Gate = gate
	cfg.MaxBatchRows = 1000
	s := mustOpen(t, cfg)

	var want [][16]byte
	want = append(want, writeFrom(t, s, 0, 2, pipeline.Origin{ConsentHash: consent(1), Received: t0.Add(-time.Second)})...)
	writeFrom(t, s, 1, 3, pipeline.Origin{ConsentHash: consent(1), Received: t0})                         // revoked at receipt
	writeFrom(t, s, 2, 4, pipeline.Origin{ConsentHash: consent(1), Received: t0.Add(time.Second)})        // revoked before
	want = append(want, writeFrom(t, s, 3, 5, pipeline.Origin{ConsentHash: consent(3), Received: t0})...) // another consent
	writeFrom(t, s, 4, 6, pipeline.Origin{ConsentHash: consent(2), ConsentKey: "key-2", Received: t0})    // erased
	fake.setFail(nil)
	waitShipped(t, s)
	// A batch of refused records only.
	writeFrom(t, s, 5, 7, pipeline.Origin{ConsentHash: consent(1), Received: t0.Add(time.Minute)})
	waitShipped(t, s)
	calls, _ := fake.snapshot()
	st := s.Stats()
	mustClose(t, s)

	fake.checkExactlyOnce(t, want, nil)
	if st.GateDroppedRecords != 4 || st.GateDroppedEvents != 3+4+6+7 {
		t.Errorf("gate dropped %d records, %d events; want 4 and %d", st.GateDroppedRecords, st.GateDroppedEvents, 3+4+6+7)
	}
	if st.ShippedRecords != 2 || st.ShippedRows != 7 || st.PendingRecords != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	for _, c := range calls {
		if c.rows.Len() == 0 {
			t.Errorf("empty insert %s", c.token)
		}
	}
	gate.mu.Lock()
	if len(gate.admits) != 6 || gate.admits[0].Received.Location() != time.UTC || !gate.admits[0].Received.Equal(t0.Add(-time.Second)) {
		t.Errorf("Admit saw %d origins, first %+v", len(gate.admits), gate.admits[0])
	}
	gate.mu.Unlock()

	// The checkpoint is past every refused record: nothing is left.
	reopenShipsNothing(t, cfg)
}

// TestGateRedoKeepsToken crashes after an insert, before the checkpoint
// passes it, and reopens with the gate now refusing a record of that
// insert: the redo carries the same token (ClickHouse drops it if it has
// the first insert) and only the rows the gate still admits.
func TestGateRedoKeepsToken(t *testing.T) {
	dir := t.TempDir()
	tfs := newTestFS()
	fake := newFake(t)
	gate := newGate() // no horizon yet: the records wait, and then ship in one insert
	t0 := time.Now()
	var once sync.Once
	crashed := make(chan struct{})
	fake.hook = func(call int) (error, func()) {
		return nil, func() {
			once.Do(func() {
				tfs.crash()
				fake.setFail(errCrashed)
				close(crashed)
			})
		}
	}
	cfg := testConfig(t, dir, fake)
	cfg.fsys = tfs
	cfg.Gate = gate
	s := mustOpen(t, cfg)
	var ids [][16]byte
	for b := range 4 {
		ids = append(ids, writeFrom(t, s, b, 2, pipeline.Origin{ConsentHash: consent(byte(b)), Received: t0})...)
	}
	gate.setHorizon(t0.Add(time.Hour))
	<-crashed
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_ = s.Close(ctx)
	cancel()
	first, _ := fake.snapshot()
	if len(first) != 1 || len(first[0].ids) != len(ids) {
		t.Fatalf("%d inserts before the crash, want 1 of all %d rows", len(first), len(ids))
	}

	// Consent 1 was revoked before its record was received.
	gate.mu.Lock()
	gate.revoked[consent(1)] = t0.Add(-time.Minute)
	gate.mu.Unlock()
	fake.setFail(nil)
	cfg.fsys = nil
	st, _ := shipAll(t, cfg)
	calls, _ := fake.snapshot()
	if len(calls) < 2 || calls[1].token != first[0].token {
		t.Fatalf("inserts %v: want the redo with token %s", calls, first[0].token)
	}
	if got, want := len(calls[1].ids), len(first[0].ids)-2; got != want {
		t.Errorf("redo has %d rows, want %d (the first insert's less the revoked record's)", got, want)
	}
	if st.GateDroppedRecords != 1 || st.GateDroppedEvents != 2 {
		t.Errorf("gate dropped %d records, %d events; want 1 and 2", st.GateDroppedRecords, st.GateDroppedEvents)
	}
	// The first insert stored everything (deduplication keeps it); the
	// redo stored nothing more.
	fake.checkExactlyOnce(t, ids, nil)
}
