package spool

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// memFile is a segment file in memory, for the scanner.
type memFile struct{ b []byte }

func (m memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m memFile) WriteAt([]byte, int64) (int, error) { return 0, io.ErrShortWrite }
func (m memFile) Sync() error                        { return nil }
func (m memFile) Truncate(int64) error               { return nil }
func (m memFile) Size() (int64, error)               { return int64(len(m.b)), nil }
func (m memFile) Punch(int64, int64) error           { return nil }
func (m memFile) Close() error                       { return nil }

var fuzzKey = [segKeyBytes]byte{1, 2, 3, 4, 5, 6, 7, 8}

// fuzzSegment returns the records of a segment with n records of 3 rows,
// in format version v.
func fuzzSegment(v uint16, n int) []byte {
	var b []byte
	for i := range n {
		rows := makeRows(i, 3)
		if v == segV1 {
			rec := newEncoder().appendRows(make([]byte, frameHeaderSizeV1), rows)
			binary.LittleEndian.PutUint32(rec[0:], uint32(len(rec)-frameHeaderSizeV1))
			binary.LittleEndian.PutUint64(rec[8:], uint64(i))
			binary.LittleEndian.PutUint64(rec[16:], uint64(time.Now().UnixNano()))
			binary.LittleEndian.PutUint32(rec[4:], frameCRCV1(crc32c(rec[frameHeaderSizeV1:]), rec))
			b = append(b, rec...)
			continue
		}
		o := pipeline.Origin{ConsentHash: consent(byte(i)), ConsentKey: "k", Received: time.Unix(1e9, 5)}
		b = append(b, encodeRecord(fuzzKey, o, rows, uint64(i), uint64(3*i))...)
	}
	return b
}

// verifies reports whether the bytes of the record at off pass every
// check, computed here independently of the reader.
func verifies(b []byte, off int64, v2 bool) bool {
	if v2 {
		h := b[off : off+frameHeaderSizeV2]
		n := int64(binary.LittleEndian.Uint32(h[4:]))
		kc := crc32.Checksum(fuzzKey[:], castagnoli)
		return string(h[:4]) == frameMagic &&
			crc32.Update(kc, castagnoli, h[:44]) == binary.LittleEndian.Uint32(h[44:]) &&
			crc32c(b[off+frameHeaderSizeV2:off+frameHeaderSizeV2+n]) == binary.LittleEndian.Uint32(h[12:])
	}
	h := b[off : off+frameHeaderSizeV1]
	n := int64(binary.LittleEndian.Uint32(h))
	return frameCRCV1(crc32c(b[off+frameHeaderSizeV1:off+frameHeaderSizeV1+n]), h) == binary.LittleEndian.Uint32(h[4:])
}

// FuzzSegmentScan reads arbitrary segment bytes the way the shipper does,
// skipping damage: it never panics or stops making progress, never returns
// a record whose checksums fail, and returns records in increasing
// sequence, each with the row count its predecessors imply.
func FuzzSegmentScan(f *testing.F) {
	for _, v := range []uint16{segV1, segV2} {
		good := fuzzSegment(v, 6)
		f.Add(byte(v), good)
		for _, at := range []int{0, 3, 20, 47, 60, len(good) / 2, len(good) - 1} {
			bad := append([]byte(nil), good...)
			bad[at] ^= 0x10
			f.Add(byte(v), bad)
		}
		f.Add(byte(v), good[:len(good)-9])
		f.Add(byte(v), append(append([]byte(nil), good[100:]...), good[:100]...))
	}
	f.Fuzz(func(t *testing.T, version byte, body []byte) {
		v := uint16(segV2)
		if version&1 == 1 {
			v = segV1
		}
		h := segHeader{version: v, num: 1, key: fuzzKey}
		seg := append(make([]byte, h.size()), body...)
		var r frameReader
		r.reset(memFile{seg}, h)
		c := cursor{off: h.size(), rowKnown: v == segV2}
		limit := int64(len(seg))
		lastSeq := int64(-1)
		for steps := 0; c.off < limit; steps++ {
			if steps > len(body)+2 {
				t.Fatalf("no progress at %d", c.off)
			}
			fr, d, err := r.step(context.Background(), c, limit)
			if err != nil {
				t.Fatalf("step at %d: %v", c.off, err)
			}
			if d == nil {
				if !verifies(seg, c.off, v == segV2) {
					t.Fatalf("record at %d returned although its checksums fail", c.off)
				}
				if int64(fr.seq) <= lastSeq || fr.seq != c.seq {
					t.Fatalf("record %d at %d after %d, cursor at %d", fr.seq, c.off, lastSeq, c.seq)
				}
				if c.rowKnown && fr.row != c.row {
					t.Fatalf("record %d at row %d, cursor at row %d", fr.seq, fr.row, c.row)
				}
				lastSeq = int64(fr.seq)
				c = c.after(fr, v == segV2)
				continue
			}
			if d.from != c.off || d.to < d.from || d.to > limit {
				t.Fatalf("damage [%d, %d) from cursor %d, limit %d", d.from, d.to, c.off, limit)
			}
			if d.toEnd {
				break
			}
			if d.next.off != d.to || d.next.seq < c.seq || (d.to == d.from && d.next == c) {
				t.Fatalf("damage at %d moves the cursor from %+v to %+v", c.off, c, d.next)
			}
			c = d.next
		}
	})
}

