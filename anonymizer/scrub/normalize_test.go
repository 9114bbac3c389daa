package scrub

import (
	"strings"
	"testing"
)

// needsNorm reports whether in holds anything the detection copy changes.
func needsNorm(in string) bool {
	for i := 0; i < len(in); i++ {
		if class[in[i]]&cNorm != 0 && changesAt(in, i) {
			return true
		}
	}
	return false
}

// needsPool reports whether scrubbing in uses the Scrubber's pooled
// buffers: for the detection copy, or for the second reading of a text
// with words glued with underscores.
func needsPool(in string) bool {
	sc := scanner{s: New(Config{}), in: in, atSign: -1, pct40: -1}
	for sc.next().kind != 0 {
	}
	return sc.renorm || sc.glued || needsNorm(in)
}

// TestDetectionCopy checks the normalized copy of texts, and that each of
// its bytes maps back to the unit of the text it came from.
func TestDetectionCopy(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain ASCII", "plain ASCII"},
		{"jane%40example.com", "jane@example.com"},
		{"a%2540b %252540", "a@b @"},
		{"%u0040 %zz %4", "@ %zz %4"},
		{`jane\u0040example.com`, "jane@example.com"},
		{`jane\\u0040example.com`, "jane@example.com"},
		{`\ud83d\ude00 \u{1F600} \U0001F600`, "😀 😀 😀"},
		{`\ud800 alone`, `\ud800 alone`},
		{`\x40 \"q\" \\\"q\\\" \/`, `@ "q" "q" /`},
		{`a\nb \\n C:\\Users\\jane`, "a\nb \\n C:\\Users\\jane"},
		{`C:\Users\jane`, `C:\Users\jane`},
		{"&#64; &#x40; &commat; &amp;#64; &amp;amp;commat; &amp; &nosuch; &#64x", "@ @ @ @ @ & &nosuch; &#64x"},
		{"a\u200bb\u200dc\u00add\ufeffe\u2060f", "abcdef"},
		{"ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "jane@example.com"},
		{"١٩٢.٠.٢.١٠ ९ 𝟗", "192.0.2.10 9 9"},
		{"a\u00a0b\u202fc\u3000d\u2028e", "a b c d\ne"},
		{"4111\u20111111\u20131111\u22121111", "4111-1111-1111-1111"},
		{"“quoted” ‘single’ «guillemets»", `"quoted" 'single' "guillemets"`},
		{"example。com ﬁle ① ℡", "example.com file 1 TEL"},
		{"\U000E0068\U000E0069", "hi"},
		{"%C2%A0 &#x200B;x", "  x"},
		{"Größe 日本語 Ошибка", "Größe 日本語 Ошибка"},
	} {
		var nt normText
		changed := nt.build(c.in)
		if got := nt.text(); got != c.want {
			t.Errorf("copy of %q = %q, want %q", c.in, got, c.want)
		}
		if changed != (c.in != c.want) {
			t.Errorf("copy of %q: changed = %v", c.in, changed)
		}
		if needsNorm(c.in) != changed {
			t.Errorf("needsNorm(%q) = %v, build says %v", c.in, !changed, changed)
		}
		if len(nt.src) != len(nt.b)+1 || nt.src[len(nt.b)] != int32(len(c.in)) {
			t.Fatalf("copy of %q: %d offsets for %d bytes", c.in, len(nt.src), len(nt.b))
		}
		for i := 1; i < len(nt.src); i++ {
			if nt.src[i] < nt.src[i-1] {
				t.Fatalf("copy of %q: offsets decrease at %d", c.in, i)
			}
		}
	}
}

// TestDetectionCopySpans checks that findings in the copy replace whole
// escapes in the text.
func TestDetectionCopySpans(t *testing.T) {
	var nt normText
	in := "to jane%40example.com%21"
	nt.build(in)
	text := nt.text()
	i := strings.Index(text, "jane")
	start, end := nt.span(i, i+len("jane@example.com"))
	if got := in[start:end]; got != "jane%40example.com" {
		t.Errorf("span = %q", got)
	}
	// A finding that ends inside the bytes of one rune covers the rune.
	in = "x%C3%A9y"
	nt.build(in)
	if start, end := nt.span(1, 2); in[start:end] != "%C3%A9" {
		t.Errorf("span inside a rune = %q", in[start:end])
	}
}

// TestEncoded shows identifiers written in the forms of the detection copy
// being replaced, with the text around them as it was.
func TestEncoded(t *testing.T) {
	runCases(t, []scrubCase{
		{"GET /v1/users/jane.doe%40example.com/notes", "GET /v1/users/[email]/notes"},
		{"to=jane%2Edoe%40example%2Ecom&x=1", "to=[email]&x=1"},
		{"host%3D192%2E0%2E2%2E10%26port%3D443", "host%3D[ip]%26port%3D443"},
		{"user%5Fid%3D829301", "user%5Fid%3D[id]"},
		{`{"msg":"sync for jane\u0040example.com"}`, `{"msg":"sync for [email]"}`},
		{`{\"email\":\"jane\\u0040example.com\"}`, `{\"email\":\"[email]\"}`},
		{`b'jane\x40example.com'`, `b'[email]'`},
		{"<p>jane&#64;example.com</p>", "<p>[email]</p>"},
		{"call&nbsp;+43&nbsp;664&nbsp;1234567", "call&nbsp;[phone]"},
		{"jane\u200b@example.com", "[email]"},
		{"jane@exam\u00adple.com", "[email]"},
		{"ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "[email]"},
		{"ip １９２.０.２.１０", "ip [ip]"},
		{"هاتف ٠٦٦٤ ١٢٣٤٥٦٧", "هاتف [phone]"},
		{"+43\u00a0664\u00a01234567", "[phone]"},
		{"4111\u00a01111\u00a01111\u00a01111", "[card]"},
		{"DE89\u202f3704\u202f0044\u202f0532\u202f0130\u202f00", "[iban]"},
		{"3F2504E0\u20114F89\u201141D3\u20119A0C\u20110305E82C3301", "[uuid]"},
		{"48.20849,\u00a016.37208", "[coordinates]"},
		{"%2FUsers%2Fjane%2FLibrary", "%2FUsers%2F[user]%2FLibrary"},
		{`C:\\Users\\jane\\AppData`, `C:\\Users\\[user]\\AppData`},
		{"𝐣𝐚𝐧𝐞@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.𝐜𝐨𝐦", "[email]"},
		{"\U000E006A\U000E0061\U000E006E\U000E0065\U000E0040\U000E0065\U000E0078\U000E002E\U000E0063\U000E006F", "[email]"},
		// Latin-1 bytes the collector repaired with U+FFFD
		{"call +43\uFFFD664\uFFFD1234567", "call [phone]"},
		{"card 4111\uFFFD1111\uFFFD1111\uFFFD1111", "card [card]"},
		{"mail j\uFFFDrg@example.de", "mail [email]"},
	})
	runCases(t, kept(
		"GET /v1/search?q=caf%C3%A9%20cr%C3%A8me&page=2",
		"https://cdn.example.com/Notizen%20%C3%9Cbersicht.pdf?v=4.12.0",
		`{"detail":"unexpected token \u003c at 1:1","took":"12.5\u00a0ms"}`,
		"try again &amp; reload &mdash; code&nbsp;503",
		`C:\Program Files\Notes\bin\x64\notes.exe`,
		"Fehler: Datei „notes.db“ nicht gefunden – Größe 2,4 MB",
		"エラーコード 42、再試行 3 回",
		"version%204.12.0.3",
		"okhttp%2F4.12.0.3",
	))
}
