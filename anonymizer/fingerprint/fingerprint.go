// Package fingerprint groups crashes: it computes, from a scrubbed crash,
// a fingerprint that is the same for every occurrence of one bug, across
// app versions, devices, memory addresses, line numbers and scrubbed
// values, and different for different bugs, with the inputs it was
// computed from, so a grouping can be explained.
package fingerprint

import (
	"fmt"
	"strings"

	"github.com/consentry/consentry/pipeline"
)

// MaxFrames is the number of in-app frames, from the innermost, that
// identify a crash.
const MaxFrames = 5

// MinFrames is the number of in-app frames below which the fingerprint
// falls back to the exception type, the normalized message and the top
// frame.
const MinFrames = 2

// Sum returns the fingerprint of c, a 64-bit FNV-1a hash of the inputs Of
// lists, without allocating. custom is the grouping key the app sent, if
// any. The rule:
//
//   - a custom key: "custom:<key>" alone;
//   - else the exception type and up to MaxFrames in-app frames, innermost
//     first, each "module function" with offsets and addresses, line
//     numbers, parameter lists, lambda and anonymous-class suffixes and
//     generic arguments removed;
//   - else, with fewer than MinFrames in-app frames, the exception type,
//     the message with numbers, hex values and quoted strings replaced,
//     and the in-app frames, or the innermost frame with a function.
func Sum(c *pipeline.CrashRow, custom string) uint64 {
	var s sink
	build(&s, c, custom)
	return s.h
}

// Of returns the fingerprint of c as 16 hex digits, and the inputs it was
// computed from (see Sum), for showing why crashes were grouped.
func Of(c *pipeline.CrashRow, custom string) (string, []string) {
	s := sink{collect: true}
	build(&s, c, custom)
	return Hex(s.h), s.inputs
}

// Hex formats a fingerprint as 16 hex digits.
func Hex(fp uint64) string { return fmt.Sprintf("%016x", fp) }

// sink hashes the inputs as they are written and, when collecting, keeps
// them. The inputs are separated by '\n'.
type sink struct {
	h       uint64
	collect bool
	cur     []byte
	inputs  []string
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (s *sink) byte(c byte) {
	if s.h == 0 {
		s.h = fnvOffset
	}
	s.h ^= uint64(c)
	s.h *= fnvPrime
	if s.collect {
		s.cur = append(s.cur, c)
	}
}

func (s *sink) str(x string) {
	for i := 0; i < len(x); i++ {
		s.byte(x[i])
	}
}

// end ends the current input.
func (s *sink) end() {
	if s.collect {
		s.inputs = append(s.inputs, string(s.cur))
	}
	s.byte('\n')
	s.cur = s.cur[:0]
}

func build(s *sink, c *pipeline.CrashRow, custom string) {
	if custom = strings.TrimSpace(custom); custom != "" {
		s.str("custom:")
		s.str(custom)
		s.end()
		return
	}
	s.str("type:")
	s.str(strings.TrimSpace(c.ExceptionType))
	s.end()
	inApp := 0
	for _, f := range c.Frames {
		if f.InApp && hasFunction(f) {
			inApp++
		}
	}
	if inApp >= MinFrames {
		writeInApp(s, c.Frames)
		return
	}
	s.str("message:")
	writeText(s, strings.TrimSpace(c.Message), false, true)
	s.end()
	if inApp > 0 {
		writeInApp(s, c.Frames)
		return
	}
	for _, f := range c.Frames {
		if hasFunction(f) {
			writeFrame(s, f)
			return
		}
	}
}

// writeInApp writes up to MaxFrames in-app frames, innermost first.
func writeInApp(s *sink, frames []pipeline.Frame) {
	n := 0
	for _, f := range frames {
		if n == MaxFrames {
			return
		}
		if f.InApp && hasFunction(f) {
			writeFrame(s, f)
			n++
		}
	}
}

func writeFrame(s *sink, f pipeline.Frame) {
	s.str("frame:")
	if m := strings.TrimSpace(f.Module); m != "" {
		writeText(s, m, false, false)
		s.byte(' ')
	}
	writeFunction(s, f.Function)
	s.end()
}

func hasFunction(f pipeline.Frame) bool { return cutFunction(f.Function) != "" }

// cutFunction trims a function name to what identifies it: no "+164"
// offset, no parameter list or "(File.kt:42)" (Objective-C's -[Class
// method:] is kept whole).
func cutFunction(fn string) string {
	fn = strings.TrimSpace(fn)
	if i := strings.IndexByte(fn, '+'); i > 0 {
		fn = strings.TrimSpace(fn[:i])
	}
	if !strings.HasPrefix(fn, "-[") && !strings.HasPrefix(fn, "+[") {
		if i := strings.IndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
	}
	return fn
}

// writeFunction writes a function name without what differs between
// occurrences of one bug: Java lambda and anonymous classes ($1,
// $lambda$0, $$Lambda$12/0x..), Kotlin's invokeSuspend, generic
// arguments, and stand-alone numbers.
func writeFunction(s *sink, fn string) {
	fn = cutFunction(fn)
	first := true
	for rest := fn; ; {
		part, tail, more := strings.Cut(rest, "$")
		if keepPart(part) {
			if !first {
				s.byte('$')
			}
			writeText(s, part, true, false)
			first = false
		}
		if !more {
			return
		}
		rest = tail
	}
}

func keepPart(p string) bool {
	return p != "" && !isDigits(p) && !strings.HasPrefix(p, "lambda") && !strings.HasPrefix(p, "Lambda") &&
		p != "invokeSuspend" && p != "invoke" && !strings.HasPrefix(p, "0x")
}

// writeText writes x with runs of digits as <n> and 0x hex values as
// <hex>; with inWords, digits inside identifiers (Fragment2) stay; with
// quotes, quoted strings become <str>. Generic arguments in <...> are
// left out, except in quotes and Objective-C brackets.
func writeText(s *sink, x string, inWords, quotes bool) {
	objc := strings.HasPrefix(x, "-[") || strings.HasPrefix(x, "+[")
	depth := 0
	for i := 0; i < len(x); {
		c := x[i]
		switch {
		case quotes && (c == '\'' || c == '"'):
			if j := strings.IndexByte(x[i+1:], c); j >= 0 {
				s.str("<str>")
				i += j + 2
				continue
			}
		case !objc && !quotes && c == '<':
			depth++
			i++
			continue
		case !objc && !quotes && c == '>' && depth > 0:
			depth--
			i++
			continue
		}
		if depth > 0 {
			i++
			continue
		}
		if c == '0' && i+2 < len(x) && (x[i+1] == 'x' || x[i+1] == 'X') && isHex(x[i+2]) && (i == 0 || !isWordByte(x[i-1])) {
			j := i + 2
			for j < len(x) && isHex(x[j]) {
				j++
			}
			s.str("<hex>")
			i = j
			continue
		}
		if isDigit(c) && !(inWords && i > 0 && isWordByte(x[i-1])) {
			j := i
			for j < len(x) && (isDigit(x[j]) || x[j] == '.' && j+1 < len(x) && isDigit(x[j+1])) {
				j++
			}
			s.str("<n>")
			i = j
			continue
		}
		s.byte(c)
		i++
	}
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isLetter(c byte) bool   { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isHex(c byte) bool      { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isWordByte(c byte) bool { return isDigit(c) || isLetter(c) || c == '_' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
