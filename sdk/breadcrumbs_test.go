package sdk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestInAppRules(t *testing.T) {
	const main = "github.com/example/notes"
	for _, tc := range []struct {
		appID, prefixes string
		module          string
		goFrame         bool
		want            bool
	}{
		{"com.example.notes", "", "com.example.notes", false, true},
		{"com.example.notes", "", "com.example.notes.sync", false, true},
		{"com.example.notes", "", "com.example.notesextra", false, false},
		{"com.example.notes", "", "com.example", false, false},
		{"com.example.notes", "", "android.app", false, false},
		{"notes", "", "notes", false, false},                         // not reverse-DNS
		{"Com.example.notes", "", "Com.example.notes", false, false}, // not a top-level domain
		{"com.example.notes", "", main + "/editor", true, true},
		{"com.example.notes", "", main, true, true},
		{"com.example.notes", "", "main", true, true},
		{"com.example.notes", "", "runtime", true, false},
		{"com.example.notes", "", "net/http", true, false},
		{"com.example.notes", "", "runtime/debug", true, false},
		{"com.example.notes", "", sdkPackage, true, false},
		{"com.example.notes", "", sdkPackage + "_test", true, false}, // not under the main module here
		{"com.example.notes", "", "", false, false},
		{"com.example.notes", "MyApp", "MyApp", false, true},
		{"com.example.notes", "MyApp", "UIKitCore", false, false},
		{"com.example.notes", "-" + main + "/third_party", main + "/third_party/lib", true, false},
		{"com.example.notes", "-" + main + "/third_party", main + "/editor", true, true},
		{"com.example.notes", "-com.example.notes.generated", "com.example.notes.generated.R", false, false},
		{"com.example.notes", sdkPackage, sdkPackage, true, true}, // the app's rule wins a tie
		{"com.example.notes", "net/http", "net/http", true, true},
		{"com.example.notes", " -main ", "main", true, false},
	} {
		t.Run(fmt.Sprintf("%s %q %s", tc.appID, tc.prefixes, tc.module), func(t *testing.T) {
			if got := newInAppRules(tc.appID, tc.prefixes, main).inApp(tc.module, tc.goFrame); got != tc.want {
				t.Errorf("in app = %v, want %v", got, tc.want)
			}
		})
	}
	// Without build information (and go run's pseudo module), package
	// main still is the app's.
	for _, mod := range []string{"", "command-line-arguments"} {
		r := newInAppRules("x", "", mod)
		if !r.inApp("main", true) || r.inApp("command-line-arguments", true) {
			t.Errorf("main module %q: rules %+v", mod, r)
		}
	}
}

// customError is an app's error type.
type customError struct{ op string }

func (e *customError) Error() string { return e.op + " failed" }

// panicValue returns what recover returns after fn panics.
func panicValue(fn func()) (r any) {
	defer func() { r = recover() }()
	fn()
	return nil
}

func TestPanicType(t *testing.T) {
	var nilMap map[string]int
	var nilPtr *struct{ x int }
	var iface any = "text"
	idx := 5
	for _, tc := range []struct {
		name string
		r    any
		want string
	}{
		{"nil map write", panicValue(func() { nilMap["a"] = 1 }), "runtime.Error"},
		{"nil pointer", panicValue(func() { _ = nilPtr.x }), "runtime.Error"},
		{"index out of range", panicValue(func() { _ = []int{1}[idx] }), "runtime.Error"},
		{"type assertion", panicValue(func() { _ = iface.(int) }), "*runtime.TypeAssertionError"},
		{"errors.New", errors.New("boom"), "*errors.errorString"},
		{"wrapped path error", fmt.Errorf("open notes: %w", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}), "*fs.PathError"},
		{"joined", errors.Join(errors.New("a"), &customError{"sync"}), "*errors.joinError"},
		{"app error", fmt.Errorf("save: %w", &customError{"save"}), "*sdk.customError"},
		{"os error", os.ErrClosed, "*errors.errorString"},
		{"string", "boom", "panic"},
		{"int", 42, "int"},
		{"struct", struct{ A int }{1}, "struct { A int }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := panicType(tc.r); got != tc.want {
				t.Errorf("panicType(%#v) = %q, want %q", tc.r, got, tc.want)
			}
		})
	}
}

