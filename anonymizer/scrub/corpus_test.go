package scrub

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/dirty.golden")

// cleanCorpus returns the realistic crash logs of testdata/clean, which
// hold no identifier.
func cleanCorpus(t testing.TB) map[string]string {
	t.Helper()
	files, err := filepath.Glob("testdata/clean/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no clean corpus: %v", err)
	}
	corpus := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		corpus[filepath.Base(f)] = string(b)
	}
	return corpus
}

// TestCleanCorpus checks that realistic crash logs without identifiers
// come out byte-identical, line by line and whole, without allocating.
func TestCleanCorpus(t *testing.T) {
	s := New(Config{})
	for name, text := range cleanCorpus(t) {
		s.Find(text, func(k Kind, start, end int) {
			line := strings.Count(text[:start], "\n") + 1
			t.Errorf("%s:%d: false %s %q", name, line, k, text[start:end])
		})
		for line := range strings.Lines(text) {
			if got := s.String(line); got != line {
				t.Errorf("%s: line changed:\n%s\n%s", name, line, got)
			}
		}
		if raceEnabled && needsPool(text) {
			continue
		}
		if n := testing.AllocsPerRun(20, func() { s.String(text) }); n != 0 {
			t.Errorf("%s: String allocates %v times", name, n)
		}
	}
}

// TestDirtyCorpus scrubs realistic lines full of identifiers and compares
// the result with testdata/dirty.golden, which a person has read. Run
// with -update to rewrite it.
func TestDirtyCorpus(t *testing.T) {
	in, err := os.ReadFile("testdata/dirty.txt")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	got := s.String(string(in))
	if *update {
		if err := os.WriteFile("testdata/dirty.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/dirty.golden")
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, g, w)
		}
	}
	if again := s.String(got); again != got {
		t.Error("scrubbing the scrubbed corpus again changed it")
	}
	for _, leak := range []string{
		"jane", "Jane", "JANE", "jdoe", "829301", "9774d56d682e549c", "R58M123ABC", "ab12cd34ef56",
		"203.0.113", "198.51.100", "2001:db8", "192.168", "10.1.2.3", "192.0.2.1", "fe80",
		"4111", "5500", "378282", "DE89", "GB82", "AT61", "490154", "209900", "1234567", "555-2671",
		"7946", "5552671", "12345678", "48.20", "16.37", "33.86", "151.20", "AKIA", "sk_live", "AIza",
		"ghp_", "xoxb", "glpat", "SG.", "q8F2", "hunter2", "horse", "eyJ", "amFu", "8f14e45f",
		"Zx8Kq2", "9fK2", "def502", "s3cr3t", "k-12345", "00:1A", "001a", "02:00:00", "6A8F1D2C",
		"0B1C2D3E", "9E8D7C6B", "3F2504E0", "38400000", "HomeNetwork", "2zPOOU", "qh63Zq",
	} {
		if strings.Contains(got, leak) {
			t.Errorf("scrubbed corpus still holds %q", leak)
		}
	}
}
