package scrub

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// This file hides identifiers of every kind in every context and encoding
// that has fooled detectors (after a '/', '=', ':', '@' or '#', inside
// brackets and quotes, in JSON and in JSON inside JSON, percent-encoded,
// as \u and \x escapes, as HTML entities, split by zero-width characters,
// in full-width or other digits, with no-break spaces and Unicode dashes,
// in another case, broken over lines) and checks that each one is found.
// It also puts what crash triage needs (versions, addresses, line numbers,
// timestamps) in the same contexts and checks that it is kept.

// ctxValue is an identifier written as pre+secret+post; the secret is what
// must be covered by findings.
type ctxValue struct {
	kind              Kind
	pre, secret, post string
}

// ctxValues are the identifiers, at least one of every kind.
var ctxValues = []ctxValue{
	{Email, "", "jane.doe@example.com", ""},
	{Email, "", "jörg.müller@bücher.de", ""},
	{Phone, "", "+43 664 1234567", ""},
	{Phone, "", "(415) 555-2671", ""},
	{Phone, "", "0664 1234567", ""},
	{IP, "", "192.0.2.10", ""},
	{IP, "", "203.0.113.7", ""},
	{IP, "", "2001:db8::1", ""},
	{IP, "", "fe80::1ff:fe23:4567:890a", ""},
	{UUID, "", "3F2504E0-4F89-41D3-9A0C-0305E82C3301", ""},
	{IMEI, "", "490154203237518", ""},
	{MAC, "", "00:1A:2B:3C:4D:5E", ""},
	{MAC, "", "00-1a-2b-3c-4d-5e", ""},
	{Card, "", "4111 1111 1111 1111", ""},
	{Card, "", "5500000000000004", ""},
	{IBAN, "", "DE89 3704 0044 0532 0130 00", ""},
	{IBAN, "", "GB82WEST12345698765432", ""},
	{Token, "Authorization: Bearer ", "dXNlcjpwYXNzd29yZDEyMw", ""},
	{JWT, "", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl", ""},
	{Secret, "", "AKIAIOSFODNN7EXAMPLE", ""},
	{Secret, "password=", "hunter2-Sesame", ""},
	{Secret, "", "q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI", ""},
	{UserPath, "/Users/", "jane", "/Library"},
	{UserPath, `C:\Users\`, "jane", `\AppData`},
	{UserPath, "uid=1000(jdoe) groups=1000(", "jdoe", "),27(sudo)"},
	{UserPath, "signed in as ", "jdoe1987", ""},
	{UserPath, "mention @", "jane_doe", ""},
	{UserPath, "@", "jdoe1987", ""},
	{Coordinates, "", "48.20849, 16.37208", ""},
	{KeyValue, "user_id=", "829301", ""},
	{KeyValue, `"deviceId": "`, "ab12cd34", `"`},
	{KeyValue, "whoami: ", "jdoe", ""},
	{KeyValue, "myapp://invite?ref=", "JDOE2024", ""},
	{KeyValue, "referral_code=", "JDOE50", ""},
	{KeyValue, "connected to network '", "The Johnsons", "'"},
	{KeyValue, "wifi: ", "JohnsHome-5G", ""},
	{DeviceID, "", "9774d56d682e549c", ""},
	{Address, "", "221B Baker Street", ""},
	{Address, "", "Hauptstraße 12", ""},
	{Address, "", "Calle Mayor 5", ""},
	{Address, "", "SW1A 1AA", ""},
}

// ctxContexts surround a value.
var ctxContexts = []struct{ name, pre, post string }{
	{"words", "sync failed for ", " at noon"},
	{"alone", "", ""},
	{"slash", "settings/", ""},
	{"path", "GET /v1/items/", "/notes"},
	{"equals", "q=", "&page=2"},
	{"colon", "host:", ""},
	{"at", "retry@", ""},
	{"hash", "#", ""},
	{"brackets", "[", "]"},
	{"parens", "(", ")"},
	{"braces", "{", "}"},
	{"angle", "<", ">"},
	{"quotes", `"`, `"`},
	{"single quotes", "'", "'"},
	{"json", `{"v":"`, `","n":1}`},
	{"json in json", `{\"v\":\"`, `\",\"n\":1}`},
	{"html", "<td>", "</td>"},
	{"pipe", "a|", "|b"},
	{"tab", "\t", "\t"},
	{"line", "E/Sync: failed\n", "\n\tat x"},
	{"backslash", `C:\tmp\`, `\x`},
	{"url query", "https://api.example.com/v1?to=", "&x=1"},
}

// ctxEncoding writes a value in another form, rune by rune (when the rune
// is in the value's secret, in is true).
type ctxEncoding struct {
	name string
	// enc encodes one part of the value; nil skips the encoding.
	enc func(s string) string
	// skip reports whether the encoding does not apply to a value, e.g.
	// a change of case to a case-sensitive credential.
	skip func(v ctxValue) bool
}

// mapRunes applies f to every rune of s.
func mapRunes(s string, f func(r rune) string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(f(r))
	}
	return b.String()
}

// notAlnum encodes the runes of s that are not ASCII letters or digits
// with f.
func notAlnum(s string, f func(r rune) string) string {
	return mapRunes(s, func(r rune) string {
		if r < utf8.RuneSelf && class[r]&cAlnum != 0 {
			return string(r)
		}
		return f(r)
	})
}

// reportFirst reports the first n of errs as errors, and how many more
// there are.
func reportFirst(t *testing.T, errs []string, n int) {
	t.Helper()
	for _, e := range errs[:min(n, len(errs))] {
		t.Error(e)
	}
	if len(errs) > n {
		t.Errorf("... and %d more", len(errs)-n)
	}
}

// digitsFrom returns an encoding that writes the ASCII digits of a text
// as the digits of the script whose zero is zero.
func digitsFrom(zero rune) func(string) string {
	return func(s string) string {
		return mapRunes(s, func(r rune) string {
			if r >= '0' && r <= '9' {
				return string(r - '0' + zero)
			}
			return string(r)
		})
	}
}

// between puts sep between the runes of s.
func between(s, sep string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// percent encodes the UTF-8 bytes of r as %XX.
func percent(r rune) string {
	var b strings.Builder
	for _, c := range []byte(string(r)) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// jsonU encodes r as \uXXXX, with a surrogate pair beyond the BMP.
func jsonU(r rune) string {
	if r > 0xffff {
		r -= 0x10000
		return fmt.Sprintf(`\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// caseSensitive reports whether a value's secret changes meaning with its
// case: credentials and keys of fixed shape.
func caseSensitive(v ctxValue) bool {
	return v.kind == JWT || v.kind == Secret || v.kind == Token || v.kind == UserPath
}

// onlySpaced keeps encodings of spaces to values that have them.
func onlySpaced(v ctxValue) bool { return !strings.Contains(v.secret, " ") }

// onlyDashed keeps encodings of dashes to values that have them.
func onlyDashed(v ctxValue) bool { return !strings.Contains(v.secret, "-") }

// onlyDigits keeps encodings of digits to values that are mostly digits.
func onlyDigits(v ctxValue) bool {
	switch v.kind {
	case Phone, IP, IMEI, Card, Coordinates, KeyValue:
		return strings.Contains(v.secret, ":") // IPv6 hex
	}
	return true
}

var ctxEncodings = []ctxEncoding{
	{name: "plain", enc: func(s string) string { return s }},
	{name: "percent", enc: func(s string) string {
		// encodeURIComponent
		return mapRunes(s, func(r rune) string {
			if r < utf8.RuneSelf && (class[r]&cAlnum != 0 || strings.ContainsRune("-_.!~*'()", r)) {
				return string(r)
			}
			return percent(r)
		})
	}},
	{name: "percent all", enc: func(s string) string { return mapRunes(s, percent) }},
	{name: "percent lower", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return strings.ToLower(percent(r)) })
	}},
	{name: "percent twice", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return strings.ReplaceAll(percent(r), "%", "%25") })
	}},
	{name: "json \\u", enc: func(s string) string { return notAlnum(s, jsonU) }},
	{name: "json \\u all", enc: func(s string) string { return mapRunes(s, jsonU) }},
	{name: "json \\u twice", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return `\` + jsonU(r) })
	}},
	{name: "\\x", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return strings.ReplaceAll(percent(r), "%", `\x`) })
	}},
	{name: "html decimal", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return fmt.Sprintf("&#%d;", r) })
	}},
	{name: "html hex", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return fmt.Sprintf("&#x%x;", r) })
	}},
	{name: "html named", enc: func(s string) string {
		return strings.NewReplacer("@", "&commat;", ".", "&period;", ":", "&colon;", "/", "&sol;", " ", "&nbsp;",
			"_", "&lowbar;", "=", "&equals;", "+", "&plus;", "(", "&lpar;", ")", "&rpar;", ",", "&comma;",
			`\`, "&bsol;", "-", "&hyphen;", `"`, "&quot;").Replace(s)
	}},
	{name: "html amp", enc: func(s string) string {
		return notAlnum(s, func(r rune) string { return fmt.Sprintf("&amp;#%d;", r) })
	}},
	{name: "zero-width between", enc: func(s string) string {
		return mapRunes(s, func(r rune) string { return string(r) + "\u200b" })
	}},
	{name: "zero-width joiner", enc: func(s string) string { return between(s, "\u200d") }},
	{name: "soft hyphen", enc: func(s string) string { return between(s, "\u00ad") }},
	{name: "bidi marks", enc: func(s string) string { return between(s, "\u200e\u2069") }},
	{name: "tag characters", enc: func(s string) string {
		// invisible copies of ASCII ("ASCII smuggling")
		return mapRunes(s, func(r rune) string {
			if r > ' ' && r < 0x7f {
				return string(r + 0xe0000)
			}
			return string(r)
		})
	}},
	{name: "byte order mark", enc: func(s string) string {
		if len(s) < 2 {
			return s
		}
		return s[:len(s)/2] + "\ufeff" + s[len(s)/2:]
	}},
	{name: "full-width", enc: func(s string) string {
		return mapRunes(s, func(r rune) string {
			switch {
			case r == ' ':
				return "\u3000"
			case r > ' ' && r < 0x7f:
				return string(r - 0x21 + 0xff01)
			}
			return string(r)
		})
	}},
	{name: "full-width digits", skip: onlyDigits, enc: digitsFrom(0xff10)},
	{name: "arabic-indic digits", skip: onlyDigits, enc: digitsFrom(0x0660)},
	{name: "devanagari digits", skip: onlyDigits, enc: digitsFrom(0x0966)},
	{name: "math digits", skip: onlyDigits, enc: digitsFrom(0x1d7ce)}, // MATHEMATICAL BOLD DIGIT ZERO
	{name: "no-break space", skip: onlySpaced, enc: func(s string) string { return strings.ReplaceAll(s, " ", "\u00a0") }},
	{name: "narrow no-break space", skip: onlySpaced, enc: func(s string) string { return strings.ReplaceAll(s, " ", "\u202f") }},
	{name: "thin space", skip: onlySpaced, enc: func(s string) string { return strings.ReplaceAll(s, " ", "\u2009") }},
	{name: "ideographic space", skip: onlySpaced, enc: func(s string) string { return strings.ReplaceAll(s, " ", "\u3000") }},
	{name: "non-breaking hyphen", skip: onlyDashed, enc: func(s string) string { return strings.ReplaceAll(s, "-", "\u2011") }},
	{name: "en dash", skip: onlyDashed, enc: func(s string) string { return strings.ReplaceAll(s, "-", "\u2013") }},
	{name: "minus sign", skip: onlyDashed, enc: func(s string) string { return strings.ReplaceAll(s, "-", "\u2212") }},
	{name: "upper case", skip: caseSensitive, enc: strings.ToUpper},
	{name: "lower case", skip: caseSensitive, enc: strings.ToLower},
	{name: "mixed case", skip: caseSensitive, enc: func(s string) string {
		i := 0
		return mapRunes(s, func(r rune) string {
			i++
			if i%2 == 0 {
				return strings.ToUpper(string(r))
			}
			return strings.ToLower(string(r))
		})
	}},
	{name: "title case", skip: caseSensitive, enc: func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
	}},
	{name: "line break", skip: onlySpaced, enc: func(s string) string { return strings.Replace(s, " ", "\n", 1) }},
	{name: "crlf", skip: onlySpaced, enc: func(s string) string { return strings.Replace(s, " ", "\r\n", 1) }},
	{name: "escaped line break", skip: onlySpaced, enc: func(s string) string { return strings.Replace(s, " ", `\n`, 1) }},
}

