package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/consentry/consentry/internal/atomicfile"
)

// fileSystem is every file operation the spool makes, so tests can inject
// faults (a disk that fills up, a process that dies before its writes reach
// the disk). osFS is the real one.
type fileSystem interface {
	MkdirAll(dir string) error
	// ReadDir returns the names of the entries of dir.
	ReadDir(dir string) ([]string, error)
	OpenFile(name string, flag int, perm fs.FileMode) (file, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	// SyncDir makes the entries of dir (created, renamed, removed files)
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, failing if another
	// holder has it; Close releases it.
	Lock(name string) (io.Closer, error)
	// Statfs returns the bytes free for this process and the size of the
	// volume holding dir, or an error wrapping errors.ErrUnsupported where
	// the platform cannot tell.
	Statfs(dir string) (free, total int64, err error)
}

// file is an open file. Reads and writes are positional, so truncating
// never leaves a stale file position behind.
type file interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
	// Punch deallocates the n bytes at off, which then read as zeros,
	// keeping the file's size (FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE),
	// so the volume gets their blocks back. It fails with an error
	// wrapping errors.ErrUnsupported where the file system or platform
	// cannot.
	Punch(off, n int64) error
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o750) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) Statfs(dir string) (free, total int64, err error) { return statfs(dir) }

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

func (osFS) SyncDir(dir string) error { return atomicfile.SyncDir(dir) }

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s (is another spool using the directory?): %w", name, err)
	}
	return f, nil
}

type osFile struct{ f *os.File }

func (f osFile) ReadAt(p []byte, off int64) (int, error)  { return f.f.ReadAt(p, off) }
func (f osFile) WriteAt(p []byte, off int64) (int, error) { return f.f.WriteAt(p, off) }
func (f osFile) Sync() error                              { return f.f.Sync() }
func (f osFile) Truncate(size int64) error                { return f.f.Truncate(size) }
func (f osFile) Close() error                             { return f.f.Close() }
func (f osFile) Punch(off, n int64) error                 { return punchHole(f.f, off, n) }

func (f osFile) Size() (int64, error) {
	st, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// readFull reads len(p) bytes at off, reporting a short file as
// io.ErrUnexpectedEOF.
func readFull(f file, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeFull writes p at off. A short write without an error is reported as
// io.ErrShortWrite.
func writeFull(f file, p []byte, off int64) error {
	n, err := f.WriteAt(p, off)
	if err != nil {
		return err
	}
	if n != len(p) {
		return io.ErrShortWrite
	}
	return nil
}

// writeFileAtomic replaces name with data: it writes a temporary file,
// syncs it, renames it over name and syncs the directory, so a crash leaves
// either the old or the new content.
func writeFileAtomic(fsys fileSystem, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(tmp), err)
	}
	if err := writeFull(f, data, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(tmp), err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(tmp), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(tmp), err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(tmp), err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
