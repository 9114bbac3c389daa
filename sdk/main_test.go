package sdk

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// shared is the ClickHouse server of the integration tests; nil under
// -short.
var shared *chserver.Server

// TestMain runs the crash helper when the test binary is re-executed as
// one; otherwise it runs the tests with a shared ClickHouse server and
// fails if a goroutine outlives them.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		runCrashHelper(dir, os.Getenv(crashEndpointEnv), os.Getenv(crashAppEnv))
		return // not reached: the helper panics
	}
	goleak.VerifyTestMain(chtest.SharedM{M: m, Shared: &shared})
}

const (
	testAppID  = "com.example.notes"
	testAppKey = "ck_test-key-0123456789abcdefghijklmnopqrstuv"
)

// testConfig returns a config for a client of f in dir: plaintext, quick
// backoff, and a flush interval long enough that tests decide when to
// send.
func testConfig(f *fakeCollector, dir string) *Config {
	return &Config{
		Endpoint: f.addr, Insecure: true, AppID: testAppID, AppKey: testAppKey, StorageDir: dir,
		ConsentTextVersion: "2026-11", AppVersion: "4.12.0", AppBuild: "4120003", DeviceClass: "phone",
		DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14", Locale: "de-AT",
		MinBackoffMs: 20, MaxBackoffMs: 200, FlushIntervalMs: 3_600_000, RequestTimeoutMs: 2000, FlushTimeoutMs: 5000,
	}
}

// newClient returns a client for cfg, closed when the test ends.
// newClient returns a client of cfg, closed when the test ends. Without
// a Logger in cfg, what the client logs is kept and, when the test
// fails, printed with its stats: waits that time out say what the SDK
// was doing.
func newClient(t testing.TB, cfg *Config) *Client {
	t.Helper()
	var logs *logRecorder
	if cfg.Logger == nil {
		logs = &logRecorder{}
		cfg.Logger = logs
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() {
		if logs != nil && t.Failed() {
			msgs := logs.all()
			t.Logf("the client's stats %+v; its last log lines:\n%s", c.Stats(), strings.Join(msgs[max(0, len(msgs)-60):], "\n"))
		}
		c.Close()
	})
	return c
}

// grantedClient returns a client of f with the given scopes granted.
func grantedClient(t testing.TB, f *fakeCollector, cfg *Config, scopes string) *Client {
	t.Helper()
	c := newClient(t, cfg)
	if err := c.GrantConsent(scopes); err != nil {
		t.Fatalf("grant: %v", err)
	}
	return c
}

// recordTaps records n taps on the home screen with c.
func recordTaps(t testing.TB, c *Client, n int) {
	t.Helper()
	for range n {
		if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// recordScreens records a tap on each of the screens with c, in order.
func recordScreens(t testing.TB, c *Client, screens ...string) {
	t.Helper()
	for _, s := range screens {
		if err := c.RecordGesture("tap", s, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// screensOf returns the screens of the gesture events, in order.
func screensOf(events []*consentryv1.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.GetGesture().GetScreen()
	}
	return out
}

// consentToken returns the consent token c holds.
func consentToken(c *Client) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.st.Token
}

// testClock is a wall clock tests can move forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// logRecorder is a Logger that keeps every message, with the time it
// came.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Log(level int, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, fmt.Sprintf("%s %d %s", time.Now().Format("15:04:05.000"), level, msg))
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}
