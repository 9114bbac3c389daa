package sdk

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/atomicfile"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The queue is a folder of append-only segment files of sealed records
// (frames, see crypto.go), one record per event, oldest first, and a head
// file naming the first record not yet acknowledged by the collector.
//
// Segment files are named q-<epoch>-<seq>.seg (both 16 hex digits); files
// of another epoch are leftovers of a purge and are deleted when the queue
// opens. Each process appends to a segment of its own, starting a new one
// when it reaches the segment size. Records are removed by moving the head
// (after the collector accepted them, or to evict the oldest when the
// queue exceeds its cap); a segment the head has passed is deleted.
//
// On open every segment is read and every record authenticated; a segment
// with a torn or corrupted record is rewritten without it (counted as
// corrupt). Appends are not synced one by one: Flush, Close, a segment's
// end and crash records sync, so a power loss may lose the latest
// non-crash events but never leaves the queue unreadable.

const (
	queueDirName = "queue"
	headFileName = "head"
	segPrefix    = "q-"
	segSuffix    = ".seg"
	magicHead    = "CSH1"
	headFileSize = 4 + 8 + 8 + 8 + 4
)

// recordVersion is the first byte of a record's plaintext.
const recordVersion = 1

// recordHeaderSize is the record plaintext's header: version, the process
// tag and the monotonic time of recording.
const recordHeaderSize = 1 + 8 + 8

// record is a decoded queue record.
type record struct {
	// proc is the tag of the Client instance that recorded the event: the
	// event's age is known only within that process.
	proc uint64
	// monoMs is when the event was recorded, in ms on that process's
	// monotonic clock.
	monoMs int64
	event  *consentryv1.Event
}

// encodeRecord appends the plaintext of a record to dst.
func encodeRecord(dst []byte, proc uint64, monoMs int64, e *consentryv1.Event) ([]byte, error) {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, proc)
	dst = binary.BigEndian.AppendUint64(dst, uint64(monoMs))
	return proto.MarshalOptions{}.MarshalAppend(dst, e)
}

// decodeRecord decodes a record's plaintext.
func decodeRecord(plain []byte) (record, error) {
	if len(plain) < recordHeaderSize || plain[0] != recordVersion {
		return record{}, errFrame
	}
	r := record{
		proc:   binary.BigEndian.Uint64(plain[1:9]),
		monoMs: int64(binary.BigEndian.Uint64(plain[9:17])),
		event:  new(consentryv1.Event),
	}
	if err := proto.Unmarshal(plain[recordHeaderSize:], r.event); err != nil {
		return record{}, errFrame
	}
	return r, nil
}

// cursor is a position in the queue: a segment and an offset in it.
type cursor struct {
	seq uint64
	off int64
}

// segment is one segment file.
type segment struct {
	seq    uint64
	path   string
	size   int64    // bytes in the file
	frames int      // records in the file
	r      *os.File // read handle, opened on first read
}

// item is one record read for a batch.
type item struct {
	start, end cursor
	rec        record
	// corrupt: the record failed authentication when read and is skipped.
	corrupt bool
	// rest: the segment is unreadable from start on; the item stands for
	// the rest of it.
	rest bool
}

// batch is records read from the head of the queue, to send.
type batch struct {
	epoch uint64
	items []item
	// acked is how many leading items were acknowledged.
	acked int
	// evicted is how many leading items the cap evicted from disk while
	// the batch was out.
	evicted int
}

// queueStats are the counters the queue maintains.
type queueStats interface {
	addEvicted(n int)
	addCorrupt(n int)
}

// queue is the encrypted on-disk queue. Its methods are safe for
// concurrent use.
type queue struct {
	dir      string
	maxBytes int64
	segSize  int64
	stats    queueStats

	mu      sync.Mutex
	epoch   uint64
	aead    cipher.AEAD
	segs    []*segment // segs[0] holds the head
	w       *os.File   // append handle of the last segment, nil until this process appends
	hf      *os.File   // the head file, opened on its first write
	headOff int64      // the head's offset in segs[0]
	headIdx int        // records before the head in segs[0]
	total   int64      // bytes in all segments
	frames  int        // records in all segments
	nextSeq uint64
	dirty   bool // appended since the last sync
	// headDirty: the head moved since the head file was written.
	headDirty bool
	inflight  *batch // the batch being sent, if any
	buf       []byte
	closed    bool

	// testHookCopy, if set, replaces compact's overwrite of the segment
	// with the kept bytes (to stop it part way, as a crash would).
	testHookCopy func(path string, keep []byte) error
}

