package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// volumeCapacity is the size of the small volume the full-disk tests give
// the spool: a few hundred records.
const volumeCapacity = 96 << 10

// fullVolumeSpool opens a spool on a volume of volumeCapacity bytes whose
// segments could grow far beyond it, with no cap below it either: only the
// free space can stop Writes.
func fullVolumeSpool(t *testing.T, dir string, ins Inserter) (*Spool, *testFS, Config) {
	t.Helper()
	tfs := newTestFS()
	tfs.setVolume(dir, volumeCapacity)
	cfg := testConfig(t, dir, ins)
	cfg.fsys = tfs
	cfg.SegmentBytes = 1 << 20
	cfg.MaxBytes = 1 << 30
	return mustOpen(t, cfg), tfs, cfg
}

// writeVolume writes 4-row batches from batch first on, until want bytes
// of records were acknowledged or, with untilRefused, until the first
// refusal. Every refusal must be a clean ErrFull. It returns the ids
// acknowledged, the next batch number and the first refusal.
func writeVolume(t *testing.T, s *Spool, first int, want int64, untilRefused bool) ([][16]byte, int, error) {
	t.Helper()
	var ids [][16]byte
	var written int64
	var refusal error
	deadline := time.Now().Add(20 * time.Second)
	b := first
	for ; written < want; b++ {
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged %d of %d bytes in 20s (stats %+v, last refusal %v)", written, want, s.Stats(), refusal)
		}
		r := makeRows(b, 4)
		before := s.Stats().WrittenRecords
		err := s.Write(context.Background(), r, pipeline.Origin{})
		if err == nil {
			ids = append(ids, rowIDs(r)...)
			written += int64(len(encodeRecord([segKeyBytes]byte{}, pipeline.Origin{}, r, 0, 0)))
			continue
		}
		if !errors.Is(err, ErrFull) || !errors.Is(err, pipeline.ErrOverloaded) {
			t.Fatalf("Write %d on a full volume: %v; want a clean refusal (ErrFull, an overload)", b, err)
		}
		if s.Stats().WrittenRecords != before {
			t.Fatalf("Write %d failed but its record was made durable", b)
		}
		if refusal == nil {
			refusal = err
		}
		if untilRefused {
			return ids, b + 1, refusal
		}
		time.Sleep(time.Millisecond) // let the shipper free space
	}
	return ids, b, refusal
}

// TestFullVolumeKeepsShipping writes many times the volume's size through
// a spool whose segments are larger than the volume, with the inserter
// healthy: shipped bytes must be given back to the volume, so Writes keep
// being accepted. Then, with the inserter down, the volume fills with
// unshipped records: Writes are refused cleanly (an overload, nothing
// half-written) only once the volume is truly full, and accepted again
// once the backlog ships. Every acknowledged row is stored once.
//
// Before the fix the active segment was never freed until it reached
// SegmentBytes, so the volume filled with shipped records and every Write
// failed with ENOSPC (a storage error) for good.
func TestFullVolumeKeepsShipping(t *testing.T) {
	dir := t.TempDir()
	fake := newFake(t)
	s, tfs, _ := fullVolumeSpool(t, dir, fake)

	ids, next, _ := writeVolume(t, s, 0, 4*volumeCapacity, false)
	waitShipped(t, s)

	fake.setFail(errors.New("clickhouse down"))
	more, next, refusal := writeVolume(t, s, next, 2*volumeCapacity, true)
	ids = append(ids, more...)
	if refusal == nil {
		t.Fatalf("twice the volume written with the inserter down and no refusal (stats %+v)", s.Stats())
	}
	st := s.Stats()
	free := tfs.volumeFree()
	t.Logf("refused with %d bytes unshipped, %d free of %d (reserve %d): %v", st.Bytes, free, int64(volumeCapacity), st.ReserveBytes, refusal)
	if st.Bytes < volumeCapacity*3/4 {
		t.Errorf("refused with only %d unshipped bytes on a %d-byte volume: not truly full", st.Bytes, volumeCapacity)
	}
	if !errors.Is(refusal, ErrDiskFull) {
		t.Errorf("refusal %v, want ErrDiskFull", refusal)
	}
	if st.FreeBytes != free || free >= st.ReserveBytes+1024 {
		t.Errorf("Stats.FreeBytes %d, volume free %d, reserve %d: want the truth, below the reserve and a record", st.FreeBytes, free, st.ReserveBytes)
	}
	if err := s.Accepting(); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Accepting on a full volume: %v, want ErrDiskFull", err)
	}

	fake.setFail(nil)
	waitShipped(t, s)
	if err := s.Accepting(); err != nil {
		t.Errorf("Accepting after shipping the backlog: %v", err)
	}
	more, _, _ = writeVolume(t, s, next, volumeCapacity, false)
	ids = append(ids, more...)
	waitShipped(t, s)
	if st := s.Stats(); st.Bytes != 0 || st.CorruptRecords != 0 {
		t.Errorf("stats after shipping: %+v", st)
	}
	mustClose(t, s)
	fake.checkExactlyOnce(t, ids, nil)
}

