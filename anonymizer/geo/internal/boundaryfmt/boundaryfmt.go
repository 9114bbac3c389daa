// Package boundaryfmt encodes and decodes the compact binary boundary dataset
// that package geo embeds as admin1.bin.
//
// # File layout
//
// A file starts with a fixed 20-byte header, followed by a raw DEFLATE stream
// (RFC 1951) holding the payload:
//
//	offset  size  field
//	0       8     magic "CSGEOAD1"
//	8       2     format version, little endian (currently 1)
//	10      2     reserved, zero
//	12      4     payload length in bytes, little endian
//	16      4     CRC-32 (IEEE) of the payload, little endian
//	20      ...   DEFLATE-compressed payload
//
// The payload is a sequence of varints (encoding/binary):
//
//	uvarint  number of arcs
//	per arc:
//	  uvarint  number of points (at least 2)
//	  per point: zigzag varint X delta, zigzag varint Y delta; the first
//	           point of an arc is relative to the last point of the
//	           previous arc (or to 0,0), every other point to its
//	           predecessor
//	uvarint  number of regions
//	per region:
//	  2 bytes  ISO 3166-1 alpha-2 country code
//	  uvarint  length of the ISO 3166-2 code (0 when the region is the
//	           whole country), followed by the code bytes
//	  uvarint  number of arc references
//	  per reference: uvarint delta to the previous reference (the first is
//	           absolute); references are strictly ascending
//
// Coordinates are integers in units of 1e-4 degrees: X is the longitude in
// [-1800000, 1800000], Y the latitude in [-900000, 900000]. An arc is a
// polyline; the arcs referenced by a region together form closed curves whose
// even-odd interior is the region.
package boundaryfmt

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
)

// Magic identifies a boundary dataset file.
const Magic = "CSGEOAD1"

// Version is the format version written by [Encode] and accepted by [Decode].
const Version = 1

// Scale is the number of coordinate units per degree.
const Scale = 10_000

const (
	headerSize = 20
	// maxPayload bounds the decompressed payload so that a corrupt header
	// cannot make Decode allocate without limit.
	maxPayload = 256 << 20

	maxX = 180 * Scale
	maxY = 90 * Scale
)

var (
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
	regionPattern  = regexp.MustCompile(`^[A-Z]{2}-[A-Z0-9]{1,3}$`)
)

// Point is a vertex in units of 1e-4 degrees.
type Point struct {
	X int32 // longitude × Scale
	Y int32 // latitude × Scale
}

// Region is one (country, first-level subdivision) area.
type Region struct {
	Country string // ISO 3166-1 alpha-2, e.g. "AT"
	Code    string // ISO 3166-2 first-level code, e.g. "AT-9"; "" for the whole country
	Arcs    []int  // strictly ascending indices into Dataset.ArcStarts
}

// Dataset is the decoded content of a boundary file.
type Dataset struct {
	// Points holds the vertices of all arcs back to back.
	Points []Point
	// ArcStarts holds, for each arc, the index of its first point in Points.
	// Arc i spans Points[ArcStarts[i]:ArcStarts[i+1]] (or up to len(Points)
	// for the last arc).
	ArcStarts []int
	// Regions lists the areas, each referencing the arcs that bound it.
	Regions []Region
}

// Arc returns the points of arc i.
func (d *Dataset) Arc(i int) []Point {
	end := len(d.Points)
	if i+1 < len(d.ArcStarts) {
		end = d.ArcStarts[i+1]
	}
	return d.Points[d.ArcStarts[i]:end]
}

