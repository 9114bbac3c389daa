package sdk

import (
	"fmt"
	"go/token"
	"path"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// StackFrame is one frame of a stack trace, innermost first. Go-only (see
// RecordCrashFrames); mobile apps pass the stack as text to RecordCrash.
type StackFrame struct {
	// Module is the package, module or binary image, e.g.
	// "com.example.notes" or "github.com/example/notes/editor".
	Module string
	// Function is the function or method, e.g. "NoteEditor.save".
	Function string
	// File is the source file's name, without folders, e.g.
	// "NoteEditor.kt".
	File string
	// Line is the line number, 0 if unknown.
	Line int
	// InApp is true for the app's own code.
	InApp bool
}

// CrashReport is a crash, or an exception the app caught, with all the
// SDK sends about it; RecordCrashReport records it. Only ExceptionType is
// required. It binds with gomobile as a class (NewCrashReport is its
// constructor), so mobile apps can set the fields they know.
type CrashReport struct {
	// ExceptionType is the exception or signal type, e.g.
	// "java.lang.IllegalStateException" or "SIGSEGV". Required.
	ExceptionType string
	// Message is free text the collector scrubs of identifiers.
	Message string
	// Stack is the stack trace as text, innermost frame first, in
	// Java/Kotlin ("\tat pkg.Class.method(File.kt:42)"), Apple ("0  MyApp
	// 0x1a2b  symbol + 12") or Go (debug.Stack) form, or one frame per
	// line.
	Stack string
	// Thread is the crashing thread's name, e.g. "main" (on Android,
	// Thread.getName() of the uncaught-exception handler's thread). Empty
	// takes the thread the stack names, if it does (Java's "Exception in
	// thread", an Apple report's crashed thread, a Go goroutine).
	Thread string
	// AppState is "foreground", "background", "launching" or
	// "terminating". Empty takes the state the app last reported with
	// SetAppState, or that its sessions imply (see SetAppState).
	AppState string
	// Handled is true for an exception the app caught and reported, false
	// for a crash that ends the process.
	Handled bool
	// Fingerprint is an optional grouping key (see RecordCrashGrouped).
	Fingerprint string
}

// NewCrashReport returns a report of an exception of exceptionType with
// message and stack (see CrashReport's fields), unhandled.
func NewCrashReport(exceptionType, message, stack string) *CrashReport {
	return &CrashReport{ExceptionType: exceptionType, Message: message, Stack: stack}
}

// RecordCrashReport records r (see RecordCrash, which it generalizes):
// the crash carries its frames, the thread, the app state and the
// breadcrumbs recorded before it. An unhandled crash is on stable storage
// when it returns.
func (c *Client) RecordCrashReport(r *CrashReport) error {
	if r == nil {
		return fmt.Errorf("record crash: %w: no report", ErrInvalidArgument)
	}
	state, err := appStateValue(r.AppState, true)
	if err != nil {
		return fmt.Errorf("record crash: %w", err)
	}
	thread := strings.TrimSpace(r.Thread)
	if thread == "" {
		thread = stackThread(r.Stack)
	}
	return c.recordCrash("record crash", crashInfo{
		exceptionType: r.ExceptionType, message: r.Message, fingerprint: r.Fingerprint,
		frames: parseStack(r.Stack, c.s.inApp), thread: thread, state: state, handled: r.Handled,
	})
}

// RecordCrash records a crash (handled false: the process is ending) or
// an exception the app caught and reported (handled true). exceptionType is
// required, e.g. "java.lang.IllegalStateException" or "SIGSEGV"; message
// is free text the collector scrubs of identifiers; stack is the stack
// trace as text, innermost frame first, in Java/Kotlin ("\tat
// pkg.Class.method(File.kt:42)"), Apple ("0  MyApp  0x1a2b  symbol + 12")
// or Go (debug.Stack) form, or one frame per line. Frames of the app's
// own code are marked in-app (see Config.InAppPrefixes). The crash
// carries the thread the stack names, if any, the app state (see
// SetAppState) and the breadcrumbs recorded before it (see
// RecordScreenView). Strings are cut to the collector's limits. An
// unhandled crash (handled false) is on stable storage when RecordCrash
// returns, so an app may call it from an uncaught-exception handler just
// before the process dies; it is sent on the next start. RecordCrashReport
// also takes the thread's name.
func (c *Client) RecordCrash(exceptionType, message, stack string, handled bool) error {
	return c.RecordCrashReport(&CrashReport{ExceptionType: exceptionType, Message: message, Stack: stack, Handled: handled})
}

// RecordCrashGrouped is RecordCrash with the app's own grouping key: the
// collector puts crashes with the same key (e.g. "sync-timeout") in one
// crash group, whatever their stacks. Keep keys short (at most 256 bytes)
// and free of user data.
func (c *Client) RecordCrashGrouped(exceptionType, message, stack, fingerprint string, handled bool) error {
	return c.RecordCrashReport(&CrashReport{ExceptionType: exceptionType, Message: message, Stack: stack,
		Fingerprint: fingerprint, Handled: handled})
}

// RecordCrashFrames is RecordCrash with a stack already split into frames
// (innermost first; at most 256 are kept). Go-only.
func (c *Client) RecordCrashFrames(exceptionType, message string, frames []StackFrame, handled bool) error {
	out := make([]*consentryv1.StackFrame, 0, min(len(frames), maxFrames))
	for _, f := range frames {
		if len(out) == maxFrames {
			break
		}
		if f.Line < 0 {
			f.Line = 0
		}
		out = append(out, &consentryv1.StackFrame{
			Module: truncate(f.Module, maxNameBytes), Function: truncate(f.Function, maxNameBytes),
			File: truncate(path.Base(f.File), maxNameBytes), Line: uint32(min(f.Line, 1<<31)), InApp: f.InApp,
		})
	}
	return c.recordCrash("record crash", crashInfo{exceptionType: exceptionType, message: message, frames: out, handled: handled})
}

// crashInfo is what a crash event is made of.
type crashInfo struct {
	exceptionType, message, fingerprint, thread string
	frames                                      []*consentryv1.StackFrame
	// state is the app state; UNSPECIFIED takes the current one.
	state   consentryv1.AppState
	handled bool
}

func (c *Client) recordCrash(op string, ci crashInfo) error {
	exceptionType := strings.TrimSpace(ci.exceptionType)
	if exceptionType == "" {
		return fmt.Errorf("%s: %w: the exception type is required", op, ErrInvalidArgument)
	}
	state := ci.state
	if state == consentryv1.AppState_APP_STATE_UNSPECIFIED {
		state = c.appState()
	}
	return c.record(op, ScopeCrashReports, &consentryv1.Event{
		Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
			ExceptionType: truncate(exceptionType, maxNameBytes),
			Message:       truncate(ci.message, maxTextBytes),
			Frames:        ci.frames,
			Thread:        truncate(ci.thread, maxNameBytes),
			Handled:       ci.handled,
			AppState:      state,
			Fingerprint:   truncate(strings.TrimSpace(ci.fingerprint), maxNameBytes),
			Breadcrumbs:   c.crumbs.snapshot(time.Now()),
		}},
	}, !ci.handled)
}

