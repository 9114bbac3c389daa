package spool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

var (
	// errCaughtUp: no durable record after the cursor yet.
	errCaughtUp = errors.New("caught up")
	// errCorrupt: the cursor skipped the rest of a segment after an
	// invalid record (already counted and logged).
	errCorrupt = errors.New("corrupt segment skipped")
)

// shipper moves spooled records into the Inserter. It reads the segments
// sequentially through a cursor, holding one chunk and one batch in memory.
// Its fields belong to its goroutine (and to Open before it starts).
type shipper struct {
	s   *Spool
	ctx context.Context
	// ck is the last checkpoint persisted.
	ck checkpoint
	// safe is a position past records skipped without an insert, persisted
	// on exit if nothing else persisted it.
	safe checkpoint
	// err is a failure to persist progress at exit, reported by Close.
	err error

	// The cursor: the record with sequence seq starts at off in seg.
	seg *segment
	f   file
	r   frameReader
	off int64
	seq uint64
	// lim and limSealed cache limit(): records never straddle a durable
	// offset, so reading below an old limit is safe.
	lim       int64
	limSealed bool

	rows      pipeline.Rows
	ioRetries int
}

// batch is a run of consecutive records inserted together.
type batch struct {
	start, end uint64 // sequence range [start, end)
	startPos   position
	records    uint64
	decoded    uint64 // records whose rows are in the batch
	rows       uint64
	bytes      int64
}

func (sh *shipper) pos() position { return position{seg: sh.seg.num, off: sh.off} }

func (sh *shipper) closeFile() {
	if sh.f != nil {
		_ = sh.f.Close()
		sh.f = nil
	}
}

// open moves the cursor to the first record of seg.
func (sh *shipper) open(seg *segment) error {
	f, err := sh.s.fs.OpenFile(sh.s.segPath(seg.num), os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", seg.num, err)
	}
	sh.closeFile()
	sh.f = f
	sh.r.reset(f)
	sh.seg, sh.off, sh.seq = seg, segHeaderSize, seg.firstSeq
	sh.lim, sh.limSealed = 0, false
	return nil
}

// limit returns how far the cursor's segment may be read, and whether it
// will grow no more.
func (sh *shipper) limit() (int64, bool) {
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return sh.seg.durable, sh.seg.sealed
}

func (sh *shipper) segAfter(seg *segment) *segment {
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	for i, x := range sh.s.segs {
		if x == seg && i+1 < len(sh.s.segs) {
			return sh.s.segs[i+1]
		}
	}
	return nil
}

// next returns the durable record at the cursor without consuming it
// (advance does), moving on to the next segment at the end of a sealed one.
// It returns errCaughtUp when nothing more is durable yet, errCorrupt after
// skipping the rest of a segment past an invalid record, and other errors
// for I/O failures, after which it may be called again.
func (sh *shipper) next() (frame, error) {
	for {
		if sh.off >= sh.lim {
			sh.lim, sh.limSealed = sh.limit()
		}
		limit, sealed := sh.lim, sh.limSealed
		if sh.off >= limit {
			if !sealed {
				return frame{}, errCaughtUp
			}
			nxt := sh.segAfter(sh.seg)
			if nxt == nil {
				return frame{}, errCaughtUp
			}
			if err := sh.open(nxt); err != nil {
				return frame{}, err
			}
			continue
		}
		fr, err := sh.r.frame(sh.off, limit, sh.seq)
		if err == nil {
			return fr, nil
		}
		if !isFormatError(err) {
			return frame{}, fmt.Errorf("read segment %d at %d: %w", sh.seg.num, sh.off, err)
		}
		if !sealed {
			// Damage in the segment being written: start a new one, so
			// new records land past the damage, then skip its rest.
			if err := sh.s.sealActive(sh.ctx, sh.seg); err != nil {
				return frame{}, fmt.Errorf("seal damaged segment %d: %w", sh.seg.num, err)
			}
			sh.lim, sh.limSealed = sh.limit()
			continue
		}
		skipped := limit - sh.off
		sh.s.corruptRecs.Add(1)
		sh.s.corruptBy.Add(uint64(skipped))
		sh.s.log.Warn("spool: corrupt record; skipping the rest of its segment",
			zap.Uint64("segment", sh.seg.num), zap.Int64("offset", sh.off),
			zap.Uint64("record", sh.seq), zap.Int64("skipped_bytes", skipped), zap.Error(err))
		sh.s.mu.Lock()
		sh.s.unshipped -= skipped
		sh.s.mu.Unlock()
		sh.off = limit
		if nxt := sh.segAfter(sh.seg); nxt != nil {
			if err := sh.open(nxt); err != nil {
				sh.s.log.Warn("spool: open next segment", zap.Error(err)) // retried by the next call
			}
		}
		return frame{}, errCorrupt
	}
}

func (sh *shipper) advance(fr frame) {
	sh.off += fr.size
	sh.seq++
}

