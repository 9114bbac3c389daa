package spool

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// group is the records appended since the previous sync started; one sync
// makes them all durable.
type group struct {
	seg       *segment
	startOff  int64
	startSeq  uint64
	startRow  uint64
	endOff    int64
	endSeq    uint64
	endRow    uint64
	firstTime int64
	done      chan struct{} // closed once err is set
	err       error
}

// createSegment creates segment num, whose first record will be firstSeq
// after firstRow rows, with a fresh frame key, and makes its header and
// directory entry durable.
func (s *Spool) createSegment(num, firstSeq, firstRow uint64) (file, *segment, error) {
	seg := &segment{num: num, version: segV2, firstSeq: firstSeq, firstRow: firstRow, size: segHeaderSizeV2, durable: segHeaderSizeV2}
	if _, err := rand.Read(seg.key[:]); err != nil {
		return nil, nil, fmt.Errorf("create segment %d: frame key: %w", num, err)
	}
	path := s.segPath(num)
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("create segment %d: %w", num, err)
	}
	err = writeFull(f, seg.header().marshal(), 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		_ = f.Close()
		_ = s.fs.Remove(path)
		return nil, nil, fmt.Errorf("create segment %d: %w", num, err)
	}
	return f, seg, nil
}

func (s *Spool) active() *segment { return s.segs[len(s.segs)-1] }

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *Spool) getEncoder() *encoder { return s.encoders.Get().(*encoder) }

func (s *Spool) putEncoder(e *encoder) {
	if cap(e.buf) > keepBigRead {
		e.buf = nil
	}
	s.encoders.Put(e)
}

// Write makes rows durable in the spool, with their origin, and returns
// nil once they are: the encoded record is appended to the active
// segment, and Write waits for the sync that covers it, which concurrent
// Writes share. It fails with an error wrapping ErrFull when the record
// would take the unshipped bytes beyond Config.MaxBytes, ErrDiskFull
// (which wraps ErrFull) when it would leave less than the reserve free on
// the volume or the volume ran out of space, ErrClosed after Close, and a
// wrapped I/O error (and pipeline.ErrStorageUnavailable) when the disk
// fails otherwise; the spool then truncates what it had appended and
// stays usable. If ctx ends while Write waits for the sync, Write returns
// ctx's error and the rows may still be stored.
//
// Write does not keep rows after it returns.
func (s *Spool) Write(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: write: %w", err)
	}
	n := 0
	if rows != nil {
		n = rows.Len()
	}
	if n == 0 {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return fmt.Errorf("spool: write: %w", ErrClosed)
		}
		return nil
	}

	enc := s.getEncoder()
	defer s.putEncoder(enc)
	var hdr [frameHeaderSizeV2]byte
	frame := append(enc.buf[:0], hdr[:]...)
	frame = appendOrigin(frame, origin)
	frame = enc.appendRows(frame, rows)
	enc.buf = frame
	if len(frame)-frameHeaderSizeV2 > maxPayload {
		return fmt.Errorf("spool: write: %d rows encode to %d bytes, more than a record holds (%d)",
			n, len(frame)-frameHeaderSizeV2, maxPayload)
	}
	payloadCRC := crc32.Checksum(frame[frameHeaderSizeV2:], castagnoli)
	size := int64(len(frame))

	s.mu.Lock()
	g, err := s.appendLocked(ctx, frame, payloadCRC, size, uint64(n))
	s.mu.Unlock()
	if err != nil {
		return err
	}
	kick(s.syncKick)
	select {
	case <-g.done:
		if g.err != nil {
			return fmt.Errorf("spool: sync segment %d: %w", g.seg.num, ioError(g.err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("spool: write: waiting for sync: %w", ctx.Err())
	}
}

// ioError wraps an I/O error of the spool's disk: as ErrDiskFull when the
// volume is out of space (or quota), so the collector refuses like for a
// full spool, and always as pipeline.ErrStorageUnavailable.
func ioError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w: %w", ErrDiskFull, pipeline.ErrStorageUnavailable, err)
	}
	return fmt.Errorf("%w: %w", pipeline.ErrStorageUnavailable, err)
}

