// Package chserver runs a ClickHouse server as a managed child process.
//
// consentryd uses it to run its local default store, and integration tests
// use it (usually through internal/chtest) to get a real server on free
// ports. Start writes config.xml and users.xml under Config.DataDir,
// starts the server, and returns once it answers a query; Stop ends it.
//
// The generated configuration works on Debian's ClickHouse 18.16 and on
// current releases: it uses the <yandex> root element, opens only the
// native and HTTP ports, on one address (loopback by default), runs in
// UTC, keeps caches small, and logs warnings under DataDir/log. It is
// locked down: there is no default user and no user without a password;
// the administrative user (Config.User, with Config.Password or a
// generated one) connects from loopback only, and the optional read-only
// user may read only the databases it is given.
//
// The server is supervised: a child that exits unexpectedly is restarted
// with backoff on the same DataDir and ports, until it fails too often
// within a window (Config.MaxFailures, Config.FailureWindow); State, Up
// and WaitUp tell where it is, Done and Err when it is down for good.
//
// The child is tied to the calling process: it gets SIGKILL if the
// process dies, even by SIGKILL, and it runs in its own process group,
// which Stop signals as a whole.
package chserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/childproc"
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

// State is where a supervised server is in its life.
type State int32

const (
	// StateUp means the server answered its last start's probe and has
	// not exited since.
	StateUp State = iota + 1
	// StateRestarting means the server exited unexpectedly (or a restart
	// failed) and the supervisor is restarting it.
	StateRestarting
	// StateFailed means the server failed Config.MaxFailures times within
	// Config.FailureWindow and the supervisor gave up; Err says why.
	StateFailed
	// StateStopped means Stop was called.
	StateStopped
)

// String returns the state's name, such as "up".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateRestarting:
		return "restarting"
	case StateFailed:
		return "failed"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ErrGaveUp reports that the supervisor stopped restarting the server
// after Config.MaxFailures failures within Config.FailureWindow.
var ErrGaveUp = errors.New("clickhouse-server failed repeatedly; gave up restarting it")

// ErrStopped reports that the server was stopped with Stop.
var ErrStopped = errors.New("clickhouse-server stopped")

