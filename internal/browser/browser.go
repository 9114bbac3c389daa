// Package browser lets tests drive a headless Chromium from Go, to check the
// server-rendered HTML dashboard as a user sees it.
//
// A test calls [Start] to get a [Browser], one headless Chromium with one tab,
// and then reads like a user story:
//
//	b := browser.Start(t)
//	b.Navigate(srv.URL + "/login")
//	b.SetValue("#user", "ada")
//	b.SelectOption("#range", "Last 7 days")
//	b.Submit("#login-form")
//	if got := b.Text("h1"); got != "Dashboard" {
//		t.Errorf("heading = %q", got)
//	}
//	b.NoConsoleErrors()
//
// Every helper fails the test with [testing.TB.Fatalf] and a message that names
// the URL or the selector when something goes wrong, so a test needs no error
// checks. Selectors are CSS selectors. A helper that reads or changes one
// element uses the first element that matches, and waits until it is in the
// page. [Browser.Run] and [Result] run any chromedp action when no helper fits.
//
// The browser forwards the JavaScript errors of the page to the test log: the
// calls of console.error, the uncaught exceptions and the error entries of the
// browser log. [Browser.ConsoleErrors] returns them, so a test can fail when a
// page throws.
//
// Start skips the test under "go test -short". Without -short it fails the
// test when it finds no browser; scripts/deps.sh --with-test-deps installs
// Debian's chromium package. The environment variable CONSENTRY_CHROMIUM names
// a browser binary to use instead.
//
// A Browser is not safe for concurrent use: like testing.T, call its methods
// from the goroutine of the test only.
package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Environment variables that change how the package finds and runs the
// browser.
const (
	// EnvChromium names the browser binary, as a path or as a name to look
	// up in $PATH. When it is set, Find uses only it.
	EnvChromium = "CONSENTRY_CHROMIUM"

	// EnvTimeout overrides the default time limit of a Browser, as a Go
	// duration such as "2m". WithTimeout wins over it.
	EnvTimeout = "CONSENTRY_BROWSER_TIMEOUT"

	// EnvScreenshots names a directory for the screenshots. When it is set,
	// Screenshot writes into a subdirectory named after the test, and the
	// files stay after the test. Otherwise Screenshot writes into the test's
	// artifact directory (see testing.T.ArtifactDir and go test -artifacts).
	EnvScreenshots = "CONSENTRY_SCREENSHOTS"
)

// Defaults of the options.
const (
	// DefaultTimeout is the time limit of a Browser: the browser is stopped
	// and every later helper fails when it is over.
	DefaultTimeout = 60 * time.Second

	// DefaultActionTimeout is the time limit of one helper call, such as a
	// Navigate or a WaitVisible for an element that never shows up.
	DefaultActionTimeout = 15 * time.Second

	// DefaultWidth and DefaultHeight are the size of the browser window, in
	// CSS pixels.
	DefaultWidth  = 1280
	DefaultHeight = 900
)

// notFound starts the error of Find.
const notFound = "chromium not found: run scripts/deps.sh --with-test-deps"

// candidates are the names of the browser binary that Find looks for, in
// order.
var candidates = []string{"chromium", "chromium-browser", "google-chrome"}