// FuzzDecodeOrigin decodes arbitrary bytes as a record's origin block:
// no panic, and what decodes encodes back to the same bytes.
func FuzzDecodeOrigin(f *testing.F) {
	f.Add(appendOrigin(nil, pipeline.Origin{}))
	f.Add(appendOrigin(nil, pipeline.Origin{ConsentHash: consent(7), ConsentKey: "abc", Received: time.Unix(1e9, 7)}))
	f.Add([]byte{0xff, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, rest, err := decodeOrigin(b)
		if err != nil {
			return
		}
		enc := appendOrigin(nil, o)
		if len(enc)+len(rest) != len(b) || string(enc) != string(b[:len(enc)]) {
			// Varints have one canonical form each, except that a key
			// or hash flag may be set for an empty key or a zero hash.
			o2, _, err := decodeOrigin(enc)
			if err != nil || o2 != o {
				t.Fatalf("origin %+v re-encodes to %x, decoding as %+v, %v", o, enc, o2, err)
			}
		}
	})
}

func TestOriginRoundTrip(t *testing.T) {
	for _, o := range []pipeline.Origin{
		{},
		{Received: time.Unix(0, 0).UTC()},
		{ConsentHash: consent(1), Received: time.Date(2026, 3, 1, 12, 0, 0, 123, time.UTC)},
		{ConsentHash: consent(2), ConsentKey: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Received: time.Now().UTC()},
		{ConsentKey: "only-a-key", Received: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		b := appendOrigin([]byte("x"), o)
		got, rest, err := decodeOrigin(append(b[1:], "rows"...))
		if err != nil || got != o || string(rest) != "rows" {
			t.Errorf("origin %+v decoded as %+v, rest %q, %v", o, got, rest, err)
		}
	}
}

// TestScanAcrossChunks puts the record after a damaged one at every
// offset around the end of the reader's chunk: the scan finds it.
func TestScanAcrossChunks(t *testing.T) {
	rec := encodeRecord(fuzzKey, pipeline.Origin{}, makeRows(1, 2), 1, 2)
	for _, garbage := range []string{"\x00", frameMagic} {
		for _, gap := range []int64{-frameHeaderSizeV2 - 1, -frameHeaderSizeV2, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5} {
			h := segHeader{version: segV2, num: 1, key: fuzzKey}
			// Garbage (no magic, or magic everywhere) from the header to
			// just before the end of the first chunk read, then the record.
			at := h.size() + readChunk + gap
			seg := make([]byte, at)
			for i := h.size(); i < at; i++ {
				seg[i] = garbage[i%int64(len(garbage))]
			}
			seg = append(seg, rec...)
			var r frameReader
			r.reset(memFile{seg}, h)
			_, d, err := r.step(context.Background(), cursor{off: h.size(), seq: 0, rowKnown: true}, int64(len(seg)))
			if err != nil || d == nil || d.toEnd || d.to != at || d.records != 1 || d.events != 2 {
				t.Errorf("record at chunk end %+d after %q: damage %+v, %v; want it found at %d", gap, garbage, d, err, at)
			}
		}
	}
}
