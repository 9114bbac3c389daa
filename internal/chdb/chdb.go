// Package chdb runs SQL on chDB, the ClickHouse engine built as a shared
// library, inside the test process. Tests use it to check the schema's SQL
// against a current ClickHouse (26.x) without a server.
//
// The library, libchdb.so from the npm package @chdb/lib-linux-x64-gnu,
// is loaded at run time with purego, so building needs no C toolchain and
// no chDB; only Open needs the library (see Library). It is about 550 MB
// and takes a moment to load.
//
// chDB allows one active connection per process, so at most one DB can be
// open at a time; Open returns ErrBusy while another is. A DB runs one
// query at a time.
//
// Loading chDB changes the process for good: the library stays loaded
// after Close, and this package asks it not to install its own handlers
// for SIGSEGV and the other signals the Go runtime handles.
package chdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LibraryEnv names the environment variable that overrides where Library
// looks for libchdb.so.
const LibraryEnv = "CONSENTRY_CHDB_LIB"

// libraryInModule is where `scripts/deps.sh --with-test-deps` installs the
// library, relative to the module root.
const libraryInModule = ".cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so"

var (
	// ErrNotFound reports that libchdb.so is not where it was looked for.
	ErrNotFound = errors.New("chDB library not found")
	// ErrBusy reports that another DB is open in this process.
	ErrBusy = errors.New("chdb: another DB is open in this process; chDB allows one connection per process")
	// ErrClosed reports the use of a closed DB.
	ErrClosed = errors.New("chdb: DB is closed")
)

// Library returns the path of libchdb.so: $CONSENTRY_CHDB_LIB if set,
// else <module root>/.cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so,
// where the module root is the nearest directory with a go.mod at or
// above the working directory. The error wraps ErrNotFound if the file
// does not exist.
func Library() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: $%s: %w", ErrNotFound, LibraryEnv, err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	p := filepath.Join(root, filepath.FromSlash(libraryInModule))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w (and $%s is not set): %w", ErrNotFound, LibraryEnv, err)
	}
	return p, nil
}

// moduleRoot returns the nearest directory at or above the working
// directory that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Config describes a DB to open.
type Config struct {
	// Library is the path of libchdb.so; "" uses Library(). Every DB in a
	// process must use the same library.
	Library string
	// Path is the data directory, created if missing; "" uses a new
	// temporary directory that Close removes.
	Path string
	// ConfigFile, if set, is a configuration file (config.xml) the engine
	// loads, as clickhouse-local's --config-file; its users_config, an
	// absolute path, then defines the profiles, quotas and databases
	// queries run under. chDB runs every query as the user "default", so
	// a test of another user's profile names that user default.
	ConfigFile string
}

// DB is a connection to chDB. Its methods are safe for concurrent use;
// queries run one at a time.
type DB struct {
	lib     *library
	path    string
	tempDir bool
	// sem holds one token while no query runs; taking it is how a
	// method gets the connection. Unlike a sync.Mutex, waiting for it
	// can be abandoned when a context ends.
	sem    chan struct{}
	conn   *uintptr // chdb_connection *; nil once closed
	closed error    // Close's result, once Close has run
}

// Open loads the library if this process has not yet, and connects to
// chDB with cfg.Path as its data directory. It returns ErrBusy if another
// DB is open. The error wraps ErrNotFound if the library is missing.
func Open(cfg Config) (*DB, error) {
	libPath := cfg.Library
	if libPath == "" {
		p, err := Library()
		if err != nil {
			return nil, fmt.Errorf("chdb: open: %w", err)
		}
		libPath = p
	}
	lib, err := load(libPath)
	if err != nil {
		return nil, fmt.Errorf("chdb: open: %w", err)
	}
	args := []string{"clickhouse"}
	if cfg.ConfigFile != "" {
		abs, err := filepath.Abs(cfg.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("chdb: open: config file: %w", err)
		}
		args = append(args, "--config-file="+abs)
	}
	if err := acquire(); err != nil {
		return nil, err
	}
	db, err := open(lib, cfg.Path, args)
	if err != nil {
		release()
		return nil, fmt.Errorf("chdb: open: %w", err)
	}
	return db, nil
}

// open connects with args (the program name and options) and --path.
func open(lib *library, path string, args []string) (*DB, error) {
	db := &DB{lib: lib, sem: make(chan struct{}, 1)}
	if path == "" {
		dir, err := os.MkdirTemp("", "chdb-")
		if err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		path, db.tempDir = dir, true
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		path = abs
	}
	db.path = path
	conn, err := lib.connectArgs(append(args, "--path="+path))
	if err != nil {
		if db.tempDir {
			os.RemoveAll(path)
		}
		return nil, err
	}
	db.conn = conn
	db.sem <- struct{}{}
	return db, nil
}

// Path returns the DB's data directory.
func (db *DB) Path() string { return db.path }

// Query runs sql and returns its output in format, such as "CSV",
// "TabSeparated" or "JSONEachRow"; "" means "TabSeparated". The error
// includes chDB's message, such as "Code: 62. DB::Exception: Syntax
// error: ...".
//
// chDB cannot interrupt a query: if ctx ends while one runs, Query
// returns ctx's error at once, and the query finishes in the background
// before the DB runs another.
func (db *DB) Query(ctx context.Context, sql, format string) (string, error) {
	if format == "" {
		format = "TabSeparated"
	}
	out, err := db.run(ctx, sql, format)
	if err != nil {
		return "", fmt.Errorf("chdb: query: %w", err)
	}
	return out, nil
}

// Exec runs sql, such as a CREATE TABLE or an INSERT, and discards any
// output.
func (db *DB) Exec(ctx context.Context, sql string) error {
	if _, err := db.run(ctx, sql, "Null"); err != nil {
		return fmt.Errorf("chdb: exec: %w", err)
	}
	return nil
}

// Version returns the engine's version, such as "26.7.3.1".
func (db *DB) Version(ctx context.Context) (string, error) {
	out, err := db.run(ctx, "SELECT version()", "TabSeparated")
	if err != nil {
		return "", fmt.Errorf("chdb: version: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// result is what a query sends back to run.
type result struct {
	out string
	err error
}

// run takes the connection, runs sql on it from a goroutine, and waits
// for the output or for ctx to end.
func (db *DB) run(ctx context.Context, sql, format string) (string, error) {
	if strings.IndexByte(sql, 0) >= 0 || strings.IndexByte(format, 0) >= 0 {
		return "", errors.New("query or format contains a NUL byte")
	}
	select {
	case <-db.sem:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	if db.conn == nil {
		db.sem <- struct{}{}
		return "", ErrClosed
	}
	done := make(chan result, 1)
	go func() {
		defer func() { db.sem <- struct{}{} }()
		out, err := db.lib.run(*db.conn, sql, format)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// Close closes the connection, after any query still running has
// finished, and removes the data directory if Open made it. The library
// stays loaded. Close is idempotent: later calls return the first call's
// result.
func (db *DB) Close() error {
	<-db.sem
	defer func() { db.sem <- struct{}{} }()
	if db.conn == nil {
		return db.closed
	}
	db.lib.close(db.conn)
	db.conn = nil
	release()
	if db.tempDir {
		if err := os.RemoveAll(db.path); err != nil {
			db.closed = fmt.Errorf("chdb: close: %w", err)
		}
	}
	return db.closed
}
