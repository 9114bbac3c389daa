// Package chserver runs a ClickHouse server as a managed child process.
//
// consentryd uses it to run its local default store, and integration tests
// use it (usually through internal/chtest) to get a real server on free
// ports. Start writes config.xml and users.xml under Config.DataDir,
// starts the server, and returns once it answers a query; Stop ends it.
//
// The generated configuration works on Debian's ClickHouse 18.16 and on
// current releases: it uses the <yandex> root element, listens on one
// address (loopback by default), runs in UTC, keeps caches small, logs
// under DataDir/log, and lets the password-less default user in from
// loopback addresses only.
//
// The child is tied to the calling process: it gets SIGKILL if the
// process dies, even by SIGKILL, and it runs in its own process group,
// which Stop signals as a whole.
package chserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ErrNotFound reports that no ClickHouse server binary was found.
var ErrNotFound = errors.New("clickhouse-server not found")

const (
	// stopGrace is how long Stop waits after SIGTERM before it sends
	// SIGKILL, unless its context ends first.
	stopGrace = 30 * time.Second
	// startAttempts is how many times Start tries when a port it picked
	// was taken before the server could bind it.
	startAttempts = 3
	// probeInterval is the pause between readiness probes.
	probeInterval = 100 * time.Millisecond
	// tailBytes is how much of the child's output is kept for errors.
	tailBytes = 16 << 10
	// errorTailLines is how many lines of that output an error quotes.
	errorTailLines = 15
)

// Available finds the ClickHouse server binary. binary is Config.Binary:
// a path, a name to look up on PATH, or "" to auto-detect. It returns the
// executable's path and the arguments that must precede --config-file:
// none for clickhouse-server, ["server"] for the single clickhouse binary.
// The error wraps ErrNotFound when nothing usable exists.
func Available(binary string) (path string, args []string, err error) {
	argsFor := func(p string) []string {
		if filepath.Base(p) == "clickhouse" {
			return []string{"server"}
		}
		return nil
	}
	if binary != "" {
		p, err := exec.LookPath(binary)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %q: %w", ErrNotFound, binary, err)
		}
		return p, argsFor(p), nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if isExecutable(p) {
			return p, nil, nil
		}
	}
	if p, err := exec.LookPath("clickhouse"); err == nil {
		return p, argsFor(p), nil
	}
	if p := "/usr/bin/clickhouse"; isExecutable(p) {
		return p, argsFor(p), nil
	}
	return "", nil, fmt.Errorf("%w: neither clickhouse-server (on PATH or in /usr/sbin) nor clickhouse is installed", ErrNotFound)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Server is a running ClickHouse server child process. Its methods are
// safe for concurrent use.
type Server struct {
	cfg    Config // defaults applied, ports chosen
	layout layout
	host   string // the address clients dial
	log    *zap.Logger
	pid    int
	output *tailWriter
	client *http.Client

	stopping atomic.Bool
	done     chan struct{} // closed once the child has exited
	exitErr  error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start starts a ClickHouse server as described by cfg and returns once it
// answers a query, or when cfg.StartTimeout has passed or ctx has ended,
// whichever is first; on failure the child is killed and the error quotes
// the end of its output. A port left at 0 is picked free, and if another
// process takes it before the server binds it, Start tries again with new
// ports. Start may be called again on the DataDir of a stopped server: the
// configuration is rewritten, the data is kept.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bin, args, err := Available(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("chserver: start: %w", err)
	}
	l, err := newLayout(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("chserver: start: %w", err)
	}
	pickPorts := cfg.TCPPort == 0 || cfg.HTTPPort == 0
	for attempt := 1; ; attempt++ {
		srv, err := start(ctx, cfg, l, bin, args)
		if err == nil {
			return srv, nil
		}
		var bindErr *bindError
		if !pickPorts || attempt == startAttempts || !errors.As(err, &bindErr) {
			return nil, fmt.Errorf("chserver: start: %w", err)
		}
		cfg.Logger.Info("port taken before the server could bind it; retrying with new ports",
			zap.Int("attempt", attempt), zap.Error(err))
	}
}

// bindError is a start failure caused by a port that is already in use.
type bindError struct{ err error }

