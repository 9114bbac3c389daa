package sdk

import (
	"errors"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The crash helper: the test binary re-executed with these variables set
// opens a Client on the folder and panics under RecoverPanic.
const (
	crashHelperEnv   = "CONSENTRY_SDK_CRASH_HELPER_DIR"
	crashEndpointEnv = "CONSENTRY_SDK_CRASH_HELPER_ENDPOINT"
	crashAppEnv      = "CONSENTRY_SDK_CRASH_HELPER_APP"
	crashMarker      = "nil map write in the crash helper"
)

// runCrashHelper runs in the helper process: it never returns normally.
// With app set it runs that app of crashApps with the SDK's default
// configuration; else it panics in crashHelperPanics, whose frames are
// the app's by InAppPrefixes.
func runCrashHelper(dir, endpoint, app string) {
	f := &fakeCollector{addr: endpoint}
	cfg := testConfig(f, dir)
	run := crashApps[app]
	if run == nil {
		cfg.InAppPrefixes = "github.com/consentry/consentry/sdk"
	}
	c, err := New(cfg)
	if err != nil {
		os.Stderr.WriteString("crash helper: " + err.Error() + "\n")
		os.Exit(3)
	}
	defer c.RecoverPanic()
	if run != nil {
		run(c)
	}
	crashHelperPanics()
}

//go:noinline
func crashHelperPanics() {
	panic(errors.New(crashMarker))
}

func TestCrashCapturedAcrossProcessDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "crash_reports")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	f.stop() // the crash must survive without the network

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashEndpointEnv+"="+f.addr)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("helper: %v, want exit status 2 from the panic\n%s", err, out)
	}
	if !strings.Contains(string(out), "panic: "+crashMarker) {
		t.Fatalf("the helper did not die of the panic:\n%s", out)
	}

	f.restart()
	c2 := newClient(t, testConfig(f, dir))
	waitFor(t, 5*time.Second, "the crash, sent on start", func() bool { return c2.Stats().SentEvents == 1 })
	e := f.accepted()[0]
	crash := e.GetCrash()
	if crash.GetExceptionType() != "*errors.errorString" || crash.GetMessage() != crashMarker || crash.GetHandled() {
		t.Fatalf("crash %v", crash)
	}
	frames := crash.GetFrames()
	if len(frames) < 2 {
		t.Fatalf("frames %v", frames)
	}
	top := frames[0]
	if top.GetModule() != "github.com/consentry/consentry/sdk" || top.GetFunction() != "crashHelperPanics" ||
		top.GetFile() != "crash_test.go" || top.GetLine() == 0 || !top.GetInApp() {
		t.Errorf("innermost frame %v, want crashHelperPanics in crash_test.go, in app", top)
	}
	for _, fr := range frames {
		if strings.Contains(fr.GetFunction(), "RecoverPanic") || strings.Contains(fr.GetFunction(), "debug.Stack") ||
			strings.Contains(fr.GetFile(), "/") {
			t.Errorf("frame %v: capture frames are dropped, files have no folders", fr)
		}
	}
	if e.AgeMs != nil {
		t.Errorf("a crash of another process carries an age")
	}
	if st := c2.Stats(); st.SentEvents != 1 || st.QueuedEvents != 0 {
		t.Errorf("stats %+v", st)
	}
}

// crashInHelper runs the crash helper's app in a subprocess, which dies
// of the panic, and returns the crash the next Client on its folder sent.
func crashInHelper(t *testing.T, app string) *consentryv1.Crash {
	t.Helper()
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics,crash_reports")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir, crashEndpointEnv+"="+f.addr, crashAppEnv+"="+app)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("helper: %v, want exit status 2 from the panic\n%s", err, out)
	}
	c2 := newClient(t, testConfig(f, dir))
	if err := c2.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.accepted() {
		if cr := e.GetCrash(); cr != nil {
			return cr
		}
	}
	t.Fatalf("no crash sent; helper output:\n%s", out)
	return nil
}

