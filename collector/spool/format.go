package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// On-disk layout; doc.go describes it. All integers are little-endian.
const (
	segMagic      = "CSPS"
	segSuffix     = ".seg"
	segNameDigits = 20
	// Segment format versions. Version 1 segments (written before frame
	// format v2) are read, never written.
	segV1 = 1
	segV2 = 2

	segHeaderSizeV1 = 32
	segHeaderSizeV2 = 48
	segKeyBytes     = 8

	// frameMagic starts every v2 record, so a reader that lost its place
	// can find the next one.
	frameMagic        = "\xc5SR\x9a"
	frameHeaderSizeV1 = 24
	frameHeaderSizeV2 = 48
	// maxPayload bounds one record's payload, and so the memory one read
	// takes. A collector batch is a few MiB at most.
	maxPayload = 64 << 20

	lockName    = "LOCK"
	readChunk   = 256 << 10
	idBytes     = 16
	keepBigRead = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record format errors: the bytes at an offset are not a valid record.
var (
	errShort          = errors.New("incomplete record")
	errBadLength      = errors.New("bad record length")
	errBadMagic       = errors.New("no record magic")
	errHeaderChecksum = errors.New("record header checksum mismatch")
	errChecksum       = errors.New("record checksum mismatch")
	errSequence       = errors.New("record out of sequence")
	errBadHeader      = errors.New("bad segment header")
)

// isFormatError reports whether err says the bytes are not a valid record
// or header, as opposed to an I/O failure.
func isFormatError(err error) bool {
	return errors.Is(err, errShort) || errors.Is(err, errBadLength) ||
		errors.Is(err, errBadMagic) || errors.Is(err, errHeaderChecksum) ||
		errors.Is(err, errChecksum) || errors.Is(err, errSequence) ||
		errors.Is(err, errBadHeader) || errors.Is(err, io.ErrUnexpectedEOF)
}

func segName(num uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, num, segSuffix)
}

// parseSegName returns the number of a segment file name, or false for
// other names.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// segHeader is the first bytes of a segment. Version 2 (segHeaderSizeV2
// bytes):
//
//	magic "CSPS" | version u16 (2) | flags u16 | segment number u64 |
//	first record sequence u64 | first row u64 | frame key [8] |
//	reserved u32 | CRC-32C of the preceding 44 bytes
//
// Version 1 (segHeaderSizeV1 bytes), read only:
//
//	magic "CSPS" | version u16 (1) | flags u16 | segment number u64 |
//	first record sequence u64 | reserved u32 | CRC-32C of the preceding 28 bytes
type segHeader struct {
	version  uint16
	num      uint64
	firstSeq uint64
	// firstRow is the number of rows written to the spool before the
	// segment's first record; 0 in version 1.
	firstRow uint64
	// key seeds the CRC of every record header in the segment (version 2).
	key [segKeyBytes]byte
}

func (h segHeader) size() int64 {
	if h.version == segV1 {
		return segHeaderSizeV1
	}
	return segHeaderSizeV2
}

// marshal encodes h in version 2.
func (h segHeader) marshal() []byte {
	b := make([]byte, segHeaderSizeV2)
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[4:], segV2)
	binary.LittleEndian.PutUint64(b[8:], h.num)
	binary.LittleEndian.PutUint64(b[16:], h.firstSeq)
	binary.LittleEndian.PutUint64(b[24:], h.firstRow)
	copy(b[32:], h.key[:])
	binary.LittleEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
	return b
}

