package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/consentry/consentry/pipeline"
)

// codecVersion is the first byte of every encoded record payload. Version
// 2 appends each row's member key (pipeline.Common.Member) to its common
// columns; version 1 payloads, written before, decode with member key 0.
// Version 3 appends each crash's breadcrumbs; version 1 and 2 payloads
// decode with none. Version 4 writes the columns the rows of a batch share
// (app, versions, device, locale, region, consent key) once, and a byte
// for each later row that shares them; versions 1–3 wrote them for every
// row.
const (
	codecVersion   = 4
	codecVersionV3 = 3
	codecVersionV2 = 2
	codecVersionV1 = 1
)

// Minimum encoded sizes, used to bound allocations by the bytes that remain:
// a slice of n elements is only allocated when the input could hold n of
// them.
const (
	// minCommonBytes: the shared-columns byte (version 4; versions 1–3
	// spent at least 12 bytes there, on string tags), a 16-byte event id,
	// seconds and nanoseconds of the time, the session key.
	minCommonBytes     = 1 + 16 + 2 + 1
	minSessionBytes    = minCommonBytes + 1 + 1 + 1
	minGestureBytes    = minCommonBytes + 1 + 1 + 1 + 1
	minCrashBytes      = minCommonBytes + 1 + 8 + 1 + 1 + 1 + 1 + 1
	minCustomBytes     = minCommonBytes + 1 + 6
	minDiagnosticBytes = minCommonBytes + 1 + 1 + 1 + 1 + 1
	minFrameBytes      = 1 + 1 + 1 + 1 + 1
	minBreadcrumbBytes = 1 + 1 + 1
	minStringBytes     = 1
)

// Values of the byte that starts a row's common columns (version 4).
const (
	sharedFollow = 0 // the shared columns follow
	sharedSame   = 1 // the shared columns are the previous row's
)

// shared are the common columns the rows of one batch share: every row of
// a request carries the same app, consent and device.
type shared struct {
	appID string
	qi    pipeline.QI
	key   string
}

func sharedOf(c *pipeline.Common) shared { return shared{appID: c.AppID, qi: c.QI, key: c.ConsentKey} }

// sharedField is one shared column of a row, named for decoding errors.
type sharedField struct {
	name string
	s    *string
}

// sharedFields returns c's shared columns in the order every codec
// version encodes them: the one list the encoder and both decoders follow.
func sharedFields(c *pipeline.Common) [12]sharedField {
	return [12]sharedField{
		{"app id", &c.AppID},
		{"app version", &c.AppVersion},
		{"app build", &c.AppBuild},
		{"sdk version", &c.SDKVersion},
		{"device class", &c.DeviceClass},
		{"device model", &c.DeviceModel},
		{"os name", &c.OSName},
		{"os version", &c.OSVersion},
		{"locale", &c.Locale},
		{"country", &c.Country},
		{"region", &c.Region},
		{"consent key", &c.ConsentKey},
	}
}

func (s *shared) apply(c *pipeline.Common) { c.AppID, c.QI, c.ConsentKey = s.appID, s.qi, s.key }

var errDecode = errors.New("spool: malformed record payload")

// encoder appends the compact binary encoding of pipeline.Rows to a buffer.
// Strings are interned per record: the first occurrence of a string is
// written in full, later ones as a reference to it, which shrinks the
// columns every row repeats (app, versions, device, locale) to a byte or
// two. An encoder is reused across records; it is not safe for concurrent
// use.
type encoder struct {
	strs map[string]uint64
	// recent remembers, by the address of their bytes, the strings last
	// written: the rows of a batch share their common columns' strings
	// (and enum names are shared by all), so most strings are found here
	// without hashing their bytes.
	recent [recentStrings]stringRef
	// prev are the shared columns of the record's last row, if hasPrev.
	prev    shared
	hasPrev bool
	buf     []byte
}

// recentStrings is the size of encoder.recent, a power of two.
const recentStrings = 64