// Server is a supervised ClickHouse server child process: when the child
// exits unexpectedly, the server restarts it on the same DataDir and
// ports, so clients and the addresses they were given stay valid. Its
// methods are safe for concurrent use.
type Server struct {
	cfg    Config // defaults applied, password set, ports chosen
	layout layout
	// modern: the server is ConstraintsVersion or later and runs with the
	// users.xml only those understand. Set by Start, then fixed.
	modern  bool
	version string // what `--version` reported; "" if it did not
	host    string // the address clients dial
	bin     string
	args    []string
	log     *zap.Logger
	client  *http.Client

	// stopCtx ends when Stop is called; stopNow ends it.
	stopCtx context.Context
	stopNow context.CancelFunc
	supDone chan struct{} // closed when the supervisor has returned
	done    chan struct{} // closed when the server is down for good

	mu       sync.Mutex
	cur      *child // the latest child; nil before the first start
	state    State
	changed  chan struct{} // closed and replaced on every state change
	failures []time.Time   // within FailureWindow
	restarts int
	err      error // why the server is down for good; set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// child is one run of the server process.
type child struct {
	proc     *childproc.Process
	output   *childproc.Output
	stopping atomic.Bool
	exitErr  error // set before proc.Done is closed
}

// Start starts a ClickHouse server as described by cfg and returns once it
// answers a query, or when cfg.StartTimeout has passed or ctx has ended,
// whichever is first; on failure the child is killed and the error quotes
// the end of its output. A port left at 0 is picked free, and if another
// process takes it before the server binds it, Start tries again with new
// ports. Start may be called again on the DataDir of a stopped server: the
// configuration is rewritten, the data is kept.
//
// From then on the server is supervised: if it exits other than through
// Stop, it is restarted after RestartBackoff (doubling per failure within
// FailureWindow, up to MaxRestartBackoff) on the same DataDir and ports,
// until it has failed MaxFailures times within FailureWindow; then it
// stays down, State is StateFailed and Done is closed.
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
	if cfg.Password == "" {
		cfg.Password = rand.Text()
	}
	s := &Server{
		layout:  l,
		host:    dialAddress(cfg.ListenHost),
		bin:     bin,
		args:    args,
		log:     cfg.Logger.With(zap.String("component", "clickhouse-server")),
		supDone: make(chan struct{}),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{
			Proxy:             nil, // never route loopback probes through a proxy
			DisableKeepAlives: true,
		}},
	}
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	s.version, s.modern = detectVersion(ctx, bin, args)
	switch cfg.Constraints {
	case ConstraintsOn:
		s.modern = true
	case ConstraintsOff:
		s.modern = false
	}
	if cfg.ReadOnlyUser == "" {
		s.modern = false
	}
	pickPorts := cfg.TCPPort == 0 || cfg.HTTPPort == 0 || cfg.Cluster != nil && cfg.Cluster.InterserverPort == 0
	for attempt := 1; ; attempt++ {
		s.cfg = cfg
		if cfg.Cluster != nil {
			cc := *cfg.Cluster // each attempt picks its own ports
			s.cfg.Cluster = &cc
		}
		if err := choosePorts(&s.cfg, s.host); err != nil {
			s.stopNow()
			return nil, fmt.Errorf("chserver: start: %w", err)
		}
		c, err := s.startChild(ctx)
		if err == nil {
			s.cur, s.state = c, StateUp
			break
		}
		var usersErr *readOnlyLoginError
		if s.modern && errors.As(err, &usersErr) {
			// The server took config.xml but not the read-only user's
			// constraints: fall back to the users.xml every version takes.
			cfg.Logger.Warn("the read-only user cannot log in with settings constraints; falling back to readonly=1 without them",
				zap.String("version", s.version), zap.Error(err))
			s.modern = false
			attempt--
			continue
		}
		var bindErr *bindError
		if !pickPorts || attempt == startAttempts || !errors.As(err, &bindErr) {
			s.stopNow()
			return nil, fmt.Errorf("chserver: start: %w", err)
		}
		cfg.Logger.Info("port taken before the server could bind it; retrying with new ports",
			zap.Int("attempt", attempt), zap.Error(err))
	}
	go s.supervise()
	return s, nil
}

// bindError is a start failure caused by a port that is already in use.
type bindError struct{ err error }

