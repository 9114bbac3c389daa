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
	"cmp"
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
	"time"

	"go.uber.org/zap"

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
		if !triage.ValidUser(u) || len(p) < 12 {
			return nil, fmt.Errorf("dashboard: user %q needs a plain name and a password of at least 12 characters", u)
		}
	}
	cfg.QueryTimeout = cmp.Or(cfg.QueryTimeout, 10*time.Second)
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
	m.HandleFunc("POST /crashes/{app}/bulk", h.signedIn(h.change(selectionOf, h.bulk)))
	m.HandleFunc("GET /crashes/{app}/{id}", h.signedIn(h.group))
	m.HandleFunc("POST /crashes/{app}/{id}/status", h.signedIn(h.change(groupOf, h.setStatus)))
	m.HandleFunc("POST /crashes/{app}/{id}/assign", h.signedIn(h.change(groupOf, h.assign)))
	m.HandleFunc("POST /crashes/{app}/{id}/note", h.signedIn(h.change(groupOf, h.note)))
	m.HandleFunc("POST /crashes/{app}/{id}/merge", h.signedIn(h.change(groupOf, h.merge)))
	m.HandleFunc("POST /crashes/{app}/{id}/unmerge", h.signedIn(h.change(groupOf, h.unmerge)))
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