// Validate checks the structural invariants that Decode guarantees.
func (d *Dataset) Validate() error {
	for i, s := range d.ArcStarts {
		if s < 0 || s > len(d.Points) || (i > 0 && s < d.ArcStarts[i-1]) {
			return fmt.Errorf("arc %d: start %d out of order or range", i, s)
		}
		if n := len(d.Arc(i)); n < 2 {
			return fmt.Errorf("arc %d: %d points, want at least 2", i, n)
		}
	}
	for i, p := range d.Points {
		if p.X < -maxX || p.X > maxX || p.Y < -maxY || p.Y > maxY {
			return fmt.Errorf("point %d: (%d, %d) out of range", i, p.X, p.Y)
		}
	}
	for i, r := range d.Regions {
		if !countryPattern.MatchString(r.Country) {
			return fmt.Errorf("region %d: invalid country code %q", i, r.Country)
		}
		if r.Code != "" && (!regionPattern.MatchString(r.Code) || r.Code[:2] != r.Country) {
			return fmt.Errorf("region %d: invalid subdivision code %q for country %s", i, r.Code, r.Country)
		}
		for j, a := range r.Arcs {
			if a < 0 || a >= len(d.ArcStarts) || (j > 0 && a <= r.Arcs[j-1]) {
				return fmt.Errorf("region %d (%s %s): arc reference %d invalid or not ascending", i, r.Country, r.Code, a)
			}
		}
	}
	return nil
}

// Encode writes d to w in the boundary file format.
func Encode(w io.Writer, d *Dataset) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("boundaryfmt: encode: %w", err)
	}
	var p []byte
	p = binary.AppendUvarint(p, uint64(len(d.ArcStarts)))
	var prev Point
	for i := range d.ArcStarts {
		arc := d.Arc(i)
		p = binary.AppendUvarint(p, uint64(len(arc)))
		for _, pt := range arc {
			p = binary.AppendVarint(p, int64(pt.X)-int64(prev.X))
			p = binary.AppendVarint(p, int64(pt.Y)-int64(prev.Y))
			prev = pt
		}
	}
	p = binary.AppendUvarint(p, uint64(len(d.Regions)))
	for _, r := range d.Regions {
		p = append(p, r.Country...)
		p = binary.AppendUvarint(p, uint64(len(r.Code)))
		p = append(p, r.Code...)
		p = binary.AppendUvarint(p, uint64(len(r.Arcs)))
		last := 0
		for _, a := range r.Arcs {
			p = binary.AppendUvarint(p, uint64(a-last))
			last = a
		}
	}

	var hdr [headerSize]byte
	copy(hdr[:], Magic)
	binary.LittleEndian.PutUint16(hdr[8:], Version)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(p)))
	binary.LittleEndian.PutUint32(hdr[16:], crc32.ChecksumIEEE(p))
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("boundaryfmt: write header: %w", err)
	}
	fw, err := flate.NewWriter(w, flate.BestCompression)
	if err != nil {
		return fmt.Errorf("boundaryfmt: %w", err)
	}
	if _, err := fw.Write(p); err != nil {
		return fmt.Errorf("boundaryfmt: write payload: %w", err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("boundaryfmt: write payload: %w", err)
	}
	return nil
}

// Payload checks the header of a boundary file and returns its decompressed,
// checksum-verified payload.
func Payload(file []byte) ([]byte, error) {
	if len(file) < headerSize {
		return nil, fmt.Errorf("boundaryfmt: file too short (%d bytes)", len(file))
	}
	if string(file[:8]) != Magic {
		return nil, errors.New("boundaryfmt: bad magic, not a boundary dataset")
	}
	if v := binary.LittleEndian.Uint16(file[8:]); v != Version {
		return nil, fmt.Errorf("boundaryfmt: unsupported format version %d (want %d)", v, Version)
	}
	size := binary.LittleEndian.Uint32(file[12:])
	sum := binary.LittleEndian.Uint32(file[16:])
	if size > maxPayload {
		return nil, fmt.Errorf("boundaryfmt: payload length %d exceeds limit", size)
	}
	// bytes.Reader is an io.ByteReader, so flate reads no further than the
	// end of the compressed stream and br.Len reveals trailing data.
	br := bytes.NewReader(file[headerSize:])
	fr := flate.NewReader(br)
	defer fr.Close()
	p := make([]byte, size)
	if _, err := io.ReadFull(fr, p); err != nil {
		return nil, fmt.Errorf("boundaryfmt: decompress payload: %w", err)
	}
	if n, err := fr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, errors.New("boundaryfmt: payload longer than its declared length or corrupt")
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("boundaryfmt: %d bytes of trailing data", br.Len())
	}
	if crc32.ChecksumIEEE(p) != sum {
		return nil, errors.New("boundaryfmt: payload checksum mismatch")
	}
	return p, nil
}