func (e *bindError) Error() string { return e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

// startChild writes the configuration and makes one attempt at starting
// the server on s.cfg's ports. It returns once the child answers; on
// failure it kills the child.
func (s *Server) startChild(ctx context.Context) (*child, error) {
	if err := writeConfig(s.layout, s.cfg, s.modern); err != nil {
		return nil, err
	}
	c := &child{}
	c.output = childproc.NewOutput(tailBytes, func(line string) { s.log.Debug(line) })

	cmd := exec.Command(s.bin, append(s.args, "--config-file="+s.layout.ConfigFile)...)
	cmd.Dir = s.layout.Root
	// Newer servers fork a watchdog parent by default; with it off, the
	// child is the server itself, so Pdeathsig and Stop reach it.
	cmd.Env = append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	cmd.Stdout = c.output
	cmd.Stderr = c.output
	if err := c.start(cmd, s.log); err != nil {
		return nil, fmt.Errorf("run %s: %w", s.bin, err)
	}
	s.log.Info("started", zap.Int("pid", c.proc.PID()), zap.String("binary", s.bin), zap.String("version", s.version),
		zap.Bool("settings_constraints", s.modern),
		zap.String("tcp", s.Addr()), zap.String("http", s.HTTPAddr()), zap.String("data_dir", s.layout.Root))

	if err := s.waitReady(ctx, c); err != nil {
		c.kill()
		return nil, err
	}
	if s.modern {
		// The read-only profile is applied at login: constraints the
		// server does not understand show only now. (If loopback is not
		// among ReadOnlyNetworks the login is refused for that, code
		// 195, and says nothing about the profile.)
		_, err := s.queryAs(ctx, s.cfg.ReadOnlyUser, s.cfg.ReadOnlyPassword, "SELECT 1")
		if err != nil && !strings.Contains(err.Error(), "Code: 195") {
			c.kill()
			return nil, &readOnlyLoginError{err}
		}
	}
	return c, nil
}

// readOnlyLoginError is a start failure: the server answers, but the
// read-only user cannot run a query.
type readOnlyLoginError struct{ err error }

func (e *readOnlyLoginError) Error() string {
	return fmt.Sprintf("the read-only user cannot run a query: %v", e.err)
}
func (e *readOnlyLoginError) Unwrap() error { return e.err }

// ConstraintsVersion is the first ClickHouse release whose users.xml the
// read-only user gets settings constraints in (changeable_in_readonly,
// 22.11) and whose system tables can be put behind grants: the LTS
// release after both.
const ConstraintsVersion = "23.8"

// versionRE finds the release in `clickhouse server --version` output,
// such as "ClickHouse server version 24.8.4.13 (official build).".
var versionRE = regexp.MustCompile(`version (\d+)\.(\d+)[.\d]*`)

// detectVersion asks the binary for its version. Debian's 18.16 knows no
// --version option; any failure counts as an old server.
func detectVersion(ctx context.Context, bin string, args []string) (version string, modern bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(slices.Clone(args), "--version")...).CombinedOutput()
	if err != nil {
		return "", false
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	version = strings.TrimPrefix(string(m[0]), "version ")
	return version, major > 23 || major == 23 && minor >= 8
}

// SettingsConstraints reports whether the read-only user runs with
// settings constraints (a server from ConstraintsVersion on): then it may
// change the settings BI tools send, within its limits; otherwise it may
// change none.
func (s *Server) SettingsConstraints() bool { return s.modern }

// start starts cmd as the child, tied to this process (see childproc).
// An exit that Stop did not ask for is logged and kept in exitErr.
func (c *child) start(cmd *exec.Cmd, log *zap.Logger) error {
	proc, err := childproc.Start(cmd, func(p *childproc.Process) {
		c.output.Flush()
		if c.stopping.Load() {
			return
		}
		err := p.Err()
		if err == nil {
			err = errors.New("exit status 0")
		}
		c.exitErr = fmt.Errorf("clickhouse-server (pid %d) exited unexpectedly: %w%s",
			p.PID(), err, quote(c.output, errorTailLines))
		log.Error("exited unexpectedly", zap.Int("pid", p.PID()), zap.Error(err))
	})
	if err != nil {
		return err
	}
	c.proc = proc
	return nil
}

// waitReady probes the server until it answers a query over HTTP. The
// server binds all its ports before it starts serving any of them, so the
// native port is then open too. (Dialing it without speaking the protocol
// would only log a warning on the server.)
func (s *Server) waitReady(parent context.Context, c *child) error {
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
		case <-c.proc.Done():
			out := c.output.String()
			err := fmt.Errorf("clickhouse-server exited during startup: %w", c.exitErr)
			if strings.Contains(out, "Address already in use") {
				return &bindError{err}
			}
			return err
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) && parent.Err() == nil {
				return fmt.Errorf("clickhouse-server did not answer within StartTimeout %v; last probe: %w%s",
					s.cfg.StartTimeout, lastErr, quote(c.output, errorTailLines))
			}
			return fmt.Errorf("waiting for clickhouse-server to answer: %w", context.Cause(parent))
		case <-tick.C:
		}
	}
}

