package spool

import (
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
	segVersion    = 1
	segHeaderSize = 32
	segSuffix     = ".seg"
	segNameDigits = 20

	frameHeaderSize = 24
	// maxPayload bounds one record's payload, and so the memory one read
	// takes. A collector batch is a few MiB at most.
	maxPayload = 64 << 20

	ckMagic     = "CSPC"
	ckVersion   = 1
	ckSize      = 60
	ckName      = "checkpoint"
	ckIntent    = 1 << 0
	lockName    = "LOCK"
	readChunk   = 256 << 10
	idBytes     = 16
	keepBigRead = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record format errors: the bytes at an offset are not a valid record.
var (
	errShort     = errors.New("incomplete record")
	errBadLength = errors.New("bad record length")
	errChecksum  = errors.New("record checksum mismatch")
	errSequence  = errors.New("record out of sequence")
	errBadHeader = errors.New("bad segment header")
)

// isFormatError reports whether err says the bytes are not a valid record
// or header, as opposed to an I/O failure.
func isFormatError(err error) bool {
	return errors.Is(err, errShort) || errors.Is(err, errBadLength) ||
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

// segHeader is the first segHeaderSize bytes of a segment:
//
//	magic "CSPS" | version u16 | flags u16 | segment number u64 |
//	first record sequence u64 | reserved u32 | CRC-32C of the preceding 28 bytes
type segHeader struct {
	num      uint64
	firstSeq uint64
}

func (h segHeader) marshal() []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	binary.LittleEndian.PutUint16(b[4:], segVersion)
	binary.LittleEndian.PutUint64(b[8:], h.num)
	binary.LittleEndian.PutUint64(b[16:], h.firstSeq)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

func parseSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize {
		return segHeader{}, fmt.Errorf("%w: %d bytes", errBadHeader, len(b))
	}
	if string(b[:4]) != segMagic {
		return segHeader{}, fmt.Errorf("%w: magic", errBadHeader)
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return segHeader{}, fmt.Errorf("%w: checksum", errBadHeader)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != segVersion {
		return segHeader{}, fmt.Errorf("%w: version %d", errBadHeader, v)
	}
	return segHeader{
		num:      binary.LittleEndian.Uint64(b[8:]),
		firstSeq: binary.LittleEndian.Uint64(b[16:]),
	}, nil
}

// A record (frame) is a frameHeaderSize header and the payload:
//
//	payload length u32 | CRC-32C u32 | sequence u64 | write time (Unix ns) i64 | payload
//
// The CRC covers the payload, then the length, then sequence and time:
// CRC32C(payload ‖ bytes 0–3 ‖ bytes 8–23).

// sealFrame fills in the header of frame, whose payload starts at
// frameHeaderSize; payloadCRC is crc32.Checksum of the payload, computed
// before the sequence is known so the lock is held briefly.
func sealFrame(frame []byte, payloadCRC uint32, seq uint64, unixNano int64) {
	binary.LittleEndian.PutUint32(frame[0:], uint32(len(frame)-frameHeaderSize))
	binary.LittleEndian.PutUint64(frame[8:], seq)
	binary.LittleEndian.PutUint64(frame[16:], uint64(unixNano))
	binary.LittleEndian.PutUint32(frame[4:], frameCRC(payloadCRC, frame[:frameHeaderSize]))
}

func frameCRC(payloadCRC uint32, hdr []byte) uint32 {
	c := crc32.Update(payloadCRC, castagnoli, hdr[0:4])
	return crc32.Update(c, castagnoli, hdr[8:24])
}

// frame is a record read from a segment.
type frame struct {
	seq      uint64
	unixNano int64
	payload  []byte // valid until the reader's next call
	size     int64  // header and payload
}

// frameReader reads records from one segment file in chunks, so a scan
// holds at most one chunk and one record in memory whatever the segment's
// size.
type frameReader struct {
	f     file
	chunk []byte
	start int64 // file offset of chunk[0]
	n     int   // valid bytes in chunk
	big   []byte
}

func (r *frameReader) reset(f file) {
	r.f = f
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

// frame reads and verifies the record at off, which must be followed by
// seq, reading nothing at or beyond limit.
func (r *frameReader) frame(off, limit int64, seq uint64) (frame, error) {
	if limit-off < frameHeaderSize {
		return frame{}, fmt.Errorf("%w: %d header bytes", errShort, limit-off)
	}
	h, err := r.read(off, frameHeaderSize, limit)
	if err != nil {
		return frame{}, err
	}
	var hdr [frameHeaderSize]byte
	copy(hdr[:], h)
	n := int64(binary.LittleEndian.Uint32(hdr[0:]))
	if n == 0 {
		return frame{}, fmt.Errorf("%w: 0", errBadLength)
	}
	if n > limit-off-frameHeaderSize {
		return frame{}, fmt.Errorf("%w: %d payload bytes, %d left", errShort, n, limit-off-frameHeaderSize)
	}
	if n > maxPayload {
		return frame{}, fmt.Errorf("%w: %d", errBadLength, n)
	}
	p, err := r.read(off+frameHeaderSize, int(n), limit)
	if err != nil {
		return frame{}, err
	}
	// On a checksum or sequence error the length is returned in size, so a
	// caller can tell a torn last record (it ends the file) from damage.
	if frameCRC(crc32.Checksum(p, castagnoli), hdr[:]) != binary.LittleEndian.Uint32(hdr[4:]) {
		return frame{size: frameHeaderSize + n}, errChecksum
	}
	got := binary.LittleEndian.Uint64(hdr[8:])
	if got != seq {
		return frame{size: frameHeaderSize + n}, fmt.Errorf("%w: %d, want %d", errSequence, got, seq)
	}
	return frame{
		seq:      got,
		unixNano: int64(binary.LittleEndian.Uint64(hdr[16:])),
		payload:  p,
		size:     frameHeaderSize + n,
	}, nil
}

// checkpoint is the shipper's durable progress:
//
//	magic "CSPC" | version u16 | flags u16 (bit 0: intent) | spool id [16] |
//	shipped u64 | position segment u64 | position offset u64 |
//	intent end u64 | CRC-32C of the preceding 56 bytes
//
// Every record with a sequence below shipped is stored; pos is where the
// record with sequence shipped is (or will be) in the segments, a hint that
// saves a scan on open. With an intent, records [shipped, intentEnd) may
// have been inserted with token "<id>:<shipped>:<intentEnd>" and must be
// inserted again with that token before anything else.
type checkpoint struct {
	id        [idBytes]byte
	shipped   uint64
	pos       position
	intent    bool
	intentEnd uint64
}

// position is a byte offset in a segment.
type position struct {
	seg uint64
	off int64
}

func (c checkpoint) marshal() []byte {
	b := make([]byte, ckSize)
	copy(b, ckMagic)
	binary.LittleEndian.PutUint16(b[4:], ckVersion)
	if c.intent {
		binary.LittleEndian.PutUint16(b[6:], ckIntent)
	}
	copy(b[8:], c.id[:])
	binary.LittleEndian.PutUint64(b[24:], c.shipped)
	binary.LittleEndian.PutUint64(b[32:], c.pos.seg)
	binary.LittleEndian.PutUint64(b[40:], uint64(c.pos.off))
	binary.LittleEndian.PutUint64(b[48:], c.intentEnd)
	binary.LittleEndian.PutUint32(b[56:], crc32.Checksum(b[:56], castagnoli))
	return b
}

func parseCheckpoint(b []byte) (checkpoint, error) {
	if len(b) != ckSize || string(b[:4]) != ckMagic {
		return checkpoint{}, errors.New("not a spool checkpoint")
	}
	if crc32.Checksum(b[:56], castagnoli) != binary.LittleEndian.Uint32(b[56:]) {
		return checkpoint{}, errors.New("checkpoint checksum mismatch")
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != ckVersion {
		return checkpoint{}, fmt.Errorf("checkpoint version %d", v)
	}
	var c checkpoint
	flags := binary.LittleEndian.Uint16(b[6:])
	c.intent = flags&ckIntent != 0
	copy(c.id[:], b[8:24])
	c.shipped = binary.LittleEndian.Uint64(b[24:])
	c.pos.seg = binary.LittleEndian.Uint64(b[32:])
	c.pos.off = int64(binary.LittleEndian.Uint64(b[40:]))
	c.intentEnd = binary.LittleEndian.Uint64(b[48:])
	if c.intent && c.intentEnd <= c.shipped {
		return checkpoint{}, fmt.Errorf("checkpoint intent [%d, %d) is empty", c.shipped, c.intentEnd)
	}
	return c, nil
}
