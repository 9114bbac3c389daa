package deobfuscate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSource serves files by Key and counts the reads.
type fakeSource struct {
	list  []Stored
	files map[Key][]byte
	reads atomic.Int64
	fail  error
}

func (f *fakeSource) ListMappings(context.Context) ([]Stored, error) { return f.list, f.fail }

func (f *fakeSource) ReadMapping(_ context.Context, s Stored) ([]byte, error) {
	f.reads.Add(1)
	return f.files[s.Key], nil
}

func testdataFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	v412 := Key{"com.example.notes", "4.12.0", ""}
	v413 := Key{"com.example.notes", "4.13.0", "4130001"}
	bad := Key{"com.example.notes", "4.14.0", ""}
	src := &fakeSource{
		list: []Stored{{Key: v412, UploadedAt: t0}, {Key: v413, UploadedAt: t0.Add(time.Hour)}, {Key: bad, UploadedAt: t0.Add(2 * time.Hour)}},
		files: map[Key][]byte{
			v412: testdataFile(t, "notes-4.12.0-mapping.txt"),
			v413: testdataFile(t, "notes-4.13.0-mapping.txt"),
			bad:  []byte("not a mapping\n"),
		},
	}
	c, err := NewCache(CacheConfig{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if c.Mapping("com.example.notes", "4.12.0", "") != nil {
		t.Fatal("a mapping before Refresh")
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version, build string
		want           bool
	}{
		{"4.12.0", "", true},
		{"4.12.0", "4120003", true}, // a version's mapping is every build's
		{"4.13.0", "4130001", true},
		{"4.13.0", "4130002", false}, // a build's mapping is that build's only
		{"4.14.0", "", false},        // did not parse
		{"4.11.0", "", false},
	} {
		if got := c.Mapping("com.example.notes", tc.version, tc.build) != nil; got != tc.want {
			t.Errorf("%s (%s): mapping %v, want %v", tc.version, tc.build, got, tc.want)
		}
	}
	// A refresh reads only new uploads; a file that did not parse is not
	// read again.
	reads := src.reads.Load()
	if err := c.Refresh(ctx); err != nil || src.reads.Load() != reads {
		t.Errorf("second refresh read %d files: %v", src.reads.Load()-reads, err)
	}
	// A new upload of a build replaces its mapping.
	src.list[0].UploadedAt = t0.Add(3 * time.Hour)
	src.files[v412] = testdataFile(t, "notes-4.13.0-mapping.txt")
	old := c.Mapping("com.example.notes", "4.12.0", "")
	if err := c.Refresh(ctx); err != nil || c.Mapping("com.example.notes", "4.12.0", "") == old {
		t.Errorf("re-upload not loaded: %v", err)
	}
	// A failing source keeps what is loaded.
	src.fail = errors.New("clickhouse down")
	if err := c.Refresh(ctx); err == nil || c.Len() != 2 {
		t.Errorf("refresh with a failing source: %v, %d loaded", err, c.Len())
	}
}

// TestCacheBound: the latest uploads are loaded first, and older ones
// not at all once one does not fit.
func TestCacheBound(t *testing.T) {
	file := testdataFile(t, "notes-4.12.0-mapping.txt")
	m, err := Parse(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	src := &fakeSource{files: make(map[Key][]byte)}
	for i, v := range []string{"1.0", "2.0", "3.0"} {
		k := Key{"app", v, ""}
		src.list = append(src.list, Stored{Key: k, UploadedAt: t0.Add(time.Duration(i) * time.Hour)})
		src.files[k] = file
	}
	c, err := NewCache(CacheConfig{Source: src, MaxBytes: 2*m.Size() + 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 || c.Mapping("app", "1.0", "") != nil || c.Mapping("app", "3.0", "") == nil || c.Mapping("app", "2.0", "") == nil {
		t.Errorf("%d loaded; want the two latest", c.Len())
	}
	if src.reads.Load() != 3 {
		t.Errorf("%d files read, want 3 (the third to learn it does not fit)", src.reads.Load())
	}
	src.reads.Store(0)
	if err := c.Refresh(context.Background()); err != nil || src.reads.Load() != 1 {
		t.Errorf("second refresh read %d files, want the one that did not fit: %v", src.reads.Load(), err)
	}
}