// TestCheckpointWithNoFreeSpace fills the volume to the last byte while
// the inserter is down, then lets it ship: the checkpoint must still be
// written (before the fix it was written to a new file and renamed, which
// needs free space, so nothing shipped until the disk grew), and a reopen
// must not ship anything again.
func TestCheckpointWithNoFreeSpace(t *testing.T) {
	dir := t.TempDir()
	fake := newDownFake(t)
	s, tfs, cfg := fullVolumeSpool(t, dir, fake)
	ids := writeBatches(t, s, 0, 20, 4)
	tfs.setVolume(dir, -1) // not one byte free
	fake.setFail(nil)
	waitShipped(t, s)
	mustClose(t, s)
	fake.checkExactlyOnce(t, ids, nil)

	reopenShipsNothing(t, cfg)
}

// TestRestartOnFullVolume fills the volume while the inserter is down,
// stops the spool, and opens it again on the volume, still full, with the
// inserter back: everything acknowledged ships once, and Writes are
// accepted again.
func TestRestartOnFullVolume(t *testing.T) {
	dir := t.TempDir()
	down := newDownFake(t)
	s, tfs, cfg := fullVolumeSpool(t, dir, down)
	ids, next, refusal := writeVolume(t, s, 0, 2*volumeCapacity, true)
	if refusal == nil {
		t.Fatal("no refusal with the volume full")
	}
	closeDown(t, s)
	tfs.setVolume(dir, -1) // whatever was left is gone too

	fake := newFake(t)
	cfg.Inserter = fake
	s2 := mustOpen(t, cfg)
	waitShipped(t, s2)
	more, _, _ := writeVolume(t, s2, next, volumeCapacity, false)
	ids = append(ids, more...)
	waitShipped(t, s2)
	mustClose(t, s2)
	fake.checkExactlyOnce(t, ids, nil)
}

// TestBitFlipLosesOneRecord flips a bit in the payload of one record in
// the middle of a segment: only that record is lost (before the fix, the
// rest of the segment was skipped with it).
func TestBitFlipLosesOneRecord(t *testing.T) {
	dir := t.TempDir()
	ids := spoolUnshipped(t, dir, 1<<20, 40)
	segs := segFiles(t, dir)
	offs := frameOffsets(t, segs[0])
	const victim = 10
	flipBit(t, segs[0], offs[victim]+frameHeaderSizeV2+5, 3)
	fake := newFake(t)
	st, _ := shipAll(t, testConfig(t, dir, fake))
	if st.CorruptRecords != 1 || st.CorruptEvents != 4 {
		t.Errorf("%d corrupt records, %d events; want 1 and 4", st.CorruptRecords, st.CorruptEvents)
	}
	fake.checkExactlyOnce(t, without(ids, victim), nil)
}

