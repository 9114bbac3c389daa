package dashboard_test

import (
	"fmt"
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

	for _, path := range []string{"/crashes", "/overview", groupPath(segv), "/"} {
		code, _, h := s.get(t, path, false)
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") && path != "/" {
			t.Errorf("GET %s signed out: %d to %q, want a redirect to the sign-in page", path, code, h.Get("Location"))
		}
	}

	tests := []struct {
		name, path string
		code       int
		want       []string
		not        []string
	}{
		{"groups", "/crashes?days=14", 200, []string{`id="groups"`, "java.lang.IllegalStateException", "SIGSEGV", `class="spark"`, "NoteEditor", "new</span>", "escalating</span>"}, nil},
		{"groups on iOS", "/crashes?os=ios", 200, []string{"NSInternalInconsistencyException"}, []string{"SIGSEGV"}},
		{"group", groupPath(segv), 200, []string{`id="stack"`, "SIGSEGV", `id="grouping"`, `id="timeline"`, "Device model", `id="resolve"`, "value(s) hidden"}, []string{seed.RareModel, seed.RareRegion}},
		{"fallback group", groupPath(anr), 200, []string{"message:"}, nil},
		{"custom group", groupPath(custom), 200, []string{`id="grouping-custom"`}, nil},
		{"overview", "/overview", 200, []string{`id="versions"`, "4.13.0", "crash-free", `id="days"`}, nil},
		{"rare region refused", "/crashes?region=" + seed.RareRegion, 400, []string{"fewer than 10 sessions"}, nil},
		{"bad range", "/crashes?days=1000", 400, []string{"between 1 and 400"}, nil},
		{"unknown group", "/crashes/" + triagetest.AppID + "/00000000000000ff", 404, []string{"no crashes"}, nil},
		{"bad group id", "/crashes/" + triagetest.AppID + "/zz", 404, nil, nil},
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
	resp, body = form(status, resolve, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="saved"`) || !strings.Contains(body, "resolved in 4.12.1") || !strings.Contains(body, "alice set resolved in 4.12.1") {
		t.Fatalf("resolve: %d\n%.3000s", resp.StatusCode, body)
	}
	// Signed out, the session cookie no longer works.
	form("/logout", url.Values{"csrf": {csrf}}, nil)
	if resp, err := client.Get(s.srv.URL + "/crashes"); err != nil || resp.Request.URL.Path != "/login" {
		t.Errorf("after signing out: %v at %v", err, resp.Request.URL)
	}
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

// TestBrowserIntegration drives the dashboard in headless Chromium: sign
// in, filter, open a group, resolve it, and check each page; screenshots
// of every step are saved in the test's artifact directory (go test
// -artifacts, or $CONSENTRY_SCREENSHOTS).
func TestBrowserIntegration(t *testing.T) {
	s := newSite(t, "t_dashboard_browser")
	b := browser.Start(t)

	b.Navigate(s.srv.URL + "/crashes")
	if !strings.HasSuffix(strings.SplitN(b.Location(), "?", 2)[0], "/login") {
		t.Fatalf("signed out, /crashes went to %s", b.Location())
	}
	b.SetValue(`input[name="user"]`, user)
	b.SetValue(`input[name="password"]`, password)
	b.Submit("#login")
	b.WaitVisible("#groups")
	b.Screenshot("1-crash-groups")
	all := b.Texts("#groups tr.group a.title")
	if len(all) < 8 {
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
	b.Screenshot("2-filtered-ios")

	// Open the escalating iOS bug.
	bug, _ := seed.BugNamed(seed.BugListUpdate)
	b.ClickAndWait(fmt.Sprintf(`#groups tr.group[data-id="%s"] a.title`, fingerprint.Hex(bug.Fingerprint)))
	b.WaitVisible("#stack")
	if got := b.Text("#group-title"); got != bug.Example.ExceptionType {
		t.Errorf("group page title %q, want %q", got, bug.Example.ExceptionType)
	}
	if got := b.Text("#status"); got != "open" {
		t.Errorf("status %q, want open", got)
	}
	if frames := b.Texts("#stack tr"); len(frames) < 3 {
		t.Errorf("stack of %d frames", len(frames))
	}
	if !strings.Contains(b.Text("#grouping"), "NSInternalInconsistencyException") {
		t.Errorf("grouping inputs: %q", b.Text("#grouping"))
	}
	for _, cell := range b.Texts(".breakdown td") {
		if cell == seed.RareModel || cell == seed.RareRegion {
			t.Errorf("breakdown shows the rare value %q", cell)
		}
	}
	b.Screenshot("3-group")

	// Resolve it in 4.13.0.
	b.SelectOption("#resolve-version", "4.13.0")
	b.Submit("#resolve")
	b.WaitVisible("#saved")
	if got := b.Text("#status"); !strings.Contains(got, "in 4.13.0") {
		t.Errorf("after resolving, status %q", got)
	}
	if got := b.Text("#history"); !strings.Contains(got, "alice set resolved in 4.13.0") {
		t.Errorf("history %q", got)
	}
	b.Screenshot("4-resolved")

	// It crashed in 4.13.0, so it is regressed and still listed.
	b.Navigate(s.srv.URL + "/crashes?os=ios")
	row := fmt.Sprintf(`#groups tr.group[data-id="%s"]`, fingerprint.Hex(bug.Fingerprint))
	if got := b.Text(row + " td"); !strings.Contains(got, "regressed") {
		t.Errorf("the resolved group's row reads %q, want regressed", got)
	}

	b.Navigate(s.srv.URL + "/overview")
	b.WaitVisible("#versions")
	if rows := b.Texts("#versions tbody tr"); len(rows) < 3 {
		t.Errorf("overview versions: %v", rows)
	}
	b.Screenshot("5-overview")
	b.NoConsoleErrors()
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
