package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Navigate loads url in the tab and waits until the page has loaded. It does
// not fail on an HTTP error status; see Status.
func (b *Browser) Navigate(url string) {
	b.tb.Helper()
	resp := do(b, fmt.Sprintf("Navigate(%q)", url), "", func(ctx context.Context) (*network.Response, error) {
		return chromedp.Run(ctx, chromedp.NavigateResponse(url))
	})
	b.setNavigation(resp)
}

// Click clicks the first element that matches selector, once it is visible.
// It does not wait for a page load that the click starts; see ClickAndWait.
func (b *Browser) Click(selector string) {
	b.tb.Helper()
	b.runSteps(fmt.Sprintf("Click(%q)", selector), chromedp.Click(chromedp.CSS(selector)))
}

// ClickAndWait clicks the first element that matches selector, such as a link
// or a submit button, and waits until the page that the click loads has
// loaded. It fails when the click loads no page within the time limit of a
// helper.
func (b *Browser) ClickAndWait(selector string) {
	b.tb.Helper()
	what := fmt.Sprintf("ClickAndWait(%q)", selector)
	// Wait for the element first, so that a timeout below means that no page
	// loaded.
	b.runSteps(what, chromedp.WaitVisible(chromedp.CSS(selector)))
	b.loadBy(what, "no page loaded after the click", chromedp.Click(chromedp.CSS(selector)))
}

// SetValue sets the value of the first input, textarea or select element that
// matches selector, replacing what it holds, and fires the input and change
// events as a user's edit does.
func (b *Browser) SetValue(selector, value string) {
	b.tb.Helper()
	callOn[chromedp.Void](b, fmt.Sprintf("SetValue(%q, %q)", selector, value), selector, setValueJS, value)
}

// SendKeys focuses the first element that matches selector, once it is
// visible, and types value key by key after what the element holds. "\n"
// presses Enter, and the constants of github.com/chromedp/chromedp/kb send
// other keys.
func (b *Browser) SendKeys(selector, value string) {
	b.tb.Helper()
	b.runSteps(fmt.Sprintf("SendKeys(%q, %q)", selector, value),
		chromedp.SendKeys(chromedp.CSS(selector), value, chromedp.NodeVisible))
}

// SelectOption chooses the option of the first <select> that matches
// selector whose value is value, or else whose visible label is value, and
// fires the input and change events. It fails, listing the options, when no
// option matches. In a <select multiple> it adds the option to the selection.
func (b *Browser) SelectOption(selector, value string) {
	b.tb.Helper()
	callOn[string](b, fmt.Sprintf("SelectOption(%q, %q)", selector, value), selector, selectOptionJS, value)
}

// Submit submits a form as a user does, and waits until the page that the
// submission loads has loaded. selector matches the form, an element in it, or
// the submit button to use (whose name and value are then sent). Submit runs
// the form's validation and submit handlers, and fails with the invalid
// fields when the form is not valid, or when no page loads within the time
// limit of a helper (for example when a handler cancels the submission).
func (b *Browser) Submit(selector string) {
	b.tb.Helper()
	what := fmt.Sprintf("Submit(%q)", selector)
	b.runSteps(what, chromedp.WaitReady(chromedp.CSS(selector)))
	b.loadBy(what, "no page loaded after the submission; did a submit handler cancel it?",
		func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			_, err := nodeCall[chromedp.Void](selector, submitJS)(ctx, t)
			return chromedp.Void{}, err
		})
}

// loadBy runs action, which starts loading a page, and waits until that
// page has loaded; hint says what a timeout means.
func (b *Browser) loadBy(what, hint string, action chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	resp := do(b, what, hint, func(ctx context.Context) (*network.Response, error) {
		return chromedp.RunResponse(ctx, action)
	})
	b.setNavigation(resp)
}

// Text returns the visible text (innerText) of the first element that
// matches selector, without leading and trailing white space, once the
// element is in the page. It is "" for an element that is not rendered.
func (b *Browser) Text(selector string) string {
	b.tb.Helper()
	return strings.TrimSpace(callOn[string](b, fmt.Sprintf("Text(%q)", selector), selector, textJS))
}

