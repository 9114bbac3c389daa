package dashboard_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/internal/browser"
	"github.com/consentry/consentry/internal/seed"
	"github.com/consentry/consentry/pipeline"
)

// The browser tests drive the dashboard in headless Chromium as a person
// does, and save a screenshot of every step (go test -artifacts, or
// $CONSENTRY_SCREENSHOTS) for review; they are not committed.

// startBrowser signs alice in with the form in a new browser of width
// wide.
func startBrowser(t *testing.T, s *site) *browser.Browser {
	t.Helper()
	b := browser.Start(t, browser.WithTimeout(4*time.Minute), browser.WithWindowSize(wide, 900))
	b.Navigate(s.srv.URL + "/crashes")
	if !strings.HasSuffix(strings.SplitN(b.Location(), "?", 2)[0], "/login") {
		t.Fatalf("signed out, /crashes went to %s", b.Location())
	}
	b.SetValue(`input[name="user"]`, user)
	b.SetValue(`input[name="password"]`, password)
	b.Submit("#login")
	b.WaitVisible("#groups")
	return b
}

// The window widths the layout is checked at.
const (
	wide   = 1400
	narrow = 800
)

// width sets the width of b's window.
func width(b *browser.Browser, w int64) { b.Run(chromedp.EmulateViewport(w, 900)) }

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser.Browser, js string) T { return browser.Result(b, chromedp.Evaluate[T](js)) }

// noOverflow fails t if the page is wider than the window or a table
// spills out of its box.
func noOverflow(t *testing.T, b *browser.Browser, page string) {
	t.Helper()
	if over := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		t.Errorf("%s at %dpx: the page is %.0fpx wider than the window", page, eval[int](b, "window.innerWidth"), over)
	}
	spills := eval[[]string](b, `Array.from(document.querySelectorAll("main *")).filter(e => {
		const r = e.getBoundingClientRect(), m = document.querySelector("main").getBoundingClientRect();
		return r.width > 0 && r.right > m.right + 1 && getComputedStyle(e).position !== "absolute";
	}).map(e => e.tagName + "." + e.className + "#" + e.id).slice(0, 5)`)
	if len(spills) > 0 {
		t.Errorf("%s at %dpx: elements spill past the page: %v", page, eval[int](b, "window.innerWidth"), spills)
	}
}

// count returns how many elements match selector.
func count(b *browser.Browser, selector string) int {
	return eval[int](b, fmt.Sprintf("document.querySelectorAll(%q).length", selector))
}

// smallestChartText returns the height in pixels of the smallest text of
// the page's charts.
func smallestChartText(b *browser.Browser) float64 {
	return eval[float64](b, `Math.min(...Array.from(document.querySelectorAll("svg.chart text")).map(e => e.getBoundingClientRect().height))`)
}

