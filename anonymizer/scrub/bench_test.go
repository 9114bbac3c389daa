package scrub

import (
	"slices"
	"strings"
	"testing"
)

// crashLog returns about 64 KiB of realistic crash logs from
// testdata/clean. With dirty set, a line with one identifier follows
// every 2 KiB.
func crashLog(tb testing.TB, dirty bool) string {
	corpus := cleanCorpus(tb)
	names := make([]string, 0, len(corpus))
	for name := range corpus {
		names = append(names, name)
	}
	slices.Sort(names)
	g := newGen(64)
	kinds := Kinds()
	var b strings.Builder
	since := 0
	for b.Len() < 64<<10 {
		for _, name := range names {
			for line := range strings.Lines(corpus[name]) {
				if b.Len() >= 64<<10 {
					return b.String()
				}
				b.WriteString(line)
				if since += len(line); dirty && since >= 2<<10 {
					since = 0
					p := g.any(kinds[g.r.IntN(len(kinds))])
					b.WriteString("11-29 12:30:45.901 12345 12420 W NoteSync: retry for " + p.text + " failed\n")
				}
			}
		}
	}
	return b.String()
}

// BenchmarkCrashLog scrubs 64 KiB of realistic crash logs, without
// identifiers and with one in every 2 KiB.
func BenchmarkCrashLog(b *testing.B) {
	s := New(Config{})
	benchCrashLogs(b, func(b *testing.B, in string) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			s.String(in)
		}
	})
}

// BenchmarkCrashLogLines scrubs the same logs line by line, as the
// pipeline scrubs frames and messages.
func BenchmarkCrashLogLines(b *testing.B) {
	s := New(Config{})
	benchCrashLogs(b, func(b *testing.B, text string) { benchLines(b, s, text) })
}

// benchCrashLogs runs bench as two sub-benchmarks, on the crash log
// without identifiers ("clean") and on the one with ("dirty").
func benchCrashLogs(b *testing.B, bench func(b *testing.B, text string)) {
	for _, c := range []struct {
		name  string
		dirty bool
	}{{"clean", false}, {"dirty", true}} {
		text := crashLog(b, c.dirty)
		b.Run(c.name, func(b *testing.B) { bench(b, text) })
	}
}

// BenchmarkClean scrubs short clean strings such as screen names and
// frame functions, which must not allocate.
func BenchmarkClean(b *testing.B) {
	s := New(Config{})
	for _, in := range []string{
		"NoteEditor",
		"com.example.notes.NoteEditor.save",
		"-[UIApplication sendAction:to:from:forEvent:]",
		"/system/lib64/libc.so",
		"java.lang.IllegalStateException: Email must not be empty when saving a note",
	} {
		b.Run(in[:min(len(in), 24)], func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				s.String(in)
			}
		})
	}
}

// BenchmarkIsIdentifierKey looks up attribute keys.
func BenchmarkIsIdentifierKey(b *testing.B) {
	s := New(Config{ExtraKeys: []string{"loyalty_number"}})
	keys := []string{"screen_name", "user_email", "deviceId", "latency_ms", "pages", "advertising_id", "experiment_variant", "loyalty_number"}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			s.IsIdentifierKey(k)
		}
	}
}

// BenchmarkEncoded scrubs lines that hold text other than ASCII, escapes,
// percent-encoding and HTML entities (testdata/clean/encoded.txt), line by
// line: the lines that need a normalized copy to be read.
func BenchmarkEncoded(b *testing.B) {
	benchLines(b, New(Config{}), cleanCorpus(b)["encoded.txt"])
}

// benchLines scrubs text with s line by line, as the pipeline scrubs
// frames and messages.
func benchLines(b *testing.B, s *Scrubber, text string) {
	lines := strings.SplitAfter(text, "\n")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			s.String(l)
		}
	}
}