// parseSegHeader parses the header at the start of b, in either version.
func parseSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSizeV1 {
		return segHeader{}, fmt.Errorf("%w: %d bytes", errBadHeader, len(b))
	}
	if string(b[:4]) != segMagic {
		return segHeader{}, fmt.Errorf("%w: magic", errBadHeader)
	}
	h := segHeader{version: binary.LittleEndian.Uint16(b[4:]), num: binary.LittleEndian.Uint64(b[8:]),
		firstSeq: binary.LittleEndian.Uint64(b[16:])}
	switch h.version {
	case segV1:
		if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
			return segHeader{}, fmt.Errorf("%w: checksum", errBadHeader)
		}
	case segV2:
		if len(b) < segHeaderSizeV2 {
			return segHeader{}, fmt.Errorf("%w: %d bytes", errBadHeader, len(b))
		}
		if crc32.Checksum(b[:44], castagnoli) != binary.LittleEndian.Uint32(b[44:]) {
			return segHeader{}, fmt.Errorf("%w: checksum", errBadHeader)
		}
		h.firstRow = binary.LittleEndian.Uint64(b[24:])
		copy(h.key[:], b[32:40])
	default:
		// A newer version, or a damaged version field the checksum
		// would catch; either way the records cannot be read.
		return segHeader{}, fmt.Errorf("%w: version %d", errBadHeader, h.version)
	}
	return h, nil
}

// A version 2 record (frame) is a frameHeaderSizeV2 header and the payload:
//
//	magic [4] | payload length u32 | rows u32 | payload CRC-32C u32 |
//	sequence u64 | first row u64 | write time (Unix ns) i64 |
//	reserved u32 | header CRC u32
//
// The header CRC is CRC-32C over the segment's frame key and the preceding
// 44 header bytes, so a damaged payload leaves the header trustworthy (the
// record's extent and row count are known), and bytes that merely look
// like a record — inside a payload, or left by another segment — do not
// verify. The payload is the batch's origin and its rows (codec.go).
//
// A version 1 record, read only, is a frameHeaderSizeV1 header and the
// payload (the rows alone):
//
//	payload length u32 | CRC-32C u32 | sequence u64 | write time (Unix ns) i64
//
// whose CRC covers the payload, then bytes 0–3, then bytes 8–23.

// sealFrame fills in the v2 header of frame, whose payload starts at
// frameHeaderSizeV2; payloadCRC is the payload's CRC-32C, computed before
// the sequence is known so the append lock is held briefly.
func sealFrame(frame []byte, keyCRC, payloadCRC uint32, rows uint32, seq, firstRow uint64, unixNano int64) {
	copy(frame, frameMagic)
	binary.LittleEndian.PutUint32(frame[4:], uint32(len(frame)-frameHeaderSizeV2))
	binary.LittleEndian.PutUint32(frame[8:], rows)
	binary.LittleEndian.PutUint32(frame[12:], payloadCRC)
	binary.LittleEndian.PutUint64(frame[16:], seq)
	binary.LittleEndian.PutUint64(frame[24:], firstRow)
	binary.LittleEndian.PutUint64(frame[32:], uint64(unixNano))
	binary.LittleEndian.PutUint32(frame[40:], 0)
	binary.LittleEndian.PutUint32(frame[44:], crc32.Update(keyCRC, castagnoli, frame[:44]))
}

// keyCRC is the CRC state record header checksums of a segment start from.
func keyCRC(key [segKeyBytes]byte) uint32 { return crc32.Checksum(key[:], castagnoli) }

func frameCRCV1(payloadCRC uint32, hdr []byte) uint32 {
	c := crc32.Update(payloadCRC, castagnoli, hdr[0:4])
	return crc32.Update(c, castagnoli, hdr[8:24])
}

// frame is a record read from a segment.
type frame struct {
	seq uint64
	// row is the number of rows written before the record (v2; 0 in v1).
	row uint64
	// rows is the record's row count (v2; in v1 read from the payload,
	// and 0 if it does not decode).
	rows     uint64
	unixNano int64
	payload  []byte // valid until the reader's next call
	size     int64  // header and payload
	// hdrOK: the header verified (v2), so seq, row, rows and size can be
	// trusted even when the payload is damaged.
	hdrOK bool
}

