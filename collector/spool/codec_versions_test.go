package spool

import (
	"os"
	"testing"
	"unsafe"

	"github.com/consentry/consentry/pipeline"
)

// versionRows are the rows of the fixtures of older codec versions: every
// table, a change of the shared columns between rows, a crash with
// breadcrumbs and member keys.
func versionRows() *pipeline.Rows {
	r := makeRows(7, 20)
	for i := range r.Gestures {
		r.Gestures[i].Member = uint64(1000 + i)
	}
	r.Gestures[2].DeviceModel = "Pixel 9" // the shared columns change, then change back
	r.Crashes[1].Breadcrumbs = []pipeline.Breadcrumb{{Type: "navigation", Name: "home", OffsetMs: -1200}}
	r.Customs[0].ConsentKey = "0f1e2d"
	return r
}

// TestCodecDecodesVersion3 checks that records spooled before the shared
// columns were written once per record (codec version 3, the fixture
// written by that encoder) still decode to their rows.
func TestCodecDecodesVersion3(t *testing.T) {
	b, err := os.ReadFile("testdata/codec-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != codecVersionV3 {
		t.Fatalf("fixture is version %d", b[0])
	}
	var got pipeline.Rows
	if err := decodeRows(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := versionRows(); !rowsEqual(want, &got) {
		t.Fatalf("version 3 record decoded to\n%+v\nwant\n%+v", &got, want)
	}
}

// TestCodecSharedColumns checks version 4's shared columns: a batch's rows
// write them once, a row that differs writes them again, and the rows
// after it share its columns, across tables; the record is smaller than
// version 3's for the same rows.
func TestCodecSharedColumns(t *testing.T) {
	rows := versionRows()
	b := newEncoder().appendRows(nil, rows)
	if b[0] != codecVersion {
		t.Fatalf("version %d", b[0])
	}
	var got pipeline.Rows
	if err := decodeRows(b, &got); err != nil {
		t.Fatal(err)
	}
	if !rowsEqual(rows, &got) {
		t.Fatal("round trip changed rows")
	}
	v3, err := os.ReadFile("testdata/codec-v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	// 20 rows, of which 5 write the shared columns in full (the first, and
	// a device model and a consent key that change and change back): v3
	// spent 12 one-byte string references on each of the other 15, v4 one
	// byte.
	if len(b) > len(v3)-15*10 {
		t.Errorf("version 4 record is %d bytes, version 3 %d: the shared columns are not written once", len(b), len(v3))
	}
	// Decoded rows of one batch share the strings of their shared columns.
	if g := got.Gestures; len(g) < 2 || unsafe.StringData(g[0].SDKVersion) != unsafe.StringData(g[1].SDKVersion) {
		t.Error("rows decoded from one record do not share their strings")
	}
}

// TestCodecSharedColumnsMalformed checks that a row may not refer to the
// shared columns of a row before it when there is none, and that only the
// two values of the shared-columns byte decode.
func TestCodecSharedColumnsMalformed(t *testing.T) {
	one := &pipeline.Rows{Sessions: []pipeline.SessionRow{{Common: common(1, 1), Phase: "start"}}}
	b := newEncoder().appendRows(nil, one)
	// Version, five slice tags, then the first row's shared-columns byte.
	const at = 6
	if b[at] != sharedFollow {
		t.Fatalf("byte %d is %d, want the first row's shared-columns byte", at, b[at])
	}
	for _, v := range []byte{sharedSame, 2, 0xff} {
		bad := append([]byte(nil), b...)
		bad[at] = v
		var out pipeline.Rows
		if err := decodeRows(bad, &out); err == nil {
			t.Errorf("shared-columns byte %d in the first row decoded", v)
		}
	}
}
