package clickhouse

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInsertJobsPace checks that insertJobs runs the tables' inserts at
// once, or one after another when unhurried, and that either way it runs
// only the tables in todo that have rows and reports the ones that failed.
func TestInsertJobsPace(t *testing.T) {
	for _, unhurried := range []bool{false, true} {
		var running, most atomic.Int32
		var ran sync.Map
		// started is closed when all four jobs with rows have started: a
		// job waits for it (up to a bound), so jobs run at once finish
		// together, and jobs run one after another each wait it out.
		started := make(chan struct{})
		var n atomic.Int32
		job := func(set tableSet, rows int, err error) tableJob {
			return tableJob{set, rows, func() error {
				ran.Store(set, true)
				cur := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); cur > m && !most.CompareAndSwap(m, cur); m = most.Load() {
				}
				if n.Add(1) == 4 {
					close(started)
				}
				select {
				case <-started:
				case <-time.After(20 * time.Millisecond):
				}
				return err
			}}
		}
		boom := errors.New("boom")
		failed, err := insertJobs(unhurried, []tableJob{
			job(setSessions, 3, nil),
			job(setGestures, 0, nil), // no rows: not run
			job(setCrashes, 1, boom),
			job(setCustoms, 5, nil),
			job(setDiagnostics, 2, nil),
		}, allTables)
		if failed != setCrashes || !errors.Is(err, boom) {
			t.Errorf("unhurried %v: failed %v, %v; want crashes, boom", unhurried, failed, err)
		}
		if _, ok := ran.Load(setGestures); ok {
			t.Errorf("unhurried %v: ran a table without rows", unhurried)
		}
		want := int32(4)
		if unhurried {
			want = 1
		}
		if got := most.Load(); got != want {
			t.Errorf("unhurried %v: at most %d inserts ran at once, want %d", unhurried, got, want)
		}
	}
	// A table not in todo is not inserted.
	var ran atomic.Bool
	failed, err := insertJobs(true, []tableJob{{setSessions, 1, func() error { ran.Store(true); return nil }}}, allTables&^setSessions)
	if failed != 0 || err != nil || ran.Load() {
		t.Errorf("a table outside todo: ran %v, failed %v, %v", ran.Load(), failed, err)
	}
}
