package clickhouse

import "testing"

func TestSplitDaysCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    splitDays
		cond string
		want string
	}{
		{"one part a day", splitDays{}, "", "sum(finalizeAggregation(crashes))"},
		{"one part a day, a condition", splitDays{}, "handled = 0", "sumIf(finalizeAggregation(crashes), handled = 0)"},
		{"a cluster", splitDays{all: true}, "", "uniqExactMerge(crashes)"},
		{"a cluster, a condition", splitDays{all: true}, "handled = 0", "uniqExactMergeIf(crashes, handled = 0)"},
		{"two days of several parts", splitDays{days: []string{"2026-12-03", "2026-12-04"}}, "handled = 0",
			"sumIf(finalizeAggregation(crashes), (NOT (event_date IN (toDate('2026-12-03'), toDate('2026-12-04')))) AND (handled = 0)) + " +
				"uniqExactMergeIf(crashes, (event_date IN (toDate('2026-12-03'), toDate('2026-12-04'))) AND (handled = 0))"},
	} {
		if got := tc.d.count("uniqExact", "crashes", tc.cond); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