// ctxGaps are combinations that are not found, on purpose: each names
// why. A key is "encoding/kind/context/secret", where any part may be
// "*".
var ctxGaps = map[string]string{
	"line break/phone/*/*":           phoneOverLines,
	"crlf/phone/*/*":                 phoneOverLines,
	"escaped line break/phone/*/*":   phoneOverLines,
	"line break/address/*/*":         addressOverLines,
	"crlf/address/*/*":               addressOverLines,
	"escaped line break/address/*/*": addressOverLines,
	// C:\tmp\\u0031: the value's first escape right after a path's
	// backslash.
	"json \\u/*/backslash/*":       escapeAfterBackslash,
	"json \\u all/*/backslash/*":   escapeAfterBackslash,
	"json \\u twice/*/backslash/*": escapeAfterBackslash,
	"\\x/*/backslash/*":            escapeAfterBackslash,
	// C:\tmp\4111\n1111 1111 1111: a line break written as an escape
	// inside a Windows path.
	"escaped line break/*/backslash/*": escapeInWindowsPath,
	// a network's quoted name broken over lines
	"line break/id/*/The Johnsons":         quotedOverLines,
	"crlf/id/*/The Johnsons":               quotedOverLines,
	"escaped line break/id/*/The Johnsons": quotedOverLines,
	// a handle in a path, or after another '@'
	"*/user/path/jdoe1987":      handleInPath,
	"*/user/path/jane_doe":      handleInPath,
	"*/user/backslash/jdoe1987": handleInPath,
	"*/user/backslash/jane_doe": handleInPath,
	"*/user/at/jdoe1987":        handleAfterWord,
}