// appendLocked appends frame to the active segment, starting a new segment
// first if needed, and returns the group whose sync will cover it. s.mu is
// held, and released while waiting.
func (s *Spool) appendLocked(ctx context.Context, frame []byte, payloadCRC uint32, size int64, rows uint64) (*group, error) {
	rolling := false
	defer func() {
		if rolling {
			s.rollers--
		}
	}()
	for {
		if s.closed {
			return nil, fmt.Errorf("spool: write: %w", ErrClosed)
		}
		if s.unshipped+size > s.cfg.MaxBytes {
			return nil, fmt.Errorf("spool: write: %d bytes unshipped, record of %d bytes, cap %d: %w",
				s.unshipped, size, s.cfg.MaxBytes, ErrFull)
		}
		if free, ok := s.freeLocked(size); ok && free-size < s.vol.reserve {
			return nil, fmt.Errorf("spool: write: %d bytes free on the spool's volume, record of %d bytes, reserve %d: %w",
				free, size, s.vol.reserve, ErrDiskFull)
		}
		seg := s.active()
		needRoll := seg.size > seg.hdrSize() && seg.size+size > s.cfg.SegmentBytes
		if (needRoll || s.rollers > 0) && s.inflight != nil {
			// A new segment starts only between syncs; others wait with
			// the roller so it is not starved.
			if needRoll && !rolling {
				rolling = true
				s.rollers++
			}
			if err := s.waitInflightLocked(ctx); err != nil {
				return nil, fmt.Errorf("spool: write: waiting for a new segment: %w", err)
			}
			continue
		}
		if needRoll {
			if err := s.rollLocked(); err != nil {
				return nil, err
			}
			continue
		}
		break
	}

	seg := s.active()
	if s.broken != nil {
		if err := s.w.Truncate(seg.size); err != nil {
			return nil, fmt.Errorf("spool: write: repair segment %d: %w", seg.num, ioError(err))
		}
		s.broken = nil
	}
	seq, row := s.nextSeq, s.nextRow
	now := time.Now().UnixNano()
	sealFrame(frame, s.keyCRC, payloadCRC, uint32(rows), seq, row, now)
	if err := writeFull(s.w, frame, seg.size); err != nil {
		// Take back whatever part of the record reached the file.
		if terr := s.w.Truncate(seg.size); terr != nil {
			s.broken = terr
		}
		s.vol.at = time.Time{} // measure again: the volume may be full
		return nil, fmt.Errorf("spool: append to segment %d: %w", seg.num, ioError(err))
	}
	g := s.pending
	if g == nil {
		g = &group{seg: seg, startOff: seg.size, startSeq: seq, startRow: row, firstTime: now, done: make(chan struct{})}
		s.pending = g
	}
	seg.size += size
	s.nextSeq++
	s.nextRow += rows
	s.unshipped += size
	s.appended += size
	s.vol.since += size
	g.endOff, g.endSeq, g.endRow = seg.size, s.nextSeq, s.nextRow
	return g, nil
}

// rollLocked seals the active segment and starts a new one. The caller
// holds s.mu and no sync is in flight; the pending group is synced here.
func (s *Spool) rollLocked() error {
	seg := s.active()
	if s.broken != nil {
		if err := s.w.Truncate(seg.size); err != nil {
			return fmt.Errorf("spool: repair segment %d: %w", seg.num, ioError(err))
		}
		s.broken = nil
	}
	if g := s.pending; g != nil {
		s.pending = nil
		err := s.w.Sync()
		s.fsyncs.Add(1)
		if err != nil {
			s.failLocked(g, err)
			return fmt.Errorf("spool: sync segment %d: %w", seg.num, ioError(err))
		}
		s.completeLocked(g)
	}
	num := s.maxNum + 1
	f, next, err := s.createSegment(num, s.nextSeq, s.nextRow)
	if err != nil {
		s.vol.at = time.Time{}
		return fmt.Errorf("spool: %w", ioError(err))
	}
	s.maxNum = num
	if err := s.w.Close(); err != nil {
		s.log.Warn("spool: close segment", zap.Uint64("segment", seg.num), zap.Error(err))
	}
	seg.sealed = true
	seg.durable = seg.size
	s.w = f
	s.keyCRC = keyCRC(next.key)
	s.segs = append(s.segs, next)
	return nil
}

