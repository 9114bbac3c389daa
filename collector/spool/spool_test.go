package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// TestRoundTrip writes batches through several segments and checks every
// row arrives unchanged, in order, once, in inserts of at most MaxBatchRows
// rows with contiguous token ranges, and that shipped segments are removed.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fake := newFake(t)
	cfg := testConfig(t, dir, fake)
	cfg.SegmentBytes = 4 << 10
	cfg.MaxBatchRows = 25
	s := mustOpen(t, cfg)

	var want pipeline.Rows
	var ids [][16]byte
	for b := range 60 {
		r := makeRows(b, 1+b%12)
		if err := s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
			t.Fatal(err)
		}
		want.Append(r)
		ids = append(ids, rowIDs(r)...)
	}
	if err := s.Write(context.Background(), &pipeline.Rows{}, pipeline.Origin{}); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)

	fake.checkExactlyOnce(t, ids, nil)
	calls, _ := fake.snapshot()
	var got pipeline.Rows
	next := uint64(0)
	for _, c := range calls {
		got.Append(c.rows)
		var a, b uint64
		if _, err := fmt.Sscanf(c.token[strings.IndexByte(c.token, ':')+1:], "%d:%d", &a, &b); err != nil {
			t.Fatalf("token %q: %v", c.token, err)
		}
		if prefix := s.ID() + ":"; !strings.HasPrefix(c.token, prefix) || len(s.ID()) != 32 {
			t.Errorf("token %q lacks spool id %q", c.token, s.ID())
		}
		if a != next || b <= a {
			t.Errorf("token range [%d, %d), want start %d", a, b, next)
		}
		next = b
		if n := c.rows.Len(); n > cfg.MaxBatchRows && b-a > 1 {
			t.Errorf("insert of %d records has %d rows > MaxBatchRows", b-a, n)
		}
	}
	if next != 60 {
		t.Errorf("shipped through record %d, want 60", next)
	}
	// Inserts group rows by table, keeping their order within a table.
	if !rowsEqual(&got, &want) {
		t.Error("shipped rows differ from written rows")
	}
	if st.WrittenRecords != 60 || st.ShippedRecords != 60 || st.WrittenRows != uint64(want.Len()) ||
		st.ShippedRows != uint64(want.Len()) || st.PendingRecords != 0 || st.Bytes != 0 ||
		st.CorruptRecords != 0 || st.ShipLag != 0 || st.Segments != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.Fsyncs == 0 || st.Fsyncs > st.WrittenRecords {
		t.Errorf("%d fsyncs for %d records", st.Fsyncs, st.WrittenRecords)
	}
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segment files left, want 1", n)
	}

	// Reopening ships nothing again and keeps the id.
	if _, id := reopenShipsNothing(t, cfg); id != s.ID() {
		t.Errorf("id changed on reopen: %s, %s", s.ID(), id)
	}
}

func TestConcurrentWriters(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.SegmentBytes = 16 << 10
	cfg.MaxBatchRows = 100
	s := mustOpen(t, cfg)
	const writers, each = 8, 30
	ids, _ := writeConcurrently(t, s, writers, each, 7, nil)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	fake.checkExactlyOnce(t, ids, nil)
	if st.WrittenRecords != writers*each {
		t.Errorf("written %d records, want %d", st.WrittenRecords, writers*each)
	}
	t.Logf("%d records, %d fsyncs", st.WrittenRecords, st.Fsyncs)
	if st.Fsyncs > st.WrittenRecords {
		t.Errorf("%d fsyncs for %d records", st.Fsyncs, st.WrittenRecords)
	}
}