func TestStackThread(t *testing.T) {
	for _, tc := range []struct {
		name, stack, want string
	}{
		{"jvm", "Exception in thread \"main\" java.lang.IllegalStateException: x\n\tat a.B.c(B.kt:1)", "main"},
		{"jvm worker", "Exception in thread \"DefaultDispatcher-worker-1\" java.lang.Error\n", "DefaultDispatcher-worker-1"},
		{"apple named", "Thread 0 name:  Dispatch queue: com.apple.main-thread\nThread 0 Crashed:\n0  MyApp  0x1 f + 1\n", "Dispatch queue: com.apple.main-thread"},
		{"apple main", "Thread 0 Crashed:\n0  MyApp  0x1 f + 1\n", "main"},
		{"apple other", "Thread 3 Crashed:\n0  MyApp  0x1 f + 1\n", "Thread 3"},
		{"go main", "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:10 +0x25\n", "main"},
		{"go worker", "panic: x\n\ngoroutine 42 [running]:\ngithub.com/example/notes/sync.save(0x1)\n\t/src/sync/save.go:3 +0x1\n" +
			"github.com/example/notes/sync.(*Worker).run(0xc000)\n\t/src/sync/worker.go:9 +0x2\ncreated by main.start in goroutine 1\n\t/src/main.go:4 +0x3\n\n" +
			"goroutine 1 [chan receive]:\nmain.main()\n\t/src/main.go:5 +0x1\n", "sync.(*Worker).run"},
		{"none", "\tat a.B.c(B.kt:1)", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stackThread(tc.stack); got != tc.want {
				t.Errorf("thread %q, want %q", got, tc.want)
			}
		})
	}
}

// crumbNames returns "type:name" of each breadcrumb.
func crumbNames(cs []*consentryv1.Breadcrumb) []string {
	var out []string
	for _, c := range cs {
		name := strings.ToLower(strings.TrimPrefix(c.GetType().String(), "BREADCRUMB_TYPE_"))
		if c.GetType() == consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE {
			name = strings.ToLower(strings.TrimPrefix(c.GetGestureType().String(), "GESTURE_TYPE_"))
		}
		out = append(out, name+":"+c.GetName())
	}
	return out
}

// lastCrash flushes c and returns the last crash f accepted.
func lastCrash(t *testing.T, c *Client, f *fakeCollector) *consentryv1.Crash {
	t.Helper()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var crash *consentryv1.Crash
	for _, e := range f.accepted() {
		if e.GetCrash() != nil {
			crash = e.GetCrash()
		}
	}
	if crash == nil {
		t.Fatal("no crash sent")
	}
	return crash
}