// TestPanicWithDefaults panics with a runtime error in app code of the
// test binary's main module (package sdk_test), with the SDK's default
// configuration: the crash names the runtime error, the goroutine and
// the app state, and the app's frames are in-app without InAppPrefixes,
// package main's too, while the SDK's own, the runtime's and the
// standard library's are not.
func TestPanicWithDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	crash := crashInHelper(t, "nil-map-write")
	if crash.GetExceptionType() != "runtime.Error" || crash.GetMessage() != "assignment to entry in nil map" {
		t.Errorf("exception %q: %q, want runtime.Error: assignment to entry in nil map", crash.GetExceptionType(), crash.GetMessage())
	}
	if crash.GetThread() != "main" || crash.GetAppState() != consentryv1.AppState_APP_STATE_FOREGROUND {
		t.Errorf("thread %q, app state %s; want main, foreground", crash.GetThread(), crash.GetAppState())
	}
	frames := crash.GetFrames()
	if len(frames) == 0 || frames[0].GetModule() != "github.com/consentry/consentry/sdk_test" || frames[0].GetFunction() != "saveDraft" || !frames[0].GetInApp() {
		t.Fatalf("innermost frame %v, want saveDraft of package sdk_test, in app", frames[:min(1, len(frames))])
	}
	var sawMain, sawSDK, sawStd bool
	for _, fr := range frames {
		switch m := fr.GetModule(); {
		case m == "main":
			sawMain = true
			if !fr.GetInApp() {
				t.Errorf("frame %v of package main is not in app", fr)
			}
		case m == "github.com/consentry/consentry/sdk":
			sawSDK = true
			if fr.GetInApp() {
				t.Errorf("the SDK's own frame %v is in app", fr)
			}
		case !strings.Contains(m, "."):
			sawStd = true
			if fr.GetInApp() {
				t.Errorf("standard library frame %v is in app", fr)
			}
		}
	}
	if !sawMain || !sawSDK || !sawStd {
		t.Errorf("frames %v: want frames of package main, the SDK and the standard library", frames)
	}
	crumbs := crash.GetBreadcrumbs()
	if len(crumbs) != 2 || crumbs[0].GetType() != consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW || crumbs[0].GetName() != "editor" ||
		crumbs[1].GetType() != consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE || crumbs[1].GetGestureType() != consentryv1.GestureType_GESTURE_TYPE_TAP ||
		crumbs[0].GetOffsetMs() < crumbs[1].GetOffsetMs() || crumbs[1].GetOffsetMs() < 0 {
		t.Errorf("breadcrumbs %v, want the screen view and the tap before the crash, oldest first", crumbs)
	}
}

// TestDefaultInAppFrames records crashes as mobile apps do, with the SDK's
// default configuration: the frames of the app's package (its app id,
// com.example.notes) are in-app without InAppPrefixes, and the thread a
// JVM trace names is the crash's thread.
func TestDefaultInAppFrames(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "crash_reports")
	java := `Exception in thread "DefaultDispatcher-worker-2" java.lang.IllegalStateException: Fragment not attached
	at com.example.notes.NoteEditor.save(NoteEditor.kt:42)
	at com.example.notes.sync.SyncWorker.doWork(SyncWorker.kt:57)
	at com.example.notesextra.Helper.run(Helper.kt:1)
	at android.app.Activity.performResume(Activity.java:8422)`
	if err := c.RecordCrash("java.lang.IllegalStateException", "Fragment not attached", java, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	crash := f.accepted()[0].GetCrash()
	var got []bool
	for _, fr := range crash.GetFrames() {
		got = append(got, fr.GetInApp())
	}
	if want := []bool{true, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("in-app %v, want %v (frames %v)", got, want, crash.GetFrames())
	}
	if crash.GetThread() != "DefaultDispatcher-worker-2" {
		t.Errorf("thread %q, want the one the trace names", crash.GetThread())
	}
}