// TestFull fills the spool while the inserter is down: Write fails with
// ErrFull (an overload, for the collector) and works again once shipping
// resumes.
func TestFull(t *testing.T) {
	fake := newDownFake(t)
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.MaxBytes = 8 << 10
	cfg.SegmentBytes = 2 << 10
	s := mustOpen(t, cfg)
	var ids [][16]byte
	var err error
	for b := 0; b < 1000; b++ {
		r := makeRows(b, 10)
		if err = s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
			break
		}
		ids = append(ids, rowIDs(r)...)
	}
	if !errors.Is(err, ErrFull) || !errors.Is(err, pipeline.ErrOverloaded) {
		t.Fatalf("Write beyond the cap: %v, want ErrFull wrapping pipeline.ErrOverloaded", err)
	}
	if st := s.Stats(); st.Bytes > cfg.MaxBytes || st.Bytes < cfg.MaxBytes/2 {
		t.Errorf("unshipped bytes %d, cap %d", st.Bytes, cfg.MaxBytes)
	}
	if st := s.Stats(); st.ShipLag <= 0 || st.InsertErrors == 0 || st.PendingRecords != uint64(len(ids)/10) {
		t.Errorf("stats while down: %+v", st)
	}
	fake.setFail(nil)
	waitShipped(t, s)
	ids = append(ids, writeBatches(t, s, 5000, 5003, 10)...)
	waitShipped(t, s)
	mustClose(t, s)
	fake.checkExactlyOnce(t, ids, nil)
}

// TestReplayOnOpen closes a spool that could not ship and reopens it.
func TestReplayOnOpen(t *testing.T) {
	dir := t.TempDir()
	down := newDownFake(t)
	cfg := testConfig(t, dir, down)
	cfg.SegmentBytes = 3 << 10
	s := mustOpen(t, cfg)
	ids := writeBatches(t, s, 0, 40, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cancel()
	if n := len(segFiles(t, dir)); n < 2 {
		t.Fatalf("%d segments, want several", n)
	}

	fake := newFake(t)
	cfg.Inserter = fake
	s2 := mustOpen(t, cfg)
	if st := s2.Stats(); st.PendingRecords != 40 || st.Bytes == 0 {
		t.Errorf("stats on open: %+v", st)
	}
	ids = append(ids, writeBatches(t, s2, 40, 45, 5)...)
	waitShipped(t, s2)
	mustClose(t, s2)
	fake.checkExactlyOnce(t, ids, nil)
}

// TestCrash kills the spool at points around an insert and checks that,
// after reopening, every acknowledged row is stored exactly once, and any
// row inserted twice was inserted under one token with the same rows.
func TestCrash(t *testing.T) {
	tests := []struct {
		name string
		// at is the insert call at which the process dies.
		at int
		// after: the insert completed before the crash (so the checkpoint
		// still holds its intent); otherwise the crash comes first.
		after bool
	}{
		{"before first insert", 1, false},
		{"after first insert", 1, true},
		{"before third insert", 3, false},
		{"after third insert", 3, true},
		{"never (unsynced writes lost)", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tfs := newTestFS()
			fake := newFake(t)
			crashing := make(chan struct{}) // closed first: writers may fail from now on
			crashed := make(chan struct{})  // closed once the crash is complete
			var once sync.Once
			crash := func() {
				once.Do(func() {
					close(crashing)
					tfs.crash()
					fake.setFail(errCrashed) // a dead process inserts nothing more
					close(crashed)
				})
			}
			fake.hook = func(call int) (error, func()) {
				if call != tt.at {
					return nil, nil
				}
				if tt.after {
					return nil, crash
				}
				crash()
				return errCrashed, nil
			}
			cfg := testConfig(t, dir, fake)
			cfg.fsys = tfs
			cfg.SegmentBytes = 2 << 10
			cfg.MaxBatchRows = 12
			s := mustOpen(t, cfg)

			// Writers keep writing until the crash; only acknowledged
			// rows must survive.
			acked, all := writeConcurrently(t, s, 4, 40, 5, crashing)
			if tt.at == 0 {
				// Crash with records appended but not synced: write
				// directly, as a Write in flight would have.
				tfs.set(func(f *testFS) { f.failSync = true })
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				r := makeRows(9999, 3)
				all = append(all, rowIDs(r)...)
				if err := s.Write(ctx, r, pipeline.Origin{}); err == nil {
					t.Error("Write with a failing sync succeeded")
				}
				cancel()
				crash()
			}
			<-crashed
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_ = s.Close(ctx) // the dead process's goroutines stop; nothing reaches the disk
			cancel()

			fake.setFail(nil)
			cfg.fsys = nil
			st, _ := shipAll(t, cfg)
			if st.CorruptRecords != 0 {
				t.Errorf("%d corrupt records after a crash", st.CorruptRecords)
			}
			fake.checkExactlyOnce(t, acked, all)
			calls, _ := fake.snapshot()
			if tt.after {
				// The crashed insert was redone with the same token.
				seen := map[string]int{}
				for _, c := range calls {
					seen[c.token]++
				}
				dup := 0
				for _, n := range seen {
					if n > 1 {
						dup++
					}
				}
				if dup != 1 {
					t.Errorf("%d tokens inserted twice, want 1 (the redo)", dup)
				}
			}
		})
	}
}