// seek moves the cursor to the record ck.shipped, using ck.pos when it
// checks out and scanning from the oldest segment otherwise. The bytes it
// passes are taken off the unshipped count.
func (sh *shipper) seek(ck checkpoint) error {
	s := sh.s
	seg := s.segs[0]
	if err := sh.open(seg); err != nil {
		return err
	}
	if ck.shipped <= seg.firstSeq {
		return nil
	}
	if ck.pos.seg == seg.num && ck.pos.off >= segHeaderSize && ck.pos.off <= seg.durable {
		ok := false
		if ck.pos.off == seg.durable {
			ok = seg.sealed || ck.shipped == s.nextSeq
		} else if _, err := sh.r.frame(ck.pos.off, seg.durable, ck.shipped); err == nil {
			ok = true
		}
		if ok {
			s.unshipped -= ck.pos.off - segHeaderSize
			sh.off, sh.seq = ck.pos.off, ck.shipped
			return nil
		}
	}
	for sh.seq < ck.shipped {
		if err := sh.ctx.Err(); err != nil {
			return err
		}
		fr, err := sh.next()
		switch {
		case err == nil:
			s.unshipped -= fr.size
			sh.advance(fr)
		case errors.Is(err, errCaughtUp):
			return nil
		case errors.Is(err, errCorrupt):
		default:
			return err
		}
	}
	return nil
}

// run is the shipper goroutine: it redoes an interrupted insert, then ships
// batches as records become durable, until Close drains it or cancels its
// context.
func (sh *shipper) run() {
	defer close(sh.s.shipperDone)
	defer sh.exit()
	if sh.ck.intent && !sh.redo() {
		return
	}
	draining := false
	for {
		b, ok := sh.fill()
		if !ok {
			return
		}
		if b.records > 0 {
			if !sh.ship(b) {
				return
			}
			continue
		}
		if draining {
			return
		}
		select {
		case <-sh.s.shipKick:
		case <-sh.s.drain:
			draining = true
		case <-sh.ctx.Done():
			return
		}
	}
}

// take decodes fr into the batch and consumes it. An undecodable record
// (its checksum was fine, so the records after it can be trusted) is
// counted as corrupt and skipped on its own.
func (sh *shipper) take(b *batch, fr frame, n int, err error) {
	if b.records == 0 {
		b.start, b.startPos = fr.seq, sh.pos()
		sh.s.mu.Lock()
		sh.s.headTime = fr.unixNano
		sh.s.mu.Unlock()
	}
	if err == nil {
		err = decodeRows(fr.payload, &sh.rows)
	}
	if err != nil {
		sh.s.corruptRecs.Add(1)
		sh.s.corruptBy.Add(uint64(fr.size))
		sh.s.log.Warn("spool: undecodable record; skipping it",
			zap.Uint64("segment", sh.seg.num), zap.Int64("offset", sh.off),
			zap.Uint64("record", fr.seq), zap.Error(err))
	} else {
		b.rows += uint64(n)
		b.decoded++
	}
	b.records++
	b.bytes += fr.size
	sh.advance(fr)
	b.end = sh.seq
}

// fill reads the next batch: consecutive durable records up to
// MaxBatchRows rows (at least one record). It returns an empty batch when
// nothing is durable past the cursor, and false when the shipper must stop.
func (sh *shipper) fill() (batch, bool) {
	s := sh.s
	sh.rows.Reset()
	var b batch
	for {
		fr, err := sh.next()
		switch {
		case err == nil:
			sh.ioRetries = 0
		case errors.Is(err, errCaughtUp):
			return b, true
		case errors.Is(err, errCorrupt):
			if b.records > 0 {
				return b, true // the batch ends at the damage
			}
			sh.markSafe()
			continue
		default:
			s.log.Warn("spool: read failed; will retry", zap.Error(err))
			if b.records > 0 {
				return b, true
			}
			sh.ioRetries++
			if !sh.sleep(sh.backoff(sh.ioRetries - 1)) {
				return b, false
			}
			continue
		}
		n, cerr := rowCounts(fr.payload)
		if cerr == nil && b.rows > 0 && b.rows+uint64(n) > uint64(s.cfg.MaxBatchRows) {
			return b, true
		}
		sh.take(&b, fr, n, cerr)
		if b.rows >= uint64(s.cfg.MaxBatchRows) {
			return b, true
		}
	}
}

// redo repeats the insert the checkpoint's intent describes, with exactly
// its range and token, whatever MaxBatchRows is now: the insert may or may
// not have happened before a crash, and the token makes it happen once.
func (sh *shipper) redo() bool {
	s := sh.s
	end := sh.ck.intentEnd
	b := batch{start: sh.ck.shipped, startPos: sh.ck.pos}
	sh.rows.Reset()
	for sh.seq < end {
		fr, err := sh.next()
		switch {
		case err == nil:
		case errors.Is(err, errCaughtUp):
			// Records of the range are gone (damage); insert the rest.
			end = sh.seq
			continue
		case errors.Is(err, errCorrupt):
			continue
		default:
			s.log.Warn("spool: read failed; will retry", zap.Error(err))
			sh.ioRetries++
			if !sh.sleep(sh.backoff(sh.ioRetries - 1)) {
				return false
			}
			continue
		}
		sh.ioRetries = 0
		n, cerr := rowCounts(fr.payload)
		start, pos := b.start, b.startPos
		sh.take(&b, fr, n, cerr)
		b.start, b.startPos = start, pos
	}
	if b.rows > 0 {
		if !sh.insert(b, sh.token(sh.ck.shipped, sh.ck.intentEnd)) {
			return false
		}
	}
	return sh.done(b)
}

