package scrub

import (
	"cmp"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The detection copy.
//
// An identifier can be written in forms the detectors, which read ASCII,
// would not see: percent-encoded in a URL (jane%2Edoe%40example.com), as
// JSON or C escapes (\u0040, \x40, and nested, \\u0040), as HTML entities
// (&#64;, &commat;, &amp;#64;), split by invisible characters (zero-width
// spaces and joiners, soft hyphens, bidi marks), in full-width or
// mathematical letters and digits, in the digits of other scripts (٠٦٦٤),
// with no-break or other Unicode spaces and dashes between its groups.
// When a text holds any of these, the scrubber reads a normalized copy of
// it: escapes decoded (one level for each, nested escapes of the same kind
// too), invisible characters removed, and runes folded to ASCII by the
// table in foldtable.go (NFKC where that gives ASCII, Unicode digits to
// 0-9, spaces to ' ', dashes to '-', curly quotes to straight ones), and
// the words an e-mail address's '@' and dots are written as in brackets
// ((at), [at], {at}, (dot), ...) read as what they stand for. Each
// byte of the copy remembers where in the text it came from, and every
// finding in the copy replaces the text it came from, escapes and all.
//
// Letters of other scripts that look like Latin ones (Cyrillic а, Greek ο)
// are not folded: they are letters of words in those scripts, and folding
// them would join words and hide identifiers next to them. An e-mail
// address's domain may hold them (IDN), and is found with them. Base64 is
// not decoded: a long encoded value is a secret by its shape, a short one
// is not looked into.

// foldRemove is the to of a foldRange whose runes are removed.
const foldRemove = -1

// foldRange folds the runes lo to hi: to is the ASCII byte lo folds to, or
// foldRemove; with step 1, lo+i folds to to+i, with step 0 every rune of
// the range folds to to.
type foldRange struct {
	lo, hi rune
	to     rune
	step   uint8
}

// foldString folds r to s, more than one ASCII byte.
type foldString struct {
	r rune
	s string
}

// asciiStrings holds every one-byte string, so that fold does not
// allocate.
var asciiStrings = func() (t [128]string) {
	for i := range t {
		t[i] = string(rune(i))
	}
	return t
}()

// foldBMP has bit r set when the rune r of the Basic Multilingual Plane is
// folded: most runes are not, and need no search.
var foldBMP = func() (m [0x10000 / 64]uint64) {
	set := func(r rune) {
		if r < 0x10000 {
			m[r>>6] |= 1 << (r & 63)
		}
	}
	for _, g := range foldRanges {
		for r := g.lo; r <= g.hi && r < 0x10000; r++ {
			set(r)
		}
	}
	for _, s := range foldStrings {
		set(s.r)
	}
	return m
}()

// fold returns what the rune r beyond ASCII is folded to in the detection
// copy ("" when it is removed), and whether it is folded at all.
func fold(r rune) (string, bool) {
	if r < utf8.RuneSelf || r < 0x10000 && foldBMP[r>>6]&(1<<(r&63)) == 0 {
		return "", false
	}
	// the first range that ends at r or after
	i, _ := slices.BinarySearchFunc(foldRanges[:], r, func(g foldRange, r rune) int { return cmp.Compare(g.hi, r) })
	if i < len(foldRanges) && foldRanges[i].lo <= r {
		g := foldRanges[i]
		if g.to == foldRemove {
			return "", true
		}
		c := g.to
		if g.step == 1 {
			c += r - g.lo
		}
		return asciiStrings[c], true
	}
	if i, ok := slices.BinarySearchFunc(foldStrings[:], r, func(f foldString, r rune) int { return cmp.Compare(f.r, r) }); ok {
		return foldStrings[i].s, true
	}
	return "", false
}

// normText is the detection copy of a text. text[i] came from the unit
// (an escape, or a character written as several escapes, a rune, a byte)
// of the original that starts at src[i]; src[len(text)] is the length of
// the original. src never decreases.
type normText struct {
	b   []byte
	src []int32
	u   []byte  // the copy with the underscores of glued words as spaces
	ms  []match // findings, reused
}

// maxPooledNorm bounds the buffers a Scrubber keeps for the next text.
const maxPooledNorm = 256 << 10

// text returns the copy as a string that shares its bytes: valid until
// the copy is built again.
func (nt *normText) text() string {
	if len(nt.b) == 0 {
		return ""
	}
	return unsafe.String(&nt.b[0], len(nt.b))
}

// span returns the span of the original that the copy's bytes start to
// end came from: whole units, so a finding that starts or ends inside an
// escape covers the escape.
func (nt *normText) span(start, end int) (int, int) {
	k := end
	for k < len(nt.b) && nt.src[k] == nt.src[end-1] {
		k++
	}
	return int(nt.src[start]), int(nt.src[k])
}

// changesAt reports whether the detection copy changes in at i, where a
// byte of class cNorm is: an escape that decodes, a rune that folds, or a
// '+' that stands for a space in a URL's query.
func changesAt(in string, i int) bool {
	switch c := in[i]; {
	case c >= utf8.RuneSelf:
		r, _ := utf8.DecodeRuneInString(in[i:])
		_, ok := fold(r)
		return ok
	case c == '+':
		return queryPlus(in, i)
	case c == '(' || c == '[' || c == '{':
		n, _ := bracketWordAt(in, i)
		return n > 0
	}
	var buf [utf8.UTFMax]byte
	n, _, _ := escapeAt(in, i, buf[:0])
	return n > 0
}

// build makes the detection copy of in, in one pass, and reports whether
// it differs from in.
func (nt *normText) build(in string) bool {
	b, src := slices.Grow(nt.b[:0], len(in)+8), slices.Grow(nt.src[:0], len(in)+9)
	changed := false
	for i := 0; i < len(in); {
		c := in[i]
		if class[c]&cNorm == 0 {
			// a run of bytes that stay as they are
			j := i + 1
			for j < len(in) && class[in[j]]&cNorm == 0 {
				j++
			}
			b = append(b, in[i:j]...)
			n := len(src)
			src = slices.Grow(src, j-i)[:n+j-i]
			for k := range j - i {
				src[n+k] = int32(i + k)
			}
			i = j
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(in[i:])
			var folded bool
			b, src, folded = appendRune(b, src, in[i:i+n], r, i)
			changed = changed || folded
			i += n
			continue
		}
		if c == '+' && queryPlus(in, i) {
			b = append(b, ' ')
			src = append(src, int32(i))
			changed = true
			i++
			continue
		}
		var buf [8]byte
		n, out, raw := escapeAt(in, i, buf[:0])
		if n == 0 {
			b = append(b, c)
			src = append(src, int32(i))
			i++
			continue
		}
		changed = true
		if raw && out[0] >= utf8.RuneSelf {
			// A character written as several byte escapes: %C3%A9.
			var seq [utf8.UTFMax]byte
			seq[0] = out[0]
			m, j := 1, i+n
			for m < utf8.UTFMax && !utf8.FullRune(seq[:m]) && j < len(in) {
				var buf2 [8]byte
				n2, out2, raw2 := escapeAt(in, j, buf2[:0])
				if n2 == 0 || !raw2 || out2[0]&0xc0 != 0x80 {
					break
				}
				seq[m] = out2[0]
				m, j = m+1, j+n2
			}
			if r, size := utf8.DecodeRune(seq[:m]); r != utf8.RuneError && size == m {
				b, src, _ = appendRune(b, src, string(seq[:m]), r, i)
				i = j
				continue
			}
			b = append(b, out[0])
			src = append(src, int32(i))
			i += n
			continue
		}
		for k := 0; k < len(out); {
			r, size := utf8.DecodeRune(out[k:])
			b, src, _ = appendRune(b, src, string(out[k:k+size]), r, i)
			k += size
		}
		i += n
	}
	src = append(src, int32(len(in)))
	// Decoded and folded, (at) may have been %28at%29, [a\u200bt] or
	// &#40;at&#41;, and the blanks around it no-break spaces.
	var words bool
	b, src, words = bracketWords(b, src)
	nt.b, nt.src = b, src
	return changed || words
}

// bracketWords replaces, in the copy b whose bytes came from src (with
// one more entry, the original's length), each word "at" or "dot" in
// brackets (bracketWordAt) by the byte it stands for, with a blank before
// and one after it, in place. It reports whether it replaced any.
func bracketWords(b []byte, src []int32) ([]byte, []int32, bool) {
	if len(b) == 0 {
		return b, src, false
	}
	s := unsafe.String(&b[0], len(b)) // read ahead of what is written
	// most copies have none: find the first before writing
	first := -1
	for i, c := range b {
		if c == '(' || c == '[' || c == '{' {
			if n, _ := bracketWordAt(s, i); n > 0 {
				first = i
				break
			}
		}
	}
	if first < 0 {
		return b, src, false
	}
	w, changed := first, false
	for r := first; r < len(b); {
		if c := b[r]; c == '(' || c == '[' || c == '{' {
			if n, to := bracketWordAt(s, r); n > 0 {
				at := src[r]
				if w > 0 && b[w-1] == ' ' {
					w--
					at = src[w]
				}
				b[w], src[w] = to, at
				w, r, changed = w+1, r+n, true
				if r < len(b) && b[r] == ' ' {
					r++
				}
				continue
			}
		}
		b[w], src[w] = b[r], src[r]
		w++
		r++
	}
	src[w] = src[len(b)]
	return b[:w], src[:w+1], changed
}

// appendRune appends the rune r, written as text, to the copy, folded, as
// one unit that starts at at in the original.
func appendRune(b []byte, src []int32, text string, r rune, at int) ([]byte, []int32, bool) {
	s, folded := text, false
	if r >= utf8.RuneSelf {
		if f, ok := fold(r); ok {
			s, folded = f, true
		}
	}
	b = append(b, s...)
	for range len(s) {
		src = append(src, int32(at))
	}
	return b, src, folded
}

// queryPlus reports whether the '+' at in[i] is in the query of a URL,
// where it stands for a space (?ref=5112+3072+4384+3730): a '?' after a
// word, a marker or '/' comes before it in the same token, with no '#'
// between, and a value goes on after it (a marker counts as the word it
// replaced, so a scrubbed URL reads as it did). A '+' that starts a value
// (?to=+43..., ?contact=tel:+43..., ?tel=(+43)...) is taken as written, as
// the sign of a phone number put into a URL unencoded. It looks back at most 512 bytes.
func queryPlus(in string, i int) bool {
	if i+1 >= len(in) || class[in[i+1]]&cSpace != 0 || i == 0 {
		return false
	}
	switch in[i-1] {
	case '=', '&', '?', ' ', ':', '(':
		return false
	}
	for j := i - 1; j >= 0 && j >= i-512; j-- {
		switch in[j] {
		case ' ', '\t', '\r', '\n', '\v', '\f', '"', '\'', '<', '>', '`', '#':
			return false
		case '?':
			// after a word (of any script), a marker or '/', as the
			// detection copy reads it: without the characters it
			// removes (invisible ones, stray bytes)
			k := invisibleBefore(in, j)
			return k > 0 && (queryMarkAfter(in[k-1]) || in[k-1] == ']' || in[k-1] == '[')
		}
	}
	return false
}

// queryMarkAfter reports whether a '?' after the byte c opens a URL's
// query: after a word (of any script: a byte beyond ASCII counts) or a
// '/'. queryPlus and the end of a key's value (endsValue) ask the same,
// so that a '?' a value ends at reads the same beside the value's marker.
func queryMarkAfter(c byte) bool { return isWord(c) || c == '/' || c >= utf8.RuneSelf }

// bracketWordAt returns the length of the word "at" or "dot", in either
// case, in round, square or curly brackets at in[i], as people write an
// e-mail address's '@' and dots (jane(at)example.com, jane [at] example
// [dot] com), and the byte it stands for; 0 if there is none.
func bracketWordAt(in string, i int) (int, byte) {
	var closing byte
	switch in[i] {
	case '(':
		closing = ')'
	case '[':
		closing = ']'
	case '{':
		closing = '}'
	default:
		return 0, 0
	}
	rest := in[i+1:]
	switch {
	case len(rest) >= 3 && rest[2] == closing && equalFold(rest[:2], "at"):
		return 4, '@'
	case len(rest) >= 4 && rest[3] == closing && equalFold(rest[:3], "dot"):
		return 5, '.'
	}
	return 0, 0
}

// escapeAt decodes the escape at in[i] (a '%', '\' or '&'), appending
// what it stands for to dst. It returns the escape's length, 0 if there is
// none that decodes, and whether it is the escape of one byte (%XX, \xXX),
// which may be part of a character written as several.
func escapeAt(in string, i int, dst []byte) (int, []byte, bool) {
	switch in[i] {
	case '%':
		return percentAt(in, i, dst)
	case '\\':
		if winPathSep(in, i) {
			return 0, dst, false
		}
		n, out := backslashAt(in, i, dst)
		return n, out, n >= 4 && in[i+n-3] == 'x' && in[i+n-4] == '\\'
	case '&':
		n, out := entityAt(in, i, dst)
		return n, out, false
	}
	return 0, dst, false
}

// winPathSep reports whether the backslash at in[i] is a single one that
// separates the folders of a Windows path, C:\Users\jane\river.json or
// \\server\share\new, and so escapes nothing (\r, \n, \t, \u, \x
// start folder names there). The path is the token that holds it: the
// bytes back to whitespace, a quote or a bracket, at most 512.
func winPathSep(in string, i int) bool {
	if i+1 < len(in) && in[i+1] == '\\' || i > 0 && in[i-1] == '\\' {
		return false // a run of backslashes: an escaped string
	}
	for j := i - 1; j >= 0 && j >= i-512; j-- {
		switch c := in[j]; c {
		case ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '(', '[', '{', '=', ',', ';', '|':
			return false
		case ':':
			// a drive at the start of the token: C:\..., also glued
			// (cache_C:\...) or split by invisible characters
			d := invisibleBefore(in, j)
			return nextVisible(in, j+1) == '\\' && d > 0 && isLetter(in[d-1]) && (d < 2 || in[d-2] == '_' || !isWord(in[d-2]))
		}
	}
	return false
}

// invisibleBefore returns the start of the characters that the detection
// copy removes (zero-width characters, soft hyphens, ...) that end at
// in[p], which is p itself when there are none.
func invisibleBefore(in string, p int) int {
	for p > 0 && in[p-1] >= utf8.RuneSelf {
		r, n := utf8.DecodeLastRuneInString(in[:p])
		if !removed(r, n, in[p-n]) {
			break
		}
		p -= n
	}
	return p
}

// removed reports whether the detection copy removes the rune r, n bytes
// long, that starts with the byte lead: one that folds to nothing, or a
// byte that starts no valid character; a stray continuation byte (0x80 to
// 0xbf), which starts nothing the copy reads, stays.
func removed(r rune, n int, lead byte) bool {
	if r == utf8.RuneError && n == 1 && lead < 0xc0 {
		return false
	}
	f, ok := fold(r)
	return ok && f == ""
}

// nextVisible returns the byte at or after in[p] that follows the
// characters the detection copy removes, or 0.
func nextVisible(in string, p int) byte {
	for p < len(in) && in[p] >= utf8.RuneSelf {
		r, n := utf8.DecodeRuneInString(in[p:])
		if !removed(r, n, in[p]) {
			break
		}
		p += n
	}
	if p < len(in) {
		return in[p]
	}
	return 0
}

// hexAt returns the value of the n hex digits at in[i:], if there are.
func hexAt(in string, i, n int) (rune, bool) {
	if i < 0 || i+n > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(in[i : i+n]) {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// percentAt decodes %XX, %uXXXX, and %XX encoded again as %25XX (any
// number of times).
func percentAt(in string, i int, dst []byte) (int, []byte, bool) {
	p := i + 1
	if p < len(in) && (in[p] == 'u' || in[p] == 'U') {
		if r, ok := hexAt(in, p+1, 4); ok && !utf16.IsSurrogate(r) {
			return 6, utf8.AppendRune(dst, r), false
		}
	}
	for p+4 <= len(in) && in[p] == '2' && in[p+1] == '5' {
		if _, ok := hexAt(in, p+2, 2); !ok {
			break
		}
		p += 2
	}
	v, ok := hexAt(in, p, 2)
	if !ok {
		return 0, dst, false
	}
	return p + 2 - i, append(dst, byte(v)), true
}

// backslashAt decodes the escape that a run of backslashes at in[i]
// starts: \uXXXX (with surrogate pairs), \u{X...}, \UXXXXXXXX, \xXX,
// \" \' \/, and \n \r \t after an odd run. An escape after any number of
// backslashes decodes, as in JSON inside JSON (\\u0040, \\\"); a run of
// several backslashes before anything else is one.
func backslashAt(in string, i int, dst []byte) (int, []byte) {
	j := i
	for j < len(in) && in[j] == '\\' {
		j++
	}
	k := j - i
	if j == len(in) {
		if k > 1 {
			return k, append(dst, '\\')
		}
		return 0, dst
	}
	switch c := in[j]; c {
	case 'u':
		if r, ok := hexAt(in, j+1, 4); ok {
			end := j + 5
			if utf16.IsSurrogate(r) {
				// the low half: \uXXXX after a run of backslashes
				q := end
				for q < len(in) && in[q] == '\\' {
					q++
				}
				r2, ok := hexAt(in, q+1, 4)
				if q == end || q >= len(in) || in[q] != 'u' || !ok {
					break
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					break
				}
				end = q + 5
			}
			return end - i, utf8.AppendRune(dst, r)
		}
		if j+1 < len(in) && in[j+1] == '{' {
			q := j + 2
			for q < len(in) && q-(j+2) < 7 && isHex(in[q]) {
				q++
			}
			if r, ok := hexAt(in, j+2, q-(j+2)); ok && q > j+2 && q < len(in) && in[q] == '}' && utf8.ValidRune(r) {
				return q + 1 - i, utf8.AppendRune(dst, r)
			}
		}
	case 'U':
		if r, ok := hexAt(in, j+1, 8); ok && utf8.ValidRune(r) {
			return j + 9 - i, utf8.AppendRune(dst, r)
		}
	case 'x':
		if v, ok := hexAt(in, j+1, 2); ok {
			return j + 3 - i, append(dst, byte(v))
		}
	case '"', '\'', '/':
		return k + 1, append(dst, c)
	case 'n', 'r', 't':
		if k%2 == 1 {
			ctl := byte('\t')
			switch c {
			case 'n':
				ctl = '\n'
			case 'r':
				ctl = '\r'
			}
			return k + 1, append(dst, ctl)
		}
	}
	if k > 1 {
		return k, append(dst, '\\')
	}
	return 0, dst
}

// entities are the named HTML character references that stand for
// something an identifier is written with; the rest are not decoded.
var entities = map[string]string{
	"amp": "&", "lt": "<", "gt": ">", "quot": `"`, "apos": "'", "nbsp": " ", "ensp": " ", "emsp": " ",
	"thinsp": " ", "commat": "@", "period": ".", "colon": ":", "sol": "/", "bsol": `\`, "lowbar": "_",
	"hyphen": "-", "dash": "-", "minus": "-", "ndash": "-", "mdash": "-", "plus": "+", "equals": "=",
	"num": "#", "percnt": "%", "lpar": "(", "rpar": ")", "lsqb": "[", "rsqb": "]", "lbrack": "[",
	"rbrack": "]", "lcub": "{", "rcub": "}", "lbrace": "{", "rbrace": "}", "comma": ",", "semi": ";",
	"excl": "!", "quest": "?", "ast": "*", "verbar": "|", "vert": "|", "Tab": "\t", "NewLine": "\n",
	"hellip": "...", "zwj": "", "zwnj": "", "shy": "", "lrm": "", "rlm": "",
}

// entityAt decodes an HTML character reference: &#NN; &#xHH; (the ';'
// may be missing before a byte that is no digit or letter) or one of
// entities, also when its '&' is itself written &amp; (any number of
// times).
func entityAt(in string, i int, dst []byte) (int, []byte) {
	p := i + 1
	for p+4 < len(in) && in[p:p+4] == "amp;" {
		p += 4
	}
	if n, out := entityBody(in, i, p, dst); n > 0 {
		return n, out
	}
	if p > i+1 {
		return 5, append(dst, '&') // &amp; before what is no reference
	}
	return 0, dst
}

// entityBody decodes the reference after the '&' (and any "amp;") of the
// one at in[i], which starts at p.
func entityBody(in string, i, p int, dst []byte) (int, []byte) {
	if p >= len(in) {
		return 0, dst
	}
	if in[p] == '#' {
		q, base := p+1, 10
		if q < len(in) && (in[q] == 'x' || in[q] == 'X') {
			q, base = q+1, 16
		}
		s := q
		var r rune
		for q < len(in) && q-s < 8 {
			c := in[q]
			switch {
			case isDigit(c):
				r = r*rune(base) + rune(c-'0')
			case base == 16 && isHex(c):
				r = r*16 + rune(c|0x20-'a'+10)
			default:
				goto done
			}
			q++
		}
	done:
		if q == s || !utf8.ValidRune(r) || r == 0 {
			return 0, dst
		}
		if q < len(in) && in[q] == ';' {
			q++
		} else if q < len(in) && isWord(in[q]) {
			return 0, dst
		}
		return q - i, utf8.AppendRune(dst, r)
	}
	q := p
	for q < len(in) && q-p < 8 && isLetter(in[q]) {
		q++
	}
	if q == p || q >= len(in) || in[q] != ';' {
		return 0, dst
	}
	s, ok := entities[in[p:q]]
	if !ok {
		return 0, dst
	}
	return q + 1 - i, append(dst, s...)
}
