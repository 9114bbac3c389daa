//go:build linux

package chdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// library holds libchdb's functions, bound with purego. The prototypes
// follow chdb.h; C int is int32 and size_t is uintptr. Handles the Go
// code never looks inside are unsafe.Pointer; a chdb_connection* is a
// *uintptr because Query needs the chdb_connection it points to.
type library struct {
	path string

	setSignalHandlers  func(enabled int32)                                     // void chdb_set_signal_handlers_enabled(int)
	connect            func(argc int32, argv **byte) *uintptr                  // chdb_connection * chdb_connect(int, char **)
	closeConn          func(conn *uintptr)                                     // void chdb_close_conn(chdb_connection *)
	query              func(conn uintptr, query, format string) unsafe.Pointer // chdb_result * chdb_query(chdb_connection, const char *, const char *)
	resultBuffer       func(res unsafe.Pointer) *byte                          // char * chdb_result_buffer(chdb_result *)
	resultLength       func(res unsafe.Pointer) uintptr                        // size_t chdb_result_length(chdb_result *)
	resultError        func(res unsafe.Pointer) *byte                          // const char * chdb_result_error(chdb_result *)
	destroyQueryResult func(res unsafe.Pointer)                                // void chdb_destroy_query_result(chdb_result *)
}

// process is the state this package keeps for the whole process. It has
// to be process-wide because what it describes is: a shared library
// cannot be unloaded and loaded again (and two different libchdb builds
// in one process would clash over their global symbols), chDB's engine
// is a process-wide singleton that accepts one active connection, and
// signal handlers belong to the process. Everything else lives in DB.
var process struct {
	mu  sync.Mutex
	lib *library // the loaded library; never unloaded
	db  bool     // a DB is open
}

// load returns the library at path, loading it on first use. A load that
// fails is tried again on the next call; once a library has loaded, a
// different path is an error.
func load(path string) (*library, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	process.mu.Lock()
	defer process.mu.Unlock()
	if l := process.lib; l != nil {
		if l.path != abs {
			return nil, fmt.Errorf("load %s: this process already loaded chDB from %s, and it cannot load a second copy", abs, l.path)
		}
		return l, nil
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// RTLD_GLOBAL as chDB's own bindings do: parts of the engine resolve
	// their symbols through the global namespace.
	h, err := purego.Dlopen(abs, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", abs, err)
	}
	l := &library{path: abs}
	for _, f := range []struct {
		fptr any
		name string
	}{
		{&l.connect, "chdb_connect"},
		{&l.closeConn, "chdb_close_conn"},
		{&l.query, "chdb_query"},
		{&l.resultBuffer, "chdb_result_buffer"},
		{&l.resultLength, "chdb_result_length"},
		{&l.resultError, "chdb_result_error"},
		{&l.destroyQueryResult, "chdb_destroy_query_result"},
	} {
		sym, err := purego.Dlsym(h, f.name)
		if err != nil {
			return nil, fmt.Errorf("load %s: %s is not a chDB library with the v2 C API: %w", abs, abs, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	if sym, err := purego.Dlsym(h, "chdb_set_signal_handlers_enabled"); err == nil {
		purego.RegisterFunc(&l.setSignalHandlers, sym)
		// Stop chDB from installing its own handlers for SIGSEGV, SIGBUS
		// and the like on the first connect: the Go runtime needs its
		// handlers for nil checks, panics and preemption. Without this, a
		// nil dereference anywhere in the process after Open kills it
		// with SIGSEGV instead of panicking (TestGoSignalsSurvive). chDB's
		// own Go bindings report that some versions of this call reset
		// those signals to SIG_DFL, hence the guard.
		restore := saveSignalHandlers()
		l.setSignalHandlers(0)
		restore()
	}
	process.lib = l
	return l, nil
}

// acquire claims the process's one chDB connection.
func acquire() error {
	process.mu.Lock()
	defer process.mu.Unlock()
	if process.db {
		return ErrBusy
	}
	process.db = true
	return nil
}

// release gives the connection back.
func release() {
	process.mu.Lock()
	defer process.mu.Unlock()
	process.db = false
}

// guardedSignals are the signals the Go runtime cannot do without a
// handler for: faults (stack growth, nil checks, panics), SIGABRT, and
// SIGURG for preemption.
var guardedSignals = [...]syscall.Signal{
	syscall.SIGILL, syscall.SIGABRT, syscall.SIGFPE,
	syscall.SIGBUS, syscall.SIGSEGV, syscall.SIGURG,
}

// saveSignalHandlers records the handlers of guardedSignals and returns a
// function that puts them back. It reads and writes the kernel's
// sigaction records with rt_sigaction as opaque bytes, so it does not
// depend on their layout.
func saveSignalHandlers() (restore func()) {
	var saved [len(guardedSignals)][64]byte // the kernel's record is at most 32 bytes
	var ok [len(guardedSignals)]bool
	for i, sig := range guardedSignals {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&saved[i])), 8, 0, 0)
		ok[i] = errno == 0
	}
	return func() {
		for i, sig := range guardedSignals {
			if ok[i] {
				syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
					uintptr(unsafe.Pointer(&saved[i])), 0, 8, 0, 0)
			}
		}
	}
}

// connectArgs calls chdb_connect with args as its argv. The strings are
// pinned Go memory, valid for the call; chDB copies what it keeps.
func (l *library) connectArgs(args []string) (*uintptr, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	argv := make([]*byte, len(args)+1) // NULL-terminated, like main's
	for i, a := range args {
		b := append([]byte(a), 0)
		pin.Pin(&b[0])
		argv[i] = &b[0]
	}
	pin.Pin(&argv[0])
	// Handlers are off (see load), but the first connect starts the
	// engine; keep the runtime's handlers whatever it does.
	restore := saveSignalHandlers()
	conn := l.connect(int32(len(args)), &argv[0])
	restore()
	if conn == nil || *conn == 0 {
		return nil, fmt.Errorf("chdb_connect(%q) failed (chDB gives no reason; its stderr may)", args)
	}
	return conn, nil
}

// run runs sql on conn and returns its output, or chDB's error message.
func (l *library) run(conn uintptr, sql, format string) (string, error) {
	res := l.query(conn, sql, format)
	if res == nil {
		return "", errors.New("chdb_query returned no result")
	}
	defer l.destroyQueryResult(res)
	if msg := l.resultError(res); msg != nil {
		return "", errors.New(strings.TrimSpace(goString(msg)))
	}
	buf, n := l.resultBuffer(res), l.resultLength(res)
	if buf == nil || n == 0 {
		return "", nil
	}
	return string(unsafe.Slice(buf, n)), nil
}

// close calls chdb_close_conn.
func (l *library) close(conn *uintptr) { l.closeConn(conn) }

// goString copies the NUL-terminated C string at p.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
