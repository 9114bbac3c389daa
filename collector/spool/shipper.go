package spool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

var (
	// errCaughtUp: no durable record after the cursor yet.
	errCaughtUp = errors.New("caught up")
	// errCorrupt: the cursor skipped damaged records (already counted
	// and logged).
	errCorrupt = errors.New("damaged records skipped")
)

// Punching shipped bytes out of the cursor's segment.
const (
	// punchAlign: holes start and end on 4 KiB boundaries, so a partial
	// block is never zeroed (the segment header's block never is).
	punchAlign = 4 << 10
	// punchMax is the most shipped bytes the shipper leaves unpunched:
	// it punches once there are that many, or an eighth of the reserve
	// if less, so what shipped records still hold never eats more than a
	// fraction of the reserve.
	punchMax = 1 << 20
)

// Polling the gate's horizon.
const (
	horizonPollMin = 10 * time.Millisecond
	horizonPollMax = 250 * time.Millisecond
	// horizonLogAfter is how long the shipper waits for fresh
	// revocations before it says so.
	horizonLogAfter = 5 * time.Second
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

	// The cursor: the record it expects is at cur.off in seg.
	seg *segment
	f   file
	r   frameReader
	cur cursor
	// floor is the checkpoint's shipped at Open: records below it were
	// shipped before, so damage among them is not counted as a loss.
	floor uint64
	// lim and limSealed cache limit(): records never straddle a durable
	// offset, so reading below an old limit is safe.
	lim       int64
	limSealed bool
	// punched: the bytes of seg below it are punched out (or are the
	// header's block). punchOK turns false where punching is not
	// supported.
	punched int64
	punchOK bool

	rows      pipeline.Rows
	dec       decoder
	ioRetries int
}

// batch is a run of consecutive records inserted together.
type batch struct {
	start, end uint64 // sequence range [start, end)
	startPos   position
	startRow   uint64
	records    uint64
	decoded    uint64 // records whose rows are in the batch
	rows       uint64
	refused    uint64 // records the gate refused, and their rows
	refusedRow uint64
	bytes      int64
	// full is set when the batch was cut at MaxBatchRows: more rows may
	// wait past it.
	full bool
	// behind is set when the batch and the one before it were full (a
	// backlog that outlasts a round, not the burst a refresh of the gate
	// admits at once), when it repeats an interrupted insert, and while
	// the spool drains: its insert goes at full speed. Otherwise the
	// shipper keeps up, and inserts unhurried (pipeline.Unhurried).
	behind bool
}

func (sh *shipper) pos() position { return position{seg: sh.seg.num, off: sh.cur.off} }

func (sh *shipper) closeFile() {
	if sh.f != nil {
		_ = sh.f.Close()
		sh.f = nil
	}
}

// open moves the cursor to the first record of seg. The file is opened for
// writing too, to punch out what was shipped.
func (sh *shipper) open(seg *segment) error {
	f, err := sh.s.fs.OpenFile(sh.s.segPath(seg.num), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open segment %d: %w", seg.num, err)
	}
	sh.closeFile()
	sh.f = f
	sh.r.reset(f, seg.header())
	sh.seg, sh.cur = seg, seg.start()
	sh.lim, sh.limSealed = 0, false
	sh.punched = alignUp(seg.hdrSize(), punchAlign)
	return nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) &^ (a - 1) }

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

// anchorAfter returns the cursor that follows the last record of the
// sealed segment seg: the start of the next segment, or, when seg is the
// last one (the spool is closed), the end of what was written.
func (sh *shipper) anchorAfter(seg *segment) cursor {
	if nxt := sh.segAfter(seg); nxt != nil {
		return nxt.start()
	}
	sh.s.mu.Lock()
	defer sh.s.mu.Unlock()
	return cursor{seq: sh.s.durableSeq, row: sh.s.durableRow, rowKnown: true}
}