// cursor is where a reader expects the record with sequence seq, which
// follows row rows written before it (rowKnown is false in v1 segments).
type cursor struct {
	off      int64
	seq      uint64
	row      uint64
	rowKnown bool
}

// after returns the cursor past fr, which was read at c.
func (c cursor) after(fr frame, v2 bool) cursor {
	return cursor{off: c.off + fr.size, seq: fr.seq + 1, row: fr.row + fr.rows, rowKnown: v2}
}

// damage is a run of bytes where the record a cursor expected is not
// valid.
type damage struct {
	// from and to are the damaged bytes [from, to).
	from, to int64
	// toEnd: no valid record follows before the read limit, so the damage
	// runs to it (or, at the end of a segment left by a crash, the bytes
	// are a torn write), and next, records and events are unknown.
	toEnd bool
	// next is the cursor at to, where a valid record was found.
	next cursor
	// records and events are what the damaged bytes held: the sequence
	// and row gap to the record at to. eventsKnown is false in v1
	// segments.
	records, events uint64
	eventsKnown     bool
	// cause is why the record at from was rejected.
	cause error
}

// frameReader reads records from one segment file in chunks, so a scan
// holds at most one chunk and one record in memory whatever the segment's
// size.
type frameReader struct {
	f      file
	v2     bool
	keyCRC uint32
	hdr    int64 // record header size
	chunk  []byte
	start  int64 // file offset of chunk[0]
	n      int   // valid bytes in chunk
	big    []byte
}

func (r *frameReader) reset(f file, h segHeader) {
	r.f = f
	r.v2 = h.version != segV1
	r.keyCRC = keyCRC(h.key)
	r.hdr = frameHeaderSizeV1
	if r.v2 {
		r.hdr = frameHeaderSizeV2
	}
	r.start, r.n = 0, 0
}

// read returns the n bytes at off; [off, off+n) must lie below limit, and
// no cached byte is ever at or beyond the limit of the call that read it,
// so bytes a writer appends later are never served stale. The slice is
// valid until the next call.
func (r *frameReader) read(off int64, n int, limit int64) ([]byte, error) {
	if off >= r.start && off+int64(n) <= r.start+int64(r.n) {
		i := off - r.start
		return r.chunk[i : i+int64(n)], nil
	}
	if n > readChunk {
		b := r.big
		if cap(b) < n {
			b = make([]byte, n)
			if n <= keepBigRead {
				r.big = b
			}
		}
		b = b[:n]
		if err := readFull(r.f, b, off); err != nil {
			return nil, err
		}
		return b, nil
	}
	if r.chunk == nil {
		r.chunk = make([]byte, readChunk)
	}
	m := min(int64(readChunk), limit-off)
	r.n = 0
	if err := readFull(r.f, r.chunk[:m], off); err != nil {
		return nil, err
	}
	r.start, r.n = off, int(m)
	return r.chunk[:n], nil
}

// window returns the bytes from off to the end of the cached chunk, or to
// limit, reading a chunk at off if off is not cached or less than a record
// header of the chunk is left before limit (so a header across the end of
// the chunk is seen whole). A scan that calls it at increasing offsets
// rereads only when it leaves the chunk.
func (r *frameReader) window(off, limit int64) ([]byte, error) {
	end := min(r.start+int64(r.n), limit)
	if off >= r.start && off < end && (off+r.hdr <= end || end == limit) {
		return r.chunk[off-r.start : end-r.start], nil
	}
	return r.read(off, int(min(int64(readChunk), limit-off)), limit)
}