// TestBrowserListIntegration finds crash groups: search, sort, pages,
// empty states, the range of an unusual number of days, an unknown app,
// a page that does not exist, and the layout at 1400 and 800 pixels.
func TestBrowserListIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_browser_list")
	b := startBrowser(t, s)
	b.Screenshot("01-crash-groups-1400")
	all := b.Texts("#groups tr.group a.title")
	if len(all) < 12 {
		t.Fatalf("%d groups listed: %v", len(all), all)
	}

	// Filtering by OS submits the form on change.
	b.SelectOption(`#filters select[name="os"]`, "ios")
	waitFor(t, b, func() bool { return strings.Contains(b.Location(), "os=ios") })
	b.WaitVisible("#groups")
	ios := b.Texts("#groups tr.group a.title")
	if len(ios) == 0 || len(ios) >= len(all) {
		t.Errorf("iOS filter: %d of %d groups", len(ios), len(all))
	}
	for _, typ := range ios {
		if strings.HasPrefix(typ, "java.") || typ == "SIGSEGV" {
			t.Errorf("an Android crash %q under iOS", typ)
		}
	}
	b.SelectOption(`#filters select[name="os"]`, "all")
	waitFor(t, b, func() bool { return !strings.Contains(b.Location(), "os=ios") })

	// Search by exception type, message or function.
	b.SetValue("#search", "illegalstate")
	b.Submit("#apply")
	b.WaitVisible("#groups")
	if got := b.Texts("#groups tr.group a.title"); len(got) != 2 || got[0] != "java.lang.IllegalStateException" {
		t.Errorf("search for illegalstate: %v", got)
	}
	b.Screenshot("02-search")
	b.SetValue("#search", "saveDraft")
	b.Submit("#apply")
	b.WaitVisible("#groups")
	if got := b.Texts("#groups tr.group .culprit"); len(got) != 1 || !strings.Contains(got[0], "saveDraft") {
		t.Errorf("search for a function: %v", got)
	}
	b.SetValue("#search", "no such crash anywhere")
	b.Submit("#apply")
	b.WaitVisible("#empty")
	if got := b.Text("#empty"); !strings.Contains(got, "No crash group matches") {
		t.Errorf("empty search: %q", got)
	}
	b.Screenshot("03-search-empty")

	// Sort by crashes, most first, then fewest first.
	b.Navigate(s.srv.URL + "/crashes")
	crashCounts := func() []int {
		var out []int
		for _, c := range b.Texts("#groups tr.group td.crashes") {
			n, _ := strconv.Atoi(strings.Fields(c)[0])
			out = append(out, n)
		}
		return out
	}
	b.ClickAndWait("#sort-crashes")
	if got := crashCounts(); !descending(got) || !strings.Contains(b.Location(), "sort=crashes") {
		t.Errorf("sorted by crashes: %v at %s", got, b.Location())
	}
	b.ClickAndWait("#sort-crashes")
	if got := crashCounts(); !descending(reverse(got)) || !strings.Contains(b.Location(), "dir=asc") {
		t.Errorf("sorted by crashes, fewest first: %v", got)
	}
	b.Screenshot("04-sorted-by-crashes-ascending")

	// Five a page: three pages of 13 groups, with totals.
	b.Navigate(s.srv.URL + "/crashes?per=5")
	if got := b.Text("#totals"); !strings.Contains(got, "13 crash groups") || !strings.Contains(got, "showing 1–5") {
		t.Errorf("totals %q", got)
	}
	first := b.Texts("#groups tr.group a.title")
	b.ClickAndWait("#next")
	second := b.Texts("#groups tr.group a.title")
	if len(first) != 5 || len(second) != 5 || first[0] == second[0] || !strings.Contains(b.Text("#totals"), "showing 6–10") {
		t.Errorf("pages: %v then %v (%s)", first, second, b.Text("#totals"))
	}
	b.ClickAndWait("#pager a[href*='page=3']")
	if got := b.Texts("#groups tr.group"); len(got) != 3 {
		t.Errorf("last page: %d groups", len(got))
	}
	b.Screenshot("05-third-page")

	// Three days: accepted, and shown as such.
	b.Navigate(s.srv.URL + "/crashes?days=3")
	if got := b.Value("#range-select"); got != "3" {
		t.Errorf("range select shows %q for 3 days", got)
	}
	if got := b.Text("#range"); !strings.HasPrefix(got, "3 days: ") {
		t.Errorf("range %q", got)
	}
	// An app that does not exist is not another app's data.
	b.Navigate(s.srv.URL + "/crashes?app=com.unknown")
	if b.Status() != 404 || !strings.Contains(b.Text("#error"), "com.unknown") || len(b.Texts("#filters")) != 0 || len(b.Texts("#groups")) != 0 {
		t.Errorf("unknown app: %d, %q", b.Status(), b.Text("#error"))
	}
	// A page that does not exist looks like the dashboard.
	b.Navigate(s.srv.URL + "/no/such/page")
	b.WaitVisible("#error")
	if b.Status() != 404 || eval[string](b, `getComputedStyle(document.querySelector("header")).backgroundColor`) != "rgb(28, 40, 51)" {
		t.Errorf("404 page: status %d, header %q", b.Status(), eval[string](b, `getComputedStyle(document.querySelector("header")).backgroundColor`))
	}
	b.Screenshot("06-not-found")

	// The layout at 1400 and 800 pixels: nothing spills, charts read.
	bug := mustBug(seed.BugListUpdate)
	for _, w := range []int64{wide, narrow} {
		width(b, w)
		for _, p := range []struct{ name, path string }{
			{"crash-groups", "/crashes"},
			{"group", groupPath(bug)},
			{"group-today", groupPath(bug) + "?days=1"},
			{"overview", "/overview"},
		} {
			b.Navigate(s.srv.URL + p.path)
			b.WaitVisible("main h1")
			noOverflow(t, b, p.name)
			if count(b, "svg.chart") > 0 {
				if h := smallestChartText(b); h < 10 {
					t.Errorf("%s at %dpx: chart text %.1fpx high, too small to read", p.name, w, h)
				}
			}
			b.Screenshot(fmt.Sprintf("07-%s-%d", p.name, w))
		}
	}
	b.NoConsoleErrors()
}