// Texts returns the visible text of every element that matches selector, as
// Text does, in document order. It does not wait: it returns an empty slice
// when nothing matches.
func (b *Browser) Texts(selector string) []string {
	b.tb.Helper()
	texts := do(b, fmt.Sprintf("Texts(%q)", selector), "", func(ctx context.Context) ([]string, error) {
		sel, err := json.Marshal(selector)
		if err != nil {
			return nil, err
		}
		return chromedp.Run(ctx, chromedp.Evaluate[[]string]("("+textsJS+")("+string(sel)+")"))
	})
	if texts == nil {
		texts = []string{}
	}
	return texts
}

// Value returns the current value of the first input, textarea or select
// element that matches selector; it fails for an element without one.
func (b *Browser) Value(selector string) string {
	b.tb.Helper()
	return callOn[string](b, fmt.Sprintf("Value(%q)", selector), selector, valueJS)
}

// WaitVisible waits until an element that matches selector is in the page and
// visible.
func (b *Browser) WaitVisible(selector string) {
	b.tb.Helper()
	b.runSteps(fmt.Sprintf("WaitVisible(%q)", selector), chromedp.WaitVisible(chromedp.CSS(selector)))
}

// Location returns the URL of the page in the tab.
func (b *Browser) Location() string {
	b.tb.Helper()
	return do(b, "Location()", "", func(ctx context.Context) (string, error) {
		return chromedp.Run(ctx, chromedp.Location())
	})
}

// Title returns the title of the page in the tab.
func (b *Browser) Title() string {
	b.tb.Helper()
	return do(b, "Title()", "", func(ctx context.Context) (string, error) {
		return chromedp.Run(ctx, chromedp.Title())
	})
}

// SetHeader adds an HTTP header to every later request of the tab, such as
// "Authorization". An empty value removes the header.
func (b *Browser) SetHeader(name, value string) {
	b.tb.Helper()
	b.mu.Lock()
	if b.headers == nil {
		b.headers = network.Headers{}
	}
	if value == "" {
		delete(b.headers, name)
	} else {
		b.headers[name] = value
	}
	headers := network.Headers{}
	for k, v := range b.headers {
		headers[k] = v
	}
	b.mu.Unlock()
	do(b, fmt.Sprintf("SetHeader(%q)", name), "", func(ctx context.Context) (cdp.Empty, error) {
		return chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers})
	})
}

// SetCookie stores a cookie in the browser as if the page at url had set it.
// The Name and Value of c are needed; its Path, Domain, Expires, Secure,
// HttpOnly and SameSite are used when set.
func (b *Browser) SetCookie(url string, c *http.Cookie) {
	b.tb.Helper()
	p := network.SetCookieParams{
		Name:     c.Name,
		Value:    c.Value,
		URL:      url,
		Domain:   c.Domain,
		Path:     c.Path,
		Secure:   &c.Secure,
		HTTPOnly: &c.HttpOnly,
	}
	if !c.Expires.IsZero() {
		p.Expires = cdp.TimeSinceEpoch(float64(c.Expires.UnixMilli()) / 1000)
	}
	switch c.SameSite {
	case http.SameSiteStrictMode:
		p.SameSite = network.CookieSameSiteStrict
	case http.SameSiteLaxMode:
		p.SameSite = network.CookieSameSiteLax
	case http.SameSiteNoneMode:
		p.SameSite = network.CookieSameSiteNone
	}
	do(b, fmt.Sprintf("SetCookie(%q, %q)", url, c.Name), "", func(ctx context.Context) (cdp.Empty, error) {
		return chromedp.Call(ctx, network.SetCookie, p)
	})
}

// Screenshot writes a PNG of the whole page, beyond the window's height, logs
// its path and returns it. The file is name with ".png" added, in the test's
// artifact directory (kept with go test -artifacts; see testing.T.ArtifactDir),
// or under $CONSENTRY_SCREENSHOTS when it is set.
func (b *Browser) Screenshot(name string) string {
	b.tb.Helper()
	png := do(b, fmt.Sprintf("Screenshot(%q)", name), "", func(ctx context.Context) ([]byte, error) {
		return chromedp.Run(ctx, chromedp.FullScreenshot(100))
	})
	path := filepath.Join(b.screenshotDir(), fileName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Fatalf("browser: Screenshot(%q): %v", name, err)
	}
	b.tb.Logf("browser: screenshot %s", path)
	return path
}