// frame reads and verifies the record at off, reading nothing at or beyond
// limit. It does not check the sequence. On a format error the returned
// frame has hdrOK set when the header alone verified (v2).
func (r *frameReader) frame(off, limit int64) (frame, error) {
	if limit-off < r.hdr {
		return frame{}, fmt.Errorf("%w: %d header bytes", errShort, limit-off)
	}
	h, err := r.read(off, int(r.hdr), limit)
	if err != nil {
		return frame{}, err
	}
	if !r.v2 {
		return r.frameV1(off, limit, h)
	}
	if string(h[:4]) != frameMagic {
		return frame{}, errBadMagic
	}
	if crc32.Update(r.keyCRC, castagnoli, h[:44]) != binary.LittleEndian.Uint32(h[44:]) {
		return frame{}, errHeaderChecksum
	}
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	fr := frame{
		rows:     uint64(binary.LittleEndian.Uint32(h[8:])),
		seq:      binary.LittleEndian.Uint64(h[16:]),
		row:      binary.LittleEndian.Uint64(h[24:]),
		unixNano: int64(binary.LittleEndian.Uint64(h[32:])),
		size:     r.hdr + n,
		hdrOK:    true,
	}
	want := binary.LittleEndian.Uint32(h[12:])
	if n == 0 || n > maxPayload {
		// Never written; the header verified, but cannot be used.
		return frame{}, fmt.Errorf("%w: %d", errBadLength, n)
	}
	if n > limit-off-r.hdr {
		return fr, fmt.Errorf("%w: %d payload bytes, %d left", errShort, n, limit-off-r.hdr)
	}
	p, err := r.read(off+r.hdr, int(n), limit)
	if err != nil {
		return frame{}, err
	}
	if crc32.Checksum(p, castagnoli) != want {
		return fr, errChecksum
	}
	fr.payload = p
	return fr, nil
}

func (r *frameReader) frameV1(off, limit int64, h []byte) (frame, error) {
	var hdr [frameHeaderSizeV1]byte
	copy(hdr[:], h)
	n := int64(binary.LittleEndian.Uint32(hdr[0:]))
	if n == 0 {
		return frame{}, fmt.Errorf("%w: 0", errBadLength)
	}
	if n > limit-off-r.hdr {
		return frame{}, fmt.Errorf("%w: %d payload bytes, %d left", errShort, n, limit-off-r.hdr)
	}
	if n > maxPayload {
		return frame{}, fmt.Errorf("%w: %d", errBadLength, n)
	}
	p, err := r.read(off+r.hdr, int(n), limit)
	if err != nil {
		return frame{}, err
	}
	if frameCRCV1(crc32.Checksum(p, castagnoli), hdr[:]) != binary.LittleEndian.Uint32(hdr[4:]) {
		return frame{}, errChecksum
	}
	rows, _ := rowCounts(p)
	return frame{
		seq:      binary.LittleEndian.Uint64(hdr[8:]),
		rows:     uint64(rows),
		unixNano: int64(binary.LittleEndian.Uint64(hdr[16:])),
		payload:  p,
		size:     r.hdr + n,
	}, nil
}

