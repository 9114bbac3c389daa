package scrub

import (
	"strings"
	"unicode/utf8"
)

// email detects an e-mail address whose local part starts with the word
// at ws. The local part runs up to the next '@' (or "%40", as in URLs)
// over [A-Za-z0-9._%+-]; the domain needs two labels and a top-level
// domain of letters. Asset names (icon@2x.png), annotations (@Override),
// npm scopes and user@host are not addresses.
func (sc *scanner) email(ws, we int) match {
	in := sc.in
	if sc.atSign < ws {
		sc.atSign = indexFrom(in, ws, "@")
	}
	if sc.pct40 < ws {
		sc.pct40 = indexFrom(in, ws, "%40")
	}
	at, skip := sc.atSign, 1
	if sc.pct40 < at {
		at, skip = sc.pct40, 3
	}
	if at >= len(in) {
		sc.emailSkip = len(in)
		return match{}
	}
	if at-ws > 64 {
		sc.emailSkip = at - 64
		return match{}
	}
	for p := we; p < at; p++ {
		if class[in[p]]&cLocal == 0 {
			sc.emailSkip = p
			return match{}
		}
	}
	end := sc.emailDomain(at + skip)
	if end < 0 {
		sc.emailSkip = at + 1
		return match{}
	}
	// A domain that runs into another '@' was a local part:
	// retry@jane.doe@example.com is one address, not two halves.
	for sc.b(end) == '@' {
		e := sc.emailDomain(end + 1)
		if e < 0 {
			break
		}
		end = e
	}
	// Local parts may hold letters beyond ASCII (jörg.müller@...): take
	// them, and the ASCII local-part bytes between them, back to the
	// start of the address.
	start := ws
	for start > sc.last && start > at-64 {
		if reachesBack(in[start-1]) {
			start--
			continue
		}
		break
	}
	for start < ws && in[start] >= 0x80 && in[start] < 0xc0 {
		start++ // never start inside a UTF-8 sequence
	}
	return match{Email, start, end}
}

// reachesBack reports whether an e-mail address's local part runs back
// over c: an ASCII local-part byte or a byte of a letter beyond ASCII.
func reachesBack(c byte) bool {
	return c >= 0x80 || class[c]&cLocal != 0
}

// indexFrom returns the index of the first sub in s at or after i, or
// len(s).
func indexFrom(s string, i int, sub string) int {
	j := strings.Index(s[i:], sub)
	if j < 0 {
		return len(s)
	}
	return i + j
}

// emailDomain returns the end of the domain of an e-mail address that
// starts at p, or -1. The domain ends after its last label that is a
// valid top-level domain, so "jane@example.com.1.2" ends after "com".
// Labels may hold letters beyond ASCII (bücher.de, an IDN).
func (sc *scanner) emailDomain(p int) int {
	in := sc.in
	labels, end := 0, -1
	idn := false // a label holds letters beyond ASCII
	for {
		ls := p
		for p < len(in) && (class[in[p]]&cAlnum != 0 || in[p] == '-' || in[p] >= 0x80) {
			p++
		}
		if p == ls || in[ls] == '-' || in[p-1] == '-' {
			break
		}
		label := in[ls:p]
		if isScaleLabel(label) {
			return -1
		}
		labels++
		for i := 0; i < len(label) && !idn; i++ {
			idn = label[i] >= 0x80
		}
		if labels >= 2 {
			if isTLD(label) || (idn || !codeCase(label)) && isTLDAnyCase(label) {
				end = p
			} else if a := asciiLetters(label); a > 0 && a < len(label) && label[a] >= 0x80 && isTLD(label[:a]) {
				// text in another script right after the address:
				// jane@example.com。 or jane@example.com的
				return ls + a
			}
		}
		if sc.b(p) != '.' || class[sc.b(p+1)]&cAlnum == 0 && sc.b(p+1) < 0x80 {
			break
		}
		p++
	}
	return end
}

// isTLDAnyCase reports whether l, which isTLD refuses, is a top-level
// domain written in mixed case: ASCII letters that are not a file
// extension. emailDomain takes it when the case is not that of code
// (this@MainActivity.lifecycleScope) or the domain has a label beyond
// ASCII (jane@büCHER.exampLe, as typed or mangled).
func isTLDAnyCase(l string) bool {
	if len(l) < 2 || len(l) > 24 || asciiLetters(l) != len(l) {
		return false
	}
	return !equalFoldAny(l, fileExtensions[:]...)
}

// codeCase reports whether w is written as names in code are: lower
// case, capitalized, camelCase or PascalCase, where every capital but a
// last one is followed by a small letter (lifecycleScope, Companion),
// unlike text whose case was mixed at random (exAMple).
func codeCase(w string) bool {
	for i := 0; i < len(w); i++ {
		if isUpper(w[i]) && i+1 < len(w) && !(w[i+1] >= 'a' && w[i+1] <= 'z') {
			return false
		}
	}
	return true
}

// isScaleLabel reports whether a domain label is an image scale such as
// "2x" in icon@2x.png.
func isScaleLabel(l string) bool {
	if len(l) < 2 || l[len(l)-1]|0x20 != 'x' {
		return false
	}
	for i := 0; i < len(l)-1; i++ {
		if !isDigit(l[i]) {
			return false
		}
	}
	return true
}

// isTLD reports whether l can be a top-level domain: at least two letters
// and not a common file extension; all of one case, unless it is a country
// code or a common generic domain (Example.Com), as code has
// this@MainActivity.lifecycleScope; or letters beyond ASCII (an IDN),
// valid UTF-8.
func isTLD(l string) bool {
	if len(l) < 2 || len(l) > 24 {
		return false
	}
	upper, lower, idn := false, false, false
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 0x80:
			idn = true
		default:
			return false
		}
	}
	if idn {
		return !upper && !lower && utf8.ValidString(l) && utf8.RuneCountInString(l) >= 2
	}
	if upper && lower && len(l) > 2 && !isGenericTLD(l) {
		return false
	}
	return !equalFoldAny(l, fileExtensions[:]...)
}

// fileExtensions are extensions of files that apps name with an '@', as in
// icon@2x.png; they are not taken for top-level domains.
var fileExtensions = [...]string{
	"png", "jpg", "jpeg", "gif", "webp", "svg", "pdf", "json", "xml", "txt", "html", "js",
	"css", "kt", "java", "swift", "m", "mm", "so", "dylib", "a", "o", "plist", "ttf", "otf",
	"mp3", "mp4", "wav", "zip", "heic", "bmp", "ico", "nib", "storyboard", "strings", "car",
	"lottie", "webm", "mov", "aac", "ogg", "woff", "woff2", "gz", "db", "sqlite", "dex", "jar",
	"aar", "apk", "ipa", "framework", "bundle", "xib", "h", "c", "cpp", "cc", "md", "yml",
	"yaml", "ts", "tsx", "jsx", "map", "wasm", "bin", "dat", "log", "csv", "pb", "proto",
}

// isGenericTLD reports whether l is a common generic top-level domain.
func isGenericTLD(l string) bool {
	return equalFoldAny(l, genericTLDs[:]...)
}

var genericTLDs = [...]string{
	"com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "app", "dev",
	"mail", "email", "online", "site", "shop", "store", "tech", "cloud", "xyz", "club", "live",
	"life", "blog", "page", "work", "world", "today", "mobi", "aero", "asia", "coop", "museum",
}

// asciiLetters returns the length of the run of ASCII letters that starts
// s.
func asciiLetters(s string) int {
	i := 0
	for i < len(s) && isLetter(s[i]) {
		i++
	}
	return i
}
