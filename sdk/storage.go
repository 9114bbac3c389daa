package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DeleteStorage deletes everything the SDK keeps in dir: the queue, the
// consent state (including pending revocations) and the generated key.
// Use it when the state is unreadable (ErrStateUnreadable) or the app's
// data is reset. No Client may be using dir.
func DeleteStorage(dir string) error {
	if dir == "" {
		return fmt.Errorf("delete storage: %w: no folder", ErrInvalidArgument)
	}
	l, err := lockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete storage: %w", err)
	}
	var errs []error
	for _, name := range []string{queueDirName, stateFileName, keyFileName} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete storage: %w", err)
	}
	return nil
}
