package anonymizer

import (
	"bufio"
	"os"
	"strconv"
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

// TestPrivacyDocKeys checks the attribute keys that docs/privacy.md says
// are dropped or kept, and the numbers it says are dropped or kept.
func TestPrivacyDocKeys(t *testing.T) {
	sc := scrub.New(scrub.Config{})
	for _, row := range docTable(t, "key-examples") {
		if len(row) != 2 {
			t.Errorf("key row %q: want key and verdict", row)
			continue
		}
		if dropped := sc.IsIdentifierKey(row[0]); dropped != (row[1] == "dropped") {
			t.Errorf("docs/privacy.md says attribute %q is %s; IsIdentifierKey = %v", row[0], row[1], dropped)
		}
	}
	for _, row := range docTable(t, "number-examples") {
		if len(row) != 3 {
			t.Errorf("number row %q: want key, value and verdict", row)
			continue
		}
		v, err := strconv.ParseInt(row[1], 10, 64)
		if err != nil {
			t.Errorf("number row %q: %v", row, err)
			continue
		}
		if dropped := sc.Number(row[0], v) != 0; dropped != (row[2] == "dropped") {
			t.Errorf("docs/privacy.md says %s=%d is %s; Number = %v", row[0], v, row[2], sc.Number(row[0], v))
		}
	}
}