// Decode parses a boundary file. A corrupt or truncated file yields an
// error, never a panic.
func Decode(file []byte) (*Dataset, error) {
	p, err := Payload(file)
	if err != nil {
		return nil, err
	}
	return parsePayload(p)
}

// parsePayload parses a decompressed payload.
func parsePayload(p []byte) (*Dataset, error) {
	r := reader{buf: p}
	d := new(Dataset)

	// Every arc needs at least 5 bytes (a count and two 2-coordinate points),
	// every point at least 2, every region at least 4: bound the counts by the
	// remaining input before allocating.
	nArcs := r.count("arc count", 5)
	d.ArcStarts = make([]int, 0, nArcs)
	var prev Point
	for i := 0; i < nArcs && r.err == nil; i++ {
		n := r.count("point count", 2)
		if n < 2 && r.err == nil {
			r.fail(fmt.Errorf("arc %d has %d points", i, n))
		}
		d.ArcStarts = append(d.ArcStarts, len(d.Points))
		for j := 0; j < n && r.err == nil; j++ {
			x := int64(prev.X) + r.varint()
			y := int64(prev.Y) + r.varint()
			if x < -maxX || x > maxX || y < -maxY || y > maxY {
				r.fail(fmt.Errorf("arc %d point %d out of range", i, j))
				break
			}
			prev = Point{X: int32(x), Y: int32(y)}
			d.Points = append(d.Points, prev)
		}
	}
	nRegions := r.count("region count", 4)
	d.Regions = make([]Region, 0, nRegions)
	for i := 0; i < nRegions && r.err == nil; i++ {
		var reg Region
		reg.Country = string(r.bytes(2))
		reg.Code = string(r.bytes(r.count("code length", 1)))
		nRefs := r.count("arc reference count", 1)
		reg.Arcs = make([]int, 0, nRefs)
		last := 0
		for j := 0; j < nRefs && r.err == nil; j++ {
			delta := r.uvarint()
			if delta > uint64(nArcs) {
				r.fail(fmt.Errorf("region %d: arc reference out of range", i))
				break
			}
			last += int(delta)
			reg.Arcs = append(reg.Arcs, last)
		}
		d.Regions = append(d.Regions, reg)
	}
	if r.err != nil {
		return nil, fmt.Errorf("boundaryfmt: decode payload: %w", r.err)
	}
	if len(r.buf) != 0 {
		return nil, fmt.Errorf("boundaryfmt: decode payload: %d trailing bytes", len(r.buf))
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("boundaryfmt: invalid dataset: %w", err)
	}
	return d, nil
}

// reader consumes a payload, remembering the first error.
type reader struct {
	buf []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }

func (r *reader) varint() int64 { return readVarint(r, binary.Varint) }

// readVarint consumes the varint at the start of r's input with decode
// (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *reader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.buf)
	if n <= 0 {
		r.fail(errors.New("truncated or malformed varint"))
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a uvarint count of items that each need at least minBytes
// more bytes of input, and rejects counts the remaining input cannot hold.
func (r *reader) count(what string, minBytes int) int {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if v > uint64(len(r.buf)/minBytes) {
		r.fail(fmt.Errorf("%s %d exceeds remaining input", what, v))
		return 0
	}
	return int(v)
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.buf) {
		r.fail(errors.New("truncated input"))
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}