func (e *bindError) Error() string { return e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

// start makes one attempt at starting the server.
func start(ctx context.Context, cfg Config, l layout, bin string, args []string) (*Server, error) {
	dialHost := dialAddress(cfg.ListenHost)
	if err := choosePorts(&cfg, dialHost); err != nil {
		return nil, err
	}
	if err := writeConfig(l, cfg); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		layout: l,
		host:   dialHost,
		log:    cfg.Logger.With(zap.String("component", "clickhouse-server")),
		done:   make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{
			Proxy:             nil, // never route loopback probes through a proxy
			DisableKeepAlives: true,
		}},
	}
	s.output = newTailWriter(tailBytes, func(line string) { s.log.Debug(line) })

	cmd := exec.Command(bin, append(args, "--config-file="+l.ConfigFile)...)
	cmd.Dir = l.Root
	// Newer servers fork a watchdog parent by default; with it off, the
	// child is the server itself, so Pdeathsig and Stop reach it.
	cmd.Env = append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	cmd.Stdout = s.output
	cmd.Stderr = s.output
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := s.run(cmd); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	s.log.Info("started", zap.Int("pid", s.pid), zap.String("binary", bin),
		zap.String("tcp", s.Addr()), zap.String("http", s.HTTPAddr()), zap.String("data_dir", l.Root))

	if err := s.waitReady(ctx); err != nil {
		kerr := s.kill()
		return nil, errors.Join(err, kerr)
	}
	return s, nil
}

// run starts cmd and a goroutine that waits for it.
//
// Pdeathsig fires when the thread that forked the child exits, not only
// when the process does, and the Go runtime ends a thread when a goroutine
// locked to it returns. So the child is forked from a goroutine that holds
// its thread until the child has exited: no other goroutine runs there,
// and the thread outlives the child.
func (s *Server) run(cmd *exec.Cmd) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.pid = cmd.Process.Pid
		started <- nil
		err := cmd.Wait()
		s.output.flush()
		if !s.stopping.Load() {
			if err == nil {
				err = errors.New("exit status 0")
			}
			s.exitErr = fmt.Errorf("chserver: clickhouse-server (pid %d) exited unexpectedly: %w%s",
				s.pid, err, s.output.quote(errorTailLines))
			s.log.Error("exited unexpectedly", zap.Error(err))
		}
		close(s.done)
	}()
	return <-started
}

// waitReady probes the server until it answers a query over HTTP. The
// server binds all its ports before it starts serving any of them, so the
// native port is then open too. (Dialing it without speaking the protocol
// would only log a warning on the server.)
func (s *Server) waitReady(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, s.cfg.StartTimeout)
	defer cancel()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = s.probe(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
			out := s.output.String()
			err := fmt.Errorf("clickhouse-server exited during startup: %w", s.exitErr)
			if strings.Contains(out, "Address already in use") {
				return &bindError{err}
			}
			return err
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) && parent.Err() == nil {
				return fmt.Errorf("clickhouse-server did not answer within StartTimeout %v; last probe: %w%s",
					s.cfg.StartTimeout, lastErr, s.output.quote(errorTailLines))
			}
			return fmt.Errorf("waiting for clickhouse-server to answer: %w", context.Cause(parent))
		case <-tick.C:
		}
	}
}

// probe runs one readiness check.
func (s *Server) probe(ctx context.Context) error {
	out, err := s.query(ctx, "SELECT 1")
	if err != nil {
		return err
	}
	if out != "1" {
		return fmt.Errorf("SELECT 1 returned %q", out)
	}
	return nil
}

// query runs sql over the HTTP interface as the default user and returns
// the response body without its trailing newline.
func (s *Server) query(ctx context.Context, sql string) (string, error) {
	u := url.URL{Scheme: "http", Host: s.HTTPAddr(), Path: "/", RawQuery: url.Values{"query": {sql}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("query: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("query: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return strings.TrimSuffix(string(body), "\n"), nil
}

// Addr returns the native-protocol address, "host:port", for
// clickhouse-go.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.cfg.TCPPort))
}

// HTTPAddr returns the HTTP interface's address, "host:port".
func (s *Server) HTTPAddr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.cfg.HTTPPort))
}

