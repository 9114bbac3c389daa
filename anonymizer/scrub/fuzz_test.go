package scrub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// addSeeds adds the lines of the corpora and of the detector tests'
// classic cases as seeds.
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/clean/*")
	files = append(files, "testdata/dirty.txt")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			f.Add(line)
		}
	}
	for _, s := range []string{
		"", "[email]", "user_id=[id]", "::", "::1", "a::b", "@", "%40", "+", "(", "-1.5", "Bearer ",
		"/Users/", `C:\Users\`, "eyJ.eyJ.", "0x", "1.2.3.4.5", "12:30:45", "lat=", "\xff\xfe", "日本語",
		"jane%40example.com", `jane\u0040example.com`, "jane&#64;example.com", "jane\u200b@example.com",
		"ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "٠٦٦٤ ١٢٣٤٥٦٧", "+43\u00a0664\u00a01234567", "settings/192.0.2.10",
		`\\\"`, "%25%2540", "&amp;amp;#64;", `\ud83d\ude00`, "\U000E0040", "4111\n1111 1111 1111",
		"221B Baker Street, London SW1A 1AA", "12 rue de la Paix", "Calle Mayor 5", "Hauptstraße 12",
		"postcode: K1A 0B1", "locality=Rio de Janeiro,thoroughfare=Downing Street", `SSID "Anna Home"`,
		"iPhone von Anna", "Annas iPhone", "first_name=Anna Maria last_name=van der Berg",
		"uid=1000(jdoe) gid=1000(jdoe) groups=1000(jdoe),27(sudo)", "uid=10123(u0_a123)",
		"Logged in as @jdoe1987", "signed in as Jane Doe", "mention @jane_doe, @jdoe_1987",
		"@Override @objc @MainActor", "whoami: jdoe", "myapp://invite?ref=JDOE2024",
		"https://example.com/signup?utm_source=x&ref=abc123", "referral_code=JDOE50",
		"connected to network 'The Johnsons'", "wifi: JohnsHome-5G", "network name: Smith Family WiFi",
		"wifi: enabled", "ref=refs/heads/main",
	} {
		f.Add(s)
	}
}

// FuzzString checks that the scrubber never panics, keeps valid UTF-8
// valid, is idempotent, that no detector finds anything in the detection
// copy of its output, and that Find reports what String replaces.
func FuzzString(f *testing.F) {
	addSeeds(f)
	s := New(Config{})
	f.Fuzz(func(t *testing.T, in string) {
		out := s.String(in)
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q is not valid UTF-8", in, out)
		}
		if again := s.String(out); again != out {
			t.Fatalf("not idempotent:\nin:    %q\nout:   %q\nagain: %q", in, out, again)
		}
		var nt normText
		nt.build(out)
		sc := scanner{s: s, in: nt.text(), atSign: -1, pct40: -1, normed: true}
		if m := sc.next(); m.kind != 0 {
			t.Fatalf("the detection copy of the output holds %s %q:\nin:   %q\nout:  %q\ncopy: %q",
				m.kind, nt.text()[m.start:m.end], in, out, nt.text())
		}
		var b strings.Builder
		prev := 0
		s.Find(in, func(k Kind, start, end int) {
			if start < prev || end <= start || end > len(in) || !k.valid() {
				t.Fatalf("Find(%q): bad finding %v [%d:%d] after %d", in, k, start, end, prev)
			}
			b.WriteString(in[prev:start])
			b.WriteString(k.Marker())
			prev = end
		})
		b.WriteString(in[prev:])
		if b.String() != out {
			t.Fatalf("Find and String disagree on %q:\nFind:   %q\nString: %q", in, b.String(), out)
		}
	})
}

// plantedSamples are identifiers of every kind for FuzzPlanted.
func plantedSamples() []planted {
	g := newGen(1)
	samples := []planted{
		whole(Email, "jane.doe@example.com"),
		whole(Phone, "+43 664 1234567"),
		whole(Phone, "(415) 555-2671"),
		whole(IP, "203.0.113.7"),
		whole(IP, "2001:db8::1"),
		whole(UUID, "3F2504E0-4F89-41D3-9A0C-0305E82C3301"),
		whole(IMEI, "490154203237518"),
		whole(MAC, "00:1A:2B:3C:4D:5E"),
		whole(Card, "4111 1111 1111 1111"),
		whole(IBAN, "DE89 3704 0044 0532 0130 00"),
		part(Token, "Authorization: Bearer ", "abc.def-123", ""),
		whole(JWT, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl"),
		whole(Secret, "AKIAIOSFODNN7EXAMPLE"),
		part(UserPath, "/Users/", "jane", "/Library"),
		whole(Coordinates, "48.20849, 16.37208"),
		part(KeyValue, "user_id=", "829301", ""),
		part(UserPath, "uid=1000(jdoe) gid=1000(jdoe) groups=1000(", "jdoe", "),27(sudo)"),
		part(UserPath, "Logged in as @", "jdoe1987", ""),
		part(UserPath, "signed in as ", "jdoe1987", ""),
		part(UserPath, "mention @", "jane_doe", ""),
		part(KeyValue, "whoami: ", "jdoe", ""),
		part(KeyValue, "myapp://invite?ref=", "JDOE2024", ""),
		part(KeyValue, "referral_code=", "JDOE50", ""),
		part(KeyValue, "connected to network '", "The Johnsons", "'"),
		part(KeyValue, "wifi: ", "JohnsHome-5G", ""),
		part(KeyValue, "network name: ", "Smith Family WiFi", ""),
	}
	for _, k := range Kinds() {
		for range 3 {
			samples = append(samples, g.any(k))
		}
	}
	return samples
}

// FuzzPlanted plants identifiers of every kind between a prefix and a
// suffix that the fuzzer chooses, each on a line of its own, and checks
// that every planted identifier is removed.
func FuzzPlanted(f *testing.F) {
	f.Add("at com.example.notes.NoteEditor.save(NoteEditor.kt:42)", "Caused by: java.lang.IllegalStateException")
	f.Add("version", "-beta")
	f.Add("user_id=\"", "\"")
	f.Add("Bearer", "1.2.3.4")
	f.Add("", "")
	f.Add("\xff", "日本語 06")
	f.Add("uid=1000(jdoe) groups=1000(jdoe),", ",27(sudo)")
	f.Add("signed in as", "@")
	f.Add("https://example.com/invite?x=1&", "&ref=")
	f.Add("network", "'")
	s := New(Config{})
	samples := plantedSamples()
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		for _, p := range samples {
			in := prefix + "\n" + p.text + "\n" + suffix
			start := len(prefix) + 1 + p.secretAt()
			if !covered(s, in, start, start+len(p.secret)) {
				t.Fatalf("planted %s %q not removed:\nin:  %q\nout: %q", p.kind, p.text, in, s.String(in))
			}
		}
	})
}

// TestIdempotentRegressions keeps inputs on which fuzzing once found that
// scrubbing twice changed the output. Each needs a context rule to judge a
// marker as it judged the identifier the marker replaced.
func TestIdempotentRegressions(t *testing.T) {
	s := New(Config{})
	for _, in := range []string{
		"0@0.aa:0::", // an address after an e-mail address
		"0070901101782A2B8C12X20YZab/cxayzs/Aaa0%400.aa",                        // a secret run that ends in an e-mail address
		"000000000000000,00 000000 0",                                           // a number after an IMEI
		"0::000000000000000",                                                    // an IPv6 candidate that runs into an IMEI
		"0B211718229708X02AY9ZbCAc01gaid=00",                                    // a long key whose value is scrubbed
		"A-07270B1X819A0920Y0Zc82C11bA-gaid=0",                                  // the same with dashes
		"Aaa/00000112AB91C82771X0YZ8bx9cayz+n/000000718X1YZ1cx2C1B0A9/zibaarya", // a secret in a path
		"AuthoriZAtion:000000000000000 00000000",                                // a scheme that is a number
		"0::.001 000000",                                                        // an IPv6 candidate that runs into a phone number
		"0.0.0.0.0::",                                                           // a dotted run that ends in an IPv6 address
		"0@0.ver 0.0.0.0",                                                       // a version word inside an e-mail address
		"000000000000000000000token= A seCret:0",                                // a log tag that is a scrubbed value
		"jane@example.com/4.12.0.3",                                             // a product token that is an e-mail address
		"name=version 10.1.2.3",                                                 // a version word that is a scrubbed value
		"/Users/jane ID: 5",                                                     // a two-word key that is a scrubbed user name
		"+0000000_Az190001A022cCx82771B0XY8b79Zay",                              // a random run glued to a phone number
	} {
		out := s.String(in)
		if again := s.String(out); again != out {
			t.Errorf("String(%q) = %q, then %q", in, out, again)
		}
	}
}

// FuzzEncoded plants each identifier of TestContexts, written in each of
// its encodings, between a prefix and a suffix that the fuzzer chooses,
// and checks that it is removed.
func FuzzEncoded(f *testing.F) {
	f.Add("sync failed for ", " at noon", uint8(0), uint8(0))
	f.Add("settings/", "", uint8(5), uint8(0))
	f.Add(`{\"v\":\"`, `\"}`, uint8(1), uint8(6))
	f.Add("\u00a0", "\u200b", uint8(13), uint8(20))
	s := New(Config{})
	f.Fuzz(func(t *testing.T, prefix, suffix string, vi, ei uint8) {
		v := ctxValues[int(vi)%len(ctxValues)]
		e := ctxEncodings[int(ei)%len(ctxEncodings)]
		if e.skip != nil && e.skip(v) || strings.Contains(e.name, "line") || e.name == "crlf" ||
			gapFor(e.name, v.kind, "line", v.secret) != "" {
			return
		}
		// The identifier stands on a line of its own, as FuzzPlanted's.
		pre, secret, post := e.enc(v.pre), e.enc(v.secret), e.enc(v.post)
		in := prefix + "\n" + pre + secret + post + "\n" + suffix
		start := len(prefix) + 1 + len(pre)
		if !covered(s, in, start, start+len(secret)) {
			t.Fatalf("%s %q written %s not removed:\nin:  %q\nout: %q", v.kind, v.secret, e.name, in, s.String(in))
		}
	})
}