// Find returns the path of the browser binary. It uses $CONSENTRY_CHROMIUM
// when it is set, a path or a name in $PATH. Otherwise it looks for chromium,
// chromium-browser and google-chrome, in that order, in $PATH and then in
// /usr/bin. The error starts with "chromium not found: run scripts/deps.sh
// --with-test-deps".
func Find() (string, error) {
	if v := os.Getenv(EnvChromium); v != "" {
		p, err := exec.LookPath(v)
		if err != nil {
			return "", fmt.Errorf("%s ($%s=%s: %v)", notFound, EnvChromium, v, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(filepath.Join("/usr/bin", name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s (looked for %s in $PATH and /usr/bin; or set $%s)",
		notFound, strings.Join(candidates, ", "), EnvChromium)
}

// Option changes how Start runs the browser.
type Option func(*config)

type config struct {
	timeout       time.Duration
	actionTimeout time.Duration
	width, height int
	failOnConsole bool
	flags         []chromedp.ExecAllocatorOption
}

// WithTimeout sets the time limit of the Browser, DefaultTimeout by default.
// The limit never goes past the deadline of the test binary (go test -timeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// WithActionTimeout sets the time limit of one helper call,
// DefaultActionTimeout by default.
func WithActionTimeout(d time.Duration) Option {
	return func(c *config) { c.actionTimeout = d }
}

// WithWindowSize sets the size of the browser window in CSS pixels,
// DefaultWidth x DefaultHeight by default. Screenshots have this width.
func WithWindowSize(width, height int) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// FailOnConsoleErrors makes the test fail at its end when the browser
// reported a JavaScript error, as if the test called NoConsoleErrors last.
func FailOnConsoleErrors() Option {
	return func(c *config) { c.failOnConsole = true }
}

// WithFlag adds a command-line flag of Chromium, without the leading "--". A
// bool value true adds the flag alone, false removes it, and a string value
// adds --name=value.
func WithFlag(name string, value any) Option {
	return func(c *config) { c.flags = append(c.flags, chromedp.Flag(name, value)) }
}

// Browser is a headless Chromium with one tab, bound to a test. Start makes
// one, and For makes a view of it for a subtest.
type Browser struct {
	tb testing.TB // fails and logs for the helpers; see For
	*state
}

// state is what the views of For share: the tab and what it saw.
type state struct {
	starter       testing.TB      // the test of Start, which gets the browser's own log
	ctx           context.Context // of the tab, with the time limit of the browser
	timeout       time.Duration
	actionTimeout time.Duration

	mu        sync.Mutex
	stopped   bool // the test of Start is over: log nothing more
	mainFrame cdp.FrameID
	status    int64
	errs      []string
	documents map[network.RequestID]bool // the requests of documents, main or in a frame
	headers   network.Headers
}

// For returns a view of b that reports to tb, a subtest of the test of Start,
// so that table-driven subtests can share one browser and one tab:
//
//	b := browser.Start(t)
//	for _, tc := range cases {
//		t.Run(tc.name, func(t *testing.T) {
//			b := b.For(t)
//			b.Navigate(tc.url)
//			...
//		})
//	}
//
// The subtests must not run in parallel with each other, as they share the
// tab, and they share what ConsoleErrors and Status return: a subtest that
// checks the errors calls ClearConsoleErrors first. The browser stops when the
// test of Start ends.
func (b *Browser) For(tb testing.TB) *Browser {
	return &Browser{tb: tb, state: b.state}
}

// Start starts a headless Chromium for the test and stops it when the test
// ends. It skips the test under "go test -short" and fails it when Find finds
// no browser.
//
// The browser runs with --headless, --no-sandbox, --disable-gpu,
// --disable-dev-shm-usage, --no-first-run, a fixed window size and a new
// profile in a temporary directory, plus the quiet defaults of chromedp (no
// extensions, no background networking). It gets a time limit from the call
// of Start on (see WithTimeout and $CONSENTRY_BROWSER_TIMEOUT): when it is
// over, the browser stops and the helpers fail. So call Start after a slow
// setup of the test, not before.
//
// When the test fails, Start saves a screenshot of the page as failure.png
// (see Screenshot) and logs the output of the browser.
func Start(tb testing.TB, opts ...Option) *Browser {
	tb.Helper()
	if testing.Short() {
		tb.Skip("browser: skipping a test with headless Chromium in -short mode")
	}
	path, err := Find()
	if err != nil {
		tb.Fatalf("browser: %v", err)
	}

	cfg := config{
		timeout:       DefaultTimeout,
		actionTimeout: DefaultActionTimeout,
		width:         DefaultWidth,
		height:        DefaultHeight,
	}
	if v := os.Getenv(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			tb.Fatalf("browser: $%s=%q is not a positive duration such as 2m", EnvTimeout, v)
		}
		cfg.timeout = d
	}
	for _, o := range opts {
		o(&cfg)
	}
	timeout := cfg.timeout
	if dl, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		// Stop before the test binary panics on its -timeout, so that the
		// helper that waits reports what it waited for.
		if d, ok := dl.Deadline(); ok {
			if left := time.Until(d) - 5*time.Second; left < timeout {
				timeout = max(left, time.Second)
			}
		}
	}

	b := &Browser{tb: tb, state: &state{
		starter:       tb,
		timeout:       timeout,
		actionTimeout: cfg.actionTimeout,
	}}

	profile := filepath.Join(tb.TempDir(), "profile")
	output := &limitedBuffer{max: 64 << 10}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(cfg.width, cfg.height),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(output),
	)
	allocOpts = append(allocOpts, cfg.flags...)

	limitCtx, cancelLimit := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(limitCtx, allocOpts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithListener(b.onEvent),
		chromedp.WithErrorf(b.logf),
		chromedp.WithLogf(b.logf),
	)
	b.ctx = ctx

	stop := func() {
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		// Close the browser gracefully, then make sure that it and its
		// children are gone before the testing package removes the profile.
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(cctx)
		ccancel()
		cancelTab()
		cancelAlloc()
		cancelLimit()
		killLeftovers(profile)
		removeAllRetry(profile)
	}
	tb.Cleanup(func() {
		stop()
		if out := quiet(output.String()); tb.Failed() && out != "" {
			tb.Logf("browser: output of %s:\n%s", path, out)
		}
	})

	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("browser: starting %s: %v\n%s", path, err, quiet(output.String()))
	}
	b.mu.Lock()
	b.mainFrame = cdp.FrameID(chromedp.FromContext(ctx).Target.TargetID)
	b.mu.Unlock()
	version := ""
	if v, err := chromedp.CallBrowser(ctx, cdpbrowser.GetVersion, cdp.Empty{}); err == nil {
		version = " (" + v.Product + ")"
	}
	tb.Logf("browser: started %s%s in %s", path, version, time.Since(start).Round(time.Millisecond))

	// Runs before stop: cleanups run last-in, first-out.
	tb.Cleanup(func() {
		if tb.Failed() {
			b.screenshotOnFailure()
		}
		if cfg.failOnConsole {
			b.NoConsoleErrors()
		}
	})
	return b
}