// closeDown closes s, whose inserter is down, without waiting.
func closeDown(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// spoolUnshipped writes batches [0, n) of 4 rows to a new spool in dir
// whose inserter is down, and closes it.
func spoolUnshipped(t *testing.T, dir string, segBytes int64, n int) [][16]byte {
	t.Helper()
	down := newDownFake(t)
	cfg := testConfig(t, dir, down)
	cfg.SegmentBytes = segBytes
	s := mustOpen(t, cfg)
	ids := writeBatches(t, s, 0, n, 4)
	closeDown(t, s)
	return ids
}

// shipAfterCrash opens the spool in dir, which a crash left with a torn
// write, with a new fake inserter; after (nil: nothing) checks what Open
// did to the files. Then it writes batches [from, from+3) of 4 rows and
// ships everything: ids, the rows acknowledged before the crash, and the
// new rows must be stored once, and the torn write must not count as
// corruption.
func shipAfterCrash(t *testing.T, dir string, ids [][16]byte, from int, after func()) {
	t.Helper()
	fake := newFake(t)
	s := mustOpen(t, testConfig(t, dir, fake))
	if after != nil {
		after()
	}
	ids = append(ids, writeBatches(t, s, from, from+3, 4)...)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	if st.CorruptRecords != 0 {
		t.Errorf("torn write counted as corruption: %+v", st)
	}
	fake.checkExactlyOnce(t, ids, nil)
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name string
		// tail returns the bytes a crash left after the last record,
		// given a valid next record.
		tail func(rec []byte) []byte
	}{
		{"partial header", func(rec []byte) []byte { return rec[:10] }},
		{"partial payload", func(rec []byte) []byte { return rec[:len(rec)-5] }},
		{"complete record, bad payload checksum", func(rec []byte) []byte {
			rec[len(rec)-1] ^= 0xff
			return rec
		}},
		{"complete record, bad header checksum", func(rec []byte) []byte {
			rec[20] ^= 0xff
			return rec
		}},
		{"zeros", func(rec []byte) []byte { return make([]byte, len(rec)+100) }},
		{"header then zeros", func(rec []byte) []byte {
			return append(rec[:frameHeaderSizeV2:frameHeaderSizeV2], make([]byte, len(rec)-frameHeaderSizeV2)...)
		}},
		{"bad record then a partial one", func(rec []byte) []byte {
			bad := slices.Clone(rec)
			bad[len(bad)-1] ^= 0xff
			return append(bad, rec[:len(rec)-3]...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := spoolUnshipped(t, dir, 1<<20, 10)
			segs := segFiles(t, dir)
			last := segs[len(segs)-1]
			before, _ := os.Stat(last)
			rec := encodeRecord(segHeaderOf(t, last).key, pipeline.Origin{}, makeRows(777, 3), 10, 40)
			appendFile(t, last, tt.tail(rec))

			shipAfterCrash(t, dir, ids, 100, func() {
				if after, _ := os.Stat(last); after.Size() != before.Size() {
					t.Errorf("segment is %d bytes after open, want the torn tail truncated to %d", after.Size(), before.Size())
				}
			})
		})
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestUndecodableRecord: a record whose checksum is right but whose payload
// does not decode is skipped alone.
func TestUndecodableRecord(t *testing.T) {
	dir := t.TempDir()
	ids := spoolUnshipped(t, dir, 1<<20, 5)
	segs := segFiles(t, dir)
	key := segHeaderOf(t, segs[0]).key
	// Records 0-4 hold 4 rows each; the bad one claims 3.
	rec := appendOrigin(make([]byte, frameHeaderSizeV2), pipeline.Origin{})
	rec = append(rec, "not rows at all"...)
	sealFrame(rec, keyCRC(key), crc32c(rec[frameHeaderSizeV2:]), 3, 5, 20, time.Now().UnixNano())
	appendFile(t, segs[0], rec)
	appendFile(t, segs[0], encodeRecord(key, pipeline.Origin{}, makeRows(6, 4), 6, 23))
	ids = append(ids, rowIDs(makeRows(6, 4))...)

	fake := newFake(t)
	s := mustOpen(t, testConfig(t, dir, fake))
	ids = append(ids, writeBatches(t, s, 7, 9, 4)...)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	if st.CorruptRecords != 1 || st.CorruptEvents != 3 || st.CorruptBytes != uint64(len(rec)) {
		t.Errorf("corrupt %d records, %d events, %d bytes; want 1, 3 and %d", st.CorruptRecords, st.CorruptEvents, st.CorruptBytes, len(rec))
	}
	fake.checkExactlyOnce(t, ids, nil)
}

// TestBadSegmentHeader: a segment whose header is damaged is skipped
// whole, and its records and events are counted from the gap it leaves.
func TestBadSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	ids := spoolUnshipped(t, dir, 2<<10, 30)
	segs := segFiles(t, dir)
	victim := segs[1]
	first := firstSeqOf(t, victim)
	n := len(frameOffsets(t, victim))
	flipByte(t, victim, 2)
	lost := map[[16]byte]bool{}
	for seq := first; seq < first+uint64(n); seq++ {
		for _, id := range rowIDs(makeRows(int(seq), 4)) {
			lost[id] = true
		}
	}
	var want [][16]byte
	for _, id := range ids {
		if !lost[id] {
			want = append(want, id)
		}
	}
	fake := newFake(t)
	st, _ := shipAll(t, testConfig(t, dir, fake))
	if st.CorruptRecords != uint64(n) || st.CorruptEvents != 4*uint64(n) {
		t.Errorf("corrupt records %d, events %d; want %d and %d", st.CorruptRecords, st.CorruptEvents, n, 4*n)
	}
	fake.checkExactlyOnce(t, want, nil)
}

// TestDiskFull makes the segment's writes or syncs fail with ENOSPC: the
// Write fails, the segment is truncated to its last durable record, and
// Writes work again once there is room.
func TestDiskFull(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*testFS)
		// rolls makes the failing Write start a new segment.
		rolls bool
	}{
		{"write fails mid-record", func(f *testFS) { f.budget = 30 }, false},
		{"write fails at once", func(f *testFS) { f.budget = 0 }, false},
		{"sync fails", func(f *testFS) { f.failSync = true }, false},
		{"new segment cannot be created", func(f *testFS) { f.failCreate = true }, true},
		{"new segment header cannot be written", func(f *testFS) { f.budget = 10 }, true},
		{"sync before a new segment fails", func(f *testFS) { f.failSync = true }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tfs := newTestFS()
			fake := newFake(t)
			cfg := testConfig(t, dir, fake)
			cfg.fsys = tfs
			cfg.SegmentBytes = 1 << 10
			s := mustOpen(t, cfg)
			ids := writeBatches(t, s, 0, 3, 2)
			waitShipped(t, s)
			r := makeRows(50, 2)
			if tt.rolls {
				r = makeRows(50, 20) // too big for the current segment
			}
			segsBefore := segFiles(t, dir)
			sizeBefore := fileSize(t, segsBefore[len(segsBefore)-1])

			tfs.set(tt.inject)
			err := s.Write(context.Background(), r, pipeline.Origin{})
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, pipeline.ErrStorageUnavailable) {
				t.Fatalf("Write on a full disk: %v, want ENOSPC and ErrStorageUnavailable", err)
			}
			segs := segFiles(t, dir)
			if len(segs) != len(segsBefore) {
				t.Errorf("segments %v, want %v", segs, segsBefore)
			}
			if got := fileSize(t, segs[len(segs)-1]); got != sizeBefore {
				t.Errorf("segment is %d bytes after the failure, want %d", got, sizeBefore)
			}
			if st := s.Stats(); st.PendingRecords != 0 || st.Bytes != 0 {
				t.Errorf("stats after the failure: %+v", st)
			}

			tfs.set(func(f *testFS) { f.budget, f.failSync, f.failCreate = -1, false, false })
			if err := s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
				t.Fatalf("Write once there is room: %v", err)
			}
			ids = append(ids, rowIDs(r)...)
			ids = append(ids, writeBatches(t, s, 60, 63, 2)...)
			waitShipped(t, s)
			mustClose(t, s)
			fake.checkExactlyOnce(t, ids, nil)

			// The files on disk are consistent.
			cfg.fsys = nil
			if st, _ := reopenShipsNothing(t, cfg); st.CorruptRecords != 0 {
				t.Errorf("corruption after reopening: %+v", st)
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCloseStalledInserter: Close returns when its ctx ends even though an
// insert hangs; the insert is redone with the same token after reopening.
func TestCloseStalledInserter(t *testing.T) {
	dir := t.TempDir()
	fake := newFake(t)
	fake.block = make(chan struct{}) // never closed: inserts hang until cancelled
	cfg := testConfig(t, dir, fake)
	s := mustOpen(t, cfg)
	ids := writeBatches(t, s, 0, 5, 3)
	time.Sleep(10 * time.Millisecond) // let the insert start

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a 100ms context", d)
	}
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write(context.Background(), makeRows(9, 1), pipeline.Origin{}); !errors.Is(err, ErrClosed) || !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.WaitShipped(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitShipped after Close: %v", err)
	}
	ck := readCheckpointFile(t, dir)
	if !ck.intent {
		t.Fatalf("checkpoint after a cancelled insert: %+v; want an intent", ck)
	}

	fake.mu.Lock()
	fake.block = nil
	fake.mu.Unlock()
	shipAll(t, cfg)
	fake.checkExactlyOnce(t, ids, nil)
	calls, _ := fake.snapshot()
	want := fmt.Sprintf("%s:%d:%d", s.ID(), ck.shipped, ck.intentEnd)
	if len(calls) == 0 || calls[0].token != want {
		t.Errorf("first insert after reopening has token %v, want the intent's %s", calls, want)
	}
}

func TestInsertRetries(t *testing.T) {
	fake := newFake(t)
	failures := 3
	fake.hook = func(call int) (error, func()) {
		if call <= failures {
			return errors.New("transient"), nil
		}
		return nil, nil
	}
	s := mustOpen(t, testConfig(t, t.TempDir(), fake))
	ids := writeBatches(t, s, 0, 1, 5)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	if st.InsertErrors != uint64(failures) || st.LastInsert <= 0 {
		t.Errorf("stats %+v, want %d insert errors", st, failures)
	}
	fake.checkExactlyOnce(t, ids, nil)
}

func TestWriteContext(t *testing.T) {
	s := mustOpen(t, testConfig(t, t.TempDir(), newFake(t)))
	defer mustClose(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, makeRows(1, 1), pipeline.Origin{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		prepare func(t *testing.T)
		want    string
	}{
		{"no dir", Config{Inserter: newFake(t)}, nil, "Dir is required"},
		{"no inserter", Config{Dir: dir}, nil, "Inserter is required"},
		{"negative", Config{Dir: dir, Inserter: newFake(t), MaxBytes: -1}, nil, "negative"},
		{"retry bounds", Config{Dir: dir, Inserter: newFake(t), RetryMin: time.Second, RetryMax: time.Millisecond}, nil, "RetryMax"},
		{"negative reserve", Config{Dir: dir, Inserter: newFake(t), ReserveBytes: -1}, nil, "negative"},
		{"damaged checkpoint", Config{Dir: dir, Inserter: newFake(t)}, func(t *testing.T) {
			s := mustOpen(t, Config{Dir: dir, Inserter: newFake(t)})
			writeBatches(t, s, 0, 2, 1)
			waitShipped(t, s)
			mustClose(t, s)
			// Both slots: one alone falls back to the other.
			flipByte(t, filepath.Join(dir, ckName), 30)
			flipByte(t, filepath.Join(dir, ckName), ckSlotSize+30)
		}, "checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			s, err := Open(context.Background(), tt.cfg)
			if err == nil {
				mustClose(t, s)
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDirLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testConfig(t, dir, newFake(t)))
	if s2, err := Open(context.Background(), testConfig(t, dir, newFake(t))); err == nil {
		mustClose(t, s2)
		t.Error("second Open of a directory in use succeeded")
	}
	mustClose(t, s)
	s3 := mustOpen(t, testConfig(t, dir, newFake(t)))
	mustClose(t, s3)
}

// TestBigRecord writes a record larger than the read chunk and the segment
// size.
func TestBigRecord(t *testing.T) {
	fake := newFake(t)
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.SegmentBytes = 64 << 10
	s := mustOpen(t, cfg)
	r := makeRows(100, 10)
	for i := range r.Crashes {
		r.Crashes[i].Message = strings.Repeat(fmt.Sprint(i), 200<<10)
	}
	ids := writeBatches(t, s, 0, 2, 3)
	if err := s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, rowIDs(r)...)
	ids = append(ids, writeBatches(t, s, 5, 7, 3)...)
	waitShipped(t, s)
	mustClose(t, s)
	fake.checkExactlyOnce(t, ids, nil)
	calls, _ := fake.snapshot()
	for _, c := range calls {
		for _, cr := range c.rows.Crashes {
			if len(cr.Message) == 200<<10 {
				return
			}
		}
	}
	t.Error("big message not shipped intact")
}

// TestGroupCommit holds the first sync until eight more Writes have
// appended their records: those share the next sync.
func TestGroupCommit(t *testing.T) {
	tfs := newTestFS()
	cfg := testConfig(t, t.TempDir(), newFake(t))
	cfg.fsys = tfs
	s := mustOpen(t, cfg)
	gate := make(chan struct{})
	syncing := make(chan struct{}, 16)
	tfs.set(func(f *testFS) { f.syncGate, f.syncing = gate, syncing })

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Write(context.Background(), makeRows(0, 1), pipeline.Origin{}); err != nil {
			t.Error(err)
		}
	})
	<-syncing // the first sync is held
	const more = 8
	for i := range more {
		wg.Go(func() {
			if err := s.Write(context.Background(), makeRows(1+i, 1), pipeline.Origin{}); err != nil {
				t.Error(err)
			}
		})
	}
	for {
		s.mu.Lock()
		n := s.nextSeq
		s.mu.Unlock()
		if n == 1+more {
			break
		}
		time.Sleep(time.Millisecond)
	}
	tfs.set(func(f *testFS) { f.syncGate = nil })
	close(gate)
	wg.Wait()
	st := s.Stats()
	waitShipped(t, s)
	mustClose(t, s)
	if st.WrittenRecords != 1+more || st.Fsyncs != 2 {
		t.Errorf("%d records took %d fsyncs, want 2", st.WrittenRecords, st.Fsyncs)
	}
}

// TestCommitDelay: with a commit delay, Writes arriving together share a
// sync even when the disk is fast.
func TestCommitDelay(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), newFake(t))
	cfg.CommitDelay = 50 * time.Millisecond
	s := mustOpen(t, cfg)
	const writers = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			if err := s.Write(context.Background(), makeRows(i, 2), pipeline.Origin{}); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	st := s.Stats()
	mustClose(t, s)
	t.Logf("%d records, %d fsyncs", st.WrittenRecords, st.Fsyncs)
	if st.Fsyncs >= writers/2 {
		t.Errorf("%d fsyncs for %d concurrent Writes with a commit delay", st.Fsyncs, writers)
	}
}