// segmentSize is the size at which a segment is closed and a new one
// started, for a queue cap of maxBytes: small enough that a full disk can
// be given space back a segment at a time (see makeRoom) while the queue
// is still far below its cap, large enough that starting one (a file
// created, the last one synced) is rare.
func segmentSize(maxBytes int64) int64 {
	return min(max(maxBytes/32, 4<<10), 256<<10)
}

// openQueue opens the queue in dir for epoch, whose records are sealed
// with aead, deleting leftovers of other epochs and repairing corrupted
// segments.
func openQueue(dir string, epoch uint64, aead cipher.AEAD, maxBytes int64, stats queueStats) (*queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	q := &queue{dir: dir, maxBytes: maxBytes, segSize: segmentSize(maxBytes), stats: stats, epoch: epoch, aead: aead, nextSeq: 1}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		ep, seq, ok := parseSegmentName(name)
		switch {
		case ok && ep == epoch:
			q.segs = append(q.segs, &segment{seq: seq, path: filepath.Join(dir, name)})
		case ok || strings.HasPrefix(name, ".") || name == headFileName+".tmp":
			// A purged epoch's segment, or a temporary file of an
			// interrupted write (head.tmp: of versions that replaced
			// the head file).
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("open queue: remove stale file: %w", err)
			}
		}
	}
	slices.SortFunc(q.segs, func(a, b *segment) int { return cmp.Compare(a.seq, b.seq) })
	head, haveHead := q.readHead()
	if haveHead {
		// Segments numbered below the head count as consumed: never
		// reuse their numbers, even when none is left.
		q.nextSeq = max(q.nextSeq, head.seq)
	}
	var kept []*segment
	for _, s := range q.segs {
		q.nextSeq = max(q.nextSeq, s.seq+1)
		if haveHead && s.seq < head.seq {
			if err := os.Remove(s.path); err != nil {
				return nil, fmt.Errorf("open queue: remove consumed segment: %w", err)
			}
			continue
		}
		headOff := int64(-1)
		if haveHead && s.seq == head.seq {
			headOff = head.off
		}
		off, idx, err := q.loadSegment(s, headOff)
		if err != nil {
			return nil, fmt.Errorf("open queue: %w", err)
		}
		if s.frames == 0 {
			if err := os.Remove(s.path); err != nil {
				return nil, fmt.Errorf("open queue: remove empty segment: %w", err)
			}
			continue
		}
		if len(kept) == 0 && headOff >= 0 {
			q.headOff, q.headIdx = off, idx
		}
		kept = append(kept, s)
		q.total += s.size
		q.frames += s.frames
	}
	q.segs = kept
	q.normalize()
	// Write the head now, while there may be space: later writes
	// overwrite it in place.
	q.headDirty = true
	if err := q.writeHead(); err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	return q, nil
}

func segmentName(epoch, seq uint64) string {
	return fmt.Sprintf("%s%016x-%016x%s", segPrefix, epoch, seq, segSuffix)
}

