// Package dashboard serves the crash triage dashboard: crash groups ranked
// by impact with a trend line, filters by app, version, OS, region and
// time range, a page per group with its scrubbed stack, breakdowns,
// timeline and resolve and ignore actions, and an overview of sessions and
// crash-free session rates per app version.
//
// Pages are rendered on the server; the only script submits the filter
// form when a filter changes, and every asset is embedded, so the
// dashboard works offline. Every page needs a signed-in user (a session
// cookie from the sign-in form, or HTTP Basic credentials for scripts);
// state changes need a same-origin POST carrying the session's form token.
// Breakdowns and filter values with fewer than k distinct sessions are
// hidden (package triage).
package dashboard

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/dashboard/triage"
)

// Config configures a Handler.
type Config struct {
	// Store answers the queries; required.
	Store *triage.Store
	// Credentials maps user names to passwords (see LoadCredentials);
	// at least one is required.
	Credentials map[string]string
	// QueryTimeout bounds the queries of one page. Default 10s.
	QueryTimeout time.Duration
	// Logger logs failed queries and sign-ins, never credentials; nil
	// logs nothing.
	Logger *zap.Logger
	// Now returns the current time; default time.Now.
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
	h.auth = &auth{creds: cfg.Credentials, key: make([]byte, 32), now: cfg.Now}
	rand.Read(h.auth.key)
	for _, name := range []string{"login", "crashes", "group", "overview", "error"} {
		t, err := template.New("layout.html").Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
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
	m.HandleFunc("GET /crashes/{app}/{id}", h.signedIn(h.group))
	m.HandleFunc("POST /crashes/{app}/{id}/status", h.signedIn(h.setStatus))
	m.HandleFunc("GET /overview", h.signedIn(h.overview))
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

// page is what every template gets.
type page struct {
	Title   string
	User    string
	CSRF    string
	Nav     string
	Filter  filterView
	Options *triage.Options
	K       int
	Data    any
	Elapsed time.Duration
	Error   string
	Next    string
}

// render writes template name with p.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page, start time.Time) {
	if u, ok := r.Context().Value(ctxKey{}).(string); ok {
		p.User = u
		p.CSRF = h.auth.csrf(r)
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
	h.render(w, r, status, "error", page{Title: "Error", Error: msg}, start)
}

// filterView is a filter as the forms and links show it.
type filterView struct {
	triage.Filter
}

// Query returns the filter as URL query parameters.
func (f filterView) Query() template.URL {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("app", f.AppID)
	set("version", f.AppVersion)
	set("os", f.OSName)
	set("region", f.Region)
	if f.Days != 0 {
		v.Set("days", strconv.Itoa(f.Days))
	}
	set("status", string(f.Status))
	return template.URL(v.Encode())
}

// rangeChoices are the time ranges the filter offers, in days.
var rangeChoices = []int{1, 7, 14, 30, 90}

// parseFilter reads a filter from r's query; the app defaults to the first
// one known.
func (h *Handler) parseFilter(ctx context.Context, r *http.Request) (triage.Filter, *triage.Options, error) {
	q := r.URL.Query()
	f := triage.Filter{
		AppID: q.Get("app"), AppVersion: q.Get("version"), OSName: q.Get("os"), Region: q.Get("region"),
		Status: triage.Status(q.Get("status")),
	}
	if d := q.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			return f, nil, fmt.Errorf("%w: days %q is not a number", triage.ErrInvalidFilter, d)
		}
		f.Days = n
	}
	if f.Days == 0 {
		f.Days = 14
	}
	if f.Status == "" {
		f.Status = triage.StatusUnresolved
	}
	opts, err := h.cfg.Store.Options(ctx, f)
	if err != nil {
		return f, nil, err
	}
	if f.AppID == "" && len(opts.Apps) > 0 {
		f.AppID = opts.Apps[0]
		if opts, err = h.cfg.Store.Options(ctx, f); err != nil {
			return f, nil, err
		}
	}
	return f, opts, nil
}

