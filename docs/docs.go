// Package docs holds Consentry's user documentation. Go code reads it
// only for tests that keep the guides true: the analysts' example
// queries are run on real data exactly as the guide prints them, and
// every column the guide describes must exist and every column analysts
// can see must be described.
package docs

import (
	"bufio"
	_ "embed"
	"regexp"
	"strings"
)

//go:embed analysts.md
var analysts string

var (
	sqlBlock       = regexp.MustCompile("(?s)```sql\n(.*?)```")
	tableHeading   = regexp.MustCompile("^### `([a-z_]+)`")
	columnTableRow = regexp.MustCompile("^\\| `([a-z_]+)` \\|")
)

// AnalystExamples returns the SQL of the example queries of the analysts'
// guide (analysts.md, section "Example queries"), in order; none if the
// section is missing.
func AnalystExamples() []string {
	_, examples, ok := strings.Cut(analysts, "\n## Example queries\n")
	if !ok {
		return nil
	}
	var out []string
	for _, m := range sqlBlock.FindAllStringSubmatch(examples, -1) {
		out = append(out, m[1])
	}
	return out
}

// AnalystColumns returns, per table section ("### `table`") of the
// analysts' guide, the columns its table lists; the event tables' common
// columns are listed under "".
func AnalystColumns() map[string][]string {
	cols := make(map[string][]string)
	section := ""
	sc := bufio.NewScanner(strings.NewReader(analysts))
	for sc.Scan() {
		line := sc.Text()
		if m := tableHeading.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		if strings.HasPrefix(line, "### ") || strings.HasPrefix(line, "## ") {
			section = ""
		}
		if m := columnTableRow.FindStringSubmatch(line); m != nil {
			cols[section] = append(cols[section], m[1])
		}
	}
	return cols
}