// stringRef is a string of the record's table, by the address and length
// of its bytes: two strings with the same address and length are equal.
type stringRef struct {
	data *byte
	n    int
	idx  uint64
}

func newEncoder() *encoder {
	return &encoder{strs: make(map[string]uint64)}
}

// appendRows appends the encoding of r to dst and returns the extended
// slice.
//
// Layout (all integers little-endian; uvarint/varint as in encoding/binary):
//
//	version byte (1)
//	5 × uvarint slice tag of Sessions, Gestures, Crashes, Customs, Diagnostics
//	the rows of each table in that order
//
// A slice tag is 0 for a nil slice, else len+1, so nil and empty survive.
// A string is a uvarint tag: len<<1 for a new string whose bytes follow
// (non-empty new strings enter the record's string table), idx<<1|1 for
// the table's idx-th string. A time is varint Unix seconds then uvarint
// nanoseconds; it decodes in UTC. A float64 is its 8 IEEE-754 bytes, a
// uint64 fingerprint 8 bytes, event ids their 16 bytes, bools one byte
// (0 or 1), a breadcrumb's offset a varint, other integers uvarints. A
// crash ends with the slice tag of its breadcrumbs and, for each, its
// type, name and offset (version 3).
//
// A row's common columns (version 4): a byte, 1 when the shared columns
// (app id, app version and build, SDK, device class and model, OS name
// and version, locale, country, region, consent key) are the previous
// row's of the record, in any table, else 0 and those twelve strings;
// then the event id, the time, the session key and the member key.
func (e *encoder) appendRows(dst []byte, r *pipeline.Rows) []byte {
	clear(e.strs)
	clear(e.recent[:])
	e.prev, e.hasPrev = shared{}, false
	dst = append(dst, codecVersion)
	dst = appendSliceTag(dst, r.Sessions == nil, len(r.Sessions))
	dst = appendSliceTag(dst, r.Gestures == nil, len(r.Gestures))
	dst = appendSliceTag(dst, r.Crashes == nil, len(r.Crashes))
	dst = appendSliceTag(dst, r.Customs == nil, len(r.Customs))
	dst = appendSliceTag(dst, r.Diagnostics == nil, len(r.Diagnostics))
	for i := range r.Sessions {
		x := &r.Sessions[i]
		dst = e.appendCommon(dst, &x.Common)
		dst = e.appendString(dst, x.Phase)
		dst = binary.AppendUvarint(dst, x.DurationMs)
		dst = binary.AppendUvarint(dst, x.ForegroundMs)
	}
	for i := range r.Gestures {
		x := &r.Gestures[i]
		dst = e.appendCommon(dst, &x.Common)
		dst = e.appendString(dst, x.Type)
		dst = e.appendString(dst, x.Screen)
		dst = binary.AppendUvarint(dst, uint64(x.Count))
		dst = binary.AppendUvarint(dst, uint64(x.DurationMs))
	}
	for i := range r.Crashes {
		x := &r.Crashes[i]
		dst = e.appendCommon(dst, &x.Common)
		dst = e.appendString(dst, x.ExceptionType)
		dst = binary.LittleEndian.AppendUint64(dst, x.Fingerprint)
		dst = e.appendString(dst, x.Message)
		dst = appendSlice(dst, x.Frames, e.appendFrame)
		dst = e.appendString(dst, x.Thread)
		dst = appendBool(dst, x.Handled)
		dst = e.appendString(dst, x.AppState)
		dst = appendSlice(dst, x.Breadcrumbs, e.appendBreadcrumb)
	}
	for i := range r.Customs {
		x := &r.Customs[i]
		dst = e.appendCommon(dst, &x.Common)
		dst = e.appendString(dst, x.Name)
		dst = e.appendStrings(dst, x.StringKeys)
		dst = e.appendStrings(dst, x.StringValues)
		dst = e.appendStrings(dst, x.NumberKeys)
		dst = appendSlice(dst, x.NumberValues, func(dst []byte, v *float64) []byte {
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(*v))
		})
		dst = e.appendStrings(dst, x.BoolKeys)
		dst = appendSlice(dst, x.BoolValues, func(dst []byte, v *bool) []byte { return appendBool(dst, *v) })
	}
	for i := range r.Diagnostics {
		x := &r.Diagnostics[i]
		dst = e.appendCommon(dst, &x.Common)
		dst = e.appendString(dst, x.Kind)
		dst = binary.AppendUvarint(dst, uint64(x.DurationMs))
		dst = e.appendString(dst, x.StartType)
		dst = e.appendString(dst, x.NetworkType)
		dst = binary.AppendUvarint(dst, x.MemoryBytes)
	}
	clear(e.strs) // drop references to the caller's strings
	clear(e.recent[:])
	e.prev, e.hasPrev = shared{}, false
	return dst
}

