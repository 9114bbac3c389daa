package dashboard_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/internal/browser"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/seed"
)

var shared *chserver.Server

func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }

const (
	user     = "alice"
	password = "correct-horse-battery"
)

// site is a dashboard over a seeded database.
type site struct {
	env *triagetest.Env
	srv *httptest.Server
}

// newSite seeds a database named db and serves a dashboard over it.
func newSite(tb testing.TB, db string) *site {
	tb.Helper()
	env := triagetest.Fresh(tb, shared, db)
	h, err := dashboard.New(dashboard.Config{Store: env.Store, Credentials: map[string]string{user: password}, Logger: zaptest.NewLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &site{env: env, srv: srv}
}

// get fetches path with Basic credentials (or none) and returns the status
// and body.
func (s *site) get(t *testing.T, path string, auth bool) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
	if auth {
		req.SetBasicAuth(user, password)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func groupPath(b seed.Bug) string {
	return "/crashes/" + triagetest.AppID + "/" + fingerprint.Hex(b.Fingerprint)
}

// TestPagesIntegration checks the pages over HTTP: what needs a sign-in,
// what each page shows, k-anonymity in breakdowns and filters, headers, and
// that no page refers to anything outside the dashboard.
func TestPagesIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_pages")
	segv, _ := seed.BugNamed(seed.BugImageDecoderSEGV)
	anr, _ := seed.BugNamed(seed.BugDatabaseANR)
	custom, _ := seed.BugNamed(seed.BugSyncConflict)

	if code, body, _ := s.get(t, "/debug/pprof/", false); code != http.StatusNotFound || !strings.Contains(body, `href="/static/app.css"`) || strings.Contains(body, "Sign out") {
		t.Errorf("GET of a page that does not exist, signed out: %d, want the 404 page", code)
	}
	for _, path := range []string{"/crashes", "/overview", groupPath(segv), "/"} {
		code, _, h := s.get(t, path, false)
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") && path != "/" {
			t.Errorf("GET %s signed out: %d to %q, want a redirect to the sign-in page", path, code, h.Get("Location"))
		}
	}

	pdf, _ := seed.BugNamed(seed.BugPDFRenderer)
	tests := []struct {
		name, path string
		code       int
		want       []string
		not        []string
	}{
		{"groups", "/crashes?days=14", 200, []string{`id="groups"`, "java.lang.IllegalStateException", "SIGSEGV", `class="spark"`, "NoteEditor", "new</span>", "escalating</span>",
			`id="bulk"`, `id="sort-crashes"`, "13</strong> crash groups"}, nil},
		{"groups on iOS", "/crashes?os=ios", 200, []string{"NSInternalInconsistencyException"}, []string{"SIGSEGV"}},
		{"search", "/crashes?q=pageRenderer", 200, []string{"1</strong> crash group", "kotlin.UninitializedPropertyAccessException"}, []string{"SIGSEGV"}},
		{"search without a match", "/crashes?q=no-such-crash", 200, []string{`id="empty"`, "No crash group matches"}, []string{`id="groups"`}},
		{"handled only", "/crashes?kind=handled&status=all", 200, []string{"NotesApp.SyncError", "java.io.IOException"}, []string{"SIGSEGV", "ANR<"}},
		{"second page", "/crashes?per=5&page=2", 200, []string{`id="pager"`, "showing 6–10", `rel="prev"`, `rel="next"`}, nil},
		{"sorted by first seen", "/crashes?sort=first_seen&per=1", 200, []string{fingerprint.Hex(pdf.Fingerprint), `aria-sort="descending"`}, nil},
		{"group", groupPath(segv), 200, []string{`class="stack"`, "SIGSEGV", `id="grouping"`, `id="chart"`, `<svg class="chart time crashes"`, `id="crash-list"`, "Device model",
			`id="resolve"`, `list="fix-versions"`, `<option value="4.13.1">`, "A value shows once it has 10 sessions", `<ol class="breadcrumbs">`, `<span class="before">3 min before</span> <span class="type">screen_view</span> <span class="crumb">home</span>`}, []string{seed.RareModel, seed.RareRegion}},
		{"group today, hourly", groupPath(segv) + "?days=1", 200, []string{"last 24 hours", "00:00"}, nil},
		{"group's second page of crashes", groupPath(custom) + "?cpage=2", 200, []string{`id="crash-list" start="21"`}, nil},
		{"fallback group", groupPath(anr), 200, []string{"message:"}, nil},
		{"custom group", groupPath(custom), 200, []string{`id="grouping-custom"`}, nil},
		{"overview", "/overview", 200, []string{`id="versions"`, "4.13.0", "crash-free", `id="days"`, `id="chart-adoption"`, `id="chart-crash-free"`, `class="chart bars"`}, nil},
		{"a range of 3 days is shown", "/crashes?days=3", 200, []string{`<option value="3" selected>3 days</option>`, `id="range">3 days: `}, nil},
		{"rare region refused", "/crashes?region=" + seed.RareRegion, 400, []string{"fewer than 10 sessions"}, nil},
		{"bad range", "/crashes?days=1000", 400, []string{"between 1 and 400"}, nil},
		{"bad page", "/crashes?page=-1", 400, []string{"is not a page"}, nil},
		{"bad sort", "/crashes?sort=title", 400, []string{"unknown order"}, nil},
		{"unknown app", "/crashes?app=com.unknown", 404, []string{`No app &#34;com.unknown&#34;`, `href="/static/app.css"`}, []string{"com.example.notes"}},
		{"unknown app's overview", "/overview?app=com.unknown", 404, []string{`No app &#34;com.unknown&#34;`}, []string{"com.example.notes"}},
		{"unknown group", "/crashes/" + triagetest.AppID + "/00000000000000ff", 404, []string{"no crashes"}, nil},
		{"bad group id", "/crashes/" + triagetest.AppID + "/zz", 404, nil, nil},
		{"no such page", "/no/such/page", 404, []string{`href="/static/app.css"`, `id="error"`, "There is no page at this address", "Sign out"}, nil},
		{"stylesheet", "/static/app.css", 200, []string{"font"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, h := s.get(t, tt.path, true)
			if code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%.2000s", tt.path, code, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q", tt.path, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(body, n) {
					t.Errorf("GET %s shows %q", tt.path, n)
				}
			}
			// Works offline: nothing loaded from elsewhere.
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
				t.Errorf("GET %s refers to another site", tt.path)
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("GET %s: CSP %q", tt.path, csp)
			}
		})
	}
}

