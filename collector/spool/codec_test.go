package spool

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/consentry/consentry/pipeline"
)

func roundTrip(t *testing.T, in *pipeline.Rows) {
	t.Helper()
	enc := newEncoder()
	b := enc.appendRows([]byte("prefix"), in)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("appendRows did not append")
	}
	b = b[len("prefix"):]
	var out pipeline.Rows
	if err := decodeRows(b, &out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !rowsEqual(in, &out) {
		t.Fatalf("round trip changed rows:\n in %+v\nout %+v", in, &out)
	}
	n, err := rowCounts(b)
	if err != nil || n != in.Len() {
		t.Fatalf("rowCounts = %d, %v; want %d", n, err, in.Len())
	}
	// The encoder is reusable and deterministic.
	if b2 := enc.appendRows(nil, in); !bytes.Equal(b, b2) {
		t.Fatal("second encoding differs")
	}
}

func TestCodecRoundTripCases(t *testing.T) {
	zeroRow := func() pipeline.Common { return pipeline.Common{} }
	tests := []struct {
		name string
		rows *pipeline.Rows
	}{
		{"nil slices", &pipeline.Rows{}},
		{"empty slices", &pipeline.Rows{Sessions: []pipeline.SessionRow{}, Gestures: []pipeline.GestureRow{},
			Crashes: []pipeline.CrashRow{}, Customs: []pipeline.CustomRow{}, Diagnostics: []pipeline.DiagnosticRow{}}},
		{"zero rows", &pipeline.Rows{
			Sessions:    []pipeline.SessionRow{{Common: zeroRow()}},
			Gestures:    []pipeline.GestureRow{{Common: zeroRow()}},
			Crashes:     []pipeline.CrashRow{{Common: zeroRow()}, {Frames: []pipeline.Frame{}}, {Frames: []pipeline.Frame{{}}}},
			Customs:     []pipeline.CustomRow{{}, {StringKeys: []string{}, StringValues: []string{""}, NumberValues: []float64{}, BoolValues: []bool{}}},
			Diagnostics: []pipeline.DiagnosticRow{{}},
		}},
		{"unix epoch", &pipeline.Rows{Sessions: []pipeline.SessionRow{{Common: pipeline.Common{EventTime: time.Unix(0, 0).UTC()}}}}},
		{"max values", &pipeline.Rows{
			Sessions: []pipeline.SessionRow{{Common: pipeline.Common{
				EventID:   [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
				EventTime: time.Unix(math.MaxInt64, 999_999_999).UTC(), SessionKey: math.MaxUint64,
			}, DurationMs: math.MaxUint64, ForegroundMs: math.MaxUint64}},
			Gestures:    []pipeline.GestureRow{{Count: math.MaxUint32, DurationMs: math.MaxUint32, Common: pipeline.Common{EventTime: time.Unix(math.MinInt64, 0).UTC()}}},
			Crashes:     []pipeline.CrashRow{{Fingerprint: math.MaxUint64, Frames: []pipeline.Frame{{Line: math.MaxUint32, InApp: true}}, Handled: true}},
			Customs:     []pipeline.CustomRow{{NumberKeys: []string{"a", "b", "c"}, NumberValues: []float64{math.MaxFloat64, math.Inf(-1), math.NaN()}, BoolKeys: []string{"x"}, BoolValues: []bool{true}}},
			Diagnostics: []pipeline.DiagnosticRow{{DurationMs: math.MaxUint32, MemoryBytes: math.MaxUint64}},
		}},
		{"unicode and repeats", &pipeline.Rows{Gestures: []pipeline.GestureRow{
			{Type: "tap", Screen: "Startseite 🏠", Common: pipeline.Common{AppID: "app", QI: pipeline.QI{Locale: "de-AT"}}},
			{Type: "tap", Screen: "Startseite 🏠", Common: pipeline.Common{AppID: "app", QI: pipeline.QI{Locale: "日本語"}}},
			{Type: "\xff\x00", Screen: "app", Common: pipeline.Common{AppID: "tap"}},
		}}},
		{"realistic", makeRows(7, 23)},
		{"member keys", &pipeline.Rows{Sessions: []pipeline.SessionRow{{Common: pipeline.Common{Member: math.MaxUint64}}, {Common: pipeline.Common{Member: 1}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.rows) })
	}
}

// TestCodecRoundTripRandom is the property: decode(encode(r)) == r for
// random Rows.
func TestCodecRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		r := randRows(rng)
		t.Run("", func(t *testing.T) {
			if i > 0 && t.Failed() {
				t.SkipNow()
			}
			roundTrip(t, r)
		})
	}
}