// Context returns the chromedp context of the tab, for chromedp.Run,
// chromedp.Do and chromedp.Call. It has the time limit of the Browser, not the
// one of a helper call.
func (b *Browser) Context() context.Context { return b.ctx }

// ConsoleErrors returns the JavaScript errors that the browser reported so
// far, in order: console.error calls, uncaught exceptions and unhandled
// promise rejections, and error entries of the browser log such as a failed
// resource load. Each is one line with the place it came from. The helpers
// wait for the page to load, so the errors of the scripts that run during the
// load are there when the helper returns.
//
// Two failed loads are no error here: a document's, whose status Status
// returns, and the favicon's, which the browser asks for by itself.
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// ClearConsoleErrors forgets the errors that ConsoleErrors returns, for a test
// that expects some errors and checks the next page.
func (b *Browser) ClearConsoleErrors() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = nil
}

// NoConsoleErrors marks the test as failed, without stopping it, for each
// JavaScript error that the browser reported.
func (b *Browser) NoConsoleErrors() {
	b.tb.Helper()
	for _, e := range b.ConsoleErrors() {
		b.tb.Errorf("browser: JavaScript error: %s", e)
	}
}

// Status returns the HTTP status code of the last main document that the tab
// loaded, such as 200 or 404, or 0 before the first load or for a document
// that came from no HTTP response, such as about:blank.
func (b *Browser) Status() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.status)
}

func (b *Browser) setStatus(resp *network.Response) {
	if resp == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = resp.Status
}

// onEvent sees every event of the tab, in order, in the loop that reads
// them. It must return fast and send no command.
func (b *state) onEvent(ev any) {
	switch ev := ev.(type) {
	case *network.EventResponseReceived:
		if ev.Type != network.ResourceTypeDocument || ev.Response == nil {
			return
		}
		b.mu.Lock()
		if ev.FrameID == b.mainFrame {
			b.status = ev.Response.Status
		}
		if b.documents == nil {
			b.documents = map[network.RequestID]bool{}
		}
		b.documents[ev.RequestID] = true
		b.mu.Unlock()
	case *runtime.EventExceptionThrown:
		b.addError("uncaught exception: " + exceptionText(ev.ExceptionDetails))
	case *runtime.EventConsoleAPICalled:
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			b.addError(fmt.Sprintf("console.%s: %s%s", ev.Type, argsText(ev.Args), stackPlace(ev.StackTrace)))
		case runtime.ConsoleAPICalledTypeWarning:
			b.logf("browser: console.warn: %s%s", argsText(ev.Args), stackPlace(ev.StackTrace))
		}
	case *log.EventEntryAdded:
		en := ev.Entry
		if en == nil || en.Level != log.EntryLevelError || b.ignored(en) {
			return
		}
		b.addError(fmt.Sprintf("browser log (%s): %s%s", en.Source, en.Text, place(en.URL, en.LineNumber, -1)))
	}
}

