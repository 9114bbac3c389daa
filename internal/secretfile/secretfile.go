// Package secretfile creates the files that hold secrets a program
// generates for itself (keys, passwords): owner-only, and whole or not at
// all, so a crash or a full disk while one is written never leaves an
// empty or cut file that every later start would have to refuse.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Create writes data to a new file at path, mode 0600, creating its
// directory (0700) if needed, and returns data. The data goes to a
// temporary file in the same directory, synced, then linked to path, and
// the directory is synced: path appears whole or not at all. If path
// exists (a concurrent creator got there first), Create leaves it alone
// and returns its contents instead.
func Create(path string, data []byte) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
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
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create %s: sync its directory: %w", path, err)
	}
	return data, nil
}

// syncDir makes a new name in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
