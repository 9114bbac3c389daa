// Package dashboard serves the crash triage dashboard: crash groups ranked
// by impact with a trend line, search, sorting and pages, filters by app,
// version, OS, region, kind and time range, bulk resolve, ignore, assign
// and merge; a page per group with its scrubbed stack, charts of crashes
// and sessions, its individual crashes with their breadcrumbs,
// breakdowns, assignee, note, merged groups and history; and an overview
// of sessions, crash-free session rates and release adoption.
//
// Pages are rendered on the server, charts are inline SVG, the only
// script submits the filter form when a filter changes, and every asset
// is embedded, so the dashboard works offline. Every page needs a
// signed-in user (a session cookie from the sign-in form, or HTTP Basic
// credentials for scripts); state changes need a same-origin POST
// carrying the session's form token. Breakdowns, filter values and the
// device fields of individual crashes follow package triage's k-anonymity
// rules.
package dashboard

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
)

// Config configures a Handler.
type Config struct {
	// Store answers the queries; required.
	Store *triage.Store
	// Credentials maps user names to passwords (see LoadCredentials);
	// at least one is required. Groups are assigned to these users.
	Credentials map[string]string
	// QueryTimeout bounds the queries of one page. Default 10s.
	QueryTimeout time.Duration
	// Logger logs failed queries and sign-ins, never credentials; nil
	// logs nothing.
	Logger *zap.Logger
	// Now returns the current time for sign-ins; default time.Now.
	// Triage changes take the Store's time.
	Now func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves the dashboard. Mount it at the root of a server (the
// collector's admin port does).
type Handler struct {
	cfg   Config
	log   *zap.Logger
	auth  *auth
	users []string
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("dashboard: Store is required")
	}
	if len(cfg.Credentials) == 0 {
		return nil, errors.New("dashboard: no credentials: the dashboard is never served without one")
	}
	for u, p := range cfg.Credentials {
		if !validUser(u) || len(p) < 12 {
			return nil, fmt.Errorf("dashboard: user %q needs a plain name and a password of at least 12 characters", u)
		}
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, pages: make(map[string]*template.Template)}
	h.users = slices.Sorted(maps.Keys(cfg.Credentials))
	h.auth = &auth{creds: cfg.Credentials, key: make([]byte, 32), now: cfg.Now}
	rand.Read(h.auth.key)
	for _, name := range []string{"login", "crashes", "group", "overview", "error"} {
		t, err := template.New("layout.html").Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", h.loginPage)
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.signedIn(h.logout))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/crashes", http.StatusSeeOther)
	})
	m.HandleFunc("GET /crashes", h.signedIn(h.crashes))
	m.HandleFunc("POST /crashes/{app}/bulk", h.signedIn(h.bulk))
	m.HandleFunc("GET /crashes/{app}/{id}", h.signedIn(h.group))
	m.HandleFunc("POST /crashes/{app}/{id}/status", h.signedIn(h.setStatus))
	m.HandleFunc("POST /crashes/{app}/{id}/assign", h.signedIn(h.assign))
	m.HandleFunc("POST /crashes/{app}/{id}/note", h.signedIn(h.note))
	m.HandleFunc("POST /crashes/{app}/{id}/merge", h.signedIn(h.merge))
	m.HandleFunc("POST /crashes/{app}/{id}/unmerge", h.signedIn(h.unmerge))
	m.HandleFunc("GET /overview", h.signedIn(h.overview))
	// Everything else is a page that does not exist, in the dashboard's
	// own style, signed in or not: it tells nothing, and a path the
	// dashboard does not serve (such as /debug/pprof/ without --pprof)
	// must not look like one, as a redirect to the sign-in page would.
	m.HandleFunc("/", h.notFound)
	h.mux = m
	return h, nil
}

// ServeHTTP serves a dashboard request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// ctxKey keys the signed-in user in a request's context.
type ctxKey struct{}