// TestSeekCheckpoint reopens with checkpoints pointing into a segment: the
// records before shipped are not shipped again, the rest are. A v2
// position is used as it is; a v1 one (from an upgrade) is a hint that is
// checked, and the segment is read from its start when it is wrong.
func TestSeekCheckpoint(t *testing.T) {
	tests := []struct {
		name string
		v1   bool
		hint func(offs []int64, seg uint64) position
	}{
		{"v2 position", false, func(offs []int64, seg uint64) position { return position{seg, offs[5]} }},
		{"v2 position in no segment", false, func(offs []int64, seg uint64) position { return position{seg + 7, offs[5]} }},
		{"v1 right hint", true, func(offs []int64, seg uint64) position { return position{seg, offs[5]} }},
		{"v1 wrong offset", true, func(offs []int64, seg uint64) position { return position{seg, offs[5] + 3} }},
		{"v1 wrong record", true, func(offs []int64, seg uint64) position { return position{seg, offs[2]} }},
		{"v1 unknown segment", true, func(offs []int64, seg uint64) position { return position{seg + 7, offs[5]} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spoolUnshipped(t, dir, 1<<20, 10)
			segs := segFiles(t, dir)
			num, _ := parseSegName(filepath.Base(segs[0]))
			old := readCheckpointFile(t, dir)
			ck := checkpoint{id: old.id, shipped: 5, row: 20, pos: tt.hint(frameOffsets(t, segs[0]), num), trusted: !tt.v1}
			b := make([]byte, ckFileSize)
			copy(b, ck.marshal(7))
			if tt.v1 {
				b = marshalV1(ck)
			}
			if err := os.WriteFile(filepath.Join(dir, ckName), b, 0o640); err != nil {
				t.Fatal(err)
			}

			fake := newFake(t)
			s := mustOpen(t, testConfig(t, dir, fake))
			if st := s.Stats(); st.PendingRecords != 5 {
				t.Errorf("pending %d records, want 5", st.PendingRecords)
			}
			waitShipped(t, s)
			st := s.Stats()
			mustClose(t, s)
			var want [][16]byte
			for b := 5; b < 10; b++ {
				want = append(want, rowIDs(makeRows(b, 4))...)
			}
			fake.checkExactlyOnce(t, want, nil)
			if st.Bytes != 0 || st.CorruptRecords != 0 {
				t.Errorf("stats %+v", st)
			}
			if ck := readCheckpointFile(t, dir); !ck.trusted || ck.shipped != 10 {
				t.Errorf("checkpoint after shipping: %+v; want v2 at 10", ck)
			}
		})
	}
}