func (e *encoder) appendCommon(dst []byte, c *pipeline.Common) []byte {
	// Equal strings that share their bytes, as a batch's rows do, compare
	// without reading them.
	if sh := sharedOf(c); e.hasPrev && sh == e.prev {
		dst = append(dst, sharedSame)
	} else {
		dst = append(dst, sharedFollow)
		for _, f := range sharedFields(c) {
			dst = e.appendString(dst, *f.s)
		}
		e.prev, e.hasPrev = sh, true
	}
	dst = append(dst, c.EventID[:]...)
	dst = appendTime(dst, c.EventTime)
	dst = binary.AppendUvarint(dst, c.SessionKey)
	return binary.AppendUvarint(dst, c.Member)
}

func (e *encoder) appendString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, 0)
	}
	data := unsafe.StringData(s)
	ref := &e.recent[(uintptr(unsafe.Pointer(data))>>4)&(recentStrings-1)]
	if ref.data == data && ref.n == len(s) {
		return binary.AppendUvarint(dst, ref.idx<<1|1)
	}
	if idx, ok := e.strs[s]; ok {
		*ref = stringRef{data: data, n: len(s), idx: idx}
		return binary.AppendUvarint(dst, idx<<1|1)
	}
	idx := uint64(len(e.strs))
	e.strs[s] = idx
	*ref = stringRef{data: data, n: len(s), idx: idx}
	dst = binary.AppendUvarint(dst, uint64(len(s))<<1)
	return append(dst, s...)
}

func (e *encoder) appendFrame(dst []byte, f *pipeline.Frame) []byte {
	dst = e.appendString(dst, f.Module)
	dst = e.appendString(dst, f.Function)
	dst = e.appendString(dst, f.File)
	dst = binary.AppendUvarint(dst, uint64(f.Line))
	return appendBool(dst, f.InApp)
}

func (e *encoder) appendBreadcrumb(dst []byte, b *pipeline.Breadcrumb) []byte {
	dst = e.appendString(dst, b.Type)
	dst = e.appendString(dst, b.Name)
	return binary.AppendVarint(dst, b.OffsetMs)
}

func (e *encoder) appendStrings(dst []byte, ss []string) []byte {
	return appendSlice(dst, ss, func(dst []byte, s *string) []byte { return e.appendString(dst, *s) })
}

// appendSlice appends the slice tag of s, then each element of s as elem
// appends it.
func appendSlice[T any](dst []byte, s []T, elem func([]byte, *T) []byte) []byte {
	dst = appendSliceTag(dst, s == nil, len(s))
	for i := range s {
		dst = elem(dst, &s[i])
	}
	return dst
}

func appendSliceTag(dst []byte, isNil bool, n int) []byte {
	if isNil {
		return append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(n)+1)
}

// appendTime appends t as varint Unix seconds then uvarint nanoseconds.
func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// decoder reads one encoded payload. It never panics: every read is bounds
// checked, and the first error sticks and turns later reads into no-ops.
type decoder struct {
	b       []byte
	off     int
	err     error
	strs    []string
	version byte
	// prev are the shared columns of the record's last row, if hasPrev
	// (version 4).
	prev    shared
	hasPrev bool
	carvers carvers
}

