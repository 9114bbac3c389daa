package docs

import "testing"

func TestAnalystsGuideParses(t *testing.T) {
	if n := len(AnalystExamples()); n < 14 {
		t.Errorf("%d example queries, want at least 14", n)
	}
	cols := AnalystColumns()
	if len(cols[""]) == 0 {
		t.Error("no common columns of the event tables")
	}
	if len(cols["sessions"]) == 0 {
		t.Error("no columns of sessions")
	}
}
