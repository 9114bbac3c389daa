package spool

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"

	"go.uber.org/zap"
)

func (s *Spool) open(ctx context.Context) error {
	ck, ckf, found, err := openCheckpoint(s.fs, s.dir)
	if err != nil {
		return err
	}
	s.ckf = ckf
	if !found {
		if _, err := rand.Read(ck.id[:]); err != nil {
			return fmt.Errorf("spool id: %w", err)
		}
	}
	s.id = ck.id
	s.initVolume()
	if err := s.loadSegments(ctx, ck); err != nil {
		return err
	}
	s.sh = &shipper{s: s, ck: ck, ctx: ctx, punchOK: true}
	if err := s.sh.seek(ck, found); err != nil {
		return err
	}
	if !found {
		if s.unshipped > 0 {
			s.log.Warn("spool: no checkpoint; shipping every segment (rows shipped before may be stored twice)",
				zap.Int64("bytes", s.unshipped))
		}
		ck = checkpoint{id: s.id, shipped: s.sh.cur.seq, row: s.sh.cur.row, pos: s.sh.pos(), trusted: true}
		if s.ckf, err = createCheckpoint(s.fs, s.dir, ck); err != nil {
			return err
		}
		s.sh.ck = ck
	}
	s.shipped = s.sh.cur.seq
	return nil
}

// loadSegments validates the segment files, repairs the last one, and opens
// the active segment (reusing the last one when it is a version 2 segment
// whose sequences the checkpoint does not pass).
func (s *Spool) loadSegments(ctx context.Context, ck checkpoint) error {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var nums []uint64
	for _, name := range names {
		if num, ok := parseSegName(name); ok {
			nums = append(nums, num)
			s.maxNum = max(s.maxNum, num)
		}
	}
	slices.Sort(nums)
	var segs []*segment
	for i, num := range nums {
		seg, err := s.loadSegment(num, i == len(nums)-1)
		if err != nil {
			return err
		}
		if seg != nil {
			if len(segs) > 0 && seg.firstSeq < segs[len(segs)-1].firstSeq {
				return fmt.Errorf("segment %d starts at record %d, before segment %d (%d): segments out of order",
					seg.num, seg.firstSeq, segs[len(segs)-1].num, segs[len(segs)-1].firstSeq)
			}
			segs = append(segs, seg)
		}
	}

	// Sequences at or below what the checkpoint mentions may have been used
	// in a token; new records must never reuse them.
	minNext := ck.shipped
	if ck.intent {
		minNext = max(minNext, ck.intentEnd)
	}
	s.nextSeq = minNext
	if ck.trusted {
		s.nextRow = ck.row
	}
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		end, err := s.scanLast(ctx, last, ck, minNext)
		if err != nil {
			return err
		}
		last.size, last.durable = end.off, end.off
		if last.version != segV1 && end.seq >= minNext {
			f, err := s.fs.OpenFile(s.segPath(last.num), os.O_RDWR, 0)
			if err != nil {
				return fmt.Errorf("open segment %d: %w", last.num, err)
			}
			s.w = f
			s.keyCRC = keyCRC(last.key)
			last.sealed = false
		}
		s.nextSeq = max(end.seq, minNext)
		s.nextRow = end.row
	}
	s.segs = segs
	if s.w == nil {
		num := s.maxNum + 1
		f, seg, err := s.createSegment(num, s.nextSeq, s.nextRow)
		if err != nil {
			return err
		}
		s.maxNum = num
		s.w = f
		s.keyCRC = keyCRC(seg.key)
		s.segs = append(s.segs, seg)
	}
	s.durableSeq, s.durableRow = s.nextSeq, s.nextRow

	drop := s.dropShippedLocked(ck.shipped, nil)
	s.removeSegments(drop)
	for _, seg := range s.segs {
		s.unshipped += seg.size - seg.hdrSize()
	}
	return nil
}