func TestCodecInternsStrings(t *testing.T) {
	r := makeRows(1, 100)
	b := newEncoder().appendRows(nil, r)
	if per := len(b) / r.Len(); per > 60 {
		t.Errorf("%d bytes per row; interning should keep repeated columns to a byte or two", per)
	}
}

// TestDecodeTruncated checks every prefix of a valid encoding fails cleanly
// and leaves dst unchanged.
func TestDecodeTruncated(t *testing.T) {
	b := newEncoder().appendRows(nil, randRows(rand.New(rand.NewPCG(3, 4))))
	for i := range len(b) {
		dst := makeRows(1, 3)
		want := cloneRows(t, dst)
		if err := decodeRows(b[:i], dst); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded", i, len(b))
		}
		if !rowsEqual(dst, want) {
			t.Fatalf("failed decode of %d bytes changed dst", i)
		}
	}
	// Appending to a non-empty dst keeps what was there.
	dst := makeRows(1, 3)
	if err := decodeRows(b, dst); err != nil {
		t.Fatal(err)
	}
}

// TestDecodeBoundsAllocations feeds headers claiming huge slices: decode
// must refuse them before allocating.
func TestDecodeBoundsAllocations(t *testing.T) {
	huge := func(tags ...uint64) []byte {
		b := []byte{codecVersion}
		for _, tag := range tags {
			b = binary.AppendUvarint(b, tag)
		}
		return append(b, make([]byte, 64)...)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"huge sessions", huge(math.MaxUint64, 0, 0, 0, 0)},
		{"huge crashes", huge(0, 0, 1<<40, 0, 0)},
		{"sum too large", huge(3, 3, 3, 3, 3)},
		{"bad version", []byte{99, 0, 0, 0, 0, 0}},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bound is on bytes, not on the count of allocations: the
			// error message takes a few small ones, and under -race
			// sync.Pool drops items at random, so their count varies. A
			// slice sized from a claimed length would be megabytes.
			var out pipeline.Rows
			const runs = 10
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				if err := decodeRows(tt.in, &out); err == nil {
					t.Fatal("decoded")
				}
			}
			runtime.ReadMemStats(&after)
			if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 2048 {
				t.Errorf("%d bytes allocated per decode", perRun)
			}
		})
	}
	// A frame or breadcrumb count beyond the remaining bytes is refused
	// too.
	r := &pipeline.Rows{Crashes: []pipeline.CrashRow{{Frames: []pipeline.Frame{{}}, Breadcrumbs: []pipeline.Breadcrumb{{}}}}}
	b := newEncoder().appendRows(nil, r)
	// The row ends: frames tag (1+1), the frame's five zero bytes,
	// thread, handled, app state, breadcrumbs tag (1+1), the breadcrumb's
	// three zero bytes.
	for _, i := range []int{len(b) - 13, len(b) - 4} {
		if b[i] != 2 {
			t.Fatalf("slice tag not at %d: % x", i, b)
		}
		bad := append(append(append([]byte{}, b[:i]...), binary.AppendUvarint(nil, 1<<40)...), b[i+1:]...)
		var out pipeline.Rows
		if err := decodeRows(bad, &out); err == nil {
			t.Errorf("huge count at %d decoded", i)
		}
	}
}

// decodeAllocBound is how many bytes of heap decoding may use per input
// byte: rows are larger in memory than encoded.
const decodeAllocBound = 24

