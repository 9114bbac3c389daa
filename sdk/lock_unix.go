//go:build unix

package sdk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file whose lock marks a storage folder as in use.
const lockFileName = "lock"

// dirLock is an exclusive advisory lock on a storage folder. The system
// releases it when the process ends, however it ends.
type dirLock struct{ f *os.File }

// lockDir locks dir, or fails with ErrStorageInUse.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock storage folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrStorageInUse
		}
		return nil, fmt.Errorf("lock storage folder: %w", err)
	}
	return &dirLock{f: f}, nil
}

// release unlocks the folder.
func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing releases the lock
	l.f = nil
	return err
}