func TestBreadcrumbs(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MaxBreadcrumbs = 4
	c := grantedClient(t, f, cfg, "analytics,crash_reports")
	steps := []func() error{
		func() error { return c.RecordScreenView("home") },
		func() error { return c.RecordGesture("tap", "home", 1, 0) },
		func() error { return c.RecordScreenView("editor") },
		func() error { return c.RecordCustom("export_pdf", nil) },
		func() error { return c.LeaveBreadcrumb("sync_started") },
		func() error { return c.RecordGesture("swipe", "editor", 2, 300) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := c.RecordCrash("E", "m", "", true); err != nil {
		t.Fatal(err)
	}
	crash := lastCrash(t, c, f)
	got := crash.GetBreadcrumbs()
	if want := []string{"screen_view:editor", "custom:export_pdf", "custom:sync_started", "swipe:editor"}; !slices.Equal(crumbNames(got), want) {
		t.Fatalf("breadcrumbs %v, want the last 4, oldest first: %v", crumbNames(got), want)
	}
	for i := 1; i < len(got); i++ {
		if got[i].GetOffsetMs() > got[i-1].GetOffsetMs() || got[i].GetOffsetMs() < 0 {
			t.Errorf("offsets %v: want decreasing to the crash, not negative", got)
		}
	}
	if got[0].GetOffsetMs() < 6 {
		t.Errorf("oldest breadcrumb %d ms before the crash, want at least 6", got[0].GetOffsetMs())
	}
	// Invalid names are refused.
	for _, err := range []error{c.RecordScreenView("not\nascreen"), c.LeaveBreadcrumb("has space"), c.LeaveBreadcrumb("")} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("invalid breadcrumb: %v", err)
		}
	}

	// A revocation forgets them; without analytics none are kept.
	if err := c.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	if err := c.GrantConsent("crash_reports"); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordScreenView("settings"); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordCrash("E", "m", "", true); err != nil {
		t.Fatal(err)
	}
	if crash := lastCrash(t, c, f); len(crash.GetBreadcrumbs()) != 0 {
		t.Errorf("breadcrumbs %v kept without analytics or across a revocation", crumbNames(crash.GetBreadcrumbs()))
	}
}

func TestBreadcrumbsOff(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MaxBreadcrumbs = -1
	c := grantedClient(t, f, cfg, "analytics,crash_reports")
	if err := c.RecordScreenView("home"); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordCrash("E", "m", "", true); err != nil {
		t.Fatal(err)
	}
	if crash := lastCrash(t, c, f); len(crash.GetBreadcrumbs()) != 0 {
		t.Errorf("breadcrumbs %v with MaxBreadcrumbs -1", crash.GetBreadcrumbs())
	}
	for _, n := range []int{-2, maxBreadcrumbs + 1} {
		cfg := testConfig(f, t.TempDir())
		cfg.MaxBreadcrumbs = n
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("MaxBreadcrumbs %d: %v", n, err)
		}
	}
}

func TestAppStateAndThread(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics,crash_reports")
	state := func() consentryv1.AppState {
		t.Helper()
		if err := c.RecordCrash("E", "m", "", true); err != nil {
			t.Fatal(err)
		}
		return lastCrash(t, c, f).GetAppState()
	}
	if s := state(); s != consentryv1.AppState_APP_STATE_FOREGROUND {
		t.Errorf("default state %s", s)
	}
	if err := c.StartSession(); err != nil {
		t.Fatal(err)
	}
	if err := c.EndSession(); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != consentryv1.AppState_APP_STATE_BACKGROUND {
		t.Errorf("state after a session %s", s)
	}
	if err := c.SetAppState("launching"); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != consentryv1.AppState_APP_STATE_LAUNCHING {
		t.Errorf("state set launching: %s", s)
	}
	for _, bad := range []string{"", "asleep", "unspecified"} {
		if err := c.SetAppState(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetAppState(%q): %v", bad, err)
		}
	}
	// A report's own thread and state win.
	r := NewCrashReport("java.lang.IllegalStateException", "m", "Exception in thread \"main\" java.lang.IllegalStateException\n\tat com.example.notes.A.b(A.kt:1)")
	r.Handled, r.AppState = true, "background"
	if err := c.RecordCrashReport(r); err != nil {
		t.Fatal(err)
	}
	crash := lastCrash(t, c, f)
	if crash.GetThread() != "main" || crash.GetAppState() != consentryv1.AppState_APP_STATE_BACKGROUND || !crash.GetFrames()[0].GetInApp() {
		t.Errorf("crash %v", crash)
	}
	r.Thread = "WorkManager-1"
	if err := c.RecordCrashReport(r); err != nil {
		t.Fatal(err)
	}
	if crash := lastCrash(t, c, f); crash.GetThread() != "WorkManager-1" {
		t.Errorf("thread %q, want the report's", crash.GetThread())
	}
	r.AppState = "sleeping"
	if err := c.RecordCrashReport(r); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("bad app state: %v", err)
	}
	if err := c.RecordCrashReport(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("nil report: %v", err)
	}
}