// marshalV1 encodes c as the release before format v2 did.
func marshalV1(c checkpoint) []byte {
	b := make([]byte, ckSizeV1)
	copy(b, ckMagic)
	binary.LittleEndian.PutUint16(b[4:], ckV1)
	if c.intent {
		binary.LittleEndian.PutUint16(b[6:], ckIntent)
	}
	copy(b[8:], c.id[:])
	binary.LittleEndian.PutUint64(b[24:], c.shipped)
	binary.LittleEndian.PutUint64(b[32:], c.pos.seg)
	binary.LittleEndian.PutUint64(b[40:], uint64(c.pos.off))
	binary.LittleEndian.PutUint64(b[48:], c.intentEnd)
	binary.LittleEndian.PutUint32(b[56:], crc32c(b[:56]))
	return b
}

// TestTornSegmentHeader: a crash while a segment was being created leaves
// its file empty or with a partial or zeroed header; Open removes it
// without counting corruption.
func TestTornSegmentHeader(t *testing.T) {
	tests := []struct {
		name   string
		header []byte
	}{
		{"empty", nil},
		{"partial", segHeader{num: 99, firstSeq: 8}.marshal()[:11]},
		{"zeros", make([]byte, segHeaderSizeV2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := spoolUnshipped(t, dir, 1<<20, 8)
			segs := segFiles(t, dir)
			num, _ := parseSegName(filepath.Base(segs[len(segs)-1]))
			torn := filepath.Join(dir, segName(num+1))
			if err := os.WriteFile(torn, tt.header, 0o640); err != nil {
				t.Fatal(err)
			}
			shipAfterCrash(t, dir, ids, 8, nil)
		})
	}
}

