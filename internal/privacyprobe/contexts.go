package privacyprobe

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Context is a way an identifier is written into a field: the text around
// it and its encoding.
type Context struct {
	// Name names the context in reports, e.g. "after /".
	Name string
	// render returns the text holding v.
	render func(g *generator, v string) string
}

// Contexts returns every context the probe renders identifiers in.
func Contexts() []Context { return contexts }

var contexts = []Context{
	{"plain", func(_ *generator, v string) string { return v }},
	{"in a sentence", func(g *generator, v string) string {
		return g.pick([]string{"sync failed for ", "could not reach ", "retrying upload of ", "Rückruf an ", "échec pour "}) + v +
			g.pick([]string{" after 3 attempts", " (timeout)", "; giving up", "", " — will retry"})
	}},
	{"after /", func(g *generator, v string) string {
		return g.pick([]string{"GET /api/v2/", "/sync/", "upload/", "POST /v1/items/"}) + v + g.pick([]string{"/avatar", "", "/state 404"})
	}},
	{"after =", func(g *generator, v string) string { return g.pick([]string{"ref=", "target=", "q=", "arg="}) + v }},
	{"after :", func(g *generator, v string) string { return g.pick([]string{"peer:", "to:", "contact:", "x:"}) + v }},
	{"after @", func(g *generator, v string) string { return g.pick([]string{"retry@", "worker@", "@"}) + v }},
	{"after #", func(g *generator, v string) string { return g.pick([]string{"item#", "#", "ticket #"}) + v }},
	{"in brackets", func(g *generator, v string) string {
		b := g.pick([]string{"[]", "()", "<>", "{}"})
		return "failed " + b[:1] + v + b[1:] + " code 7"
	}},
	{"in quotes", func(g *generator, v string) string {
		q := g.pick([]string{`""`, "''", "``", "“”", "«»"})
		_, n := utf8.DecodeRuneInString(q)
		return "value " + q[:n] + v + q[n:] + " rejected"
	}},
	{"in a URL query", func(g *generator, v string) string {
		return "https://api.example.com/v1/lookup?ref=" + url.QueryEscape(v) + "&page=" + fmt.Sprint(1+g.intn(9))
	}},
	{"URL-encoded", func(_ *generator, v string) string { return "payload=" + percentEncodeAll(v) }},
	{"JSON-escaped", func(_ *generator, v string) string { return `{"ref":"` + jsonEscapeAll(v) + `"}` }},
	{"in JSON", func(_ *generator, v string) string { return `{"ref":"` + v + `","n":1}` }},
	{"HTML entities", func(g *generator, v string) string { return "<p>" + htmlEntities(g, v) + "</p>" }},
	{"split by zero-width characters", func(g *generator, v string) string { return zeroWidthSplit(g, v) }},
	{"full-width digits", func(_ *generator, v string) string { return fullWidth(v, true) }},
	{"full-width characters", func(_ *generator, v string) string { return fullWidth(v, false) }},
	{"no-break spaces", func(_ *generator, v string) string {
		return "\u00a0" + strings.ReplaceAll(v, " ", "\u00a0") + "\u00a0"
	}},
	{"mixed case", func(g *generator, v string) string { return mixedCase(g, v) }},
	{"between line breaks", func(g *generator, v string) string {
		return "line one\n" + v + g.pick([]string{"\r\n", "\n", "\u2028"}) + "line three"
	}},
	{"in a stack frame", func(g *generator, v string) string {
		return g.pick([]string{"at com.example.sync.Uploader.upload(", "#3 0x00000001045a3f10 in Sync.push(", "  File \""}) + v +
			g.pick([]string{") (Uploader.kt:42)", ")", "\", line 12"})
	}},
	{"tab and comma separated", func(g *generator, v string) string {
		return g.pick([]string{"a\t", "x,", "1;"}) + v + g.pick([]string{"\tb", ",y", ";2"})
	}},
	{"glued with underscores", func(_ *generator, v string) string { return "cache_" + v + "_v2" }},
}

// percentEncodeAll percent-encodes every byte that is not a letter or
// digit, as some clients do.
func percentEncodeAll(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x80 && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c))) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// jsonEscapeAll writes every character that is not an ASCII letter or
// digit as a \uXXXX escape.
func jsonEscapeAll(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16Surrogates(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// htmlEntities writes punctuation, and some letters, as numeric or named
// character references.
func htmlEntities(g *generator, v string) string {
	named := map[rune]string{'@': "&commat;", '.': "&period;", ':': "&colon;", '/': "&sol;", '+': "&plus;", '-': "&hyphen;", '&': "&amp;", '<': "&lt;", '>': "&gt;"}
	var b strings.Builder
	for _, r := range v {
		switch {
		case r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) && g.intn(4) != 0:
			b.WriteRune(r)
		case named[r] != "" && g.intn(2) == 0:
			b.WriteString(named[r])
		case g.intn(2) == 0:
			fmt.Fprintf(&b, "&#%d;", r)
		default:
			fmt.Fprintf(&b, "&#x%X;", r)
		}
	}
	return b.String()
}

// zeroWidth are characters that render as nothing.
var zeroWidth = []string{"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}

// zeroWidthSplit puts a zero-width character after every one to three
// characters of v.
func zeroWidthSplit(g *generator, v string) string {
	var b strings.Builder
	n := 0
	for _, r := range v {
		b.WriteRune(r)
		n++
		if n >= 1+g.intn(3) {
			b.WriteString(zeroWidth[g.intn(len(zeroWidth))])
			n = 0
		}
	}
	return b.String()
}

// fullWidth writes ASCII digits, or all ASCII letters, digits and
// punctuation, in their full-width forms (U+FF01..U+FF5E), which NFKC
// folds back.
func fullWidth(v string, digitsOnly bool) string {
	var b strings.Builder
	for _, r := range v {
		if r >= '0' && r <= '9' || !digitsOnly && r > 0x20 && r < 0x7f {
			r += 0xff01 - 0x21
		}
		b.WriteRune(r)
	}
	return b.String()
}

func mixedCase(g *generator, v string) string {
	var b strings.Builder
	for _, r := range v {
		if g.intn(2) == 0 {
			r = unicode.ToUpper(r)
		} else {
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
