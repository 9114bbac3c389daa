package spool

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// statfs returns the bytes available to unprivileged writers (root may
// use the file system's reserved blocks too; the spool leaves them alone)
// and the size of the volume holding dir.
func statfs(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// punchHole deallocates [off, off+n) of f, keeping its size.
func punchHole(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("punch hole: %w: %w", errors.ErrUnsupported, err)
	}
	if err != nil {
		return fmt.Errorf("punch hole: %w", err)
	}
	return nil
}
