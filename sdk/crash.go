package sdk

import (
	"fmt"
	"path"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

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

// RecordCrash records a crash (handled false: the process is ending) or
// an exception the app caught and reported (handled true). exceptionType is
// required, e.g. "java.lang.IllegalStateException" or "SIGSEGV"; message
// is free text the collector scrubs of identifiers; stack is the stack
// trace as text, innermost frame first, in Java/Kotlin ("\tat
// pkg.Class.method(File.kt:42)"), Apple ("0  MyApp  0x1a2b  symbol + 12")
// or Go (debug.Stack) form, or one frame per line. Frames whose module
// starts with one of Config.InAppPrefixes are marked as the app's. Strings
// are cut to the collector's limits. An unhandled crash (handled false) is
// on stable storage when RecordCrash returns, so an app may call it from an
// uncaught-exception handler just before the process dies; it is sent on
// the next start.
func (c *Client) RecordCrash(exceptionType, message, stack string, handled bool) error {
	return c.recordCrash("record crash", exceptionType, message, "", parseStack(stack, c.s.inApp), handled)
}

// RecordCrashGrouped is RecordCrash with the app's own grouping key: the
// collector puts crashes with the same key (e.g. "sync-timeout") in one
// crash group, whatever their stacks. Keep keys short (at most 256 bytes)
// and free of user data.
func (c *Client) RecordCrashGrouped(exceptionType, message, stack, fingerprint string, handled bool) error {
	return c.recordCrash("record crash", exceptionType, message, fingerprint, parseStack(stack, c.s.inApp), handled)
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
	return c.recordCrash("record crash", exceptionType, message, "", out, handled)
}

func (c *Client) recordCrash(op, exceptionType, message, fingerprint string, frames []*consentryv1.StackFrame, handled bool) error {
	exceptionType = strings.TrimSpace(exceptionType)
	if exceptionType == "" {
		return fmt.Errorf("%s: %w: the exception type is required", op, ErrInvalidArgument)
	}
	return c.record(op, ScopeCrashReports, &consentryv1.Event{
		Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
			ExceptionType: truncate(exceptionType, maxNameBytes),
			Message:       truncate(message, maxTextBytes),
			Frames:        frames,
			Handled:       handled,
			Fingerprint:   truncate(strings.TrimSpace(fingerprint), maxNameBytes),
		}},
	}, !handled)
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
// inside the deferred recover.
func (c *Client) recordPanic(r any, stack []byte) {
	typ := "panic"
	if _, ok := r.(error); ok {
		typ = fmt.Sprintf("%T", r)
	}
	frames := parseGoStack(string(stack), c.s.inApp, true)
	if err := c.recordCrash("record panic", typ, fmt.Sprint(r), "", frames, false); err != nil {
		c.logf(LevelError, "recording a panic failed: %v", err)
	}
}

// parseStack splits a stack trace in text form into frames.
func parseStack(stack string, inApp []string) []*consentryv1.StackFrame {
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

// inAppModule reports whether module is in one of the prefixes, matched
// at '.' or '/' boundaries.
func inAppModule(module string, prefixes []string) bool {
	for _, p := range prefixes {
		if module == p || strings.HasPrefix(module, p) && len(module) > len(p) && (module[len(p)] == '.' || module[len(p)] == '/') {
			return true
		}
	}
	return false
}

func newFrame(module, function, file string, line int, inApp []string) *consentryv1.StackFrame {
	return &consentryv1.StackFrame{
		Module: truncate(module, maxNameBytes), Function: truncate(function, maxNameBytes),
		File: truncate(file, maxNameBytes), Line: uint32(max(min(line, 1<<31), 0)),
		InApp: module != "" && inAppModule(module, inApp),
	}
}

// parseGoStack parses a goroutine trace as debug.Stack or a crash prints
// it. fromRecover drops the frames of the capture itself: debug.Stack,
// RecoverPanic and the runtime's panic.
func parseGoStack(stack string, inApp []string, fromRecover bool) []*consentryv1.StackFrame {
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
		out = append(out, newFrame(module, function, file, line, inApp))
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
func parseJavaStack(stack string, inApp []string) []*consentryv1.StackFrame {
	var out []*consentryv1.StackFrame
	for _, m := range javaFrame.FindAllStringSubmatch(stack, maxFrames) {
		class, method, file := m[1], m[2], m[3]
		line, _ := strconv.Atoi(m[4])
		module, short := "", class
		if dot := strings.LastIndexByte(class, '.'); dot > 0 {
			module, short = class[:dot], class[dot+1:]
		}
		out = append(out, newFrame(module, short+"."+method, file, line, inApp))
	}
	return out
}

// parseAppleStack parses an Apple crash report's thread backtrace:
// "0  MyApp  0x0000000102f3c3a8 symbol + 123 (File.swift:42)".
func parseAppleStack(stack string, inApp []string) []*consentryv1.StackFrame {
	var out []*consentryv1.StackFrame
	for _, m := range appleFrame.FindAllStringSubmatch(stack, maxFrames) {
		line, _ := strconv.Atoi(m[4])
		out = append(out, newFrame(m[1], m[2], m[3], line, inApp))
	}
	return out
}