func FuzzDecode(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new interesting input
	// in time quadratic in its length.
	rng := rand.New(rand.NewPCG(5, 6))
	enc := newEncoder()
	for added := 0; added < 12; {
		if b := enc.appendRows(nil, randRows(rng)); len(b) <= 300 {
			f.Add(b)
			added++
		}
	}
	f.Add(enc.appendRows(nil, makeRows(1, 5)))
	f.Add(enc.appendRows(nil, &pipeline.Rows{
		Sessions: []pipeline.SessionRow{{}}, Gestures: []pipeline.GestureRow{{}},
		Crashes: []pipeline.CrashRow{{Frames: []pipeline.Frame{{}}}},
		Customs: []pipeline.CustomRow{{StringKeys: []string{"k"}, StringValues: []string{"v"}, NumberKeys: []string{},
			NumberValues: []float64{1}, BoolKeys: []string{"b"}, BoolValues: []bool{true}}},
		Diagnostics: []pipeline.DiagnosticRow{{}},
	}))
	f.Add([]byte{})
	f.Add([]byte{codecVersion, 0, 0, 0, 0, 0})
	f.Add([]byte{codecVersion, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out pipeline.Rows
		err := decodeRows(in, &out)
		n, cerr := rowCounts(in)
		if err != nil {
			if out.Len() != 0 || out.Sessions != nil || out.Customs != nil {
				t.Fatal("failed decode left rows behind")
			}
			return
		}
		if cerr != nil || n != out.Len() {
			t.Fatalf("rowCounts = %d, %v; decoded %d rows", n, cerr, out.Len())
		}
		// Whatever decodes re-encodes to something that decodes the same.
		b := newEncoder().appendRows(nil, &out)
		var again pipeline.Rows
		if err := decodeRows(b, &again); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if !rowsEqual(&out, &again) {
			t.Fatal("re-encoding changed rows")
		}
		if len(b) > len(in)*2+16 {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(in), len(b))
		}
		if size := rowsMemory(&out); size > int64(len(in))*decodeAllocBound+1024 {
			t.Fatalf("%d input bytes decoded into %d bytes of rows", len(in), size)
		}
	})
}

// rowsMemory approximates the memory the slices of r hold (strings aside,
// which are bounded by the input's bytes).
func rowsMemory(r *pipeline.Rows) int64 {
	var size int64
	size += int64(cap(r.Sessions)) * int64(sizeOf[pipeline.SessionRow]())
	size += int64(cap(r.Gestures)) * int64(sizeOf[pipeline.GestureRow]())
	size += int64(cap(r.Crashes)) * int64(sizeOf[pipeline.CrashRow]())
	size += int64(cap(r.Customs)) * int64(sizeOf[pipeline.CustomRow]())
	size += int64(cap(r.Diagnostics)) * int64(sizeOf[pipeline.DiagnosticRow]())
	for _, c := range r.Crashes {
		size += int64(cap(c.Frames))*int64(sizeOf[pipeline.Frame]()) + int64(cap(c.Breadcrumbs))*int64(sizeOf[pipeline.Breadcrumb]())
	}
	for _, c := range r.Customs {
		size += int64(cap(c.StringKeys)+cap(c.StringValues)+cap(c.NumberKeys)+cap(c.BoolKeys))*16 +
			int64(cap(c.NumberValues))*8 + int64(cap(c.BoolValues))
	}
	return size
}

func sizeOf[T any]() uintptr {
	var x T
	return unsafe.Sizeof(x)
}

// TestCodecDecodesVersion1 checks that records spooled before member keys
// existed (codec version 1) still decode, with member key 0.
func TestCodecDecodesVersion1(t *testing.T) {
	v1 := []byte{codecVersionV1, 2, 0, 0, 0, 0} // one session, no other rows
	v1 = append(v1, 6, 'a', 'p', 'p')           // app id
	v1 = append(v1, make([]byte, 16)...)        // event id
	v1 = append(v1, 0, 0, 0)                    // time (seconds, nanoseconds), session key
	v1 = append(v1, make([]byte, 11)...)        // app version ... consent key, all empty
	v1 = append(v1, 0, 7, 0)                    // phase, duration, foreground
	var out pipeline.Rows
	if err := decodeRows(v1, &out); err != nil {
		t.Fatal(err)
	}
	if n, err := rowCounts(v1); err != nil || n != 1 {
		t.Fatalf("rowCounts = %d, %v", n, err)
	}
	if len(out.Sessions) != 1 || out.Sessions[0].AppID != "app" || out.Sessions[0].DurationMs != 7 || out.Sessions[0].Member != 0 {
		t.Fatalf("decoded %+v", out.Sessions)
	}
}