// supervise restarts the child whenever it exits unexpectedly, until Stop
// or until it gives up.
func (s *Server) supervise() {
	defer close(s.supDone)
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	for {
		select {
		case <-s.stopCtx.Done():
			return
		case <-c.proc.Done():
		}
		c.proc.Signal(syscall.SIGKILL) // anything it left behind
		err := c.exitErr
		for {
			if s.stopCtx.Err() != nil {
				return
			}
			n, backoff, gaveUp := s.fail(err)
			if gaveUp {
				return
			}
			s.log.Warn("restarting clickhouse-server", zap.Int("failures_in_window", n),
				zap.Duration("backoff", backoff), zap.Error(err))
			t := time.NewTimer(backoff)
			select {
			case <-s.stopCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			// Stop cancels a restart in progress.
			if c, err = s.startChild(s.stopCtx); err == nil {
				break
			}
		}
		s.mu.Lock()
		s.cur = c
		s.restarts++
		s.setState(StateUp)
		s.mu.Unlock()
		s.log.Info("clickhouse-server restarted", zap.Int("pid", c.proc.PID()))
	}
}

// fail records a failure. It returns the failures within the window and
// the pause before the next restart, or gives up: then the state is
// StateFailed and Done is closed.
func (s *Server) fail(err error) (n int, backoff time.Duration, gaveUp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	kept := s.failures[:0]
	for _, t := range s.failures {
		if now.Sub(t) < s.cfg.FailureWindow {
			kept = append(kept, t)
		}
	}
	s.failures = append(kept, now)
	n = len(s.failures)
	if n >= s.cfg.MaxFailures {
		s.err = fmt.Errorf("chserver: %w: %d failures within %v; the last: %w", ErrGaveUp, n, s.cfg.FailureWindow, err)
		s.log.Error("gave up restarting clickhouse-server", zap.Int("failures", n),
			zap.Duration("window", s.cfg.FailureWindow), zap.Error(err))
		s.setState(StateFailed)
		close(s.done)
		return n, 0, true
	}
	s.setState(StateRestarting)
	backoff = s.cfg.RestartBackoff
	for i := 1; i < n && backoff < s.cfg.MaxRestartBackoff; i++ {
		backoff *= 2
	}
	return n, min(backoff, s.cfg.MaxRestartBackoff), false
}

// setState sets the state and wakes those waiting for a change. Called
// with mu held.
func (s *Server) setState(st State) {
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
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

// query runs sql over the HTTP interface as User and returns the response
// body without its trailing newline. The password goes in a basic
// authorization header, not the URL.
func (s *Server) query(ctx context.Context, sql string) (string, error) {
	return s.queryAs(ctx, s.cfg.User, s.cfg.Password, sql)
}

// queryAs is query as user.
func (s *Server) queryAs(ctx context.Context, user, password, sql string) (string, error) {
	u := url.URL{Scheme: "http", Host: s.HTTPAddr(), Path: "/", RawQuery: url.Values{"query": {sql}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	req.SetBasicAuth(user, password)
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
// clickhouse-go. It stays the same across restarts.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.cfg.TCPPort))
}

// HTTPAddr returns the HTTP interface's address, "host:port". It stays
// the same across restarts.
func (s *Server) HTTPAddr() string {
	return net.JoinHostPort(s.host, strconv.Itoa(s.cfg.HTTPPort))
}

// InterserverAddr returns the interserver HTTP address, "host:port", of a
// server in cluster mode, and "" otherwise.
func (s *Server) InterserverAddr() string {
	if s.cfg.Cluster == nil {
		return ""
	}
	return net.JoinHostPort(s.host, strconv.Itoa(s.cfg.Cluster.InterserverPort))
}

// User returns the administrative user clients connect as.
func (s *Server) User() string { return s.cfg.User }

// Password returns User's password: Config.Password, or the one Start
// generated. Do not log it.
func (s *Server) Password() string { return s.cfg.Password }

// PID returns the current child's process id, which is also its process
// group id. It changes when the server is restarted.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.proc.PID()
}

// DataDir returns the absolute path of the server's DataDir.
func (s *Server) DataDir() string { return s.layout.Root }

// State returns the server's state.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Up reports whether the server is up: started and not exited since. It
// does not query the server; a hung server is still up.
func (s *Server) Up() bool { return s.State() == StateUp }

// Restarts returns how many times the supervisor restarted the server.
func (s *Server) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}

// WaitUp blocks until the server is up, and returns nil then. It returns
// an error wrapping ErrGaveUp if the supervisor gives up, ErrStopped after
// Stop, or ctx's error.
func (s *Server) WaitUp(ctx context.Context) error {
	for {
		s.mu.Lock()
		st, changed, err := s.state, s.changed, s.err
		s.mu.Unlock()
		switch st {
		case StateUp:
			return nil
		case StateFailed:
			return err
		case StateStopped:
			return fmt.Errorf("chserver: %w", ErrStopped)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("chserver: wait until up: %w", ctx.Err())
		}
	}
}

// Done returns a channel that is closed once the server is down for good:
// stopped, or given up on. Err then says which.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns nil while the server is supervised and after Stop, and an
// error wrapping ErrGaveUp (quoting the end of the last child's output)
// once the supervisor gave up.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Version returns the server's version, such as "18.16.1".
func (s *Server) Version(ctx context.Context) (string, error) {
	v, err := s.query(ctx, "SELECT version()")
	if err != nil {
		return "", fmt.Errorf("chserver: version: %w", err)
	}
	return v, nil
}

// Wait returns a channel that receives one value once the server is down
// for good, then is closed: nil after Stop, or Err after the supervisor
// gave up. Each call returns a new channel, so any number of goroutines
// can watch.
func (s *Server) Wait() <-chan error {
	ch := make(chan error, 1)
	go func() {
		<-s.done
		ch <- s.Err()
		close(ch)
	}()
	return ch
}

// Stop ends the server and its supervision: a restart in progress is
// abandoned, and a running child gets SIGTERM to its process group, then
// SIGKILL if it has not exited after 30s or when ctx ends, whichever is
// first. It returns once the child has exited. It removes nothing from
// DataDir. Stop is idempotent: later calls return the first call's
// result. It returns an error only if the server had to be killed.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stopServer(ctx) })
	return s.stopErr
}

func (s *Server) stopServer(ctx context.Context) error {
	s.stopNow()
	<-s.supDone // prompt: the supervisor watches stopCtx wherever it waits
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	err := c.terminate(ctx, s.log)
	s.mu.Lock()
	if s.state != StateFailed {
		s.setState(StateStopped)
		close(s.done)
	}
	s.mu.Unlock()
	return err
}

// terminate ends the child: SIGTERM, then SIGKILL after stopGrace or when
// ctx ends.
func (c *child) terminate(ctx context.Context, log *zap.Logger) error {
	c.stopping.Store(true)
	select {
	case <-c.proc.Done():
		c.proc.Signal(syscall.SIGKILL) // anything it left behind
		return nil
	default:
	}
	log.Info("stopping", zap.Int("pid", c.proc.PID()))
	if err := c.proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("chserver: stop: %w", err)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	var why error
	select {
	case <-c.proc.Done():
		c.proc.Signal(syscall.SIGKILL)
		log.Info("stopped", zap.Int("pid", c.proc.PID()))
		return nil
	case <-ctx.Done():
		why = context.Cause(ctx)
	case <-grace.C:
		why = fmt.Errorf("still running %v after SIGTERM", stopGrace)
	}
	if err := c.kill(); err != nil {
		return fmt.Errorf("chserver: stop: %w", err)
	}
	return fmt.Errorf("chserver: stop: killed clickhouse-server (pid %d): %w", c.proc.PID(), why)
}

// kill sends SIGKILL to the process group and waits for the child.
func (c *child) kill() error {
	c.stopping.Store(true)
	return c.proc.Kill()
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

// choosePorts replaces cfg's zero ports (native, HTTP, and in cluster
// mode interserver) with ports that are free on host now, all different.
func choosePorts(cfg *Config, host string) error {
	ports := []*int{&cfg.TCPPort, &cfg.HTTPPort}
	if cfg.Cluster != nil {
		ports = append(ports, &cfg.Cluster.InterserverPort)
	}
	var zero []*int
	for _, p := range ports {
		if *p == 0 {
			zero = append(zero, p)
		}
	}
	free, err := FreePorts(host, len(zero))
	if err != nil {
		return err
	}
	for i, p := range zero {
		*p = free[i]
	}
	return nil
}

// FreePorts returns n distinct TCP ports that are free on host now, as
// Start picks the ports a Config leaves at 0: all listeners are held
// until every port is chosen, so none repeats.
func FreePorts(host string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// quote returns the last n non-empty lines of a child's retained output,
// formatted to end an error message.
func quote(out *childproc.Output, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
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