// RecoverPanic records a panic as a crash, with its stack, and panics
// again with the same value. Defer it first thing in main and in every
// goroutine the app starts:
//
//	defer client.RecoverPanic()
//
// It must be deferred directly: called from another deferred function it
// sees no panic. The crash is on stable storage before the panic
// continues, and is sent when the next Client on the same folder starts.
// Go-only in effect: it sees only panics of Go code. A nil Client only
// panics again.
func (c *Client) RecoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	if c != nil {
		c.recordPanic(r, debug.Stack())
	}
	panic(r)
}

// CapturePanics runs fn, recording a panic in it as RecoverPanic does
// before panicking again. Go-only.
func (c *Client) CapturePanics(fn func()) {
	defer c.RecoverPanic()
	fn()
}

// recordPanic records the panic value r with the stack debug.Stack gave
// inside the deferred recover: the exception type names the value (see
// panicType), the thread the goroutine.
func (c *Client) recordPanic(r any, stack []byte) {
	s := string(stack)
	ci := crashInfo{exceptionType: panicType(r), message: fmt.Sprint(r), thread: goroutineThread(s),
		frames: parseGoStack(s, c.s.inApp, true)}
	if err := c.recordCrash("record panic", ci); err != nil {
		c.logf(LevelError, "recording a panic failed: %v", err)
	}
}

// panicType returns the exception type of a panic value: for a runtime
// error (a nil map write, a nil pointer dereference, an index out of
// range, ...) its exported type, such as *runtime.TypeAssertionError, or
// "runtime.Error" where the runtime's type is unexported; for another
// error the type of the first error in its chain that is not a plain
// wrapper of package errors or fmt (an *fs.PathError inside
// fmt.Errorf("open: %w", err)), else its own; for a string, "panic"; for
// any other value its dynamic type, e.g. "int".
func panicType(r any) string {
	switch v := r.(type) {
	case runtime.Error:
		if t := reflect.TypeOf(v); exportedType(t) {
			return t.String()
		}
		return "runtime.Error"
	case error:
		for err := error(v); err != nil; err = unwrapFirst(err) {
			if !plainWrapper(reflect.TypeOf(err)) {
				return fmt.Sprintf("%T", err)
			}
		}
		return fmt.Sprintf("%T", v)
	case string:
		return "panic"
	}
	return fmt.Sprintf("%T", r)
}