const (
	phoneOverLines = "a phone number broken over two lines is not read as one: a number that ends a line " +
		"and one that starts the next are too often a count and a time, or the start of a card number"
	addressOverLines = "a street address is read on one line: a number that ends a line and capitalized words " +
		"that start the next are a count and a sentence as often (a full address over lines keeps its parts)"
	escapeAfterBackslash = "an escape right after a path's backslash is read as an escape inside an escaped " +
		"string (JSON in JSON), which swallows the backslash, and the value joins the word before it"
	escapeInWindowsPath = "a single backslash in a Windows path (C:\\tmp\\...) separates folders and escapes " +
		"nothing, so a \\n there is a folder named n..., not a line break"
	quotedOverLines = "a quoted value ends at its line: a quote that a line break cuts is no value's, as a " +
		"quote left open in prose is none"
	handleInPath = "a '@' and a word that a '/' or '\\' follows are a path's segment or an npm scope " +
		"(node_modules/@scope/pkg), no handle"
	handleAfterWord = "a '@' after a word or another '@' (retry@@jdoe1987) is an address's or an asset's " +
		"(user@host, icon@2x.png), no handle's"
)

// gapFor returns why a combination is a known gap, or "".
func gapFor(enc string, k Kind, ctx, secret string) string {
	for _, e := range []string{enc, "*"} {
		for _, kk := range []string{k.String(), "*"} {
			for _, c := range []string{ctx, "*"} {
				for _, v := range []string{secret, "*"} {
					if why := ctxGaps[e+"/"+kk+"/"+c+"/"+v]; why != "" {
						return why
					}
				}
			}
		}
	}
	return ""
}

