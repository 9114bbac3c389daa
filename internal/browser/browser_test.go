package browser_test

import (
	"fmt"
	"html"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/browser"
)

// testServer serves a form, the page that shows what the form sent, and pages
// that report JavaScript errors.
func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, title, body string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title></head>
<body>%s</body></html>`, html.EscapeString(title), body)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Form", `
<form id="f" method="post" action="/submit">
  <input id="name" name="name" required>
  <select id="color" name="color">
    <option value="r">Red</option>
    <option value="g">Green</option>
    <option value="b">Blue</option>
  </select>
  <button id="save" type="submit" name="action" value="save">Save</button>
</form>`)
	})
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/result?"+r.PostForm.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /result", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		// Taller than the window, for the full-page screenshot.
		page(w, "Result", fmt.Sprintf(`
<h1 id="greeting">Hello, %s!</h1>
<ul><li class="field">%s</li><li class="field">%s</li><li class="field" hidden>hidden</li></ul>
<div style="height: 1500px; background: linear-gradient(#fff, #36c)"></div>
<a id="back" href="/">Back</a>`,
			html.EscapeString(q.Get("name")), html.EscapeString(q.Get("color")), html.EscapeString(q.Get("action"))))
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		session := ""
		if c, err := r.Cookie("session"); err == nil {
			session = c.Value
		}
		page(w, "Who", fmt.Sprintf(`<p id="auth">%s</p><p id="session">%s</p>`,
			html.EscapeString(r.Header.Get("Authorization")), html.EscapeString(session)))
	})
	mux.HandleFunc("GET /throw", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Throw", `<p id="p">before</p><script>throw new Error("boom from inline script");</script>`)
	})
	mux.HandleFunc("GET /console-error", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Console", `<p id="p">before</p><script>console.error("bad thing", 42);</script>`)
	})
	mux.HandleFunc("GET /reject", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Reject", `<p id="p">before</p><script>Promise.reject(new Error("nobody caught me"));</script>`)
	})
	mux.HandleFunc("GET /missing-script", func(w http.ResponseWriter, r *http.Request) {
		page(w, "Missing", `<p id="p">before</p><script src="/no-such.js"></script>`)
	})
	mux.HandleFunc("GET /churn", func(w http.ResponseWriter, r *http.Request) {
		// The input and the paragraph are replaced by copies (the input
		// keeping its value) as fast as the page can, as a re-rendering
		// page or a navigation does.
		page(w, "Churn", `<div id="box"><input id="q"><p id="t">churning</p></div><script>
function churn() {
  const old = document.getElementById("q");
  const copy = old.cloneNode();
  copy.value = old.value;
  old.replaceWith(copy);
  const p = document.getElementById("t");
  p.replaceWith(p.cloneNode(true));
  setTimeout(churn, 0);
}
churn();
</script>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestBrowser starts one browser for its subtests, as it takes a second or
// two to start.
func TestBrowser(t *testing.T) {
	b := browser.Start(t)
	srv := testServer(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, b *browser.Browser, srv *httptest.Server)
	}{
		{"form", testForm},
		{"header and cookie", testHeaderAndCookie},
		{"console errors", testConsoleErrors},
		{"failures", testFailures},
		{"replaced elements", testReplaced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.test(t, b.For(t), srv)
		})
	}
}

func testForm(t *testing.T, b *browser.Browser, srv *httptest.Server) {
	b.ClearConsoleErrors()

	b.Navigate(srv.URL + "/")
	if got := b.Status(); got != http.StatusOK {
		t.Errorf("Status() after Navigate = %d, want 200", got)
	}
	if got := b.Title(); got != "Form" {
		t.Errorf("Title() = %q, want %q", got, "Form")
	}
	b.SetValue("#name", "Ad")
	b.SendKeys("#name", "a")
	if got := b.Value("#name"); got != "Ada" {
		t.Errorf(`Value("#name") = %q, want "Ada"`, got)
	}
	b.SelectOption("#color", "Green") // by label
	if got := b.Value("#color"); got != "g" {
		t.Errorf(`Value("#color") = %q, want "g"`, got)
	}
	b.SelectOption("#color", "b") // by value
	b.Submit("#save")

	if got, want := b.Text("#greeting"), "Hello, Ada!"; got != want {
		t.Errorf("Text(#greeting) = %q, want %q", got, want)
	}
	if got, want := b.Texts("li.field"), []string{"b", "save", ""}; !slices.Equal(got, want) {
		t.Errorf("Texts(li.field) = %q, want %q", got, want)
	}
	if got := b.Texts(".nothing"); got == nil || len(got) != 0 {
		t.Errorf("Texts(.nothing) = %#v, want an empty slice", got)
	}
	if got, want := b.Location(), srv.URL+"/result?action=save&color=b&name=Ada"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
	if got := b.Status(); got != http.StatusOK {
		t.Errorf("Status() after the redirect = %d, want 200", got)
	}
	b.WaitVisible("#greeting")

	path := b.Screenshot("result page")
	if filepath.Base(path) != "result_page.png" {
		t.Errorf("Screenshot path = %s, want the name result_page.png", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != browser.DefaultWidth || h <= browser.DefaultHeight {
		t.Errorf("screenshot is %dx%d, want %d wide and taller than %d (the whole page)", w, h, browser.DefaultWidth, browser.DefaultHeight)
	}

	b.ClickAndWait("#back")
	if got, want := b.Location(), srv.URL+"/"; got != want || b.Title() != "Form" {
		t.Errorf("after ClickAndWait(#back): Location() = %q, Title() = %q; want %q, %q", got, b.Title(), want, "Form")
	}
	b.Click("#name") // no page load
	if got := b.Value("#name"); got != "" {
		t.Errorf(`Value("#name") of a new form = %q, want ""`, got)
	}

	// A missing page loads with its status.
	b.Navigate(srv.URL + "/nowhere")
	if got := b.Status(); got != http.StatusNotFound {
		t.Errorf("Status() of a missing page = %d, want 404", got)
	}

	if errs := b.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("ConsoleErrors() = %q, want none", errs)
	}
}

func testHeaderAndCookie(t *testing.T, b *browser.Browser, srv *httptest.Server) {
	b.SetHeader("Authorization", "Bearer t0k3n")
	b.SetCookie(srv.URL, &http.Cookie{Name: "session", Value: "s3ss", Path: "/", HttpOnly: true})
	b.Navigate(srv.URL + "/whoami")
	if got := b.Text("#auth"); got != "Bearer t0k3n" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer t0k3n")
	}
	if got := b.Text("#session"); got != "s3ss" {
		t.Errorf("session cookie = %q, want %q", got, "s3ss")
	}
	b.SetHeader("Authorization", "")
	b.Navigate(srv.URL + "/whoami")
	if got := b.Text("#auth"); got != "" {
		t.Errorf("Authorization after removal = %q, want none", got)
	}
}