func descending(v []int) bool {
	for i := 1; i < len(v); i++ {
		if v[i] > v[i-1] {
			return false
		}
	}
	return len(v) > 1
}

func reverse(v []int) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[len(v)-1-i] = x
	}
	return out
}

// TestBrowserGroupIntegration opens a group: its charts, its crashes with
// their breadcrumbs; resolves it in a version not seen yet, with no false
// regression; and checks that a real regression looks the same in the
// list and on the group's page.
func TestBrowserGroupIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_browser_group")
	bug := mustBug(seed.BugListUpdate)
	// The latest crash: what the user did before it, as stored (the name
	// scrubbed, the offsets rounded to the minute); one before it without
	// breadcrumbs.
	crumbs := []pipeline.Breadcrumb{
		{Type: "screen_view", Name: "note.list", OffsetMs: 180_000},
		{Type: "custom", Name: "sync.merge_remote", OffsetMs: 60_000},
		{Type: "swipe", Name: "note.list", OffsetMs: 0},
	}
	if err := triagetest.AddCrash(context.Background(), s.env, bug.Fingerprint, s.env.Now.Add(30*time.Second), crumbs); err != nil {
		t.Fatal(err)
	}
	if err := triagetest.AddCrash(context.Background(), s.env, bug.Fingerprint, s.env.Now.Add(-30*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, s)
	b.ClickAndWait(fmt.Sprintf(`#groups tr.group[data-id="%s"] a.title`, fingerprint.Hex(bug.Fingerprint)))
	b.WaitVisible("#chart svg.chart")
	if got := b.Text("#group-title"); got != bug.Example.ExceptionType {
		t.Errorf("group page title %q, want %q", got, bug.Example.ExceptionType)
	}
	if got := b.Text("#status"); !strings.Contains(got, "open") || !strings.Contains(got, "escalating") {
		t.Errorf("status %q, want open and escalating", got)
	}
	if bars := count(b, "#chart svg.chart rect.bar"); bars != triagetest.Days {
		t.Errorf("daily chart of %d bars, want %d", bars, triagetest.Days)
	}
	want := []string{"3 min before screen_view note.list", "1 min before custom sync.merge_remote", "< 1 min before swipe note.list"}
	if got := b.Texts("#sample-breadcrumbs li"); !slices.Equal(got, want) {
		t.Errorf("latest crash's breadcrumbs: %q, want %q", got, want)
	}
	crashes := b.Texts("#crash-list > li")
	if len(crashes) != triage.CrashesPerPage {
		t.Errorf("%d crashes listed, want %d", len(crashes), triage.CrashesPerPage)
	}
	// Each crash of the list opens on its stack and breadcrumbs.
	b.Click("#crash-list > li:nth-child(1) summary")
	b.WaitVisible("#crash-list > li:nth-child(1) ol.breadcrumbs")
	if got := b.Texts("#crash-list > li:nth-child(1) ol.breadcrumbs li"); !slices.Equal(got, want) {
		t.Errorf("the latest crash of the list: breadcrumbs %q, want %q", got, want)
	}
	b.Click("#crash-list > li:nth-child(2) summary")
	b.WaitVisible("#crash-list > li:nth-child(2) table.stack")
	if got := b.Text("#crash-list > li:nth-child(2) .no-breadcrumbs"); !strings.Contains(got, "No breadcrumbs were stored") {
		t.Errorf("a crash without breadcrumbs: %q", got)
	}
	b.Click("#crash-list > li:nth-child(3) summary")
	b.WaitVisible("#crash-list > li:nth-child(3) ol.breadcrumbs")
	if got := b.Texts("#crash-list > li:nth-child(3) ol.breadcrumbs li"); len(got) != 3 || got[0] != "3 min before screen_view home" {
		t.Errorf("a seeded crash's breadcrumbs: %q", got)
	}
	for _, cell := range append(b.Texts(".breakdown td"), b.Texts("#crash-list summary")...) {
		if strings.Contains(cell, seed.RareModel) || strings.Contains(cell, seed.RareRegion) {
			t.Errorf("the rare value shows: %q", cell)
		}
	}
	b.Screenshot("01-group")
	b.ClickAndWait("#crash-next")
	if got := b.Texts("#crash-list > li"); len(got) == 0 || len(got) > triage.CrashesPerPage {
		t.Errorf("second page of crashes: %d", len(got))
	}

	// Today, hourly.
	b.Navigate(s.srv.URL + groupPath(bug) + "?days=1")
	if bars := count(b, "#chart svg.chart rect.bar"); bars != 24 || !strings.Contains(b.Text("#chart h2"), "last 24 hours") {
		t.Errorf("today's chart: %d bars, %q", bars, b.Text("#chart h2"))
	}
	b.Screenshot("02-group-today")

	// Resolve in the next release, which has not shipped: resolved, not
	// regressed, although it crashed in every version so far.
	b.Navigate(s.srv.URL + groupPath(bug))
	if got := b.Value("#resolve-version"); got != "4.13.1" {
		t.Errorf("the version offered first is %q, want the next release 4.13.1", got)
	}
	b.SetValue("#resolve-version", "4.14.0")
	b.Submit("#resolve")
	b.WaitVisible("#saved")
	if got := b.Text("#status"); !strings.Contains(got, "resolved in 4.14.0") || strings.Contains(got, "regressed") {
		t.Errorf("after resolving in 4.14.0: status %q", got)
	}
	if got := b.Text("#history"); !strings.Contains(got, "alice set resolved in 4.14.0") {
		t.Errorf("history %q", got)
	}
	b.Screenshot("03-resolved-in-next-release")
	b.Navigate(s.srv.URL + "/crashes")
	if len(b.Texts(fmt.Sprintf(`#groups tr.group[data-id="%s"]`, fingerprint.Hex(bug.Fingerprint)))) != 0 {
		t.Error("the resolved group is in the unresolved list")
	}

	// Resolved in 4.12.1 after all its crashes (some in 4.13.0): no
	// regression. A crash in 4.13.0 after that: regressed, in red on
	// both pages.
	share := mustBug(seed.BugShareAdapterIndex)
	b.Navigate(s.srv.URL + groupPath(share))
	b.SetValue("#resolve-version", "4.12.1")
	b.Submit("#resolve")
	b.WaitVisible("#saved")
	if got := b.Text("#status"); !strings.Contains(got, "resolved in 4.12.1") || strings.Contains(got, "regressed") {
		t.Errorf("resolved in 4.12.1 after its crashes in 4.13.0: %q", got)
	}
	again := crashOf(t, s, share.Fingerprint, "4.13.0", s.env.Now.Add(40*time.Second))
	if err := s.env.Client.Insert(context.Background(), &pipeline.Rows{Crashes: []pipeline.CrashRow{again}}); err != nil {
		t.Fatal(err)
	}
	b.Navigate(s.srv.URL + groupPath(share))
	if got := b.Text("#status"); !strings.Contains(got, "regressed") || !strings.Contains(b.Text("#regressed-note"), "4.13.0") {
		t.Errorf("after a crash in 4.13.0: %q", got)
	}
	badge := func(in string) string {
		return eval[string](b, fmt.Sprintf("getComputedStyle(document.querySelector(%q)).backgroundColor", in+" .badge.regressed"))
	}
	onPage := badge("#status")
	b.Screenshot("04-regressed")
	b.Navigate(s.srv.URL + "/crashes")
	row := fmt.Sprintf(`#groups tr.group[data-id="%s"]`, fingerprint.Hex(share.Fingerprint))
	if inList := badge(row); inList != onPage || onPage != "rgb(192, 57, 43)" {
		t.Errorf("the regressed badge is %s in the list and %s on the group's page; want red on both", inList, onPage)
	}
	b.NoConsoleErrors()
}