func TestCapturePanicsRecordsAndRepanics(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "crash_reports")
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the original panic", r)
			}
		}()
		c.CapturePanics(func() { panic("boom") })
	}()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 1 || got[0].GetCrash().GetExceptionType() != "panic" || got[0].GetCrash().GetMessage() != "boom" {
		t.Fatalf("accepted %v", got)
	}
	if fr := got[0].GetCrash().GetFrames(); len(fr) == 0 || !strings.Contains(fr[0].GetFunction(), "TestCapturePanicsRecordsAndRepanics") {
		t.Errorf("frames %v: want the panicking closure first", fr)
	}
	// A nil client still panics again.
	func() {
		defer func() {
			if recover() != "again" {
				t.Error("nil client swallowed the panic")
			}
		}()
		var nc *Client
		defer nc.RecoverPanic()
		panic("again")
	}()
}

func TestParseStacks(t *testing.T) {
	inApp := newInAppRules("", "com.example.notes,MyApp,github.com/example/notes", "")
	java := `java.lang.IllegalStateException: Fragment not attached
	at com.example.notes.NoteEditor.save(NoteEditor.kt:42)
	at com.example.notes.NoteEditor$1.run(Unknown Source)
	at android.app.Activity.performResume(Activity.java:8422)
Caused by: java.io.IOException: disk
	at java.io.FileOutputStream.write(Native Method)
	... 3 more`
	apple := `Thread 0 Crashed:
0   libsystem_kernel.dylib        0x00000001b2c3d4e8 __pthread_kill + 8
1   MyApp                         0x0000000102f3c3a8 MyApp.ContentView.body.getter + 123 (ContentView.swift:42)
2   UIKitCore                     0x00000001a1b2c3d4 -[UIViewController loadView] + 64`
	goStack := `panic: boom

goroutine 1 [running]:
github.com/example/notes/editor.(*Editor).Save(0xc000010000, {0x1, 0x2})
	/home/jane/src/notes/editor/editor.go:42 +0x1d
main.main()
	/home/jane/src/notes/main.go:10 +0x25
`
	for _, tc := range []struct {
		name  string
		stack string
		want  []*consentryv1.StackFrame
	}{
		{"java", java, []*consentryv1.StackFrame{
			{Module: "com.example.notes", Function: "NoteEditor.save", File: "NoteEditor.kt", Line: 42, InApp: true},
			{Module: "com.example.notes", Function: "NoteEditor$1.run", File: "Unknown Source", InApp: true},
			{Module: "android.app", Function: "Activity.performResume", File: "Activity.java", Line: 8422},
			{Module: "java.io", Function: "FileOutputStream.write", File: "Native Method"},
		}},
		{"apple", apple, []*consentryv1.StackFrame{
			{Module: "libsystem_kernel.dylib", Function: "__pthread_kill"},
			{Module: "MyApp", Function: "MyApp.ContentView.body.getter", File: "ContentView.swift", Line: 42, InApp: true},
			{Module: "UIKitCore", Function: "-[UIViewController loadView]"},
		}},
		{"go", goStack, []*consentryv1.StackFrame{
			{Module: "github.com/example/notes/editor", Function: "(*Editor).Save", File: "editor.go", Line: 42, InApp: true},
			{Module: "main", Function: "main", File: "main.go", Line: 10, InApp: true},
		}},
		{"lines", "frame one\n\n  frame two  \n", []*consentryv1.StackFrame{{Function: "frame one"}, {Function: "frame two"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseStack(tc.stack, inApp)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d frames %v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.GetModule() != w.GetModule() || g.GetFunction() != w.GetFunction() || g.GetFile() != w.GetFile() ||
					g.GetLine() != w.GetLine() || g.GetInApp() != w.GetInApp() {
					t.Errorf("frame %d = %v, want %v", i, g, w)
				}
			}
		})
	}
	// A real debug.Stack parses, user folders dropped.
	frames := parseGoStack(string(debug.Stack()), newInAppRules("", "", "github.com/consentry/consentry"), false)
	if len(frames) == 0 || frames[0].GetFunction() != "Stack" || frames[0].GetModule() != "runtime/debug" {
		t.Fatalf("debug.Stack frames %v", frames)
	}
	long := strings.Repeat("\tat a.B.c(D.java:1)\n", 500)
	if n := len(parseStack(long, inAppRules{})); n != maxFrames {
		t.Errorf("%d frames kept, want %d", n, maxFrames)
	}
}
