package dashboard

import (
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

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