// exportedType reports whether t, or what it points to, is a named type
// other packages can name.
func exportedType(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name() != "" && token.IsExported(t.Name())
}

// plainWrapper reports whether t is one of the unexported error types of
// packages errors and fmt (errors.New, fmt.Errorf, errors.Join), which
// say nothing of what failed.
func plainWrapper(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return (t.PkgPath() == "errors" || t.PkgPath() == "fmt") && !token.IsExported(t.Name())
}

// unwrapFirst returns the error err wraps, or the first of those it
// joins; nil if none.
func unwrapFirst(err error) error {
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap()
	case interface{ Unwrap() []error }:
		if errs := u.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return nil
}

// Thread names in stack traces.
var (
	// javaThread is the JVM's "Exception in thread "main" ..." line.
	javaThread = regexp.MustCompile(`Exception in thread "([^"]+)"`)
	// appleCrashed is an Apple report's "Thread 3 Crashed:" line.
	appleCrashed = regexp.MustCompile(`(?m)^Thread (\d+) Crashed`)
)

// stackThread returns the name of the crashed thread a stack trace names:
// the JVM's "Exception in thread", an Apple report's crashed thread (its
// name line, else "main" for thread 0 or "Thread N"), or a Go trace's
// first goroutine (see goroutineThread); "" if it names none.
func stackThread(stack string) string {
	if m := javaThread.FindStringSubmatch(stack); m != nil {
		return m[1]
	}
	if m := appleCrashed.FindStringSubmatch(stack); m != nil {
		name := regexp.MustCompile(`(?m)^Thread ` + m[1] + ` name:\s*(.+?)\s*$`).FindStringSubmatch(stack)
		switch {
		case name != nil:
			return name[1]
		case m[1] == "0":
			return "main"
		}
		return "Thread " + m[1]
	}
	if goroutineHeader.MatchString(stack) {
		return goroutineThread(stack)
	}
	return ""
}

// goroutineThread names the first goroutine of a Go trace: "main" for
// goroutine 1, which runs main; else the function the goroutine was
// started with, its outermost frame, as package name and function (e.g.
// "sync.(*Worker).run"): goroutine numbers change from run to run.
func goroutineThread(stack string) string {
	loc := goroutineHeader.FindStringIndex(stack)
	if loc == nil {
		return ""
	}
	stack = stack[loc[0]:]
	header, rest, _ := strings.Cut(stack, "\n")
	if strings.HasPrefix(header, "goroutine 1 [") {
		return "main"
	}
	outer := ""
	for line := range strings.Lines(rest) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "goroutine ") {
			break
		}
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by ") {
			continue
		}
		outer = line
	}
	if strings.HasSuffix(outer, ")") {
		if open := strings.LastIndexByte(outer, '('); open > 0 {
			outer = outer[:open]
		}
	}
	pkg, fn := splitGoFunc(outer)
	if pkg == "" {
		return "goroutine"
	}
	return path.Base(pkg) + "." + fn
}

// parseStack splits a stack trace in text form into frames.
func parseStack(stack string, inApp inAppRules) []*consentryv1.StackFrame {
	switch {
	case strings.TrimSpace(stack) == "":
		return nil
	case goroutineHeader.MatchString(stack):
		return parseGoStack(stack, inApp, false)
	case javaFrame.MatchString(stack):
		return parseJavaStack(stack, inApp)
	case appleFrame.MatchString(stack):
		return parseAppleStack(stack, inApp)
	}
	var out []*consentryv1.StackFrame
	for line := range strings.Lines(stack) {
		line = strings.TrimSpace(line)
		if line == "" || len(out) == maxFrames {
			continue
		}
		out = append(out, &consentryv1.StackFrame{Function: truncate(line, maxNameBytes)})
	}
	return out
}

