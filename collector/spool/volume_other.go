//go:build !linux

package spool

import (
	"errors"
	"fmt"
	"os"
)

// statfs is not implemented here: the spool then relies on
// Config.MaxBytes alone.
func statfs(dir string) (free, total int64, err error) {
	return 0, 0, fmt.Errorf("statfs %s: %w", dir, errors.ErrUnsupported)
}

// punchHole is not implemented here: shipped bytes are freed when their
// segment is deleted.
func punchHole(*os.File, int64, int64) error {
	return fmt.Errorf("punch hole: %w", errors.ErrUnsupported)
}