// without returns ids less the rows of the 4-row batches given.
func without(ids [][16]byte, batches ...int) [][16]byte {
	lost := map[[16]byte]bool{}
	for _, b := range batches {
		for _, id := range rowIDs(makeRows(b, 4)) {
			lost[id] = true
		}
	}
	var out [][16]byte
	for _, id := range ids {
		if !lost[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestBitFlips flips one bit in every field of a record's header and in
// its payload, for records in the middle, at the start and at the end of
// a sealed segment and in the middle of the last one: only that record is
// lost, its events are counted exactly, the bytes skipped are its own, and
// every other record ships once.
func TestBitFlips(t *testing.T) {
	base := t.TempDir()
	ids := spoolUnshipped(t, base, 2<<10, 30)
	segs := segFiles(t, base)
	if len(segs) < 4 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	fields := []struct {
		name string
		at   func(size int64) int64
	}{
		{"magic", func(int64) int64 { return 1 }},
		{"length", func(int64) int64 { return 5 }},
		{"rows", func(int64) int64 { return 8 }},
		{"payload checksum", func(int64) int64 { return 14 }},
		{"sequence", func(int64) int64 { return 16 }},
		{"first row", func(int64) int64 { return 25 }},
		{"write time", func(int64) int64 { return 37 }},
		{"reserved", func(int64) int64 { return 41 }},
		{"header checksum", func(int64) int64 { return 47 }},
		{"payload start (origin)", func(int64) int64 { return frameHeaderSizeV2 }},
		{"payload middle", func(size int64) int64 { return frameHeaderSizeV2 + (size-frameHeaderSizeV2)/2 }},
		{"payload end", func(size int64) int64 { return size - 1 }},
	}
	places := []struct {
		name string
		seg  int
		rec  func(n int) int
	}{
		{"middle of a sealed segment", 0, func(n int) int { return n / 2 }},
		{"first record of a segment", 1, func(int) int { return 0 }},
		{"last record of a sealed segment", 2, func(n int) int { return n - 1 }},
		{"middle of the last segment", len(segs) - 1, func(n int) int { return n / 2 }},
	}
	for _, p := range places {
		for _, f := range fields {
			t.Run(p.name+"/"+f.name, func(t *testing.T) {
				dir := copyDir(t, base)
				path := filepath.Join(dir, filepath.Base(segs[p.seg]))
				offs := frameOffsets(t, path)
				k := p.rec(len(offs))
				if p.seg == len(segs)-1 && k == len(offs)-1 {
					t.Fatal("the last record of the last segment would be a torn write")
				}
				end := fileSize(t, path)
				if k+1 < len(offs) {
					end = offs[k+1]
				}
				size := end - offs[k]
				flipBit(t, path, offs[k]+f.at(size), 2)
				victim := int(firstSeqOf(t, path)) + k

				fake := newFake(t)
				st, _ := shipAll(t, testConfig(t, dir, fake))
				if st.CorruptRecords != 1 || st.CorruptEvents != 4 || st.CorruptBytes != uint64(size) {
					t.Errorf("lost %d records, %d events, %d bytes; want 1, 4 and %d", st.CorruptRecords, st.CorruptEvents, st.CorruptBytes, size)
				}
				if st.Bytes != 0 || st.PendingRecords != 0 {
					t.Errorf("stats after shipping: %+v", st)
				}
				fake.checkExactlyOnce(t, without(ids, victim), nil)
			})
		}
	}
}

// TestDamageSpanningRecords damages runs of bytes across record
// boundaries: every record they touch is lost, and counted exactly from
// the sequence and row gap to the next valid record.
func TestDamageSpanningRecords(t *testing.T) {
	base := t.TempDir()
	ids := spoolUnshipped(t, base, 1<<20, 20)
	seg := segFiles(t, base)[0]
	offs := frameOffsets(t, seg)
	tests := []struct {
		name     string
		from, to int64 // zeroed, relative to record 5's start
		lost     []int
	}{
		{"payload into the next header", offs[5] + 100, offs[6] + 10, []int{5, 6}},
		{"three records", offs[5] + 3, offs[8] - 7, []int{5, 6, 7}},
		{"exactly one record", offs[5], offs[6], []int{5}},
		{"two headers, nothing between", offs[5] + 40, offs[6] + 2, []int{5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, filepath.Base(seg))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := tt.from; i < tt.to; i++ {
				b[i] ^= 0xa5
			}
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			fake := newFake(t)
			st, _ := shipAll(t, testConfig(t, dir, fake))
			last := tt.lost[len(tt.lost)-1]
			bytes := offs[last+1] - offs[tt.lost[0]]
			if st.CorruptRecords != uint64(len(tt.lost)) || st.CorruptEvents != 4*uint64(len(tt.lost)) || st.CorruptBytes != uint64(bytes) {
				t.Errorf("lost %d records, %d events, %d bytes; want %d, %d and %d",
					st.CorruptRecords, st.CorruptEvents, st.CorruptBytes, len(tt.lost), 4*len(tt.lost), bytes)
			}
			fake.checkExactlyOnce(t, without(ids, tt.lost...), nil)
		})
	}
}

// TestDamageInActiveSegment damages a durable record of the segment
// being written, while the spool runs with the inserter down: exactly
// that record is lost, the records after it and later Writes ship.
//   - a payload byte of record 3: the shipper skips that record alone;
//   - the header of record 5, the last: nothing valid follows it yet, so
//     the shipper starts a new segment, which tells where the damaged
//     record ends.
func TestDamageInActiveSegment(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, seg string, offs []int64)
		lost   int
		// maybe: the damaged record's rows may still be stored (once).
		maybe bool
	}{
		{"payload byte", func(t *testing.T, seg string, offs []int64) { flipByte(t, seg, offs[3]+frameHeaderSizeV2+2) }, 3, true},
		{"header of the last record", func(t *testing.T, seg string, offs []int64) {
			flipBit(t, seg, offs[5]+17, 0) // record 5's sequence
		}, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fake := newDownFake(t)
			cfg := testConfig(t, dir, fake)
			cfg.MaxBatchRows = 4 // one record per insert: records 1-5 stay unread while record 0 fails
			s := mustOpen(t, cfg)
			ids := writeBatches(t, s, 0, 6, 4)
			seg := segFiles(t, dir)[0]
			tt.damage(t, seg, frameOffsets(t, seg))
			fake.setFail(nil)
			waitShipped(t, s)
			more := writeBatches(t, s, 6, 9, 4)
			waitShipped(t, s)
			st := s.Stats()
			mustClose(t, s)
			if st.CorruptRecords != 1 || st.CorruptEvents != 4 {
				t.Errorf("lost %d records, %d events; want 1 and 4", st.CorruptRecords, st.CorruptEvents)
			}
			var maybe [][16]byte
			if tt.maybe {
				maybe = ids
			}
			fake.checkExactlyOnce(t, append(without(ids, tt.lost), more...), maybe)
		})
	}
}

