package dashboard

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/atomicfile"
)

// sessionCookie holds a signed-in user's session.
const sessionCookie = "consentry_dashboard"

// sessionLifetime is how long a sign-in lasts.
const sessionLifetime = 12 * time.Hour

// ParseCredentials reads "user:password" lines; blank lines and lines
// starting with '#' are skipped. User names are letters, digits, '.', '_'
// and '-'; passwords have at least 12 characters.
func ParseCredentials(r io.Reader) (map[string]string, error) {
	creds := make(map[string]string)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || !triage.ValidUser(user) {
			return nil, fmt.Errorf("credentials line %d: want user:password with a user name of letters, digits, '.', '_' or '-'", n)
		}
		if len(pass) < 12 {
			return nil, fmt.Errorf("credentials line %d: %s's password is shorter than 12 characters", n, user)
		}
		creds[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	if len(creds) == 0 {
		return nil, errors.New("credentials: no user:password line")
	}
	return creds, nil
}

// LoadCredentials reads a credentials file (see ParseCredentials). If it
// does not exist and create is set, it is created with one user, "admin",
// and a random password, readable by its owner only.
func LoadCredentials(path string, create bool) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && create {
		// Whole or not at all: an empty file left by a full disk would
		// stop every later start.
		b, err := atomicfile.Create(path, []byte("# Consentry dashboard users, one user:password per line.\nadmin:"+rand.Text()+"\n"))
		if err != nil {
			return nil, fmt.Errorf("create dashboard credentials: %w", err)
		}
		return ParseCredentials(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("open dashboard credentials: %w", err)
	}
	defer f.Close()
	creds, err := ParseCredentials(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return creds, nil
}

// auth checks credentials and signs sessions. Sessions are signed with a
// key drawn when the dashboard starts: restarting it signs everyone out.
type auth struct {
	creds map[string]string
	key   []byte
	now   func() time.Time
}

// check reports whether user and password match, in constant time for
// the password.
func (a *auth) check(user, pass string) bool {
	want, ok := a.creds[user]
	if !ok {
		// Compare anyway, so timing does not tell users apart.
		want = strings.Repeat("x", len(pass)+1)
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1 && ok
}

// mac signs msg.
func (a *auth) mac(msg string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session returns a cookie value for user.
func (a *auth) session(user string) string {
	msg := user + "|" + strconv.FormatInt(a.now().Add(sessionLifetime).Unix(), 10)
	return msg + "|" + a.mac(msg)
}

// user returns the signed-in user of r: from a valid session cookie, or
// from HTTP Basic credentials (for scripts). It returns "" for neither.
func (a *auth) user(r *http.Request) string {
	if u, p, ok := r.BasicAuth(); ok {
		if a.check(u, p) {
			return u
		}
		return ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	msg, sig, ok := cutLast(c.Value, "|")
	if !ok || !hmac.Equal([]byte(sig), []byte(a.mac(msg))) {
		return ""
	}
	user, exp, ok := strings.Cut(msg, "|")
	t, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || a.now().Unix() > t {
		return ""
	}
	if _, ok := a.creds[user]; !ok {
		return ""
	}
	return user
}

// csrf returns the form token of the session of r: forms that change
// state must carry it.
func (a *auth) csrf(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		return a.mac("csrf|" + c.Value)
	}
	if u, _, ok := r.BasicAuth(); ok {
		return a.mac("csrf-basic|" + u)
	}
	return ""
}

// sameOrigin reports whether a state-changing request comes from the
// dashboard's own pages: browsers send Origin (or Sec-Fetch-Site) on
// POSTs; requests without either are not from a browser page.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
