// Package docs holds Consentry's user documentation. Go code reads it
// only for tests that keep the guides true: the analysts' example
// queries are run on real data exactly as the guide prints them, and
// every column the guide describes must exist and every column analysts
// can see must be described; the API guide's examples are run against a
// real collector and must answer as printed.
package docs

import (
	"bufio"
	_ "embed"
	"regexp"
	"strings"
)

//go:embed analysts.md
var analysts string

//go:embed api.md
var api string

var (
	sqlBlock       = regexp.MustCompile("(?s)```sql\n(.*?)```")
	apiExample     = regexp.MustCompile("(?s)```sh\n(.*?)```\n\n```json\n(.*?)```")
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

// APIExample is one example of the API guide: a shell command and the
// answer the guide says it prints.
type APIExample struct {
	// Shell is the command, for sh, using $COLLECTOR, $GRPC, $APP_ID,
	// $APP_KEY and $TOKEN.
	Shell string
	// Answer is the JSON printed; a string value "…" stands for any.
	Answer string
}

// APIExamples returns the examples of the API guide (api.md, section
// "Examples"), in order; none if the section is missing.
func APIExamples() []APIExample {
	_, examples, ok := strings.Cut(api, "\n## Examples\n")
	if !ok {
		return nil
	}
	var out []APIExample
	for _, m := range apiExample.FindAllStringSubmatch(examples, -1) {
		out = append(out, APIExample{Shell: m[1], Answer: m[2]})
	}
	return out
}