// carvers carve the slices rows hold (string lists, frames, breadcrumbs,
// values) from larger chunks: one allocation per chunk instead of per
// slice. They outlive a payload: the shipper decodes every record with
// one decoder, and recycles the chunks once the rows that held them are
// stored.
type carvers struct {
	lists  carver[string]
	frames carver[pipeline.Frame]
	crumbs carver[pipeline.Breadcrumb]
	floats carver[float64]
	bools  carver[bool]
}

// recycle makes every chunk carved so far available to carve again. Only
// call it when no row decoded since the last recycle is used any more.
func (c *carvers) recycle() {
	c.lists.recycle()
	c.frames.recycle()
	c.crumbs.recycle()
	c.floats.recycle()
	c.bools.recycle()
}

// carver hands out slices carved from chunks it allocates. A carved slice
// is never handed out again before recycle, so rows may keep theirs until
// then, across payloads; without recycle a chunk is freed with the last
// row that holds a part of it.
type carver[T any] struct {
	free []T
	// used are the chunks of carveChunk elements carved since the last
	// recycle; spare are such chunks, cleared, that recycle gave back.
	used, spare [][]T
}

// make returns a zeroed slice of n elements; chunk is the size of a new
// chunk if the one left is too short (at least n).
func (c *carver[T]) make(n, chunk int) []T {
	if n > len(c.free) {
		c.free = c.chunk(max(n, chunk))
	}
	s := c.free[:n:n]
	c.free = c.free[n:]
	return s
}

// chunk returns a zeroed chunk of n elements, a spare one if n is the
// usual size and one is left.
func (c *carver[T]) chunk(n int) []T {
	if n != carveChunk {
		return make([]T, n)
	}
	var s []T
	if k := len(c.spare); k > 0 {
		s, c.spare = c.spare[k-1], c.spare[:k-1]
	} else {
		s = make([]T, n)
	}
	c.used = append(c.used, s)
	return s
}