// TestInsertPace checks which inserts the shipper marks unhurried
// (pipeline.Unhurried): those it makes while it keeps up, including the
// first full batch of a burst, and not those of a backlog that outlasts a
// batch (a full batch after a full batch), which go at full speed.
func TestInsertPace(t *testing.T) {
	fake := newFake(t)
	block := make(chan struct{})
	fake.block = block
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.MaxBatchRows = 12
	s := mustOpen(t, cfg)
	write := func(b int) {
		t.Helper()
		if err := s.Write(context.Background(), makeRows(b, 5), pipeline.Origin{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first record ships alone, caught up; the insert waits while
	// eight more records (40 rows) queue behind it.
	write(0)
	for deadline := time.Now().Add(10 * time.Second); ; {
		fake.mu.Lock()
		n := fake.n
		fake.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shipper did not insert the first record")
		}
		time.Sleep(time.Millisecond)
	}
	for b := 1; b <= 8; b++ {
		write(b)
	}
	fake.mu.Lock()
	fake.block = nil
	fake.mu.Unlock()
	close(block)
	waitShipped(t, s)
	mustClose(t, s)

	calls, _ := fake.snapshot()
	var got []bool
	for _, c := range calls {
		got = append(got, c.unhurried)
	}
	// Two records (10 rows) per insert: the first three of the backlog
	// are cut at MaxBatchRows, the first of them after a batch that was
	// not; the last ends where the records do.
	if want := []bool{true, true, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("unhurried per insert: %v, want %v", got, want)
	}
}