func parseSegmentName(name string) (epoch, seq uint64, ok bool) {
	rest, found := strings.CutPrefix(name, segPrefix)
	if !found {
		return 0, 0, false
	}
	rest, found = strings.CutSuffix(rest, segSuffix)
	if !found || len(rest) != 33 || rest[16] != '-' {
		return 0, 0, false
	}
	e, err1 := strconv.ParseUint(rest[:16], 16, 64)
	s, err2 := strconv.ParseUint(rest[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return e, s, true
}

// loadSegment reads s, authenticating every record, and sets its size and
// record count. If a record is torn or corrupted, the segment is rewritten
// without it. headOff, if not negative, is the head's offset in s as the
// head file gives it; the results are the head's offset in the (possibly
// rewritten) segment and the number of records before it.
func (q *queue) loadSegment(s *segment, headOff int64) (off int64, idx int, err error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return 0, 0, err
	}
	spans, corrupt := scanFrames(q.aead, data)
	var size int64
	for _, sp := range spans {
		if headOff >= 0 && int64(sp[1]) <= headOff {
			off += int64(sp[1] - sp[0])
			idx++
		}
		size += int64(sp[1] - sp[0])
	}
	s.size, s.frames = size, len(spans)
	if corrupt == 0 && size == int64(len(data)) {
		return off, idx, nil
	}
	q.stats.addCorrupt(max(corrupt, 1))
	if len(spans) == 0 {
		return 0, 0, nil // removed by the caller
	}
	repaired := make([]byte, 0, size)
	for _, sp := range spans {
		repaired = append(repaired, data[sp[0]:sp[1]]...)
	}
	err = writeFileAtomic(s.path, repaired)
	if diskFull(err) {
		// No room for a copy: rewrite the file in place, which a
		// crash can only leave with records twice, repaired again on
		// the next open.
		err = overwrite(s.path, repaired)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("repair segment: %w", err)
	}
	return off, idx, nil
}

// overwrite replaces the content of the file at path with data, in place:
// it writes data at the start, truncates the file to it and syncs it. It
// needs no free space where data is no longer than the file.
func overwrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// scanFrames returns the spans of the authentic record frames in data, in
// order, and the number of corrupted or torn stretches between them. After
// a bad frame it resynchronizes on the next magic whose frame
// authenticates; ciphertext cannot fake one.
func scanFrames(aead cipher.AEAD, data []byte) (spans [][2]int, corrupt int) {
	var buf []byte
	off := 0
	for off < len(data) {
		if _, n, err := openFrame(buf[:0], aead, magicQueue, data[off:]); err == nil {
			spans = append(spans, [2]int{off, off + n})
			off += n
			continue
		}
		corrupt++
		next := len(data)
		for i := off + 1; i < len(data); {
			j := bytes.Index(data[i:], []byte(magicQueue))
			if j < 0 {
				break
			}
			if _, _, err := openFrame(buf[:0], aead, magicQueue, data[i+j:]); err == nil {
				next = i + j
				break
			}
			i += j + 1
		}
		off = next
	}
	return spans, corrupt
}

// readHead reads the head file; false if there is none for this epoch.
func (q *queue) readHead() (cursor, bool) {
	b, err := os.ReadFile(filepath.Join(q.dir, headFileName))
	if err != nil || len(b) != headFileSize || string(b[:4]) != magicHead ||
		crc32.ChecksumIEEE(b[:headFileSize-4]) != binary.BigEndian.Uint32(b[headFileSize-4:]) {
		return cursor{}, false
	}
	if binary.BigEndian.Uint64(b[4:12]) != q.epoch {
		return cursor{}, false
	}
	c := cursor{seq: binary.BigEndian.Uint64(b[12:20]), off: int64(binary.BigEndian.Uint64(b[20:28]))}
	return c, c.off >= 0
}

// writeHead writes the head file. It is not synced: a head lost in a crash
// only means some acknowledged events are sent again, which the collector
// deduplicates by event id. It overwrites the file in place rather than
// replacing it, so that it needs no free space once the file exists; a
// torn write fails the checksum and counts as a lost head. On a full disk
// (the file could not be created) the head stays in memory and is written
// on a later move.
func (q *queue) writeHead() error {
	if !q.headDirty {
		return nil
	}
	var c cursor
	if len(q.segs) > 0 {
		c = cursor{q.segs[0].seq, q.headOff}
	} else {
		c = cursor{q.nextSeq, 0}
	}
	err := q.writeCursor(c)
	if err == nil {
		q.headDirty = false
	} else if diskFull(err) {
		err = nil
	}
	return err
}

// writeCursor writes c as the head file's content (see writeHead).
func (q *queue) writeCursor(c cursor) error {
	b := make([]byte, 0, headFileSize)
	b = append(b, magicHead...)
	b = binary.BigEndian.AppendUint64(b, q.epoch)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.off))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	if q.hf == nil {
		f, err := os.OpenFile(filepath.Join(q.dir, headFileName), os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("write queue head: %w", err)
		}
		_ = f.Truncate(headFileSize) // a longer file would never read as a head
		q.hf = f
	}
	if _, err := q.hf.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write queue head: %w", err)
	}
	return nil
}

// count returns the number of queued records.
func (q *queue) count() int { return q.frames - q.headIdx }

// bytes returns the bytes of queued records.
func (q *queue) bytes() int64 { return q.total - q.headOff }

// size returns the number and bytes of queued records.
func (q *queue) size() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count(), q.bytes()
}