// TestActionsIntegration signs in with the form, as a browser does, and
// changes a group's status; requests without the form token, or from
// another site, change nothing.
func TestActionsIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_actions")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	form := func(path string, v url.Values, header http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.srv.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, vs := range header {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := form("/login", url.Values{"user": {user}, "password": {"wrong-password!"}}, nil); resp.StatusCode != 401 || !strings.Contains(body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, body := form("/login", url.Values{"user": {user}, "password": {password}, "next": {"/overview"}}, nil)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/overview" || !strings.Contains(body, "Sign out") {
		t.Fatalf("sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	bug, _ := seed.BugNamed(seed.BugSyncNullTitle)
	page, err := client.Get(s.srv.URL + groupPath(bug))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	csrf := between(string(b), `name="csrf" value="`, `"`)
	if csrf == "" {
		t.Fatal("no form token on the group page")
	}
	status := groupPath(bug) + "/status"
	resolve := url.Values{"state": {"resolved"}, "version": {"4.12.1"}}
	if resp, _ := form(status, resolve, nil); resp.StatusCode != 403 {
		t.Errorf("without the form token: %d, want 403", resp.StatusCode)
	}
	resolve.Set("csrf", csrf)
	if resp, _ := form(status, resolve, http.Header{"Origin": {"https://evil.example"}}); resp.StatusCode != 403 {
		t.Errorf("from another site: %d, want 403", resp.StatusCode)
	}
	if resp, _ := form(status, url.Values{"csrf": {csrf}, "state": {"resolved"}}, nil); resp.StatusCode != 400 {
		t.Errorf("resolved without a version: %d, want 400", resp.StatusCode)
	}
	if resp, body := form(status, url.Values{"csrf": {csrf}, "state": {"resolved"}, "version": {"next week"}}, nil); resp.StatusCode != 400 || !strings.Contains(body, "is not an app version") {
		t.Errorf("resolved in %q: %d, want 400", "next week", resp.StatusCode)
	}
	// The version that carries the fix is usually the next one, not seen yet.
	resolve.Set("version", "4.14.0")
	resp, body = form(status, resolve, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="saved"`) || !strings.Contains(body, "resolved in 4.14.0") || !strings.Contains(body, "alice set resolved in 4.14.0") {
		t.Fatalf("resolve: %d\n%.3000s", resp.StatusCode, body)
	}
	// Assign it and leave a note, whose identifiers are not stored.
	if resp, body := form(groupPath(bug)+"/assign", url.Values{"csrf": {csrf}, "assignee": {"mallory"}}, nil); resp.StatusCode != 400 {
		t.Errorf("assigned to someone who is not a user: %d\n%.500s", resp.StatusCode, body)
	}
	if resp, body := form(groupPath(bug)+"/assign", url.Values{"csrf": {csrf}, "assignee": {"me"}}, nil); resp.StatusCode != 200 || !strings.Contains(body, "@alice") || !strings.Contains(body, "alice assigned alice") {
		t.Errorf("assigned to me: %d\n%.3000s", resp.StatusCode, body)
	}
	resp, body = form(groupPath(bug)+"/note", url.Values{"csrf": {csrf}, "note": {"Reported by ann@example.com; fix in the sync rewrite"}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Reported by [email]; fix in the sync rewrite") || strings.Contains(body, "ann@example.com") {
		t.Errorf("note: %d\n%.3000s", resp.StatusCode, between(body, `id="note-section"`, "</section>"))
	}
	// Bulk: ignore two groups from the list, then merge two others.
	ignored := []seed.Bug{mustBug(seed.BugUploadFailed), mustBug(seed.BugAttachmentDecode)}
	resp, body = form("/crashes/"+triagetest.AppID+"/bulk", url.Values{"csrf": {csrf}, "action": {"ignore"}, "back": {"/crashes?status=unresolved"},
		"id": {fingerprint.Hex(ignored[0].Fingerprint), fingerprint.Hex(ignored[1].Fingerprint)}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Ignored: 2 crash groups.") || strings.Contains(body, "java.io.IOException") {
		t.Errorf("bulk ignore: %d at %s\n%.2000s", resp.StatusCode, resp.Request.URL, body)
	}
	if resp, _ := form("/crashes/"+triagetest.AppID+"/bulk", url.Values{"csrf": {csrf}, "action": {"ignore"}}, nil); resp.StatusCode != 400 {
		t.Errorf("bulk change of no group: %d", resp.StatusCode)
	}
	if resp, _ := form("/crashes/"+triagetest.AppID+"/bulk", url.Values{"csrf": {csrf}, "action": {"ignore"}, "back": {"https://evil.example/"},
		"id": {fingerprint.Hex(ignored[0].Fingerprint)}}, nil); resp.Request.URL.Host != strings.TrimPrefix(s.srv.URL, "http://") {
		t.Errorf("redirected to %s", resp.Request.URL)
	}
	editor, settings := mustBug(seed.BugEditorDetached), mustBug(seed.BugSettingsDetached)
	resp, body = form("/crashes/"+triagetest.AppID+"/bulk", url.Values{"csrf": {csrf}, "action": {"merge"}, "id": {fingerprint.Hex(editor.Fingerprint), fingerprint.Hex(settings.Fingerprint)}}, nil)
	if resp.StatusCode != 200 || resp.Request.URL.Path != groupPath(editor) || !strings.Contains(body, `data-member="`+fingerprint.Hex(settings.Fingerprint)+`"`) || !strings.Contains(body, "+1 merged") {
		t.Fatalf("bulk merge: %d at %s\n%.3000s", resp.StatusCode, resp.Request.URL, body)
	}
	// The merged group's address leads to the group it joined.
	resp, body = form(groupPath(settings)+"/unmerge", url.Values{"csrf": {csrf}, "member": {fingerprint.Hex(settings.Fingerprint)}, "back": {groupPath(editor)}}, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Unmerged.") || !strings.Contains(body, "No other group is merged into this one") {
		t.Errorf("unmerge: %d\n%.2000s", resp.StatusCode, body)
	}
	// Signed out, the session cookie no longer works.
	form("/logout", url.Values{"csrf": {csrf}}, nil)
	if resp, err := client.Get(s.srv.URL + "/crashes"); err != nil || resp.Request.URL.Path != "/login" {
		t.Errorf("after signing out: %v at %v", err, resp.Request.URL)
	}
}

func mustBug(name string) seed.Bug {
	b, ok := seed.BugNamed(name)
	if !ok {
		panic("no bug " + name)
	}
	return b
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, b *browser.Browser, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out at %s", b.Location())
}
