package privacyprobe

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// fold returns s as a reader would compare it: NFKC-normalised (full-width
// forms and no-break spaces become ASCII), without zero-width and other
// format characters, with every space character a plain space and every
// dash a hyphen-minus, in lower case.
func fold(s string) string {
	if isPlainLower(s) {
		return s
	}
	s = norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i]) // keep bytes of binary data as they are
			i++
			continue
		}
		i += n
		switch {
		case unicode.Is(unicode.Cf, r):
			// zero-width space and joiners, word joiner, BOM, soft hyphen
		case unicode.Is(unicode.Zs, r) || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		case unicode.Is(unicode.Pd, r) || r == '\u2212':
			b.WriteByte('-')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isPlainLower reports whether s is ASCII without upper-case letters, which
// fold leaves as it is.
func isPlainLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// decode undoes the escapes a value may be stored or logged in: backslash
// escapes (JSON's \uXXXX, ClickHouse's and Go's \xHH, \n, \\, \'),
// HTML character references and percent-encoding, repeatedly, for
// escapes within escapes. It returns s itself when s holds none.
func decode(s string) string {
	for range 3 {
		if !strings.ContainsAny(s, `\&%`) {
			return s
		}
		t := percentDecode(html.UnescapeString(unescapeBackslash(s)))
		if t == s {
			return s
		}
		s = t
	}
	return s
}

// unescapeBackslash resolves backslash escapes.
func unescapeBackslash(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'x':
			if v, ok := hexValue(s, i+1, 2); ok {
				b.WriteByte(byte(v))
				i += 2
			} else {
				b.WriteByte(e)
			}
		case 'u':
			v, ok := hexValue(s, i+1, 4)
			if !ok {
				b.WriteByte(e)
				break
			}
			i += 4
			r := rune(v)
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo, ok := hexValue(s, i+3, 4); ok && lo >= 0xdc00 && lo < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + rune(lo-0xdc00)
					i += 6
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(e) // \\, \', \", \/ and anything else: the character
		}
	}
	return b.String()
}

// hexValue parses n hex digits of s at i.
func hexValue(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | int(d)
	}
	return v, true
}

// percentDecode resolves %XX escapes and leaves malformed ones alone.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if v, ok := hexValue(s, i+1, 2); ok {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isNumberSeparator reports whether c may stand between the digits of one
// number written by a person: "+43 (0)664 123-45.67/8".
func isNumberSeparator(c byte) bool {
	switch c {
	case ' ', '-', '.', '(', ')', '/', '+':
		return true
	}
	return false
}

// digitRuns calls fn with the digits of each run of digits and number
// separators in s that holds at least minDigits digits, and the offset of
// the run in s.
func digitRuns(s string, minDigits int, fn func(digits string, at int)) {
	var buf []byte
	start := -1
	flush := func() {
		if len(buf) >= minDigits {
			fn(string(buf), start)
		}
		buf, start = buf[:0], -1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if start < 0 {
				start = i
			}
			buf = append(buf, c)
		case start >= 0 && isNumberSeparator(c):
		default:
			if start >= 0 {
				flush()
			}
		}
	}
	if start >= 0 {
		flush()
	}
}

// onlyDigits returns the decimal digits of s.
func onlyDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
