package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/consentry/consentry/internal/atomicfile"
)

// DeleteStorage deletes everything the SDK keeps in dir: the queue, the
// consent state (including pending revocations) and the generated key,
// with their copies.
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
	for _, name := range storageNames() {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := atomicfile.RemoveTemps(dir, storageNames()...); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, l.release())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete storage: %w", err)
	}
	return nil
}

// storageNames returns the names of what the SDK keeps directly in its
// storage folder, besides its lock: the queue's folder, and the consent
// state and the generated master key, each with its copy.
func storageNames() []string {
	return []string{queueDirName, stateFileName, stateFileName + copySuffix, keyFileName, keyFileName + copySuffix}
}

// openState reads the master key and the consent state from the storage
// folder (see loadMasterKeys and openState), putting right a file of
// either that was lost or damaged from its copy, and removes what a
// crash left of an interrupted write.
func (c *Client) openState() error {
	dir := c.s.StorageDir
	if err := atomicfile.RemoveTemps(dir, storageNames()...); err != nil {
		c.logf(LevelWarn, "storage: %v", err)
	}
	keys, err := loadMasterKeys(dir, c.s.QueueKey)
	if err != nil {
		return err
	}
	o, err := openState(dir, keys)
	if err != nil {
		return err
	}
	c.store, c.st = o.store, o.st
	restored, damaged, restoreErr := o.restored, o.damaged, o.restoreErr
	if len(c.s.QueueKey) == 0 {
		r, d, err := repairMasterKey(dir, o.master)
		restored, damaged, restoreErr = append(restored, r...), damaged || d, errors.Join(restoreErr, err)
	}
	switch {
	case damaged:
		c.logf(LevelWarn, "storage: %s damaged, lost or behind its copy; restored from the copy", strings.Join(restored, ", "))
	case len(restored) > 0:
		// Storage of an SDK that kept no copies, or a crash between
		// writing a file and its copy.
		c.logf(LevelInfo, "storage: %s written from its copy", strings.Join(restored, ", "))
	}
	if restoreErr != nil {
		c.logf(LevelWarn, "storage: a lost or damaged file could not be restored; read from its copy: %v", restoreErr)
	}
	return nil
}
