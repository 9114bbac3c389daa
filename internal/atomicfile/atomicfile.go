// Package atomicfile writes the small files a program keeps for itself
// (generated keys and passwords, state kept across restarts) whole or not
// at all: a crash or a full disk while one is written never leaves an
// empty or cut file that the next start would have to refuse. The files
// are owner-only (0600, in a folder made 0700). SyncDir, which both use,
// serves whoever renames or creates files that must survive a crash (the
// spool, the SDK's queue).
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Create writes data to a new file at path and returns data. If path
// exists (a concurrent creator got there first), Create leaves it alone
// and returns its contents instead.
func Create(path string, data []byte) ([]byte, error) {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			return b, nil
		}
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create %s: sync its folder: %w", path, err)
	}
	return data, nil
}

// Replace writes data to path, replacing the file there if any: readers
// see the old file or the new one, whole.
func Replace(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("replace %s: sync its folder: %w", path, err)
	}
	return nil
}

// RemoveTemps removes the temporary files that a Create or Replace of
// the files named names in dir, interrupted by a crash, left there
// (reading dir once). Call it only while no Create or Replace of them
// runs.
func RemoveTemps(dir string, names ...string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove temporary files in %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(e.Name(), tempPrefix(n)) }) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove temporary files in %s: %w", dir, err)
	}
	return nil
}

// tempPrefix begins the names of path's temporary files: hidden, named
// after path.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".new-"
}

// writeTemp writes data to a new temporary file beside path, synced, and
// returns its name; it removes the file if it fails.
func writeTemp(path string, data []byte) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*") // mode 0600
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// SyncDir makes the names in dir durable (a file created, renamed or
// removed there), as fsync of the folder does. Where the platform cannot
// sync a folder (the sync fails with fs.ErrInvalid, as on Windows), there
// is nothing more to do and it returns nil.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, fs.ErrInvalid) {
		return nil
	}
	return err
}