// ignored reports whether an error of the browser log is no error of the
// page: the failed load of a document, whose status Status reports, and of
// the favicon that the browser asks for by itself.
func (b *state) ignored(en *log.Entry) bool {
	if en.Source != log.EntrySourceNetwork {
		return false
	}
	if u, err := url.Parse(en.URL); err == nil && u.Path == "/favicon.ico" {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return en.NetworkRequestID != "" && b.documents[en.NetworkRequestID]
}

func (b *state) addError(msg string) {
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
	b.logf("browser: JavaScript error: %s", msg)
}

// logf logs to the test until the test ends. chromedp calls it from its own
// goroutines.
func (b *state) logf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.starter.Logf(format, args...)
}

// exceptionText is the error of an exception and where it was thrown, such
// as `Uncaught Error: boom (at http://host/page:12:7)`.
func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown exception"
	}
	text := d.Text
	if obj := d.Exception; obj != nil {
		desc := obj.Description
		if desc == "" {
			desc = valueText(obj)
		}
		desc, _, _ = strings.Cut(desc, "\n")
		text = strings.TrimSpace(text + " " + desc)
	}
	url := d.URL
	if url == "" && d.StackTrace != nil && len(d.StackTrace.CallFrames) > 0 {
		url = d.StackTrace.CallFrames[0].URL
	}
	return text + place(url, d.LineNumber, d.ColumnNumber)
}

// argsText joins the arguments of a console call as the console shows them,
// roughly: strings as they are, other values by their description.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, valueText(a))
	}
	return strings.Join(parts, " ")
}

func valueText(o *runtime.RemoteObject) string {
	switch {
	case o == nil:
		return ""
	case o.Type == runtime.RemoteObjectTypeString && len(o.Value) > 0:
		if s, err := strconv.Unquote(string(o.Value)); err == nil {
			return s
		}
		return string(o.Value)
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	case len(o.Value) > 0:
		return string(o.Value)
	case o.Description != "":
		return o.Description
	default:
		return string(o.Type)
	}
}

func stackPlace(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 {
		return ""
	}
	f := st.CallFrames[0]
	return place(f.URL, f.LineNumber, f.ColumnNumber)
}

// place formats a 0-based line and column of the protocol as " (at
// url:line:col)" with 1-based numbers. A negative column is left out.
func place(url string, line, col int64) string {
	if url == "" {
		return ""
	}
	if col < 0 {
		return fmt.Sprintf(" (at %s:%d)", url, line+1)
	}
	return fmt.Sprintf(" (at %s:%d:%d)", url, line+1, col+1)
}

// killLeftovers kills the processes that still run with the profile
// directory, such as a child of a browser that did not exit, so that the
// directory can go. It reads /proc, so it does nothing outside Linux.
func killLeftovers(profile string) {
	want := []byte("--user-data-dir=" + profile)
	for range 3 {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := false
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			for arg := range strings.SplitSeq(string(cmdline), "\x00") {
				if arg == string(want) {
					if p, err := os.FindProcess(pid); err == nil {
						_ = p.Kill()
					}
					found = true
					break
				}
			}
		}
		if !found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeAllRetry removes dir, and tries again for a while when a process
// that is on its way out still writes into it.
func removeAllRetry(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quiet drops the lines of the browser's output that say that it has no D-Bus,
// which it never has in a test.
func quiet(out string) string {
	var keep []string
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			keep = append(keep, line)
		}
	}
	return strings.TrimSpace(strings.Join(keep, ""))
}

// limitedBuffer keeps the first max bytes written to it. chromedp writes the
// output of the browser into it from another goroutine.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.buf); room > 0 {
		l.buf = append(l.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buf)
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