// next returns the durable record at the cursor without consuming it
// (advance does), moving on to the next segment at the end of a sealed one.
// It returns errCaughtUp when nothing more is durable yet, errCorrupt after
// skipping damaged records, and other errors for I/O failures, after which
// it may be called again.
func (sh *shipper) next() (frame, error) {
	for {
		if sh.cur.off >= sh.lim {
			sh.lim, sh.limSealed = sh.limit()
		}
		limit, sealed := sh.lim, sh.limSealed
		if sh.cur.off >= limit {
			if !sealed {
				return frame{}, errCaughtUp
			}
			nxt := sh.segAfter(sh.seg)
			if nxt == nil {
				return frame{}, errCaughtUp
			}
			gap, err := sh.enter(nxt)
			if err != nil {
				return frame{}, err
			}
			if gap {
				return frame{}, errCorrupt
			}
			continue
		}
		fr, d, err := sh.r.step(sh.ctx, sh.cur, limit)
		if err != nil {
			return frame{}, fmt.Errorf("read segment %d at %d: %w", sh.seg.num, sh.cur.off, err)
		}
		if d == nil {
			return fr, nil
		}
		if !sh.r.v2 && d.to > d.from {
			// Version 1 segments are skipped to their end after damage,
			// as the release that wrote them did: it may have reused the
			// sequences after the damage in a later segment.
			d.to, d.toEnd = limit, true
		}
		if d.toEnd {
			if !sealed {
				// Damage at the end of the segment being written: start a
				// new one, so what follows the damage is known.
				if _, err := sh.s.sealActive(sh.ctx, sh.seg, false); err != nil {
					return frame{}, fmt.Errorf("seal damaged segment %d: %w", sh.seg.num, err)
				}
				sh.lim, sh.limSealed = sh.limit()
				continue
			}
			next := sh.anchorAfter(sh.seg)
			next.off = limit
			d.next = next
			d.records, d.eventsKnown = 0, false
			if next.seq > sh.cur.seq {
				d.records = next.seq - sh.cur.seq
			} else if !sh.r.v2 {
				d.records = 1 // a v1 segment whose sequences were reused after damage
			}
			if next.rowKnown && sh.cur.rowKnown && next.row >= sh.cur.row {
				d.events, d.eventsKnown = next.row-sh.cur.row, true
			}
		}
		sh.skip(d)
		return frame{}, errCorrupt
	}
}

// skip moves the cursor past damage, counting and logging (never the
// contents) what was lost.
func (sh *shipper) skip(d *damage) {
	s := sh.s
	bytes := d.to - d.from
	records, events, known := d.records, d.events, d.eventsKnown
	if events < records {
		// Every record holds a row at least: rows counted across the
		// damage are not known (records lost at the end of the last
		// segment, whose rows Open could not read, continue its count).
		known = false
	}
	quiet := sh.cur.seq < sh.floor
	if quiet {
		// Partly or wholly records shipped before Open.
		lost := d.next.seq - min(d.next.seq, sh.floor)
		records, known = min(records, lost), known && lost == records
	}
	s.mu.Lock()
	s.unshipped -= bytes
	s.mu.Unlock()
	fields := []zap.Field{zap.Uint64("segment", sh.seg.num), zap.Int64("offset", d.from),
		zap.Int64("next_valid_offset", d.to), zap.Int64("skipped_bytes", bytes), zap.Uint64("first_record", sh.cur.seq),
		zap.Uint64("lost_records", records)}
	if known {
		fields = append(fields, zap.Uint64("lost_events", events))
	} else {
		fields = append(fields, zap.String("lost_events", "unknown"))
	}
	fields = append(fields, zap.NamedError("cause", d.cause))
	if quiet && records == 0 {
		s.log.Info("spool: damaged records that were already shipped; skipping them", fields...)
	} else {
		s.corruptRecs.Add(records)
		if known {
			s.corruptEvs.Add(events)
		}
		s.corruptBy.Add(uint64(bytes))
		s.log.Warn("spool: damaged records; skipping them", fields...)
	}
	sh.cur = d.next
}

// enter moves the cursor into nxt, which follows the segment it finished.
// A gap in sequences between them (a segment lost with its header) is
// counted as lost records, and reported as true. Segments behind the
// durable checkpoint are removed.
func (sh *shipper) enter(nxt *segment) (bool, error) {
	prev := sh.cur
	if err := sh.open(nxt); err != nil {
		return false, err
	}
	gap := false
	if from := max(prev.seq, sh.floor); nxt.firstSeq > from {
		gap = true
		d := &damage{from: nxt.hdrSize(), to: nxt.hdrSize(), next: sh.cur, records: nxt.firstSeq - from,
			cause: errors.New("records missing between segments")}
		if prev.rowKnown && sh.cur.rowKnown && prev.seq >= sh.floor && nxt.firstRow >= prev.row {
			d.events, d.eventsKnown = nxt.firstRow-prev.row, true
		}
		sh.cur = cursor{off: d.from, seq: from, row: prev.row, rowKnown: prev.rowKnown}
		sh.skip(d)
	}
	s := sh.s
	s.mu.Lock()
	drop := s.dropShippedLocked(sh.ck.shipped, sh.seg)
	s.mu.Unlock()
	s.removeSegments(drop)
	return gap, nil
}

