// Package tmpfs mounts small, size-limited tmpfs volumes for tests of what
// a full disk does: writes on them fail with ENOSPC once size bytes are
// used, as on a phone's or a server's full storage.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new folder, returns the folder,
// and unmounts it when the test ends. It skips the test where mounting is
// not allowed (not root, no CAP_SYS_ADMIN, not Linux). Files still open
// when the test ends keep the volume busy: close them in a cleanup
// registered after Mount.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// Fill writes a file named name in dir until the volume is full, then
// gives back leave bytes (as whole pages on tmpfs), and returns the file's
// path. Remove the file to free the space again.
func Fill(t testing.TB, dir, name string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	var size int64
	chunk := make([]byte, 4<<10)
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	if err := f.Truncate(max(size-leave, 0)); err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	return path
}