// loadSegment reads and checks the header of segment num. It returns nil
// (and removes the file) for a segment whose header is damaged: the last
// segment's header may be torn by a crash while it was created, before it
// held any record; elsewhere a bad header is corruption, and the records
// the segment held are counted as lost when the shipper finds the gap in
// sequences it leaves.
func (s *Spool) loadSegment(num uint64, last bool) (*segment, error) {
	path := s.segPath(num)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", num, err)
	}
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat segment %d: %w", num, err)
	}
	hb := make([]byte, min(size, segHeaderSizeV2))
	var h segHeader
	herr := fmt.Errorf("%w: %d bytes", errBadHeader, size)
	if size >= segHeaderSizeV1 {
		if err := readFull(f, hb, 0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("read segment %d: %w", num, err)
		}
		h, herr = parseSegHeader(hb)
		if herr == nil && h.num != num {
			herr = fmt.Errorf("%w: number %d in file %d", errBadHeader, h.num, num)
		}
	}
	_ = f.Close()
	if herr == nil {
		return &segment{num: num, version: h.version, firstSeq: h.firstSeq, firstRow: h.firstRow, key: h.key,
			size: size, durable: size, sealed: true}, nil
	}
	if last && (size < segHeaderSizeV2 || isZero(hb)) {
		s.log.Info("spool: removing segment torn while being created", zap.Uint64("segment", num), zap.Int64("bytes", size))
	} else {
		s.corruptBy.Add(uint64(max(size-segHeaderSizeV1, 0)))
		s.log.Warn("spool: corrupt segment header; skipping the segment",
			zap.Uint64("segment", num), zap.Int64("bytes", size), zap.Error(herr))
	}
	if err := s.fs.Remove(path); err != nil {
		return nil, fmt.Errorf("remove segment %d: %w", num, err)
	}
	return nil, nil
}

// scanLast reads the records of the last segment — from the checkpoint's
// position when it is in this segment (the bytes before it are shipped
// and may have been punched out), else from the start — and returns the
// cursor after the last valid record. Damage followed by a valid record is
// left for the shipper to skip (and count). Invalid bytes with no valid
// record after them are a torn write from a crash — never acknowledged —
// and are truncated away, unless they hold record minNext-1 or an earlier
// one: the checkpoint (its shipped record or intent end) shows those were
// written and acknowledged, so their damage is a loss, not a torn write.
// Those bytes are kept, and the cursor returned after them (with the
// sequence of the first damaged record when nothing tells how far they
// reach), for the shipper to skip and count like any damage.
func (s *Spool) scanLast(ctx context.Context, seg *segment, ck checkpoint, minNext uint64) (cursor, error) {
	path := s.segPath(seg.num)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return cursor{}, fmt.Errorf("open segment %d: %w", seg.num, err)
	}
	defer f.Close()
	var r frameReader
	r.reset(f, seg.header())
	c := seg.start()
	if ck.trusted && ck.pos.seg == seg.num && ck.pos.off >= c.off && ck.pos.off <= seg.size {
		c = cursor{off: ck.pos.off, seq: ck.shipped, row: ck.row, rowKnown: c.rowKnown}
	}
	var damaged *cursor // where a run of damage began
	var torn *cursor    // where the part of that run no checkpoint vouches for began
	toEnd := false
	for c.off < seg.size {
		if err := ctx.Err(); err != nil {
			return cursor{}, err
		}
		fr, d, err := r.step(ctx, c, seg.size)
		if err != nil {
			return cursor{}, fmt.Errorf("read segment %d at %d: %w", seg.num, c.off, err)
		}
		if d == nil {
			if damaged != nil {
				s.log.Warn("spool: damaged records in the last segment; the shipper will skip them",
					zap.Uint64("segment", seg.num), zap.Int64("offset", damaged.off), zap.Int64("next_valid_offset", c.off))
				damaged, torn = nil, nil
			}
			c = c.after(fr, r.v2)
			continue
		}
		if damaged == nil {
			at := c
			damaged = &at
		}
		if torn == nil && c.seq >= minNext {
			at := c
			torn = &at
		}
		if d.toEnd {
			toEnd = true
			break
		}
		c = d.next
	}
	if torn != nil {
		// The last records are damaged, with nothing valid after them,
		// and were never acknowledged as far as the checkpoint knows.
		s.log.Info("spool: truncating a torn write left by a crash",
			zap.Uint64("segment", seg.num), zap.Int64("offset", torn.off), zap.Int64("bytes", seg.size-torn.off))
		if err := truncateFile(s.fs, path, torn.off); err != nil {
			return cursor{}, fmt.Errorf("truncate segment %d: %w", seg.num, err)
		}
		return *torn, nil
	}
	if damaged != nil {
		s.log.Warn("spool: damaged records at the end of the last segment that the checkpoint shows were written; the shipper will skip them",
			zap.Uint64("segment", seg.num), zap.Int64("offset", damaged.off), zap.Int64("bytes", seg.size-damaged.off))
		if toEnd {
			// How far the damaged records reach is unknown: the segment
			// ends here, and the next one starts at minNext.
			c.off = seg.size
		}
	}
	return c, nil
}

func truncateFile(fsys fileSystem, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
