package anonymizer

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/consentry/consentry/anonymizer/scrub"
)

// docTable returns the rows of the Markdown table that follows marker in
// docs/privacy.md, each as its backquoted cells.
func docTable(t *testing.T, marker string) [][]string {
	t.Helper()
	f, err := os.Open("../docs/privacy.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- "+marker):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			if len(rows) > 0 {
				return rows
			}
		case in && !strings.HasPrefix(line, "|---"):
			var cells []string
			for _, c := range strings.Split(strings.Trim(line, "|"), " | ") {
				if c = strings.TrimSpace(c); strings.HasPrefix(c, "`") && strings.HasSuffix(c, "`") {
					cells = append(cells, strings.Trim(c, "`"))
				}
			}
			if len(cells) > 0 {
				rows = append(rows, cells)
			}
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no table after %q in docs/privacy.md", marker)
	}
	return rows
}

// TestPrivacyDocExamples runs the examples of docs/privacy.md, so the page
// a privacy officer reads shows what the scrubber does.
func TestPrivacyDocExamples(t *testing.T) {
	sc := scrub.New(scrub.Config{})
	examples := docTable(t, "scrub-examples")
	// Every detector has an example.
	for _, k := range scrub.Kinds() {
		found := false
		for _, row := range examples {
			found = found || len(row) == 2 && strings.Contains(row[1], k.Marker())
		}
		if !found {
			t.Errorf("docs/privacy.md has no example of %s (%s)", k, k.Marker())
		}
	}
	for _, row := range examples {
		if len(row) != 2 {
			t.Errorf("example row %q: want before and after", row)
			continue
		}
		if got := sc.String(row[0]); got != row[1] {
			t.Errorf("docs/privacy.md says %q → %q; the scrubber gives %q", row[0], row[1], got)
		}
	}
	for _, row := range docTable(t, "scrub-kept") {
		if got := sc.String(row[0]); got != row[0] {
			t.Errorf("docs/privacy.md says %q is left alone; the scrubber gives %q", row[0], got)
		}
	}
}