func testConsoleErrors(t *testing.T, b *browser.Browser, srv *httptest.Server) {
	for _, tc := range []struct {
		path string
		want string
	}{
		{"/throw", "uncaught exception: Uncaught Error: boom from inline script (at " + srv.URL + "/throw:"},
		{"/console-error", "console.error: bad thing 42 (at " + srv.URL + "/console-error:"},
		{"/reject", "uncaught exception: Uncaught (in promise) Error: nobody caught me"},
		{"/missing-script", "browser log (network): Failed to load resource: the server responded with a status of 404"},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			b := b.For(t)
			b.ClearConsoleErrors()
			b.Navigate(srv.URL + tc.path)
			if got := b.Text("#p"); got != "before" {
				t.Errorf("Text(#p) = %q, want %q", got, "before")
			}
			errs := b.ConsoleErrors()
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, tc.want) }) {
				t.Errorf("ConsoleErrors() = %q, want one that starts with %q", errs, tc.want)
			}
		})
	}
}

// fatalTB records the message of Fatalf and ends the goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func testFailures(t *testing.T, b *browser.Browser, srv *httptest.Server) {
	// The address of a listener that is gone refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()

	for _, tc := range []struct {
		name string
		do   func(b *browser.Browser)
		want []string
	}{
		{
			"unknown option",
			func(b *browser.Browser) { b.SelectOption("#color", "purple") },
			[]string{`SelectOption("#color", "purple") on ` + srv.URL + `/: Error: no option has the value or the label "purple"`, `"g" ("Green")`},
		},
		{
			"not a select",
			func(b *browser.Browser) { b.SelectOption("#name", "x") },
			[]string{`SelectOption("#name", "x")`, "the element is <input>, not <select>"},
		},
		{
			"invalid form",
			func(b *browser.Browser) { b.Submit("#f") },
			[]string{`Submit("#f") on ` + srv.URL + "/", "the form is not valid: name: "},
		},
		{
			"bad selector",
			func(b *browser.Browser) { b.Texts("li[") },
			[]string{`Texts("li[")`, "SyntaxError"},
		},
		{
			"unreachable",
			func(b *browser.Browser) { b.Navigate(closed) },
			[]string{`Navigate("` + closed + `"): page load error net::ERR_CONNECTION_REFUSED`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := b.For(t)
			b.Navigate(srv.URL + "/")
			f := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.do(b.For(f))
			}()
			<-done
			if f.msg == "" {
				t.Fatal("the helper did not fail")
			}
			t.Log(f.msg)
			for _, want := range tc.want {
				if !strings.Contains(f.msg, want) {
					t.Errorf("failure message %q does not contain %q", f.msg, want)
				}
			}
		})
	}
}

func TestFindMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-chromium")
	t.Setenv(browser.EnvChromium, missing)
	want := []string{"chromium not found: run scripts/deps.sh --with-test-deps", missing}

	path, err := browser.Find()
	if err == nil {
		t.Fatalf("Find() = %q, want an error", path)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Find() error = %q, want it to contain %q", err, w)
		}
	}

	if testing.Short() {
		return // Start skips
	}
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		browser.Start(f)
	}()
	<-done
	for _, w := range want {
		if !strings.Contains(f.msg, w) {
			t.Errorf("Start failed with %q, want it to contain %q", f.msg, w)
		}
	}
}

// testReplaced sets and reads back the value of an input, and reads the
// text of a paragraph, that the page keeps replacing: an element found
// and then replaced before it could be used is looked for again, instead
// of failing with "No node with given id found" (which a dashboard test
// hit once when a filter's navigation replaced the page) or acting on, or
// reading, the detached element.
func testReplaced(t *testing.T, b *browser.Browser, srv *httptest.Server) {
	b.Navigate(srv.URL + "/churn")
	for i := range 300 {
		want := fmt.Sprint("value ", i)
		b.SetValue("#q", want)
		if got := b.Value("#q"); got != want {
			t.Fatalf("Value after SetValue(%q) = %q", want, got)
		}
		if got := b.Text("#t"); got != "churning" {
			t.Fatalf("Text = %q, want churning", got)
		}
	}
}