// screenshotOnFailure saves a screenshot of a failed test, if the browser
// still runs.
func (b *Browser) screenshotOnFailure() {
	if b.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.tb.Logf("browser: no screenshot of the failure: %v", err)
		return
	}
	path := filepath.Join(b.screenshotDir(), "failure.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Logf("browser: no screenshot of the failure: %v", err)
		return
	}
	b.tb.Logf("browser: screenshot of the failure %s", path)
}

func (b *Browser) screenshotDir() string {
	b.tb.Helper()
	root := os.Getenv(EnvScreenshots)
	if root == "" {
		return b.tb.ArtifactDir()
	}
	dir := filepath.Join(root, fileName(b.tb.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.tb.Fatalf("browser: $%s: %v", EnvScreenshots, err)
	}
	return dir
}

// fileName makes s safe as a file name: letters, digits, '.', '-' and '_'
// stay, every other rune becomes '_'.
func fileName(s string) string {
	s = strings.TrimSuffix(s, ".png")
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if s == "" || s == "." || s == ".." {
		s = "screenshot"
	}
	return s
}

// Run runs chromedp actions in the tab, in order, and fails the test on the
// first error. It is the way to do what no helper does; each action has the
// time limit of one helper call. Use Result for an action that returns a value.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	b.runSteps("Run", actions...)
}

// runSteps is Run with a description of the actions for the failure message.
func (b *Browser) runSteps(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	do(b, what, "", func(ctx context.Context) (chromedp.Void, error) {
		return chromedp.Void{}, chromedp.Do(ctx, actions...)
	})
}

// Result runs one chromedp action that returns a value in the tab of b, and
// returns the value. It fails the test on an error. For example:
//
//	n := browser.Result(b, chromedp.Evaluate[int](`document.querySelectorAll("tr").length`))
func Result[T any](b *Browser, action chromedp.Action[T]) T {
	b.tb.Helper()
	return do(b, "Result", "", func(ctx context.Context) (T, error) {
		return chromedp.Run(ctx, action)
	})
}

// setNavigation records the status of the document that a helper loaded.
func (b *Browser) setNavigation(resp *network.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = 0
	if resp != nil {
		b.status = resp.Status
	}
}

// do runs f with the time limit of one helper call, and fails the test with
// what, the page and the error when f fails. hint explains a timeout.
func do[T any](b *Browser, what, hint string, f func(ctx context.Context) (T, error)) T {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.actionTimeout)
	defer cancel()
	v, err := f(ctx)
	if err == nil {
		return v
	}
	var exc *chromedp.ExceptionError
	if errors.As(err, &exc) && exc.Exception != nil && exc.Exception.Description != "" {
		// An error of the page or of the helper's script: its first line,
		// such as "SyntaxError: ... is not a valid selector", says it all.
		msg, _, _ := strings.Cut(exc.Exception.Description, "\n")
		err = errors.New(msg)
	}
	switch {
	case b.ctx.Err() != nil:
		err = fmt.Errorf("the time limit of the browser, %s, is over (see WithTimeout and $%s): %w", b.timeout, EnvTimeout, err)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		if hint == "" {
			hint = "is the selector right, and is the element in the page?"
		}
		err = fmt.Errorf("timed out after %s (%s): %w", b.actionTimeout, hint, err)
	}
	where := ""
	if u := b.location(); u != "" {
		where = " on " + u
	}
	b.tb.Fatalf("browser: %s%s: %v", what, where, err)
	return v
}

// location returns the URL of the page for a failure message, or "".
func (b *Browser) location() string {
	if b.ctx.Err() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || strings.HasPrefix(u, "chrome-error:") {
		return ""
	}
	return u
}

// callOn calls the JavaScript function fn with the first element that
// matches selector as this, and fails the test on an error. An element
// that the page replaced between finding it and calling fn (a navigation
// that had begun, or a script that re-rendered it) is looked for again:
// fn did not run on it.
func callOn[T any](b *Browser, what, selector, fn string, args ...any) T {
	b.tb.Helper()
	return do(b, what, "", func(ctx context.Context) (T, error) {
		for {
			v, err := chromedp.Run(ctx, nodeCall[T](selector, fn, args...))
			if !errors.Is(err, errNodeGone) || ctx.Err() != nil {
				return v, err
			}
		}
	})
}