// spoolWithIntent writes batches [0, n) of 4 rows to a new spool in dir
// whose inserter is down, and closes it once the shipper has durably
// recorded the intent to insert records [0, k) and tried that insert: the
// checkpoint then shows that records 0 to k-1 were written, and nothing of
// the records after them. A gate holds the shipper back until every Write
// returned, so what the checkpoint names does not depend on when the
// shipper ran (spoolUnshipped leaves that to the scheduler).
func spoolWithIntent(t *testing.T, dir string, n, k int) [][16]byte {
	t.Helper()
	down := newDownFake(t)
	gate := newGate()
	cfg := testConfig(t, dir, down)
	cfg.Gate = gate
	cfg.MaxBatchRows = 4 * k
	s := mustOpen(t, cfg)
	ids := writeBatches(t, s, 0, n, 4)
	gate.setHorizon(time.Now().Add(time.Hour))
	for deadline := time.Now().Add(10 * time.Second); down.attempts() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shipper never tried to insert")
		}
	}
	closeDown(t, s)
	return ids
}

// attempts returns how many inserts were tried, failed ones included.
func (f *fakeInserter) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// TestDamagedLastRecordIsTornWrite documents a limit: damage in the very
// last record of the spool, with nothing valid after it and a checkpoint
// that does not show it was written, looks exactly like the torn write a
// crash leaves (an append that was never acknowledged), so Open truncates
// it without counting it.
func TestDamagedLastRecordIsTornWrite(t *testing.T) {
	tests := []struct {
		name string
		off  func(offs []int64) int64 // the byte to damage
	}{
		{"payload", func(offs []int64) int64 { return offs[4] + frameHeaderSizeV2 + 3 }},
		{"header", func(offs []int64) int64 { return offs[4] + 17 }}, // its sequence
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := spoolWithIntent(t, dir, 5, 1) // the checkpoint names record 0 only
			seg := segFiles(t, dir)[0]
			offs := frameOffsets(t, seg)
			flipBit(t, seg, tt.off(offs), 1)
			fake := newFake(t)
			s := mustOpen(t, testConfig(t, dir, fake))
			if got := fileSize(t, seg); got != offs[4] {
				t.Errorf("segment is %d bytes, want it truncated to %d", got, offs[4])
			}
			waitShipped(t, s)
			st := s.Stats()
			mustClose(t, s)
			if st.CorruptRecords != 0 || st.CorruptEvents != 0 || st.CorruptBytes != 0 {
				t.Errorf("lost %d records, %d events, %d bytes; want none (a torn write)",
					st.CorruptRecords, st.CorruptEvents, st.CorruptBytes)
			}
			fake.checkExactlyOnce(t, without(ids, 4), nil)
		})
	}
}