// append seals plain and appends it. With durable, it returns only once
// the record is on stable storage. It then evicts the oldest records while
// the queue exceeds its cap. On a full disk it drops the oldest records to
// make room (see makeRoom) and tries once more; if nothing could be
// dropped, the error wraps ErrStorageFull.
func (q *queue) append(plain []byte, durable bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	frame, err := sealFrame(q.buf[:0], q.aead, magicQueue, plain)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	q.buf = frame[:0]
	written, err := q.write(frame, durable)
	if !written && diskFull(err) && q.makeRoom() {
		written, err = q.write(frame, durable)
	}
	if !written && diskFull(err) {
		return fmt.Errorf("queue: %w: %w", ErrStorageFull, err)
	}
	if err != nil {
		return err
	}
	q.evict()
	return nil
}

// write appends frame to the segment this process appends to, starting
// one if needed. written reports whether the frame is in the segment (a
// failed sync after the write fails with written true).
func (q *queue) write(frame []byte, durable bool) (written bool, err error) {
	if err := q.ensureWritable(int64(len(frame))); err != nil {
		return false, err
	}
	s := q.segs[len(q.segs)-1]
	if _, err := q.w.Write(frame); err != nil {
		// Cut off a partial write, so the segment stays well formed.
		_ = q.w.Truncate(s.size)
		return false, fmt.Errorf("queue: append: %w", err)
	}
	s.size += int64(len(frame))
	s.frames++
	q.total += int64(len(frame))
	q.frames++
	q.dirty = true
	if durable {
		if err := q.w.Sync(); err != nil {
			return true, fmt.Errorf("queue: sync: %w", err)
		}
		q.dirty = false
	}
	return true, nil
}

// diskFull reports whether err is the file system's "no space left" or
// "quota exceeded".
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// makeRoom frees disk space for a record after a write failed on a full
// disk: it drops the oldest records, as the cap does (counted as
// evicted), until at least half the queued bytes are gone. Space comes
// back a segment file at a time, so it drops whole segments, but not the
// one this process appends to; a queue that is all in that one is
// compacted instead. It reports whether it freed anything.
func (q *queue) makeRoom() bool {
	freed := false
	for target := q.bytes() / 2; q.bytes() > target && (len(q.segs) > 1 || len(q.segs) == 1 && q.w == nil); {
		for seq := q.segs[0].seq; len(q.segs) > 0 && q.segs[0].seq == seq; {
			q.dropOldest()
		}
		freed = true
	}
	if freed || len(q.segs) != 1 || q.w == nil {
		return freed
	}
	return q.compact()
}

// compact rewrites the one segment, which this process appends to, in
// place without the records before the head (sent) and as many of the
// oldest after it (counted as evicted) as free half the segment, keeping
// the newest; it reports whether it freed anything.
// The head file says the segment's start before the copy begins, so a
// crash during it sends kept records twice (the collector deduplicates
// them by event id) rather than losing them; a power loss may lose some
// whose pages the copy had overwritten. The cursors of a batch in flight
// move with the records they point at.
func (q *queue) compact() bool {
	s := q.segs[0]
	for q.headOff < s.size/2 && q.count() > 1 {
		q.dropOldest()
	}
	from := q.headOff
	keep := make([]byte, s.size-from)
	if from == 0 || q.readAt(s, keep, from) != nil || q.writeCursor(cursor{s.seq, 0}) != nil {
		return false
	}
	write := overwrite
	if q.testHookCopy != nil {
		write = q.testHookCopy
	}
	if write(s.path, keep) != nil {
		return false
	}
	if b := q.inflight; b != nil {
		for i := range b.items {
			// Those before from were dropped above (counted in
			// b.evicted).
			if it := &b.items[i]; it.start.seq == s.seq && it.start.off >= from {
				it.start.off -= from
				it.end.off -= from
			}
		}
	}
	q.total -= from
	q.frames -= q.headIdx
	s.size -= from
	s.frames -= q.headIdx
	q.headOff, q.headIdx = 0, 0
	q.headDirty = false // the head file says so already
	return true
}

// ensureWritable makes the last segment one this process appends to, with
// room for n more bytes unless it is empty.
func (q *queue) ensureWritable(n int64) error {
	if q.w != nil {
		s := q.segs[len(q.segs)-1]
		if s.size == 0 || s.size+n <= q.segSize {
			return nil
		}
		// The segment is full: make it durable and start the next.
		if err := q.w.Sync(); err != nil {
			return fmt.Errorf("queue: sync: %w", err)
		}
		if err := q.w.Close(); err != nil {
			return fmt.Errorf("queue: close segment: %w", err)
		}
		q.w, q.dirty = nil, false
	}
	s := &segment{seq: q.nextSeq, path: filepath.Join(q.dir, segmentName(q.epoch, q.nextSeq))}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("queue: new segment: %w", err)
	}
	if err := atomicfile.SyncDir(q.dir); err != nil {
		f.Close()
		os.Remove(s.path)
		return fmt.Errorf("queue: new segment: %w", err)
	}
	q.nextSeq++
	q.w = f
	if len(q.segs) == 0 {
		q.headOff, q.headIdx = 0, 0
		q.headDirty = true
	}
	q.segs = append(q.segs, s)
	q.normalize() // the previous segment may be consumed already
	return nil
}

