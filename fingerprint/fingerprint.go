// Package fingerprint groups crashes: it computes, from a scrubbed crash,
// a fingerprint that is the same for every occurrence of one bug, across
// app versions, devices, memory addresses, line numbers and scrubbed
// values, and different for different bugs, with the inputs it was
// computed from, so a grouping can be explained. (The crash groups,
// triage dashboard and analyst docs that use it are being built.)
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/consentry/consentry/pipeline"
)

// MaxFrames is the number of in-app frames, from the innermost, that
// identify a crash.
const MaxFrames = 5

// MinFrames is the number of in-app frames below which the fingerprint
// falls back to the exception type, the normalized message and the top
// frame that is not system code.
const MinFrames = 2

// Of returns the fingerprint of c (16 hex digits) and the inputs it was
// computed from, in order:
//
//   - a custom fingerprint the app sent: "custom:<value>";
//   - else the exception type and up to MaxFrames in-app frames, innermost
//     first, each "module function" with addresses, offsets, line
//     numbers, lambda and anonymous-class suffixes and generic arguments
//     removed;
//   - else, with fewer than MinFrames in-app frames, the exception type,
//     the message with numbers, hex values and quoted strings replaced,
//     and the innermost frame, in-app or not, that has a function.
func Of(c *pipeline.CrashRow, custom string) (string, []string) {
	var inputs []string
	switch {
	case strings.TrimSpace(custom) != "":
		inputs = []string{"custom:" + strings.TrimSpace(custom)}
	default:
		inputs = append(inputs, "type:"+normalizeType(c.ExceptionType))
		var frames []string
		for _, f := range c.Frames {
			if f.InApp && len(frames) < MaxFrames {
				if fn := frameKey(f); fn != "" {
					frames = append(frames, "frame:"+fn)
				}
			}
		}
		if len(frames) >= MinFrames {
			inputs = append(inputs, frames...)
			break
		}
		inputs = append(inputs, "message:"+normalizeMessage(c.Message))
		if len(frames) > 0 {
			inputs = append(inputs, frames...)
		} else {
			for _, f := range c.Frames {
				if fn := frameKey(f); fn != "" {
					inputs = append(inputs, "frame:"+fn)
					break
				}
			}
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(inputs, "\n")))
	return hex.EncodeToString(sum[:8]), inputs
}

// normalizeType trims an exception type; signal names stay as they are.
func normalizeType(t string) string { return strings.TrimSpace(t) }

// frameKey returns "module function" of f, normalized; "" if it has no
// function.
func frameKey(f pipeline.Frame) string {
	fn := normalizeFunction(f.Function)
	if fn == "" {
		return ""
	}
	if m := normalizeModule(f.Module); m != "" {
		return m + " " + fn
	}
	return fn
}

// normalizeModule drops what differs between builds of one app: version
// numbers and build hashes in library names (libapp-4.12.0.so).
func normalizeModule(m string) string {
	return strings.TrimSpace(replaceNumbers(strings.TrimSpace(m), false))
}

// normalizeFunction removes from a function name what differs between
// occurrences of one bug: "+164" offsets and addresses, line numbers
// after ':', Java lambda and anonymous classes ($1, $lambda$0,
// $$Lambda$12/0x..), Kotlin's suspend-function suffixes, generic
// arguments, and parameter lists.
func normalizeFunction(fn string) string {
	fn = strings.TrimSpace(fn)
	if i := strings.IndexAny(fn, "+"); i > 0 {
		fn = strings.TrimSpace(fn[:i]) // abort+164, main + 1234
	}
	if i := strings.Index(fn, "("); i > 0 && !strings.HasPrefix(fn, "-[") && !strings.HasPrefix(fn, "+[") {
		fn = fn[:i] // parameter lists, (NoteEditor.kt:42)
	}
	fn = stripGenerics(fn)
	var parts []string
	for _, p := range strings.Split(fn, "$") {
		if p == "" || isDigits(p) || strings.HasPrefix(p, "lambda") || strings.HasPrefix(p, "Lambda") ||
			p == "invokeSuspend" || p == "invoke" || strings.HasPrefix(p, "0x") {
			continue
		}
		parts = append(parts, p)
	}
	fn = strings.Join(parts, "$")
	return replaceNumbers(fn, true)
}

// stripGenerics removes <...> and [...] type arguments (not Objective-C
// method brackets).
func stripGenerics(s string) string {
	if strings.HasPrefix(s, "-[") || strings.HasPrefix(s, "+[") {
		return s
	}
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '<':
			depth++
		case r == '>' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalizeMessage replaces what differs between occurrences of one bug
// in a message: hex values, numbers and quoted strings. Scrubbed markers
// such as [email] stay, so they group.
func normalizeMessage(m string) string {
	m = strings.TrimSpace(m)
	var b strings.Builder
	for i := 0; i < len(m); {
		c := m[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(m[i+1:], c)
			if j < 0 {
				b.WriteString(m[i:])
				i = len(m)
				continue
			}
			b.WriteString("<str>")
			i += j + 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return replaceNumbers(b.String(), false)
}

// replaceNumbers replaces runs of digits, and 0x hex values, with <n> and
// <hex>; with keepWords, digits inside identifiers (Fragment2) are kept.
func replaceNumbers(s string, keepWords bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && (i == 0 || !isWordByte(s[i-1])) {
			j := i + 2
			for j < len(s) && isHex(s[j]) {
				j++
			}
			if j > i+2 {
				b.WriteString("<hex>")
				i = j
				continue
			}
		}
		if isDigit(c) && !(keepWords && i > 0 && isWordByte(s[i-1])) {
			j := i
			for j < len(s) && (isDigit(s[j]) || s[j] == '.' && j+1 < len(s) && isDigit(s[j+1])) {
				j++
			}
			b.WriteString("<n>")
			i = j
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isHex(c byte) bool    { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isWordByte(c byte) bool {
	return isDigit(c) || isLetter(c) || c == '_'
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}
