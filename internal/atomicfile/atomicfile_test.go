package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/consentry/consentry/internal/tmpfs"
)

// TestCreate: a new file is owner-only in an owner-only directory and
// holds the data; an existing one is kept and read back.
func TestCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "secret")
	got, err := Create(path, []byte("first\n"))
	if err != nil || string(got) != "first\n" {
		t.Fatalf("Create = %q, %v", got, err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if got, err := Create(path, []byte("second\n")); err != nil || string(got) != "first\n" {
		t.Fatalf("Create over an existing file = %q, %v; want it kept", got, err)
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

// TestCreateRace: creators racing for one path all get the one file that
// won, whole.
func TestCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	var (
		wg  sync.WaitGroup
		got [8][]byte
	)
	for i := range got {
		wg.Go(func() {
			b, err := Create(path, bytes.Repeat([]byte{byte('a' + i)}, 4096))
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	wg.Wait()
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if !bytes.Equal(b, onDisk) {
			t.Errorf("creator %d got %.8q..., the file holds %.8q...", i, b, onDisk)
		}
	}
}

// TestCreateOnFullDisk: on a full disk Create fails with ENOSPC and
// leaves no file, so it succeeds once there is room.
func TestCreateOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	filler := tmpfs.Fill(t, dir, "filler", 0)
	path := filepath.Join(dir, "secret")
	for _, size := range []int{1, 64, 8192} {
		if _, err := Create(path, bytes.Repeat([]byte("s"), size)); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%d bytes on a full disk: %v, want ENOSPC", size, err)
		}
		if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
			t.Fatalf("files left on the full disk: %v", names)
		}
		if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) != 0 {
			t.Fatalf("temporary files left on the full disk: %v", names)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if got, err := Create(path, []byte("room")); err != nil || string(got) != "room" {
		t.Fatalf("once there is room: %q, %v", got, err)
	}
}

func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	b, err := Create(filepath.Join(dir, "password"), []byte("s3cret\n"))
	fmt.Printf("%q %v\n", b, err)
	// Output: "s3cret\n" <nil>
}

// TestReplace: Replace swaps the whole file; on a full disk it fails and
// leaves the old file whole and no temporary file.
func TestReplace(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	path := filepath.Join(dir, "state")
	for _, v := range []string{"one", "two"} {
		if err := Replace(path, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != v {
			t.Fatalf("after Replace(%q): %q, %v", v, b, err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode().Perm(), err)
	}
	tmpfs.Fill(t, dir, "filler", 0)
	if err := Replace(path, bytes.Repeat([]byte("x"), 8192)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Replace on a full disk: %v, want ENOSPC", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "two" {
		t.Fatalf("after a failed Replace: %q, %v; want the old file", b, err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}

// TestRemoveTemps: the temporary files a crash left of the named files'
// writes are removed; the files themselves, other files' temporaries and
// files that only look alike are kept.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := Replace(path, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	left, err := writeTemp(path, []byte("torn")) // as a crash before the rename leaves it
	if err != nil {
		t.Fatal(err)
	}
	others := []string{".state.copy.new-1", ".other.new-2", "state.new-3", ".state.newer"}
	for _, n := range others {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveTemps(dir, "state"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file %s is kept: %v", filepath.Base(left), err)
	}
	for _, n := range append(others, "state") {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
	if err := RemoveTemps(dir, "other", "state.copy"); err != nil {
		t.Fatal(err)
	}
	for n, gone := range map[string]bool{".state.copy.new-1": true, ".other.new-2": true, "state.new-3": false, ".state.newer": false} {
		if _, err := os.Stat(filepath.Join(dir, n)); errors.Is(err, os.ErrNotExist) != gone {
			t.Errorf("%s: removed %v, want %v", n, !gone, gone)
		}
	}
	if err := RemoveTemps(filepath.Join(dir, "missing"), "state"); err != nil {
		t.Errorf("in a folder that does not exist: %v", err)
	}
}