// signedIn sends requests without a signed-in user to the sign-in page
// (pages) or answers 401 (scripts and POSTs), and checks the form token of
// POSTs.
func (h *Handler) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := h.auth.user(r)
		if user == "" {
			if r.Method == http.MethodGet && r.Header.Get("Authorization") == "" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="Consentry dashboard", charset="UTF-8"`)
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) || r.PostFormValue("csrf") != h.auth.csrf(r) {
				http.Error(w, "this form is stale or from another site: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, user)))
	}
}

// userOf returns the signed-in user of a request that signedIn let
// through.
func userOf(r *http.Request) string {
	u, _ := r.Context().Value(ctxKey{}).(string)
	return u
}

// page is what every template gets.
type page struct {
	Title   string
	User    string
	Users   []string
	CSRF    string
	Nav     string
	Filter  filterView
	Options *triage.Options
	// First and Last are the days the filter covers.
	First, Last time.Time
	K           int
	Data        any
	Elapsed     time.Duration
	Error       string
	Saved       string
	Next        string
}

// render writes template name with p.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page, start time.Time) {
	if u := userOf(r); u != "" {
		p.User = u
		p.CSRF = h.auth.csrf(r)
		p.Users = h.users
	}
	if p.Filter.AppID != "" {
		p.First, p.Last = h.cfg.Store.Range(p.Filter.Filter)
	}
	p.K = h.cfg.Store.K()
	p.Elapsed = time.Since(start).Round(time.Millisecond)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Server-Timing", fmt.Sprintf("total;dur=%.1f", float64(time.Since(start).Microseconds())/1000))
	w.WriteHeader(status)
	if err := h.pages[name].Execute(w, p); err != nil {
		h.log.Warn("render page", zap.String("page", name), zap.Error(err))
	}
}

// fail renders an error page; query errors are logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error, start time.Time) {
	if err != nil {
		h.log.Warn("dashboard query failed", zap.String("path", r.URL.Path), zap.Error(err))
	}
	title := "Error"
	if status == http.StatusNotFound {
		title = "Not found"
	}
	h.render(w, r, status, "error", page{Title: title, Error: msg}, start)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	if u := h.auth.user(r); u != "" {
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, u))
	}
	h.fail(w, r, http.StatusNotFound, "There is no page at this address.", nil, time.Now())
}

// errUnknownApp is the error of a filter naming an app that was never
// registered nor seen.
var errUnknownApp = errors.New("unknown app")

// parseFilter reads a filter and list options from r's query; the app
// defaults to the first one known, "me" as the assignee is the user.
func (h *Handler) parseFilter(ctx context.Context, r *http.Request) (filterView, *triage.Options, error) {
	q := r.URL.Query()
	f := filterView{Filter: triage.Filter{
		AppID: q.Get("app"), AppVersion: q.Get("version"), OSName: q.Get("os"), Region: q.Get("region"),
		Status: triage.Status(q.Get("status")), Kind: triage.Kind(q.Get("kind")), Search: strings.TrimSpace(q.Get("q")),
		Assignee: q.Get("assignee"),
	}}
	if f.Assignee == "me" {
		f.Assignee = userOf(r)
	}
	f.List.Sort, f.List.Asc = triage.Sort(q.Get("sort")), q.Get("dir") == "asc"
	for _, n := range []struct {
		name string
		to   *int
	}{{"days", &f.Days}, {"page", &f.List.Page}, {"per", &f.List.PerPage}} {
		if v := q.Get(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return f, nil, fmt.Errorf("%w: %s %q is not a number", triage.ErrInvalidFilter, n.name, v)
			}
			*n.to = i
		}
	}
	if f.Days == 0 {
		f.Days = 14
	}
	if f.Status == "" {
		f.Status = triage.StatusUnresolved
	}
	if f.Days < 1 || f.Days > 400 {
		return f, nil, fmt.Errorf("%w: %d days is not between 1 and 400", triage.ErrInvalidFilter, f.Days)
	}
	opts, err := h.cfg.Store.Options(ctx, f.Filter)
	if err != nil {
		return f, nil, err
	}
	if f.AppID == "" && len(opts.Apps) > 0 {
		f.AppID = opts.Apps[0]
		if opts, err = h.cfg.Store.Options(ctx, f.Filter); err != nil {
			return f, nil, err
		}
	}
	if f.AppID != "" && !opts.HasApp(f.AppID) {
		return f, opts, fmt.Errorf("%w: %q", errUnknownApp, f.AppID)
	}
	return f, opts, nil
}

// filtered parses the filter and refuses values with fewer than k
// sessions.
func (h *Handler) filtered(ctx context.Context, r *http.Request) (filterView, *triage.Options, error) {
	f, opts, err := h.parseFilter(ctx, r)
	if err != nil {
		return f, opts, err
	}
	if opts != nil && !opts.Allowed(f.Filter) {
		return f, opts, fmt.Errorf("%w: a filter value has fewer than %d sessions in this range, so it is not offered", triage.ErrInvalidFilter, h.cfg.Store.K())
	}
	return f, opts, nil
}

// failFilter renders a page's filter with an error in place of its data:
// a 400 for a filter that cannot run, a 404 for an unknown app.
func (h *Handler) failFilter(w http.ResponseWriter, r *http.Request, p page, err error, start time.Time) {
	switch {
	case errors.Is(err, errUnknownApp):
		p.Error = fmt.Sprintf("No app %q is registered or has sent data.", p.Filter.AppID)
		// No filter form: its app list would show another app as chosen.
		p.Filter, p.Options = filterView{}, nil
		p.Title = "Not found"
		h.render(w, r, http.StatusNotFound, "error", p, start)
	case errors.Is(err, triage.ErrInvalidFilter):
		p.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, p.Nav, p, start)
	default:
		h.fail(w, r, http.StatusInternalServerError, "The database did not answer; try again in a moment.", err, start)
	}
}

// listPage is the data of the crash groups page.
type listPage struct {
	*triage.GroupList
	// FixVersions are the versions offered to resolve in, and DefaultFix
	// the first of them.
	FixVersions []string
	DefaultFix  string
	// From and To number the first and the last group of the page.
	From, To int
}

func (h *Handler) crashes(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Crash groups", Nav: "crashes", Filter: f, Options: opts, Saved: savedMessage(r.URL.Query())}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	if f.AppID != "" {
		l, err := h.cfg.Store.List(ctx, f.Filter, f.List)
		if err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
		p.Filter.List = l.Options
		lp := listPage{GroupList: l, FixVersions: fixVersions(nil, opts)}
		lp.From = (l.Options.Page-1)*l.Options.PerPage + 1
		lp.To = lp.From + len(l.Groups) - 1
		if len(lp.FixVersions) > 0 {
			lp.DefaultFix = lp.FixVersions[0]
		}
		p.Data = lp
	}
	h.render(w, r, http.StatusOK, "crashes", p, start)
}

// fixVersions returns the versions to offer for resolving a group that
// crashed in seen: the next releases after the newest version known, then
// the versions seen and those of the app, newest first.
func fixVersions(seen []string, opts *triage.Options) []string {
	var known []string
	known = append(known, seen...)
	if opts != nil {
		known = append(known, opts.AppVersions...)
	}
	out := triage.NextVersions(known)
	slices.SortFunc(known, func(a, b string) int { return triage.CompareVersions(b, a) })
	for _, v := range known {
		if triage.ValidVersion(v) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// groupPage is the data of a group's page.
type groupPage struct {
	*triage.Detail
	// FixVersions are the versions offered to resolve in: the next
	// releases first, then those seen, newest first.
	FixVersions []string
	DefaultFix  string
	// MergedFrom is the group whose address led here, merged into this
	// one; 0 if none.
	MergedFrom uint64
	// CrashPage and CrashPages number the pages of individual crashes.
	CrashPage, CrashPages int
}

func (h *Handler) group(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "No crash group has that id.", nil, start)
		return
	}
	q := r.URL.Query()
	q.Set("app", r.PathValue("app"))
	r.URL.RawQuery = q.Encode()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Crash group", Nav: "group", Filter: f, Options: opts, Saved: savedMessage(q)}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	crashPage := 1
	if v := q.Get("cpage"); v != "" {
		if crashPage, err = strconv.Atoi(v); err != nil || crashPage < 1 {
			h.failFilter(w, r, p, fmt.Errorf("%w: crash page %q is not a page", triage.ErrInvalidFilter, v), start)
			return
		}
	}
	d, err := h.cfg.Store.Group(ctx, f.Filter, fp, (crashPage-1)*triage.CrashesPerPage)
	var merged *triage.MergedError
	switch {
	case errors.As(err, &merged):
		q.Del("app")
		q.Set("merged", fingerprint.Hex(fp))
		http.Redirect(w, r, groupURL(f.AppID, merged.Into)+"?"+q.Encode(), http.StatusSeeOther)
		return
	case errors.Is(err, triage.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("This crash group has no crashes in the last %d days with these filters.", f.Days), nil, start)
		return
	case err != nil:
		h.failFilter(w, r, p, err, start)
		return
	}
	gp := groupPage{Detail: d, FixVersions: fixVersions(d.Versions, opts), CrashPage: crashPage,
		CrashPages: max(1, int((d.Crashes+triage.CrashesPerPage-1)/triage.CrashesPerPage))}
	if len(gp.FixVersions) > 0 {
		gp.DefaultFix = gp.FixVersions[0]
	}
	if from, err := strconv.ParseUint(q.Get("merged"), 16, 64); err == nil && slices.Contains(d.Members, from) {
		gp.MergedFrom = from
	}
	p.Title = d.ExceptionType
	p.Data = gp
	h.render(w, r, http.StatusOK, "group", p, start)
}

// groupURL returns the path of a group's page.
func groupURL(app string, fp uint64) string {
	return "/crashes/" + url.PathEscape(app) + "/" + fingerprint.Hex(fp)
}

// changeRequest is what every form that changes a group carries.
type changeRequest struct {
	app  string
	fp   uint64
	user string
	back string
}

// changeOf reads the group and the page to return to of a POST to
// /crashes/{app}/{id}/...; false if the id is not one (a 404 is sent).
func (h *Handler) changeOf(w http.ResponseWriter, r *http.Request, start time.Time) (changeRequest, bool) {
	c := changeRequest{app: r.PathValue("app"), user: userOf(r)}
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "No crash group has that id.", nil, start)
		return c, false
	}
	c.fp = fp
	c.back = safeBack(r.PostFormValue("back"), groupURL(c.app, fp))
	return c, true
}

// saved redirects to back with what was saved (a code, see
// savedMessage) and how many groups it concerned.
func (h *Handler) saved(w http.ResponseWriter, r *http.Request, back, what string, n int) {
	u, err := url.Parse(back)
	if err != nil {
		u = &url.URL{Path: "/crashes"}
	}
	q := u.Query()
	q.Set("saved", what)
	q.Set("n", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// savedMessage returns the confirmation of a change that a redirect
// names: a fixed sentence per code, so the address cannot put words on
// the page.
func savedMessage(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	msg, ok := map[string]string{
		"resolved": "Resolved", "ignored": "Ignored", "open": "Reopened", "assigned": "Assigned",
		"merged": "Merged", "unmerged": "Unmerged", "noted": "Note saved",
	}[q.Get("saved")]
	if !ok {
		return ""
	}
	if n > 1 {
		return fmt.Sprintf("%s: %d crash groups.", msg, n)
	}
	return msg + "."
}

// failChange answers a change that could not be made.
func (h *Handler) failChange(w http.ResponseWriter, r *http.Request, err error, start time.Time) {
	if errors.Is(err, triage.ErrInvalidChange) {
		h.fail(w, r, http.StatusBadRequest, "That change cannot be made: "+err.Error(), nil, start)
		return
	}
	h.fail(w, r, http.StatusInternalServerError, "The change was not saved: the database did not answer; try again.", err, start)
}

// decisionsOf returns the decisions that set groups of app to state (a
// form's "state"), reading the version to resolve in from the form.
func decisionsOf(r *http.Request, app string, groups []uint64, state triage.State) []triage.Decision {
	out := make([]triage.Decision, len(groups))
	for i, fp := range groups {
		out[i] = triage.Decision{AppID: app, Fingerprint: fp, State: state, ChangedBy: userOf(r)}
		if state == triage.StateResolved {
			out[i].ResolvedIn = strings.TrimSpace(r.PostFormValue("version"))
		}
	}
	return out
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	state := triage.State(r.PostFormValue("state"))
	if err := h.cfg.Store.SetStatuses(ctx, decisionsOf(r, c.app, []uint64{c.fp}, state)); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "status "+string(state), c.user, 1)
	h.saved(w, r, c.back, string(state), 1)
}

// assigneeOf returns the form's assignee: a dashboard user, "me" for the
// signed-in one, or "" for nobody; false if it is no user.
func (h *Handler) assigneeOf(r *http.Request) (string, bool) {
	a := r.PostFormValue("assignee")
	if a == "me" {
		a = userOf(r)
	}
	return a, a == "" || slices.Contains(h.users, a)
}

func (h *Handler) assign(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	a, ok := h.assigneeOf(r)
	if !ok {
		h.fail(w, r, http.StatusBadRequest, "Groups are assigned to dashboard users only.", nil, start)
		return
	}
	if err := h.cfg.Store.Assign(ctx, c.app, []uint64{c.fp}, a, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "assign", c.user, 1)
	h.saved(w, r, c.back, "assigned", 1)
}

func (h *Handler) note(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	note := strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("note"), "\r\n", "\n"))
	if err := h.cfg.Store.SetNote(ctx, c.app, c.fp, note, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "note", c.user, 1)
	h.saved(w, r, c.back, "noted", 1)
}

func (h *Handler) merge(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	other, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("other")), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "Name the group to merge by its id: 16 hexadecimal digits, as in its address.", nil, start)
		return
	}
	root, err := h.cfg.Store.Merge(ctx, c.app, c.fp, []uint64{other}, c.user)
	if err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "merge", c.user, 2)
	h.saved(w, r, groupURL(c.app, root), "merged", 2)
}

func (h *Handler) unmerge(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	c, ok := h.changeOf(w, r, start)
	if !ok {
		return
	}
	member, err := strconv.ParseUint(r.PostFormValue("member"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "No crash group has that id.", nil, start)
		return
	}
	if err := h.cfg.Store.Unmerge(ctx, c.app, member, c.user); err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(c.app, "unmerge", c.user, 1)
	h.saved(w, r, c.back, "unmerged", 1)
}

// bulk applies one action of the crash groups page to the groups
// selected: resolve, ignore, reopen, assign, or merge into the first of
// them (the first in the list's order).
func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	app, user := r.PathValue("app"), userOf(r)
	back := safeBack(r.PostFormValue("back"), "/crashes?app="+url.QueryEscape(app))
	var groups []uint64
	for _, id := range r.PostForm["id"] {
		fp, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, "A selected crash group has no valid id.", nil, start)
			return
		}
		if !slices.Contains(groups, fp) {
			groups = append(groups, fp)
		}
	}
	if len(groups) == 0 {
		h.fail(w, r, http.StatusBadRequest, "Select at least one crash group first.", nil, start)
		return
	}
	if len(groups) > triage.MaxPerPage {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Change at most %d crash groups at once.", triage.MaxPerPage), nil, start)
		return
	}
	action := r.PostFormValue("action")
	var err error
	saved := action
	switch action {
	case "resolve", "ignore", "reopen":
		state := map[string]triage.State{"resolve": triage.StateResolved, "ignore": triage.StateIgnored, "reopen": triage.StateOpen}[action]
		saved = string(state)
		err = h.cfg.Store.SetStatuses(ctx, decisionsOf(r, app, groups, state))
	case "assign":
		a, ok := h.assigneeOf(r)
		if !ok {
			h.fail(w, r, http.StatusBadRequest, "Groups are assigned to dashboard users only.", nil, start)
			return
		}
		saved = "assigned"
		err = h.cfg.Store.Assign(ctx, app, groups, a, user)
	case "merge":
		if len(groups) < 2 {
			h.fail(w, r, http.StatusBadRequest, "Select at least two crash groups to merge.", nil, start)
			return
		}
		saved = "merged"
		var root uint64
		if root, err = h.cfg.Store.Merge(ctx, app, groups[0], groups[1:], user); err == nil {
			back = groupURL(app, root)
		}
	default:
		h.fail(w, r, http.StatusBadRequest, "Unknown action.", nil, start)
		return
	}
	if err != nil {
		h.failChange(w, r, err, start)
		return
	}
	h.logChange(app, action, user, len(groups))
	h.saved(w, r, back, saved, len(groups))
}

// logChange logs a triage change: app, what, who and how many groups,
// never a note's text.
func (h *Handler) logChange(app, what, user string, groups int) {
	h.log.Info("crash groups changed", zap.String("app_id", app), zap.String("change", what), zap.String("by", user), zap.Int("groups", groups))
}

// overviewPage is the data of the overview.
type overviewPage struct {
	*triage.Overview
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Overview", Nav: "overview", Filter: f, Options: opts}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	if f.AppID != "" {
		o, err := h.cfg.Store.Overview(ctx, f.Filter)
		if err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
		p.Data = overviewPage{o}
	}
	h.render(w, r, http.StatusOK, "overview", p, start)
}

// safeBack returns back if it is a page of crash groups on this site,
// else fallback.
func safeBack(back, fallback string) string {
	if !strings.HasPrefix(back, "/crashes") || strings.ContainsAny(back, "\\\r\n") || strings.HasPrefix(back, "//") {
		return fallback
	}
	return back
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))}, time.Now())
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	user, pass := r.PostFormValue("user"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) || !h.auth.check(user, pass) {
		h.log.Info("dashboard sign-in refused")
		// Failed sign-ins are slowed down a little.
		time.Sleep(300 * time.Millisecond)
		h.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "Wrong user name or password.", Next: next}, start)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: h.auth.session(user), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int(sessionLifetime.Seconds()),
	})
	h.log.Info("dashboard sign-in", zap.String("user", user))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext returns next if it is a path on this site, else "/crashes".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/crashes"
	}
	return next
}
