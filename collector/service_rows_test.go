package collector

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// arraySink remembers the backing arrays and event ids of what it was
// given, as a sink may (it must not keep the slices themselves).
type arraySink struct {
	arrays []*pipeline.GestureRow
	ids    [][][16]byte
}

func (a *arraySink) Write(_ context.Context, r *pipeline.Rows, _ pipeline.Origin) error {
	var ids [][16]byte
	for _, g := range r.Gestures {
		ids = append(ids, g.EventID)
	}
	a.arrays = append(a.arrays, firstRow(r.Gestures))
	a.ids = append(a.ids, ids)
	return nil
}

func firstRow(s []pipeline.GestureRow) *pipeline.GestureRow {
	if cap(s) == 0 {
		return nil
	}
	return &s[:1][0]
}

// TestIngestRecyclesRows checks that the service hands the sink the row
// slices of an earlier batch, emptied, rather than new ones each time,
// and that each batch's rows are its own.
func TestIngestRecyclesRows(t *testing.T) {
	f := newFixture(t)
	sink := &arraySink{}
	f.svc.cfg.Sink = sink
	var want [][][16]byte
	for range 5 {
		req := f.gen.Batch(200, time.Now())
		if _, err := f.svc.Ingest(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		want = append(want, slices.Clone(sink.ids[len(sink.ids)-1]))
	}
	for i := range want {
		if len(want[i]) == 0 || !slices.Equal(sink.ids[i], want[i]) {
			t.Fatalf("batch %d: gesture ids changed after later batches", i)
		}
	}
	reused := 0
	for _, a := range sink.arrays[1:] {
		if a == sink.arrays[0] {
			reused++
		}
	}
	// sync.Pool may drop what it holds (always, at random, under -race).
	if reused == 0 && !raceEnabled {
		t.Error("no batch reused the row slices of the first")
	}
}