// TestContexts hides every value in every context and encoding and checks
// that the secret part is covered by findings. It logs what it found per
// encoding; run with -v to see the counts.
func TestContexts(t *testing.T) {
	s := New(Config{})
	type tally struct{ found, total int }
	perEnc := map[string]*tally{}
	perKind := map[Kind]*tally{}
	var misses []string
	for _, e := range ctxEncodings {
		perEnc[e.name] = &tally{}
		for _, v := range ctxValues {
			if e.skip != nil && e.skip(v) {
				continue
			}
			pre, secret, post := e.enc(v.pre), e.enc(v.secret), e.enc(v.post)
			if e.name == "line break" || e.name == "crlf" || e.name == "escaped line break" {
				pre, post = v.pre, v.post
			}
			for _, c := range ctxContexts {
				in := c.pre + pre + secret + post + c.post
				start := len(c.pre) + len(pre)
				ok := covered(s, in, start, start+len(secret))
				if perKind[v.kind] == nil {
					perKind[v.kind] = &tally{}
				}
				perEnc[e.name].total++
				perKind[v.kind].total++
				if ok {
					perEnc[e.name].found++
					perKind[v.kind].found++
					continue
				}
				if gapFor(e.name, v.kind, c.name, v.secret) != "" {
					continue
				}
				misses = append(misses, fmt.Sprintf("%s / %s / %s: %q → %q", e.name, v.kind, c.name, in, s.String(in)))
			}
		}
	}
	found, total := 0, 0
	for _, e := range ctxEncodings {
		tl := perEnc[e.name]
		found += tl.found
		total += tl.total
		t.Logf("encoding %-22s found %4d of %4d", e.name, tl.found, tl.total)
	}
	for _, k := range Kinds() {
		if tl := perKind[k]; tl != nil {
			t.Logf("kind %-12s found %4d of %4d", k, tl.found, tl.total)
		}
	}
	t.Logf("all: found %d of %d (%.1f%%)", found, total, 100*float64(found)/float64(total))
	slices.Sort(misses)
	reportFirst(t, misses, 200)
}

