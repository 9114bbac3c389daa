package dashboard

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

func TestNewRefusesToServeWithoutCredentials(t *testing.T) {
	store := &triage.Store{}
	tests := []struct {
		name  string
		cfg   Config
		error string
	}{
		{"no store", Config{Credentials: map[string]string{"a": "correct-horse-1"}}, "Store is required"},
		{"no credentials", Config{Store: store}, "no credentials"},
		{"short password", Config{Store: store, Credentials: map[string]string{"a": "short"}}, "at least 12"},
		{"bad user", Config{Store: store, Credentials: map[string]string{"a b": "correct-horse-1"}}, "plain name"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.error) {
			t.Errorf("%s: New = %v, want %q", tt.name, err, tt.error)
		}
	}
	if _, err := New(Config{Store: store, Credentials: map[string]string{"a": "correct-horse-1"}}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		counts []uint64
		points string
	}{
		{nil, ""},
		{[]uint64{0, 0}, `points="0.0,23.0 120.0,23.0 "`},
		{[]uint64{0, 5, 10}, `points="0.0,23.0 60.0,12.0 120.0,1.0 "`},
		{[]uint64{7}, `points="60.0,1.0 "`},
	}
	for _, tt := range tests {
		got := string(sparkline(tt.counts))
		if !strings.HasPrefix(got, "<svg") || !strings.Contains(got, tt.points) {
			t.Errorf("sparkline(%v) = %s, want %s", tt.counts, got, tt.points)
		}
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		days int
		want string
	}{
		{14, "today,7 days,14 days*,30 days,90 days"},
		{3, "today,3 days*,7 days,14 days,30 days,90 days"},
		{400, "today,7 days,14 days,30 days,90 days,400 days*"},
	} {
		var got []string
		for _, r := range (filterView{Filter: triage.Filter{Days: tc.days}}).Ranges() {
			s := r.Label
			if r.Selected {
				s += "*"
			}
			got = append(got, s)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("Ranges for %d days: %v, want %s", tc.days, got, tc.want)
		}
	}
}

func TestListLinks(t *testing.T) {
	f := filterView{Filter: triage.Filter{AppID: "app", Days: 7, Search: "a b"}, List: triage.ListOptions{Sort: triage.SortCrashes, PerPage: 5, Page: 2}}
	if got := string(f.SortURL("crashes")); got != "/crashes?app=app&days=7&dir=asc&per=5&q=a+b&sort=crashes" {
		t.Errorf("SortURL of the sorted column: %s", got)
	}
	if got := string(f.SortURL("sessions")); got != "/crashes?app=app&days=7&per=5&q=a+b" {
		t.Errorf("SortURL of another column: %s", got)
	}
	if got := string(f.PageURL(3)); got != "/crashes?app=app&days=7&page=3&per=5&q=a+b&sort=crashes" {
		t.Errorf("PageURL: %s", got)
	}
	if f.SortMark("crashes") != "↓" || f.SortMark("sessions") != "" || (filterView{}).SortMark("sessions") != "↓" {
		t.Error("sort marks")
	}
	asc := f
	asc.List.Asc = true
	if f.AriaSort("crashes") != "descending" || asc.AriaSort("crashes") != "ascending" || asc.SortMark("crashes") != "↑" || f.AriaSort("sessions") != "none" {
		t.Error("aria-sort values")
	}
}

func TestPageNumbers(t *testing.T) {
	for _, tc := range []struct {
		cur, pages int
		want       string
	}{
		{1, 1, "[1]"}, {1, 3, "[1 2 3]"}, {5, 10, "[1 0 3 4 5 6 7 0 10]"}, {10, 10, "[1 0 8 9 10]"},
	} {
		if got := fmt.Sprint(pageNumbers(tc.cur, tc.pages)); got != tc.want {
			t.Errorf("pageNumbers(%d, %d) = %s, want %s", tc.cur, tc.pages, got, tc.want)
		}
	}
}

func TestSafeBackAndSaved(t *testing.T) {
	for back, want := range map[string]string{
		"/crashes?app=a&page=2": "/crashes?app=a&page=2", "/crashes/a/00ff": "/crashes/a/00ff",
		"https://evil.example/crashes": "/fallback", "//evil.example/crashes": "/fallback", "/crashes\\@evil": "/fallback", "/overview": "/fallback",
	} {
		if got := safeBack(back, "/fallback"); got != want {
			t.Errorf("safeBack(%q) = %q, want %q", back, got, want)
		}
	}
	if got := savedMessage(url.Values{"saved": {"resolved"}, "n": {"3"}}); got != "Resolved: 3 crash groups." {
		t.Errorf("saved %q", got)
	}
	if got := savedMessage(url.Values{"saved": {"<b>call 555</b>"}}); got != "" {
		t.Errorf("an unknown code shows %q", got)
	}
}

func TestCharts(t *testing.T) {
	if top, step := niceScale(37); top != 40 || step != 10 {
		t.Errorf("niceScale(37) = %v, %v", top, step)
	}
	if top, step := niceScale(3); top != 3 || step != 1 {
		t.Errorf("niceScale(3) = %v, %v", top, step)
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	xs := []time.Time{day, day.AddDate(0, 0, 1), day.AddDate(0, 0, 2), day.AddDate(0, 0, 3)}
	// A day without sessions breaks the line: two pieces, no point at 100%.
	svg := string(rateLine("crash-free", xs, []float64{0.99, 0, 0.97, 0.98}, []bool{true, false, true, true}))
	if path := between(svg, ` d="`, `"`); strings.Count(path, "M") != 2 || strings.Count(path, "L") != 1 || !strings.Contains(svg, "2026-11-21: no sessions") || strings.Contains(svg, "100.00%") {
		t.Errorf("rate line with a gap:\n%s", svg)
	}
	svg = string(barLineChart("crashes", "c", xs, false, []uint64{1, 2, 3, 4}, "crashes", []uint64{1, 1, 2, 2}, "sessions"))
	if strings.Count(svg, `class="bar"`) != 4 || !strings.Contains(svg, "2026-11-22: 3 crashes, 2 sessions") || strings.Contains(svg, "style=") {
		t.Errorf("bar and line chart:\n%s", svg)
	}
	svg = string(shareStack("a", []string{"4.13.0", "<4.12>"}, []stackDay{{Time: day, Total: 10, Parts: []uint64{6, 4}}, {Time: day.AddDate(0, 0, 1), Total: 5, Hidden: true}}))
	if !strings.Contains(svg, "4.13.0 60.00%") || !strings.Contains(svg, "&lt;4.12&gt;") || !strings.Contains(svg, `class="stack hidden"`) {
		t.Errorf("stacked chart:\n%s", svg)
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, end)
	return before
}

func TestBefore(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "< 1 min before"},
		{59 * time.Second, "< 1 min before"},
		{time.Minute, "1 min before"},
		{59 * time.Minute, "59 min before"},
		{time.Hour, "1 h 0 min before"},
		{2*time.Hour + 3*time.Minute, "2 h 3 min before"},
	} {
		if got := before(tc.d); got != tc.want {
			t.Errorf("before(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