// completeLocked marks g durable and wakes its Writes and the shipper.
func (s *Spool) completeLocked(g *group) {
	g.seg.durable = g.endOff
	s.durableSeq, s.durableRow = g.endSeq, g.endRow
	s.written.Add(g.endSeq - g.startSeq)
	s.writtenRows.Add(g.endRow - g.startRow)
	if s.headTime == 0 {
		s.headTime = g.firstTime
	}
	close(g.done)
	kick(s.shipKick)
}

// failLocked fails g, whose sync failed, and the group appended after it:
// their records are truncated away so the segment ends at its last durable
// record, and their Writes get err.
func (s *Spool) failLocked(g *group, err error) {
	seg := g.seg
	if terr := s.w.Truncate(g.startOff); terr != nil {
		s.broken = terr
	}
	s.unshipped -= seg.size - g.startOff
	seg.size = g.startOff
	s.nextSeq, s.nextRow = g.startSeq, g.startRow
	s.vol.at = time.Time{}
	g.err = err
	close(g.done)
	if p := s.pending; p != nil {
		p.err = err
		close(p.done)
		s.pending = nil
	}
	s.log.Warn("spool: sync failed; the Writes it covered failed", zap.Uint64("segment", seg.num), zap.Error(err))
}

// syncLoop syncs the active segment whenever records were appended, one
// sync covering every record appended before it started.
func (s *Spool) syncLoop() {
	defer close(s.syncerDone)
	for {
		s.mu.Lock()
		if s.pending == nil {
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.syncKick
			continue
		}
		if d := s.cfg.CommitDelay; d > 0 && !s.closed {
			s.mu.Unlock()
			time.Sleep(d)
			s.mu.Lock()
			if s.pending == nil || s.inflight != nil {
				s.mu.Unlock()
				continue
			}
		}
		g := s.pending
		s.pending = nil
		s.inflight = g
		w := s.w
		s.mu.Unlock()

		start := time.Now()
		err := w.Sync()
		if s.cfg.OnSync != nil {
			s.cfg.OnSync(time.Since(start), err)
		}

		s.mu.Lock()
		s.inflight = nil
		s.fsyncs.Add(1)
		if err != nil {
			s.failLocked(g, err)
		} else {
			s.completeLocked(g)
		}
		s.mu.Unlock()
	}
}

// sealActive makes sure seg is no longer written, starting a new segment if
// it is the active one: the shipper seals a segment it found damaged to
// its end, so that what follows the damage is known (it starts the next
// segment). With onlyIfCaughtUp, seg is sealed only if it is the active
// segment, holds records, and every one of them is durable; it reports
// whether it sealed.
func (s *Spool) sealActive(ctx context.Context, seg *segment, onlyIfCaughtUp bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if onlyIfCaughtUp && (seg.sealed || s.closed || seg != s.active() || seg.size == seg.hdrSize() ||
		s.pending != nil || s.inflight != nil || seg.durable != seg.size) {
		return false, nil
	}
	for !seg.sealed {
		if s.closed {
			// No more appends: what is durable is all there is.
			seg.sealed = true
			seg.size = seg.durable
			return true, nil
		}
		if s.inflight != nil {
			if err := s.waitInflightLocked(ctx); err != nil {
				return false, err
			}
			continue
		}
		if err := s.rollLocked(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// waitInflightLocked waits, with s.mu released, until the sync in flight
// ends, or returns ctx's error; s.mu is held again either way. Called
// with s.mu held and s.inflight set.
func (s *Spool) waitInflightLocked(ctx context.Context) error {
	done := s.inflight.done
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dropShippedLocked removes from s.segs the segments whose records are all
// below shipped, except keep, and returns them for removal.
func (s *Spool) dropShippedLocked(shipped uint64, keep *segment) []*segment {
	var drop []*segment
	for len(s.segs) > 1 && s.segs[0] != keep && s.segs[1].firstSeq <= shipped {
		drop = append(drop, s.segs[0])
		s.segs = s.segs[1:]
	}
	return drop
}

func (s *Spool) removeSegments(drop []*segment) {
	if len(drop) == 0 {
		return
	}
	for _, seg := range drop {
		if err := s.fs.Remove(s.segPath(seg.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("spool: remove shipped segment", zap.Uint64("segment", seg.num), zap.Error(err))
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		s.log.Warn("spool: sync directory", zap.Error(err))
	}
	s.volumeChanged()
}