func (sh *shipper) advance(fr frame) {
	sh.cur = sh.cur.after(fr, sh.r.v2)
}

// seek moves the cursor to the record ck.shipped. A v2 checkpoint's
// position is exact: the cursor goes there without reading (the bytes
// before it may have been punched out, and a damaged record there is
// skipped like any other). A v1 position is used when the record there
// checks out; otherwise, and when the position is in no segment, the
// segments are read from the oldest. The bytes passed are taken off the
// unshipped count.
func (sh *shipper) seek(ck checkpoint, found bool) error {
	s := sh.s
	seg := s.segs[0]
	if err := sh.open(seg); err != nil {
		return err
	}
	sh.floor = ck.shipped
	if ck.shipped <= seg.firstSeq {
		if found && ck.shipped < seg.firstSeq {
			// Records between the checkpoint and the oldest segment are
			// gone (a segment lost with its header).
			d := &damage{from: seg.hdrSize(), to: seg.hdrSize(), next: sh.cur, records: seg.firstSeq - ck.shipped,
				cause: errors.New("records missing before the oldest segment")}
			if ck.trusted && seg.version != segV1 && seg.firstRow >= ck.row {
				d.events, d.eventsKnown = seg.firstRow-ck.row, true
			}
			sh.floor = 0
			sh.cur = cursor{off: d.from, seq: ck.shipped, row: ck.row, rowKnown: ck.trusted}
			sh.skip(d)
		}
		return nil
	}
	hdr := seg.hdrSize()
	if ck.pos.seg == seg.num && ck.pos.off >= hdr && ck.pos.off <= seg.durable {
		ok := ck.trusted
		if !ok && ck.pos.off == seg.durable {
			ok = seg.sealed || ck.shipped == s.nextSeq
		} else if !ok {
			fr, err := sh.r.frame(ck.pos.off, seg.durable)
			ok = err == nil && fr.seq == ck.shipped
		}
		if ok {
			s.unshipped -= ck.pos.off - hdr
			sh.cur = cursor{off: ck.pos.off, seq: ck.shipped, row: ck.row, rowKnown: ck.trusted && seg.version != segV1}
			if !sh.cur.rowKnown && seg.version != segV1 {
				// A v1 checkpoint in a v2 segment: read the row there.
				if fr, err := sh.r.frame(ck.pos.off, seg.durable); err == nil && fr.seq == ck.shipped {
					sh.cur.row, sh.cur.rowKnown = fr.row, true
				}
			}
			return nil
		}
	}
	for sh.cur.seq < ck.shipped {
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
	draining, prevFull := false, false
	for {
		b, ok := sh.fill()
		if !ok {
			return
		}
		b.behind = b.full && prevFull || draining
		prevFull = b.full
		if b.records > 0 {
			if !sh.ship(b) {
				return
			}
			continue
		}
		sh.caughtUp()
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

// reset empties the shipper's rows for the next batch; the slices the
// last batch's rows held are carved again (the Inserter keeps nothing of
// them).
func (sh *shipper) reset() {
	sh.rows.Reset()
	sh.dec.carvers.recycle()
}

// origin returns the origin of fr and the rows' encoding in its payload.
// Version 1 records have no origin: they count as received when written.
func (sh *shipper) origin(fr frame) (pipeline.Origin, []byte, error) {
	if !sh.r.v2 {
		return pipeline.Origin{Received: time.Unix(0, fr.unixNano).UTC()}, fr.payload, nil
	}
	return decodeOrigin(fr.payload)
}

// startBatch notes where b starts, if it is empty.
func (sh *shipper) startBatch(b *batch, fr frame) {
	if b.records == 0 {
		b.start, b.startPos, b.startRow = fr.seq, sh.pos(), sh.cur.row
		sh.s.mu.Lock()
		sh.s.headTime = fr.unixNano
		sh.s.mu.Unlock()
	}
}

// take decodes fr's rows (payload, or perr) into the batch and consumes
// it. An undecodable record (its checksum was fine, so the records after
// it can be trusted) is counted as corrupt and skipped on its own.
func (sh *shipper) take(b *batch, fr frame, payload []byte, err error) {
	sh.startBatch(b, fr)
	if err == nil {
		err = sh.dec.decodeRows(payload, &sh.rows)
	}
	if err != nil {
		sh.s.corruptRecs.Add(1)
		sh.s.corruptEvs.Add(fr.rows)
		sh.s.corruptBy.Add(uint64(fr.size))
		sh.s.log.Warn("spool: undecodable record; skipping it",
			zap.Uint64("segment", sh.seg.num), zap.Int64("offset", sh.cur.off),
			zap.Uint64("record", fr.seq), zap.Uint64("lost_events", fr.rows), zap.Error(err))
	} else {
		b.rows += fr.rows
		b.decoded++
	}
	b.records++
	b.bytes += fr.size
	sh.advance(fr)
	b.end = sh.cur.seq
}

// refuse consumes fr, which the gate refused, into the batch without its
// rows: the checkpoint passes it like a shipped record.
func (sh *shipper) refuse(b *batch, fr frame) {
	sh.startBatch(b, fr)
	b.records++
	b.refused++
	b.refusedRow += fr.rows
	b.bytes += fr.size
	sh.advance(fr)
	b.end = sh.cur.seq
}

// horizonPassed reports whether the gate knows every revocation made up to
// received.
func (sh *shipper) horizonPassed(received time.Time) bool {
	h, ok := sh.s.cfg.Gate.Horizon()
	return ok && h.After(received)
}

// waitHorizon polls the gate until its horizon passes received, returning
// false if the shipper must stop first.
func (sh *shipper) waitHorizon(received time.Time) bool {
	start := time.Now()
	logged := false
	d := horizonPollMin
	for !sh.horizonPassed(received) {
		if !logged && time.Since(start) > horizonLogAfter {
			logged = true
			sh.s.log.Info("spool: waiting for fresh revocations before shipping",
				zap.Duration("waited", time.Since(start)))
		}
		if !sh.sleep(d) {
			return false
		}
		d = min(2*d, horizonPollMax)
	}
	return true
}

// fill reads the next batch: consecutive durable records up to
// MaxBatchRows rows (at least one record), minus those the gate refuses.
// It returns an empty batch when nothing is durable past the cursor, and
// false when the shipper must stop.
func (sh *shipper) fill() (batch, bool) {
	s := sh.s
	sh.reset()
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
		origin, payload, oerr := sh.origin(fr)
		if oerr == nil && s.cfg.Gate != nil {
			if !sh.horizonPassed(origin.Received) {
				if b.records > 0 {
					return b, true // ship what is gathered, then wait
				}
				if !sh.waitHorizon(origin.Received) {
					return b, false
				}
				continue
			}
			if !s.cfg.Gate.Admit(origin) {
				sh.refuse(&b, fr)
				continue
			}
		}
		if oerr == nil && b.rows > 0 && b.rows+fr.rows > uint64(s.cfg.MaxBatchRows) {
			b.full = true
			return b, true
		}
		sh.take(&b, fr, payload, oerr)
		if b.rows >= uint64(s.cfg.MaxBatchRows) {
			b.full = true
			return b, true
		}
	}
}

// redo repeats the insert the checkpoint's intent describes, with exactly
// its range and token, whatever MaxBatchRows is now: the insert may or may
// not have happened before a crash, and the token makes it happen once.
//
// The gate is asked again, and may now refuse records it admitted before
// the crash; the token stays the same anyway. That is safe: if ClickHouse
// stored the first insert, it drops the repeat by its token, and what the
// first insert stored was admissible then (a later revocation does not
// reach rows received before it; a later erasure deletes them itself); if
// it did not, only what the gate admits now is stored.
func (sh *shipper) redo() bool {
	s := sh.s
	end := sh.ck.intentEnd
	b := batch{start: sh.ck.shipped, startPos: sh.ck.pos, startRow: sh.ck.row, behind: true}
	sh.reset()
	for sh.cur.seq < end {
		fr, err := sh.next()
		switch {
		case err == nil:
		case errors.Is(err, errCaughtUp):
			// Records of the range are gone (damage); insert the rest.
			end = sh.cur.seq
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
		start, pos, row := b.start, b.startPos, b.startRow
		origin, payload, oerr := sh.origin(fr)
		admit := true
		if oerr == nil && s.cfg.Gate != nil {
			if !sh.waitHorizon(origin.Received) {
				return false
			}
			admit = s.cfg.Gate.Admit(origin)
		}
		if admit {
			sh.take(&b, fr, payload, oerr)
		} else {
			sh.refuse(&b, fr)
		}
		b.start, b.startPos, b.startRow = start, pos, row
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
		intent := checkpoint{id: sh.s.id, shipped: b.start, row: b.startRow, pos: b.startPos,
			intent: true, intentEnd: b.end, trusted: true}
		if !sh.persist(intent) {
			return false
		}
		if !sh.insert(b, sh.token(b.start, b.end)) {
			return false
		}
	}
	return sh.done(b)
}

// done advances the checkpoint to the cursor after b was stored, removes
// the segments that are now fully shipped, and punches out what was
// shipped of the cursor's segment.
func (sh *shipper) done(b batch) bool {
	s := sh.s
	ck := checkpoint{id: s.id, shipped: sh.cur.seq, row: sh.cur.row, pos: sh.pos(), trusted: true}
	if !sh.persist(ck) {
		return false
	}
	s.shippedRecs.Add(b.decoded)
	s.shipRows.Add(b.rows)
	s.gateDropped.Add(b.refused)
	s.gateDroppedRows.Add(b.refusedRow)
	s.mu.Lock()
	s.unshipped -= b.bytes
	s.headTime = 0
	drop := s.dropShippedLocked(ck.shipped, sh.seg)
	s.mu.Unlock()
	// Free the space before WaitShipped returns, so a waiter finds it.
	s.removeSegments(drop)
	sh.punch()
	s.mu.Lock()
	s.setShippedLocked(ck.shipped)
	s.mu.Unlock()
	return true
}

// punch gives the volume back the blocks of the cursor's segment below the
// durable checkpoint, once there are punchMax of them or an eighth of the
// reserve. Those bytes are never read again: after a restart the
// checkpoint's position is used as is.
func (sh *shipper) punch() {
	if !sh.punchOK || sh.ck.pos.seg != sh.seg.num {
		return
	}
	end := sh.ck.pos.off &^ (punchAlign - 1)
	sh.s.mu.Lock()
	least := min(punchMax, sh.s.vol.reserve/8)
	sh.s.mu.Unlock()
	if end <= sh.punched || end-sh.punched < least {
		return
	}
	if err := sh.f.Punch(sh.punched, end-sh.punched); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			sh.punchOK = false
			sh.s.log.Info("spool: the file system cannot punch holes; shipped bytes are freed when their segment is deleted",
				zap.Error(err))
			return
		}
		sh.s.log.Warn("spool: punch out shipped bytes", zap.Uint64("segment", sh.seg.num), zap.Error(err))
		return
	}
	sh.punched = end
	sh.s.volumeChanged()
}

// caughtUp runs when nothing is left to ship. Where holes cannot be
// punched and the volume is low on space, it seals the active segment, all
// shipped, so it is deleted once the cursor moves on, instead of keeping
// its shipped bytes until it reaches SegmentBytes.
func (sh *shipper) caughtUp() {
	if sh.punchOK || sh.cur.off != sh.seg.durable || sh.cur.seq != sh.ck.shipped || !sh.s.lowOnSpace() {
		return
	}
	sealed, err := sh.s.sealActive(sh.ctx, sh.seg, true)
	if err != nil {
		sh.s.log.Warn("spool: start a new segment to free shipped bytes", zap.Error(err))
		return
	}
	if sealed {
		sh.lim, sh.limSealed = sh.limit()
		kick(sh.s.shipKick) // move into the new segment, removing this one
	}
}

// markSafe publishes a cursor that moved past skipped records without an
// insert.
func (sh *shipper) markSafe() {
	sh.safe = checkpoint{id: sh.s.id, shipped: sh.cur.seq, row: sh.cur.row, pos: sh.pos(), trusted: true}
	sh.s.mu.Lock()
	sh.s.setShippedLocked(sh.cur.seq)
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
//
// A batch that is not behind is inserted under a pipeline.Unhurried
// context: the shipper is keeping up, and ClickHouse's work can be spread
// out rather than compete with the requests being acknowledged.
func (sh *shipper) insert(b batch, token string) bool {
	s := sh.s
	ctx := sh.ctx
	if !b.behind {
		ctx = pipeline.Unhurried(ctx)
	}
	for attempt := 0; ; attempt++ {
		if sh.ctx.Err() != nil {
			return false
		}
		t0 := time.Now()
		err := s.cfg.Inserter.Insert(ctx, &sh.rows, token)
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

// persist writes ck to the checkpoint, retrying with backoff until it
// succeeds or the shipper must stop. Writing needs no free space.
func (sh *shipper) persist(ck checkpoint) bool {
	for attempt := 0; ; attempt++ {
		err := sh.s.ckf.write(ck)
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
		if err := sh.s.ckf.write(sh.safe); err != nil {
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