// errNodeGone is returned by nodeCall when the element it found was gone
// before fn could run on it.
var errNodeGone = errors.New("the element was replaced before it could be used")

// nodeCall is an action that waits for the first element that matches
// selector and calls fn with it as this.
func nodeCall[T any](selector, fn string, args ...any) chromedp.Action[T] {
	return chromedp.QueryAfter(chromedp.CSS(selector), func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) (T, error) {
		var zero T
		if len(nodes) == 0 {
			return zero, fmt.Errorf("no element matches %q", selector)
		}
		r, err := cdp.Call(ctx, t, dom.ResolveNode, dom.ResolveNodeParams{NodeID: nodes[0].NodeID})
		if err != nil {
			return zero, fmt.Errorf("%w: %w", errNodeGone, err)
		}
		defer cdp.Call(ctx, t, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: r.Object.ObjectID})
		// The element may have left the page since it was resolved: fn
		// then does not run (on a detached copy nobody sees). The check
		// and fn run in one task, which the page cannot interleave with.
		v, err := chromedp.CallFunctionOn[T](`function(...args) {
	if (!this.isConnected) {
		throw new Error('`+detachedMarker+`');
	}
	return (`+fn+`).apply(this, args);
}`, func(p *runtime.CallFunctionOnParams) {
			p.ObjectID = r.Object.ObjectID
		}, args...)(ctx, t)
		if err != nil && strings.Contains(err.Error(), detachedMarker) {
			return zero, fmt.Errorf("%w: it left the page", errNodeGone)
		}
		return v, err
	})
}

// detachedMarker is the message of the error nodeCall's function throws
// for an element no longer in the page.
const detachedMarker = "consentry-browser: element detached"

// textJS returns the element's innerText if it is rendered (has a box),
// else "".
const textJS = `function() {
	if (this.offsetWidth > 0 || this.offsetHeight > 0 || this.getClientRects().length > 0) {
		return this.innerText;
	}
	return '';
}`

const valueJS = `function() {
	if (!('value' in this)) {
		throw new Error('<' + this.localName + '> has no value');
	}
	return String(this.value);
}`

const setValueJS = `function(value) {
	if (!('value' in this)) {
		throw new Error('<' + this.localName + '> has no value');
	}
	this.value = value;
	this.dispatchEvent(new Event('input', {bubbles: true}));
	this.dispatchEvent(new Event('change', {bubbles: true}));
}`

const selectOptionJS = `function(want) {
	if (this.localName !== 'select') {
		throw new Error('the element is <' + this.localName + '>, not <select>');
	}
	const opts = Array.from(this.options);
	const o = opts.find(o => o.value === want) || opts.find(o => o.text.trim() === want);
	if (!o) {
		throw new Error('no option has the value or the label ' + JSON.stringify(want) +
			'; the options are ' + opts.map(o => JSON.stringify(o.value) + ' (' + JSON.stringify(o.text.trim()) + ')').join(', '));
	}
	if (this.multiple) {
		o.selected = true;
	} else {
		this.value = o.value;
	}
	this.dispatchEvent(new Event('input', {bubbles: true}));
	this.dispatchEvent(new Event('change', {bubbles: true}));
	return o.value;
}`

const submitJS = `function() {
	const form = this.localName === 'form' ? this : this.form;
	if (!form) {
		throw new Error('<' + this.localName + '> is not a form and is in no form');
	}
	if (!form.checkValidity()) {
		const bad = Array.from(form.elements)
			.filter(e => e.willValidate && !e.checkValidity())
			.map(e => (e.name || e.id || e.localName) + ': ' + e.validationMessage);
		throw new Error('the form is not valid: ' + bad.join('; '));
	}
	const submitter = this !== form && (this.type === 'submit' || this.type === 'image') ? this : null;
	form.requestSubmit(submitter);
}`

const textsJS = `function(selector) {
	return Array.from(document.querySelectorAll(selector), e =>
		(e.offsetWidth || e.offsetHeight || e.getClientRects().length) ? e.innerText.trim() : '');
}`