// TestDamagedAcknowledgedLastRecordIsLost: damage in the last record of
// the spool when the checkpoint's intent covers it is no torn write — the
// shipper read the record, so a Write acknowledged it. Open keeps its
// bytes, and the shipper skips it and counts it as one lost record: its
// rows when its header tells them, unknown otherwise. The records before
// it, and later Writes, ship once.
func TestDamagedAcknowledgedLastRecordIsLost(t *testing.T) {
	tests := []struct {
		name   string
		off    func(offs []int64) int64 // the byte to damage
		events uint64                   // counted lost events (0: unknown)
	}{
		{"payload", func(offs []int64) int64 { return offs[4] + frameHeaderSizeV2 + 3 }, 4},
		{"header", func(offs []int64) int64 { return offs[4] + 17 }, 0}, // its sequence
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ids := spoolWithIntent(t, dir, 5, 5) // the checkpoint's intent is records [0, 5)
			seg := segFiles(t, dir)[0]
			offs := frameOffsets(t, seg)
			size := fileSize(t, seg)
			flipBit(t, seg, tt.off(offs), 1)
			fake := newFake(t)
			s := mustOpen(t, testConfig(t, dir, fake))
			if got := fileSize(t, seg); got != size {
				t.Errorf("segment is %d bytes, want it kept at %d", got, size)
			}
			more := writeBatches(t, s, 5, 8, 4)
			waitShipped(t, s)
			st := s.Stats()
			mustClose(t, s)
			if st.CorruptRecords != 1 || st.CorruptEvents != tt.events || st.CorruptBytes != uint64(size-offs[4]) {
				t.Errorf("lost %d records, %d events, %d bytes; want 1, %d and %d",
					st.CorruptRecords, st.CorruptEvents, st.CorruptBytes, tt.events, size-offs[4])
			}
			fake.checkExactlyOnce(t, append(without(ids, 4), more...), nil)
		})
	}
}

// TestAccepting: Accepting says whether a normal Write would be accepted,
// and why not: the byte cap, the volume's reserve, or Close.
func TestAccepting(t *testing.T) {
	fake := newDownFake(t)
	cfg := testConfig(t, t.TempDir(), fake)
	cfg.MaxBytes = 8 << 10
	s := mustOpen(t, cfg)
	if err := s.Accepting(); err != nil {
		t.Errorf("Accepting when empty: %v", err)
	}
	var err error
	for b := 0; err == nil; b++ {
		err = s.Write(context.Background(), makeRows(b, 4), pipeline.Origin{})
	}
	if err := s.Accepting(); !errors.Is(err, ErrFull) || errors.Is(err, ErrDiskFull) {
		t.Errorf("Accepting at the cap: %v, want ErrFull", err)
	}
	fake.setFail(nil)
	waitShipped(t, s)
	if err := s.Accepting(); err != nil {
		t.Errorf("Accepting once shipped: %v", err)
	}
	mustClose(t, s)
	if err := s.Accepting(); !errors.Is(err, ErrClosed) {
		t.Errorf("Accepting after Close: %v, want ErrClosed", err)
	}
}