// step reads the record c expects, reading nothing at or beyond limit. If
// it is there and valid, step returns it. Otherwise it returns the damage:
//
//   - a record whose header verified but whose payload did not (a flipped
//     bit in the payload) is skipped exactly: one record, the rows its
//     header counts;
//   - otherwise the bytes are scanned for the next record that verifies
//     (magic, header CRC, payload CRC) and plausibly follows c (its
//     sequence and row are not below c's, and no more records are missing
//     than the bytes could have held); what lies between is lost, and the
//     gap in sequences and rows says exactly how many records and events;
//   - if none is found below limit, the damage runs to it (toEnd).
//
// A nil frame error with a nil damage never happens; err is an I/O error.
func (r *frameReader) step(ctx context.Context, c cursor, limit int64) (frame, *damage, error) {
	fr, err := r.frame(c.off, limit)
	if err == nil && fr.seq == c.seq && (!r.v2 || !c.rowKnown || fr.row == c.row) {
		return fr, nil, nil
	}
	if err != nil && !isFormatError(err) {
		return frame{}, nil, err
	}
	d := &damage{from: c.off, cause: err}
	switch {
	case err == nil && fr.seq >= c.seq:
		// A valid record where one was expected, but a later one (or
		// one whose row does not match the cursor's count): the records
		// before it are missing, not these bytes.
		d.cause = fmt.Errorf("%w: record %d (row %d), want %d (row %d)", errSequence, fr.seq, fr.row, c.seq, c.row)
		d.to = c.off
		d.next = cursor{off: c.off, seq: fr.seq, row: fr.row, rowKnown: r.v2}
		d.records = fr.seq - c.seq
		if r.v2 && c.rowKnown && fr.seq > c.seq && fr.row >= c.row {
			d.events, d.eventsKnown = fr.row-c.row, true
		}
		return frame{}, d, nil
	case fr.hdrOK && fr.seq == c.seq && fr.size <= limit-c.off:
		// Only the payload is damaged: the header says how far the
		// record reaches and how many rows it held.
		d.to = c.off + fr.size
		d.next = cursor{off: d.to, seq: fr.seq + 1, row: fr.row + fr.rows, rowKnown: true}
		d.records, d.events, d.eventsKnown = 1, fr.rows, true
		return frame{}, d, nil
	}
	scanFrom := c.off + 1
	if (err == nil || fr.hdrOK) && fr.size <= limit-c.off {
		// A stale record, or one whose header verified: no record
		// starts inside it.
		scanFrom = c.off + fr.size
	}
	p, found, err := r.scan(ctx, c, scanFrom, limit)
	if err != nil {
		return frame{}, nil, err
	}
	if found == nil {
		d.to, d.toEnd = limit, true
		return frame{}, d, nil
	}
	d.to = p
	d.next = cursor{off: p, seq: found.seq, row: found.row, rowKnown: r.v2}
	d.records = found.seq - c.seq
	if r.v2 && c.rowKnown {
		d.events, d.eventsKnown = found.row-c.row, true
	}
	return frame{}, d, nil
}

// minFrame is the smallest record a segment can hold, which bounds how
// many records some bytes could have held.
func (r *frameReader) minFrame() int64 { return r.hdr + 1 }

// plausible reports whether fr, found at off while looking for the record
// c expects, can follow c.
func (r *frameReader) plausible(c cursor, off int64, fr frame) bool {
	if fr.seq < c.seq || fr.seq-c.seq > uint64((off-c.off)/r.minFrame())+1 {
		return false
	}
	return !r.v2 || !c.rowKnown || fr.row >= c.row
}

// scan returns the offset and frame of the first valid record at or after
// from, below limit, that plausibly follows c, or nil.
func (r *frameReader) scan(ctx context.Context, c cursor, from, limit int64) (int64, *frame, error) {
	next := int64(1 << 20)
	for p := from; p+r.hdr <= limit; p++ {
		if p >= next {
			if err := ctx.Err(); err != nil {
				return 0, nil, err
			}
			next = p + 1<<20
		}
		if r.v2 {
			// Jump to the next magic in the chunk.
			b, err := r.window(p, limit)
			if err != nil {
				return 0, nil, err
			}
			i := bytes.Index(b, []byte(frameMagic))
			if i < 0 {
				p += int64(max(len(b)-len(frameMagic), 0)) // the loop adds 1
				continue
			}
			p += int64(i)
			if p+r.hdr > limit {
				return 0, nil, nil
			}
		} else {
			h, err := r.read(p, int(r.hdr), limit)
			if err != nil {
				return 0, nil, err
			}
			if seq := binary.LittleEndian.Uint64(h[8:]); !r.plausible(c, p, frame{seq: seq}) {
				continue
			}
		}
		fr, err := r.frame(p, limit)
		if err != nil {
			if !isFormatError(err) {
				return 0, nil, err
			}
			continue
		}
		if r.plausible(c, p, fr) {
			return p, &fr, nil
		}
	}
	return 0, nil, nil
}