// crashOf returns a copy of a seeded crash of the group fp with a new
// event id, in version at at.
func crashOf(t *testing.T, s *site, fp uint64, version string, at time.Time) pipeline.CrashRow {
	t.Helper()
	for _, c := range s.env.Rows.Crashes {
		if c.Fingerprint == fp {
			c.EventID = [16]byte{0xaa, byte(at.Unix()), byte(at.Unix() >> 8), 0x40, 0x80}
			c.EventTime, c.AppVersion = at, version
			return c
		}
	}
	t.Fatalf("no crash of %016x", fp)
	return pipeline.CrashRow{}
}

// TestBrowserTriageIntegration ignores a group, merges two, assigns and
// notes, and shows the empty states of an app without data.
func TestBrowserTriageIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_browser_triage")
	b := startBrowser(t, s)

	// Ignore a group: it leaves the unresolved list for the ignored one.
	upload := mustBug(seed.BugUploadFailed)
	row := func(bug seed.Bug) string {
		return fmt.Sprintf(`#groups tr.group[data-id="%s"]`, fingerprint.Hex(bug.Fingerprint))
	}
	b.ClickAndWait(row(upload) + " a.title")
	b.Submit("#ignore")
	b.WaitVisible("#saved")
	if got := b.Text("#status"); !strings.Contains(got, "ignored") {
		t.Errorf("after ignoring: %q", got)
	}
	b.Navigate(s.srv.URL + "/crashes")
	if len(b.Texts(row(upload))) != 0 {
		t.Error("the ignored group is in the unresolved list")
	}
	b.SelectOption(`#filters select[name="status"]`, "ignored")
	waitFor(t, b, func() bool { return strings.Contains(b.Location(), "status=ignored") })
	b.WaitVisible("#groups")
	if got := b.Texts("#groups tr.group"); len(got) != 1 || !strings.Contains(b.Text(row(upload)+" .badges"), "ignored") {
		t.Errorf("ignored list: %v", got)
	}
	b.Screenshot("01-ignored")

	// Merge two groups from the list, and assign the result.
	editor, settings := mustBug(seed.BugEditorDetached), mustBug(seed.BugSettingsDetached)
	b.Navigate(s.srv.URL + "/crashes")
	crashesOf := func(bug seed.Bug) int {
		n, _ := strconv.Atoi(strings.Fields(b.Text(row(bug) + " td.crashes"))[0])
		return n
	}
	want := crashesOf(editor) + crashesOf(settings)
	b.Click(row(editor) + " input[type=checkbox]")
	b.Click(row(settings) + " input[type=checkbox]")
	b.Submit("#bulk-merge")
	b.WaitVisible("#members")
	if got := b.Texts("#members li code"); len(got) != 1 || got[0] != fingerprint.Hex(settings.Fingerprint) {
		t.Errorf("members of the merged group: %v", got)
	}
	if got := b.Text("#group-meta"); !strings.Contains(got, fmt.Sprintf("%d crashes", want)) || !strings.Contains(got, "+1 merged") {
		t.Errorf("merged group: %q, want %d crashes", got, want)
	}
	b.SelectOption("#assignee", "alice")
	b.Submit("#assign")
	b.WaitVisible("#saved")
	b.SetValue("#note-text", "Same bug in two fragments; mail ann@example.com for logs")
	b.Submit("#save-note")
	b.WaitVisible("#note")
	if got := b.Text("#note"); got != "Same bug in two fragments; mail [email] for logs" {
		t.Errorf("note %q", got)
	}
	b.Screenshot("02-merged-assigned-noted")
	b.Navigate(s.srv.URL + "/crashes?assignee=me")
	if got := b.Texts("#groups tr.group"); len(got) != 1 || !strings.Contains(b.Text(row(editor)+" .badges"), "+1 merged") || crashesOf(editor) != want {
		t.Errorf("assigned to me: %v", got)
	}
	b.Screenshot("03-assigned-to-me")
	// The merged group's address leads to the group it joined.
	b.Navigate(s.srv.URL + groupPath(settings))
	if got := b.Text("#merged-from"); !strings.Contains(got, fingerprint.Hex(settings.Fingerprint)) || !strings.HasPrefix(strings.SplitN(b.Location(), "?", 2)[0], s.srv.URL+groupPath(editor)) {
		t.Errorf("merged group's address: %s, %q", b.Location(), got)
	}

	// An app without data: empty states, no values.
	now := time.Now().UTC()
	if err := s.env.Client.PutApp(context.Background(), consent.App{ID: "com.example.empty", KeyHash: "x", Policy: consent.PolicyAnonymous, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	b.Navigate(s.srv.URL + "/crashes?app=com.example.empty")
	b.WaitVisible("#empty")
	if got := b.Text("#empty"); !strings.Contains(got, "No unresolved crash groups") {
		t.Errorf("empty list: %q", got)
	}
	b.Screenshot("04-empty-list")
	b.Navigate(s.srv.URL + "/overview?app=com.example.empty")
	b.WaitVisible("#empty")
	if got := b.Text("#empty"); got != "No sessions in this range." || count(b, "svg.chart") != 0 {
		t.Errorf("empty overview: %q", got)
	}
	// Days without sessions have no crash-free rate (it read 100.00%).
	cells := eval[[]string](b, `Array.from(document.querySelectorAll("#days td.crash-free")).map(e => e.textContent)`)
	if len(cells) != triagetest.Days {
		t.Errorf("%d days in the table", len(cells))
	}
	for _, cell := range cells {
		if cell != "—" {
			t.Errorf("a day without sessions shows %q crash-free", cell)
		}
	}
	b.Screenshot("05-empty-overview")
	b.NoConsoleErrors()
}