// recycle clears the chunks carved since the last recycle (so that they
// keep no strings alive, and come back zeroed) and keeps them to carve
// again.
func (c *carver[T]) recycle() {
	for _, s := range c.used {
		clear(s)
	}
	c.spare = append(c.spare, c.used...)
	clear(c.used)
	c.used = c.used[:0]
	c.free = nil
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", errDecode, what, d.off)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

// next returns the next n bytes of the input, or nil when fewer remain.
func (d *decoder) next(n uint64, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail(what)
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// fill copies the next len(dst) bytes of the input to dst.
func (d *decoder) fill(dst []byte, what string) {
	copy(dst, d.next(uint64(len(dst)), what))
}

func (d *decoder) byte1(what string) byte {
	if b := d.next(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.off += n
	return v
}

// varint reads a zig-zag encoded signed integer, as binary.Varint does:
// a uvarint whose low bit holds the sign.
func (d *decoder) varint(what string) int64 {
	ux := d.uvarint(what)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) uint32v(what string) uint32 {
	v := d.uvarint(what)
	if v > math.MaxUint32 {
		d.fail(what)
		return 0
	}
	return uint32(v)
}

func (d *decoder) fixed64(what string) uint64 {
	if b := d.next(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// time reads a time, varint Unix seconds then uvarint nanoseconds, in UTC;
// the zero time on error.
func (d *decoder) time(what string) time.Time {
	sec := d.varint(what)
	nsec := d.uvarint(what)
	if nsec >= 1e9 {
		d.fail(what + " nanoseconds")
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) bool1(what string) bool {
	switch d.byte1(what) {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(what)
		return false
	}
}

func (d *decoder) str(what string) string {
	tag := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if tag&1 == 1 {
		idx := tag >> 1
		if idx >= uint64(len(d.strs)) {
			d.fail(what)
			return ""
		}
		return d.strs[idx]
	}
	n := tag >> 1
	if n == 0 {
		return ""
	}
	b := d.next(n, what)
	if b == nil {
		return ""
	}
	s := string(b)
	d.strs = append(d.strs, s)
	return s
}

// sliceTag reads a slice tag and returns the length, whether the slice is
// nil, and whether the input can hold that many elements of at least
// minBytes each; a length the input cannot hold is an error, so no
// allocation exceeds what the record's length allows.
func (d *decoder) sliceTag(what string, minBytes int) (n int, isNil bool) {
	tag := d.uvarint(what)
	if d.err != nil {
		return 0, true
	}
	if tag == 0 {
		return 0, true
	}
	m := tag - 1
	if m > uint64(d.remaining()/minBytes) {
		d.fail(what)
		return 0, true
	}
	return int(m), false
}

func (d *decoder) strings(what string) []string {
	ss := makeSlice(d, &d.carvers.lists, what, minStringBytes)
	for i := range ss {
		ss[i] = d.str(what)
	}
	return ss
}

// makeSlice reads a slice tag that appendSlice wrote and returns a slice
// of its length, carved by c, for elements at least minBytes long; a nil
// slice reads as nil.
func makeSlice[T any](d *decoder, c *carver[T], what string, minBytes int) []T {
	n, isNil := d.sliceTag(what, minBytes)
	if isNil {
		return nil
	}
	if n == 0 {
		return []T{}
	}
	// A new chunk holds at most what the rest of the input can: the
	// allocations stay bounded by the payload's length.
	return c.make(n, min(carveChunk, d.remaining()/minBytes))
}

// carveChunk is the most elements a carver allocates at once.
const carveChunk = 256

func (d *decoder) common(c *pipeline.Common) {
	if d.version < codecVersion {
		d.commonV3(c)
		return
	}
	switch d.byte1("shared columns") {
	case sharedFollow:
		for _, f := range sharedFields(c) {
			*f.s = d.str(f.name)
		}
		d.prev, d.hasPrev = sharedOf(c), true
	case sharedSame:
		if !d.hasPrev {
			d.fail("shared columns of no previous row")
		}
	default:
		d.fail("shared columns")
	}
	d.prev.apply(c)
	d.fill(c.EventID[:], "event id")
	c.EventTime = d.time("event time")
	c.SessionKey = d.uvarint("session key")
	c.Member = d.uvarint("member key")
}

// commonV3 reads the common columns of versions 1–3: every string, for
// every row.
func (d *decoder) commonV3(c *pipeline.Common) {
	fields := sharedFields(c)
	*fields[0].s = d.str(fields[0].name) // the app id, before the event's own columns
	d.fill(c.EventID[:], "event id")
	c.EventTime = d.time("event time")
	c.SessionKey = d.uvarint("session key")
	for _, f := range fields[1:] {
		*f.s = d.str(f.name)
	}
	if d.version >= codecVersionV2 {
		c.Member = d.uvarint("member key")
	}
}

// rowCounts is the number of rows of each table an encoded payload holds,
// read from its header without decoding the rows.
func rowCounts(p []byte) (int, error) {
	d := decoder{b: p}
	if v := d.byte1("version"); d.err == nil && (v < codecVersionV1 || v > codecVersion) {
		return 0, fmt.Errorf("%w: version %d", errDecode, v)
	}
	total := 0
	for range 5 {
		n, _ := d.sliceTag("table length", minCommonBytes)
		total += n
	}
	return total, d.err
}

// decodeRows decodes payload p and appends its rows to dst. On error dst is
// left as it was. Allocations are bounded by a small multiple of len(p).
// Decoded times are in UTC; the nil-ness of every slice is restored when dst
// starts empty.
func decodeRows(p []byte, dst *pipeline.Rows) error {
	var d decoder
	return d.decodeRows(p, dst)
}

// decodeRows is decodeRows with d's string table, which it reuses from
// one payload to the next: the shipper decodes every record with one
// decoder, instead of allocating a table per record.
func (d *decoder) decodeRows(p []byte, dst *pipeline.Rows) error {
	saved := *dst
	*d = decoder{b: p, strs: d.strs[:0], carvers: d.carvers}
	defer func() {
		// Keep none of the record's strings alive.
		clear(d.strs)
		d.prev = shared{}
	}()
	if err := d.decode(dst); err != nil {
		*dst = saved
		// Rows of saved's backing arrays past its lengths may have been
		// written; they are beyond the restored lengths, so invisible.
		return err
	}
	return nil
}

func (d *decoder) decode(dst *pipeline.Rows) error {
	d.version = d.byte1("version")
	if d.err == nil && (d.version < codecVersionV1 || d.version > codecVersion) {
		return fmt.Errorf("%w: version %d", errDecode, d.version)
	}
	var tags [5]tableTag
	mins := [5]int{minSessionBytes, minGestureBytes, minCrashBytes, minCustomBytes, minDiagnosticBytes}
	budget := 0
	for i := range tags {
		tags[i].n, tags[i].isNil = d.sliceTag("table length", mins[i])
		budget += tags[i].n * mins[i]
	}
	if d.err != nil {
		return d.err
	}
	if budget > d.remaining() {
		d.fail("table lengths")
		return d.err
	}
	// Strings in the table only come from the input, so the table never
	// holds more entries than the input has bytes.
	if d.strs == nil {
		d.strs = make([]string, 0, min(d.remaining()/2, 1024))
	}

	dst.Sessions = decodeTable(d, dst.Sessions, tags[0], (*decoder).session)
	dst.Gestures = decodeTable(d, dst.Gestures, tags[1], (*decoder).gesture)
	dst.Crashes = decodeTable(d, dst.Crashes, tags[2], (*decoder).crash)
	dst.Customs = decodeTable(d, dst.Customs, tags[3], (*decoder).custom)
	dst.Diagnostics = decodeTable(d, dst.Diagnostics, tags[4], (*decoder).diagnostic)
	if d.err == nil && d.off != len(d.b) {
		d.fail("trailing bytes")
	}
	return d.err
}

// tableTag is a table's encoded length and whether it was nil.
type tableTag struct {
	n     int
	isNil bool
}

// decodeTable appends t.n rows decoded by row to dst, stopping at the
// first error (d.err).
func decodeTable[R any](d *decoder, dst []R, t tableTag, row func(*decoder, *R)) []R {
	dst = grow(dst, t.n, t.isNil)
	var zero R
	for range t.n {
		// Decode in place: a row decoded into a local escapes through
		// the row function and costs an allocation per row.
		dst = append(dst, zero)
		row(d, &dst[len(dst)-1])
		if d.err != nil {
			return dst[:len(dst)-1]
		}
	}
	return dst
}

func (d *decoder) session(x *pipeline.SessionRow) {
	d.common(&x.Common)
	x.Phase = d.str("phase")
	x.DurationMs = d.uvarint("duration")
	x.ForegroundMs = d.uvarint("foreground")
}

func (d *decoder) gesture(x *pipeline.GestureRow) {
	d.common(&x.Common)
	x.Type = d.str("type")
	x.Screen = d.str("screen")
	x.Count = d.uint32v("count")
	x.DurationMs = d.uint32v("duration")
}

func (d *decoder) crash(x *pipeline.CrashRow) {
	d.common(&x.Common)
	x.ExceptionType = d.str("exception type")
	x.Fingerprint = d.fixed64("fingerprint")
	x.Message = d.str("message")
	x.Frames = makeSlice(d, &d.carvers.frames, "frames", minFrameBytes)
	for i := range x.Frames {
		d.frame(&x.Frames[i])
	}
	x.Thread = d.str("thread")
	x.Handled = d.bool1("handled")
	x.AppState = d.str("app state")
	if d.version >= codecVersionV3 {
		x.Breadcrumbs = makeSlice(d, &d.carvers.crumbs, "breadcrumbs", minBreadcrumbBytes)
		for i := range x.Breadcrumbs {
			d.breadcrumb(&x.Breadcrumbs[i])
		}
	}
}

func (d *decoder) frame(f *pipeline.Frame) {
	f.Module = d.str("frame module")
	f.Function = d.str("frame function")
	f.File = d.str("frame file")
	f.Line = d.uint32v("frame line")
	f.InApp = d.bool1("frame in app")
}

func (d *decoder) breadcrumb(b *pipeline.Breadcrumb) {
	b.Type = d.str("breadcrumb type")
	b.Name = d.str("breadcrumb name")
	b.OffsetMs = d.varint("breadcrumb offset")
}

func (d *decoder) custom(x *pipeline.CustomRow) {
	d.common(&x.Common)
	x.Name = d.str("name")
	x.StringKeys = d.strings("string keys")
	x.StringValues = d.strings("string values")
	x.NumberKeys = d.strings("number keys")
	x.NumberValues = makeSlice(d, &d.carvers.floats, "number values", 8)
	for i := range x.NumberValues {
		x.NumberValues[i] = math.Float64frombits(d.fixed64("number value"))
	}
	x.BoolKeys = d.strings("bool keys")
	x.BoolValues = makeSlice(d, &d.carvers.bools, "bool values", 1)
	for i := range x.BoolValues {
		x.BoolValues[i] = d.bool1("bool value")
	}
}

func (d *decoder) diagnostic(x *pipeline.DiagnosticRow) {
	d.common(&x.Common)
	x.Kind = d.str("kind")
	x.DurationMs = d.uint32v("duration")
	x.StartType = d.str("start type")
	x.NetworkType = d.str("network type")
	x.MemoryBytes = d.uvarint("memory")
}

// grow makes room for n more elements in s. A nil s stays nil when the
// encoded slice was nil; an encoded empty slice becomes non-nil. Capacity
// grows geometrically (slices.Grow), so decoding many records into one
// batch copies each row a constant number of times on average, not once
// per record.
func grow[T any](s []T, n int, isNil bool) []T {
	if isNil {
		return s
	}
	if s == nil {
		return make([]T, 0, n)
	}
	return slices.Grow(s, n)
}

// Flags of the origin block that starts a v2 record payload.
const (
	originHash  = 1 << 0 // a consent hash follows
	originKey   = 1 << 1 // a consent key follows
	originFlags = originHash | originKey
)

// appendOrigin appends o as the origin block of a v2 record payload; the
// rows' encoding follows it:
//
//	flags byte (bit 0: consent hash present, bit 1: consent key present) |
//	consent hash [32] if bit 0 | uvarint length and the consent key if bit 1 |
//	received: varint Unix seconds, uvarint nanoseconds
//
// The origin lets the shipper check consent again; it never reaches the
// Inserter.
func appendOrigin(dst []byte, o pipeline.Origin) []byte {
	var flags byte
	if o.ConsentHash != ([32]byte{}) {
		flags |= originHash
	}
	if o.ConsentKey != "" {
		flags |= originKey
	}
	dst = append(dst, flags)
	if flags&originHash != 0 {
		dst = append(dst, o.ConsentHash[:]...)
	}
	if flags&originKey != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(o.ConsentKey)))
		dst = append(dst, o.ConsentKey...)
	}
	return appendTime(dst, o.Received)
}

// decodeOrigin decodes the origin block at the start of p and returns the
// rest of p, the rows' encoding. Received decodes in UTC; a zero time
// stays zero.
func decodeOrigin(p []byte) (pipeline.Origin, []byte, error) {
	d := decoder{b: p}
	var o pipeline.Origin
	flags := d.byte1("origin flags")
	if d.err == nil && flags&^originFlags != 0 {
		d.fail("origin flags")
	}
	if flags&originHash != 0 {
		d.fill(o.ConsentHash[:], "consent hash")
	}
	if flags&originKey != 0 {
		o.ConsentKey = string(d.next(d.uvarint("consent key"), "consent key"))
	}
	o.Received = d.time("received")
	if d.err != nil {
		return pipeline.Origin{}, nil, d.err
	}
	return o, p[d.off:], nil
}