// ctxKept are what crash triage needs, which must come out unchanged in
// every context and encoding: versions, addresses, build ids, line
// numbers, timestamps, counts.
var ctxKept = []string{
	"version 4.12.0.3",
	"okhttp/4.12.0.3",
	"Dalvik/2.1.0",
	"MyApp/4.12.0.3 (Android 14)",
	"v4.12.0.3",
	"4.12.0",
	"0x0000000100a8c000",
	"BuildId: 3f2504e04f8941d39a0c0305e82c3301",
	"NoteEditor.kt:42",
	"2026-11-29 12:30:45.123",
	"2147483648 bytes",
	"std::vector<int>::at",
	"icon@2x.png",
	"12:30:45",
	"x4  0000007fd3c2a4c8",
	"HTTP 503",
	"1080x2400",
	"21,5 °C",
	"retry 3 of 5",
	"@Override @objc @MainActor",
	"ref=refs/heads/main",
	"uid=0(root) gid=0(root)",
	"wifi: enabled",
	"signed in as guest",
}

// TestContextsKept checks that what triage needs is kept in every context
// and encoding, and logs how much was changed.
func TestContextsKept(t *testing.T) {
	s := New(Config{})
	changed, total := 0, 0
	var errs []string
	for _, e := range ctxEncodings {
		if e.name == "line break" || e.name == "crlf" || e.name == "escaped line break" || e.name == "zero-width joiner" {
			continue
		}
		for _, v := range ctxKept {
			for _, c := range ctxContexts {
				if gapFor(e.name, 0, c.name, "") == escapeAfterBackslash {
					continue
				}
				in := c.pre + e.enc(v) + c.post
				total++
				if got := s.String(in); got != in {
					changed++
					errs = append(errs, fmt.Sprintf("%s / %s: %q → %q", e.name, c.name, in, got))
				}
			}
		}
	}
	t.Logf("kept: %d of %d changed (%.2f%%)", changed, total, 100*float64(changed)/float64(total))
	reportFirst(t, errs, 100)
}