// filtered parses the filter and refuses values with fewer than k
// sessions.
func (h *Handler) filtered(ctx context.Context, r *http.Request) (triage.Filter, *triage.Options, error) {
	f, opts, err := h.parseFilter(ctx, r)
	if err != nil {
		return f, opts, err
	}
	if opts != nil && !opts.Allowed(f) {
		return f, opts, fmt.Errorf("%w: a filter value has fewer than %d sessions in this range, so it is not offered", triage.ErrInvalidFilter, h.cfg.Store.K())
	}
	return f, opts, nil
}

func (h *Handler) crashes(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Crash groups", Nav: "crashes", Filter: filterView{f}, Options: opts}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	var groups []triage.Group
	if f.AppID != "" {
		if groups, err = h.cfg.Store.Groups(ctx, f, 0); err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
	}
	p.Data = groups
	h.render(w, r, http.StatusOK, "crashes", p, start)
}

// failFilter renders a page's filter with an error in place of its data.
func (h *Handler) failFilter(w http.ResponseWriter, r *http.Request, p page, err error, start time.Time) {
	if errors.Is(err, triage.ErrInvalidFilter) {
		p.Error = err.Error()
		h.render(w, r, http.StatusBadRequest, p.Nav, p, start)
		return
	}
	h.fail(w, r, http.StatusInternalServerError, "The database did not answer; try again in a moment.", err, start)
}

// groupPage is the data of a group's page.
type groupPage struct {
	*triage.Detail
	// Versions offered as the fixed version: those seen, newest first.
	FixVersions []string
	Saved       string
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
	p := page{Title: "Crash group", Nav: "group", Filter: filterView{f}, Options: opts}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	d, err := h.cfg.Store.Group(ctx, f, fp)
	if errors.Is(err, triage.ErrNotFound) {
		h.fail(w, r, http.StatusNotFound, fmt.Sprintf("This crash group has no crashes in the last %d days with these filters.", f.Days), nil, start)
		return
	}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	gp := groupPage{Detail: d, Saved: q.Get("saved")}
	for i := len(d.Versions) - 1; i >= 0; i-- {
		gp.FixVersions = append(gp.FixVersions, d.Versions[i])
	}
	if opts != nil {
		for _, v := range opts.AppVersions {
			if !slices.Contains(gp.FixVersions, v) {
				gp.FixVersions = append(gp.FixVersions, v)
			}
		}
	}
	p.Title = d.ExceptionType
	p.Data = gp
	h.render(w, r, http.StatusOK, "group", p, start)
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	fp, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil {
		h.fail(w, r, http.StatusNotFound, "No crash group has that id.", nil, start)
		return
	}
	st := triage.Decision{
		AppID: r.PathValue("app"), Fingerprint: fp,
		State:     triage.State(r.PostFormValue("state")),
		ChangedBy: r.Context().Value(ctxKey{}).(string),
		ChangedAt: h.cfg.Now(),
	}
	if st.State == triage.StateResolved {
		st.ResolvedIn = strings.TrimSpace(r.PostFormValue("version"))
	}
	if err := st.Validate(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "That change cannot be made: "+err.Error(), nil, start)
		return
	}
	if err := h.cfg.Store.SetStatus(ctx, st); err != nil {
		h.fail(w, r, http.StatusInternalServerError, "The change was not saved: the database did not answer; try again.", err, start)
		return
	}
	h.log.Info("crash group status changed", zap.String("app_id", st.AppID), zap.String("group", fmt.Sprintf("%016x", fp)),
		zap.String("state", string(st.State)), zap.String("by", st.ChangedBy))
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/crashes/") || strings.HasPrefix(back, "//") {
		back = fmt.Sprintf("/crashes/%s/%016x", url.PathEscape(st.AppID), fp)
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"saved="+url.QueryEscape(string(st.State)), http.StatusSeeOther)
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	f, opts, err := h.filtered(ctx, r)
	p := page{Title: "Overview", Nav: "overview", Filter: filterView{f}, Options: opts}
	if err != nil {
		h.failFilter(w, r, p, err, start)
		return
	}
	if f.AppID != "" {
		o, err := h.cfg.Store.Overview(ctx, f)
		if err != nil {
			h.failFilter(w, r, p, err, start)
			return
		}
		p.Data = o
	}
	h.render(w, r, http.StatusOK, "overview", p, start)
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