// free makes room on a full disk for something other than a record (see
// makeRoom) and reports whether it freed anything.
func (q *queue) free() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	return q.makeRoom()
}

// evict drops the oldest records while the queue exceeds its cap, keeping
// at least the newest record.
func (q *queue) evict() {
	for q.bytes() > q.maxBytes && q.count() > 1 {
		q.dropOldest()
	}
}

// dropOldest drops the record at the head, counted as evicted, and
// deletes the segment if the head passed its end.
func (q *queue) dropOldest() {
	s := q.segs[0]
	var hdr [frameHeaderSize]byte
	n, ok := 0, false
	if err := q.readAt(s, hdr[:], q.headOff); err == nil {
		n, ok = frameLen(hdr[:], magicQueue)
	}
	// The batch being sent keeps its records in memory: if they are
	// dropped from disk meanwhile, they count as evicted until the batch
	// is accepted (ack then counts them as sent).
	b, k := q.inflight, 0
	if b != nil {
		k = max(b.evicted, b.acked)
	}
	inflight := b != nil && k < len(b.items) && b.items[k].start == (cursor{s.seq, q.headOff})
	switch {
	case !ok || q.headOff+int64(n) > s.size:
		// Changed on disk since it was read: drop the rest of the
		// segment.
		q.stats.addCorrupt(s.frames - q.headIdx)
		q.headOff, q.headIdx = s.size, s.frames
	case inflight:
		b.evicted = k + 1
		q.stats.addEvicted(1)
		q.headOff += int64(n)
		q.headIdx++
	default:
		q.stats.addEvicted(1)
		q.headOff += int64(n)
		q.headIdx++
	}
	q.headDirty = true
	q.normalize()
}

// normalize deletes the segments the head has passed, the one this
// process appends to included: a drained queue gives its disk space back
// at once, and the next record starts a new segment.
func (q *queue) normalize() {
	for len(q.segs) > 0 {
		s := q.segs[0]
		if q.headIdx < s.frames || s.frames == 0 && len(q.segs) == 1 && q.w != nil {
			return // not passed yet, or just started
		}
		if len(q.segs) == 1 && q.w != nil {
			q.w.Close()
			q.w, q.dirty = nil, false
		}
		if s.r != nil {
			s.r.Close()
		}
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Leave it: it is deleted as consumed on the next open.
			_ = err
		}
		q.total -= s.size
		q.frames -= s.frames
		q.segs = q.segs[1:]
		q.headOff, q.headIdx = 0, 0
		q.headDirty = true
	}
}

// readAt reads len(p) bytes of s at off.
func (q *queue) readAt(s *segment, p []byte, off int64) error {
	if s.r == nil {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		s.r = f
	}
	_, err := s.r.ReadAt(p, off)
	return err
}

