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

// keepingSink fails its first Write but keeps the rows it was given, as
// the ClickHouse writer does when one waiter gives up on an insert that
// others still wait for; it records their frames and attributes as they
// were then.
type keepingSink struct {
	kept   pipeline.Rows
	frames [][]pipeline.Frame
	keys   [][]string
}

func (k *keepingSink) Write(_ context.Context, r *pipeline.Rows, _ pipeline.Origin) error {
	if k.frames != nil {
		return nil
	}
	k.kept.Append(r)
	for _, c := range r.Crashes {
		k.frames = append(k.frames, slices.Clone(c.Frames))
	}
	for _, c := range r.Customs {
		k.keys = append(k.keys, slices.Concat(c.StringKeys, c.StringValues, c.NumberKeys, c.BoolKeys))
	}
	return pipeline.ErrStorageUnavailable
}

// TestIngestKeepsFailedBatch checks that a batch whose Write failed is
// not reused: the slices inside its rows (a crash's frames, a custom
// event's attributes), which a failed sink may still insert, keep their
// values while later batches are handled.
func TestIngestKeepsFailedBatch(t *testing.T) {
	f := newFixture(t)
	sink := &keepingSink{}
	f.svc.cfg.Sink = sink
	if _, err := f.svc.Ingest(context.Background(), f.gen.Batch(200, time.Now())); err == nil {
		t.Fatal("the failed write was not refused")
	}
	for range 5 {
		if _, err := f.svc.Ingest(context.Background(), f.gen.Batch(200, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.frames) == 0 || len(sink.keys) == 0 {
		t.Fatal("no crash or custom event in the failed batch: the test tests nothing")
	}
	for i, c := range sink.kept.Crashes {
		if !slices.Equal(c.Frames, sink.frames[i]) {
			t.Fatalf("crash %d of the failed batch: frames overwritten by a later batch", i)
		}
	}
	for i, c := range sink.kept.Customs {
		if got := slices.Concat(c.StringKeys, c.StringValues, c.NumberKeys, c.BoolKeys); !slices.Equal(got, sink.keys[i]) {
			t.Fatalf("custom event %d of the failed batch: attributes overwritten by a later batch", i)
		}
	}
}