// ship stores batch b: it durably records the intent to insert [start,
// end), inserts with the token naming that range, and advances the
// checkpoint past it.
func (sh *shipper) ship(b batch) bool {
	if b.rows > 0 {
		intent := checkpoint{id: sh.s.id, shipped: b.start, pos: b.startPos, intent: true, intentEnd: b.end}
		if !sh.persist(intent) {
			return false
		}
		if !sh.insert(b, sh.token(b.start, b.end)) {
			return false
		}
	}
	return sh.done(b)
}

// done advances the checkpoint to the cursor after b was stored, and
// removes the segments that are now fully shipped.
func (sh *shipper) done(b batch) bool {
	s := sh.s
	ck := checkpoint{id: s.id, shipped: sh.seq, pos: sh.pos()}
	if !sh.persist(ck) {
		return false
	}
	s.shippedRecs.Add(b.decoded)
	s.shipRows.Add(b.rows)
	s.mu.Lock()
	s.unshipped -= b.bytes
	s.headTime = 0
	s.setShippedLocked(ck.shipped)
	drop := s.dropShippedLocked(ck.shipped, sh.seg)
	s.mu.Unlock()
	s.removeSegments(drop)
	return true
}

// markSafe publishes a cursor that moved past skipped records without an
// insert.
func (sh *shipper) markSafe() {
	sh.safe = checkpoint{id: sh.s.id, shipped: sh.seq, pos: sh.pos()}
	sh.s.mu.Lock()
	sh.s.setShippedLocked(sh.seq)
	sh.s.mu.Unlock()
}

func (s *Spool) setShippedLocked(seq uint64) {
	if seq > s.shipped {
		s.shipped = seq
		close(s.shippedCh)
		s.shippedCh = make(chan struct{})
	}
}

func (sh *shipper) token(a, b uint64) string {
	return fmt.Sprintf("%s:%d:%d", sh.s.ID(), a, b)
}

// insert inserts the batch's rows, retrying with backoff until it succeeds
// or the shipper must stop. Records are never dropped for insert errors.
func (sh *shipper) insert(b batch, token string) bool {
	s := sh.s
	for attempt := 0; ; attempt++ {
		if sh.ctx.Err() != nil {
			return false
		}
		t0 := time.Now()
		err := s.cfg.Inserter.Insert(sh.ctx, &sh.rows, token)
		s.lastInsert.Store(int64(time.Since(t0)))
		if err == nil {
			return true
		}
		if sh.ctx.Err() != nil {
			return false
		}
		s.insertErrors.Add(1)
		s.log.Warn("spool: insert failed; will retry", zap.String("token", token),
			zap.Uint64("records", b.records), zap.Uint64("rows", b.rows),
			zap.Int("attempt", attempt+1), zap.Error(err))
		if !sh.sleep(sh.backoff(attempt)) {
			return false
		}
	}
}

// persist writes ck atomically, retrying with backoff until it succeeds or
// the shipper must stop.
func (sh *shipper) persist(ck checkpoint) bool {
	path := filepath.Join(sh.s.dir, ckName)
	for attempt := 0; ; attempt++ {
		err := writeFileAtomic(sh.s.fs, path, ck.marshal())
		if err == nil {
			sh.ck = ck
			sh.err = nil
			return true
		}
		sh.err = fmt.Errorf("persist checkpoint: %w", err)
		sh.s.log.Warn("spool: persist checkpoint failed; will retry", zap.Int("attempt", attempt+1), zap.Error(err))
		if !sh.sleep(sh.backoff(attempt)) {
			return false
		}
	}
}

// backoff is the pause before retry attempt+1: RetryMin doubled per
// attempt, capped at RetryMax, with jitter over its upper half.
func (sh *shipper) backoff(attempt int) time.Duration {
	lo, hi := sh.s.cfg.RetryMin, sh.s.cfg.RetryMax
	d := lo
	for range min(attempt, 62) {
		if d >= hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep pauses for d, returning false if the shipper must stop.
func (sh *shipper) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sh.ctx.Done():
		return false
	}
}

// exit persists a position that moved past skipped records, unless an
// insert may be outstanding (then the intent must stay), closes the
// cursor's file and tells waiters the shipper is gone.
func (sh *shipper) exit() {
	if !sh.ck.intent && sh.safe.shipped > sh.ck.shipped {
		if err := writeFileAtomic(sh.s.fs, filepath.Join(sh.s.dir, ckName), sh.safe.marshal()); err != nil {
			sh.s.log.Warn("spool: persist checkpoint", zap.Error(err))
		}
	}
	sh.closeFile()
	sh.s.mu.Lock()
	sh.s.shipperOut = true
	close(sh.s.shippedCh)
	sh.s.shippedCh = make(chan struct{})
	sh.s.mu.Unlock()
}