var (
	goroutineHeader = regexp.MustCompile(`(?m)^goroutine \d+ \[`)
	javaFrame       = regexp.MustCompile(`(?m)^\s*at ([\w$.<>/-]+)\.([\w$<>-]+)\(([^():]*)(?::(\d+))?\)`)
	appleFrame      = regexp.MustCompile(`(?m)^\s*\d+\s+(\S+)\s+0x[0-9a-fA-F]+\s+(.+?)(?:\s+\+\s+\d+)?(?:\s+\(([^():]+):(\d+)\))?\s*$`)
)

func newFrame(module, function, file string, line int, inApp inAppRules, goFrame bool) *consentryv1.StackFrame {
	return &consentryv1.StackFrame{
		Module: truncate(module, maxNameBytes), Function: truncate(function, maxNameBytes),
		File: truncate(file, maxNameBytes), Line: uint32(max(min(line, 1<<31), 0)),
		InApp: inApp.inApp(module, goFrame),
	}
}

// parseGoStack parses a goroutine trace as debug.Stack or a crash prints
// it. fromRecover drops the frames of the capture itself: debug.Stack,
// RecoverPanic and the runtime's panic.
func parseGoStack(stack string, inApp inAppRules, fromRecover bool) []*consentryv1.StackFrame {
	if loc := goroutineHeader.FindStringIndex(stack); loc != nil {
		stack = stack[loc[0]:] // skip a "panic: ..." preamble
	}
	lines := strings.Split(stack, "\n")
	var out []*consentryv1.StackFrame
	panicAt := -1
	for i := 0; i < len(lines); i++ {
		fn := strings.TrimSpace(lines[i])
		if fn == "" || strings.HasPrefix(fn, "goroutine ") || strings.HasPrefix(fn, "created by ") ||
			strings.HasPrefix(lines[i], "\t") {
			if strings.HasPrefix(fn, "goroutine ") && len(out) > 0 {
				break // only the first goroutine: the crashing one.
			}
			continue
		}
		file, line := "", 0
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "\t") {
			loc := strings.TrimSpace(lines[i+1])
			if sp := strings.LastIndexByte(loc, ' '); sp > 0 && strings.HasPrefix(loc[sp+1:], "+0x") {
				loc = loc[:sp]
			}
			if colon := strings.LastIndexByte(loc, ':'); colon > 0 {
				line, _ = strconv.Atoi(loc[colon+1:])
				loc = loc[:colon]
			}
			file = path.Base(loc)
			i++
		}
		if strings.HasPrefix(fn, "panic(") {
			panicAt = len(out)
		}
		// Drop the arguments: the last parenthesized group.
		if strings.HasSuffix(fn, ")") {
			if open := strings.LastIndexByte(fn, '('); open > 0 {
				fn = fn[:open]
			}
		}
		module, function := splitGoFunc(fn)
		out = append(out, newFrame(module, function, file, line, inApp, true))
	}
	if panicAt >= 0 && (fromRecover || panicAt < 4) {
		out = out[panicAt+1:]
	}
	if len(out) > maxFrames {
		out = out[:maxFrames]
	}
	return out
}

// splitGoFunc splits a Go function symbol into its package path and the
// function's name in it: "github.com/a/b.(*T).M" is "github.com/a/b" and
// "(*T).M". (The last path element's dots are escaped in symbols.)
func splitGoFunc(sym string) (pkg, fn string) {
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot < 0 {
		return "", sym
	}
	dot += slash + 1
	return sym[:dot], sym[dot+1:]
}

// parseJavaStack parses a JVM stack trace: "\tat pkg.Class.method(File:N)"
// lines; the exception line and "Caused by" sections' frames are kept in
// order.
func parseJavaStack(stack string, inApp inAppRules) []*consentryv1.StackFrame {
	var out []*consentryv1.StackFrame
	for _, m := range javaFrame.FindAllStringSubmatch(stack, maxFrames) {
		class, method, file := m[1], m[2], m[3]
		line, _ := strconv.Atoi(m[4])
		module, short := "", class
		if dot := strings.LastIndexByte(class, '.'); dot > 0 {
			module, short = class[:dot], class[dot+1:]
		}
		out = append(out, newFrame(module, short+"."+method, file, line, inApp, false))
	}
	return out
}

// parseAppleStack parses an Apple crash report's thread backtrace:
// "0  MyApp  0x0000000102f3c3a8 symbol + 123 (File.swift:42)".
func parseAppleStack(stack string, inApp inAppRules) []*consentryv1.StackFrame {
	var out []*consentryv1.StackFrame
	for _, m := range appleFrame.FindAllStringSubmatch(stack, maxFrames) {
		line, _ := strconv.Atoi(m[4])
		out = append(out, newFrame(m[1], m[2], m[3], line, inApp, false))
	}
	return out
}