// PID returns the child's process id, which is also its process group id.
func (s *Server) PID() int { return s.pid }

// DataDir returns the absolute path of the server's DataDir.
func (s *Server) DataDir() string { return s.layout.Root }

// Version returns the server's version, such as "18.16.1".
func (s *Server) Version(ctx context.Context) (string, error) {
	v, err := s.query(ctx, "SELECT version()")
	if err != nil {
		return "", fmt.Errorf("chserver: version: %w", err)
	}
	return v, nil
}

// Wait returns a channel that receives one value once the child has
// exited, then is closed: nil if it exited because Stop was called, else
// an error that quotes the end of its output. Each call returns a new
// channel, so any number of goroutines can watch.
func (s *Server) Wait() <-chan error {
	ch := make(chan error, 1)
	go func() {
		<-s.done
		ch <- s.exitErr
		close(ch)
	}()
	return ch
}

// Stop ends the server: SIGTERM to its process group, then SIGKILL if it
// has not exited after 30s or when ctx ends, whichever is first. It
// returns once the child has exited. It removes nothing from DataDir.
// Stop is idempotent: later calls return the first call's result. It
// returns an error only if the server had to be killed.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	s.stopping.Store(true)
	select {
	case <-s.done:
		s.signalGroup(syscall.SIGKILL) // anything it left behind
		return nil
	default:
	}
	s.log.Info("stopping", zap.Int("pid", s.pid))
	if err := s.signalGroup(syscall.SIGTERM); err != nil {
		return fmt.Errorf("chserver: stop: %w", err)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	var why error
	select {
	case <-s.done:
		s.signalGroup(syscall.SIGKILL)
		s.log.Info("stopped", zap.Int("pid", s.pid))
		return nil
	case <-ctx.Done():
		why = context.Cause(ctx)
	case <-grace.C:
		why = fmt.Errorf("still running %v after SIGTERM", stopGrace)
	}
	if err := s.kill(); err != nil {
		return fmt.Errorf("chserver: stop: %w", err)
	}
	return fmt.Errorf("chserver: stop: killed clickhouse-server (pid %d): %w", s.pid, why)
}

// kill sends SIGKILL to the process group and waits for the child.
func (s *Server) kill() error {
	s.stopping.Store(true)
	if err := s.signalGroup(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	<-s.done // SIGKILL cannot be caught; the wait is short
	return nil
}

// signalGroup sends sig to the child's process group. A group that no
// longer exists is not an error.
func (s *Server) signalGroup(sig syscall.Signal) error {
	if err := syscall.Kill(-s.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d with %v: %w", s.pid, sig, err)
	}
	return nil
}

// dialAddress returns the address clients use to reach a server listening
// on host: host itself, or loopback when host is a wildcard address.
func dialAddress(host string) string {
	ip := net.ParseIP(host)
	switch {
	case ip == nil || !ip.IsUnspecified():
		return host
	case ip.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

// choosePorts replaces cfg's zero ports with ports that are free on host
// now. All listeners are held open until every port is chosen, so the
// ports differ from each other.
func choosePorts(cfg *Config, host string) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, p := range []*int{&cfg.TCPPort, &cfg.HTTPPort} {
		if *p != 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		*p = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// tailWriter keeps the last max bytes written to it and passes each
// complete line to onLine.
type tailWriter struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	partial []byte
	onLine  func(string)
}

func newTailWriter(max int, onLine func(string)) *tailWriter {
	return &tailWriter{max: max, onLine: onLine}
}

// Write implements io.Writer.
func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > w.max { // a runaway line: log what there is
		w.onLine(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

// flush passes an unterminated last line to onLine.
func (w *tailWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.onLine(string(w.partial))
		w.partial = nil
	}
}

// String returns the retained output.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// quote returns the last n non-empty lines of the retained output,
// formatted to end an error message, or "" if there was no output.
func (w *tailWriter) quote(n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(w.String()))
	sc.Buffer(make([]byte, 0, 4096), tailBytes+1)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return "; the server wrote nothing to stdout or stderr"
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; server output ends:\n\t" + strings.Join(lines, "\n\t")
}