// peek reads up to maxEvents records with at most maxBytes of encoded
// events (but at least one) from the head, without removing them, and
// marks the batch as in flight. It returns nil if the queue is empty.
func (q *queue) peek(maxEvents, maxBytes int) (*batch, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	if q.count() == 0 {
		return nil, nil
	}
	b := &batch{epoch: q.epoch}
	size := 0
	var frame, plain []byte
	for si, s := range q.segs {
		off := int64(0)
		if si == 0 {
			off = q.headOff
		}
		if off >= s.size {
			continue
		}
		if s.r == nil {
			f, err := os.Open(s.path)
			if err != nil {
				return nil, fmt.Errorf("queue: read: %w", err)
			}
			s.r = f
		}
		r := bufio.NewReaderSize(io.NewSectionReader(s.r, off, s.size-off), 64<<10)
		for off < s.size {
			if len(b.items) >= maxEvents {
				q.inflight = b
				return b, nil
			}
			it := item{start: cursor{s.seq, off}}
			var hdr [frameHeaderSize]byte
			n, ok := 0, false
			if _, err := io.ReadFull(r, hdr[:]); err == nil {
				n, ok = frameLen(hdr[:], magicQueue)
			}
			if !ok || off+int64(n) > s.size {
				it.end, it.rest, it.corrupt = cursor{s.seq, s.size}, true, true
				b.items = append(b.items, it)
				break
			}
			frame = append(frame[:0], hdr[:]...)
			frame = slices.Grow(frame, n)[:n]
			if _, err := io.ReadFull(r, frame[frameHeaderSize:]); err != nil {
				it.end, it.rest, it.corrupt = cursor{s.seq, s.size}, true, true
				b.items = append(b.items, it)
				break
			}
			it.end = cursor{s.seq, off + int64(n)}
			var err error
			if plain, _, err = openFrame(plain[:0], q.aead, magicQueue, frame); err == nil {
				it.rec, err = decodeRecord(plain)
			}
			if err != nil {
				it.corrupt = true
			} else {
				sz := proto.Size(it.rec.event)
				if size+sz > maxBytes && len(b.items) > 0 {
					q.inflight = b
					return b, nil
				}
				size += sz
			}
			b.items = append(b.items, it)
			off += int64(n)
		}
	}
	q.inflight = b
	return b, nil
}

// ack removes the batch's items up to n (exclusive) from the queue: they
// were accepted, or dropped for good. Items the cap evicted meanwhile are
// already gone. Corrupt items are counted.
func (q *queue) ack(b *batch, n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if b.epoch != q.epoch || q.closed {
		return nil // purged meanwhile
	}
	for ; b.acked < n; b.acked++ {
		it := b.items[b.acked]
		if b.acked < b.evicted {
			q.stats.addEvicted(-1) // the caller counts it as sent or dropped
			continue
		}
		if len(q.segs) == 0 {
			continue
		}
		s := q.segs[0]
		if (it.start != cursor{s.seq, q.headOff}) {
			continue // moved past it already
		}
		if it.rest {
			q.stats.addCorrupt(s.frames - q.headIdx)
			q.headOff, q.headIdx = s.size, s.frames
		} else {
			if it.corrupt {
				q.stats.addCorrupt(1)
			}
			q.headOff = it.end.off
			q.headIdx++
		}
		q.headDirty = true
		q.normalize()
	}
	if b.acked == len(b.items) {
		q.release(b)
	}
	return q.writeHead()
}

// release ends b's flight without removing its remaining items; those the
// cap evicted meanwhile stay counted as evicted.
func (q *queue) release(b *batch) {
	if q.inflight == b {
		q.inflight = nil
	}
}

// done ends b's flight (see release).
func (q *queue) done(b *batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.release(b)
}

// sync makes appended records and the head durable.
func (q *queue) sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.syncLocked()
}

func (q *queue) syncLocked() error {
	if q.closed {
		return nil
	}
	if q.dirty && q.w != nil {
		if err := q.w.Sync(); err != nil {
			return fmt.Errorf("queue: sync: %w", err)
		}
		q.dirty = false
	}
	return q.writeHead()
}

// reset deletes every record and starts epoch, sealed with aead. It
// returns how many records were deleted.
func (q *queue) reset(epoch uint64, aead cipher.AEAD) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.count()
	q.inflight = nil
	q.closeFiles()
	var errs []error
	for _, s := range q.segs {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	q.segs, q.total, q.frames, q.headOff, q.headIdx = nil, 0, 0, 0, 0
	q.epoch, q.aead = epoch, aead
	q.dirty = false
	// The head file is kept and overwritten with the new epoch's start
	// (a head of another epoch counts as none), so that it never needs
	// space again.
	q.headDirty = true
	if err := q.writeHead(); err != nil {
		errs = append(errs, err)
	}
	clear(q.buf[:cap(q.buf)])
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("queue: purge: %w", err)
	}
	return n, atomicfile.SyncDir(q.dir)
}

func (q *queue) closeFiles() {
	if q.hf != nil {
		q.hf.Close()
		q.hf = nil
	}
	if q.w != nil {
		q.w.Close()
		q.w = nil
	}
	for _, s := range q.segs {
		if s.r != nil {
			s.r.Close()
			s.r = nil
		}
	}
}

// close syncs the queue and closes its files. Later calls fail with
// ErrClosed.
func (q *queue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	if q.inflight != nil {
		q.release(q.inflight)
	}
	err := q.syncLocked()
	q.closeFiles()
	q.closed = true
	return err
}
