package dashboard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/tmpfs"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name, in, err string
		users         int
	}{
		{"one", "admin:correct-horse-battery\n", "", 1},
		{"comments and blanks", "# users\n\nalice:correct-horse-1\nbob.b:correct-horse-2:with-colon\n", "", 2},
		{"short password", "admin:short\n", "shorter than 12", 0},
		{"no colon", "admin\n", "want user:password", 0},
		{"bad user", "ad min:correct-horse-battery\n", "want user:password", 0},
		{"empty", "# nothing\n", "no user:password line", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds, err := ParseCredentials(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(creds) != tt.users {
				t.Fatalf("ParseCredentials = %v, %v; want %d users", creds, err, tt.users)
			}
		})
	}
}

func TestLoadCredentialsCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds")
	if _, err := LoadCredentials(path, false); err == nil {
		t.Fatal("a missing file was accepted without create")
	}
	creds, err := LoadCredentials(path, true)
	if err != nil || len(creds["admin"]) < 20 {
		t.Fatalf("created %v, %v; want admin with a long random password", creds, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode(), err)
	}
	again, err := LoadCredentials(path, true)
	if err != nil || again["admin"] != creds["admin"] {
		t.Fatalf("reloaded %v, %v; want the same password", again, err)
	}
}

// TestLoadCredentialsOnFullDisk: creating the file on a full disk fails
// and leaves no empty file behind, which every later start would refuse.
func TestLoadCredentialsOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	filler := tmpfs.Fill(t, dir, "filler", 0)
	path := filepath.Join(dir, "creds")
	if _, err := LoadCredentials(path, true); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("on a full disk: %v, want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if creds, err := LoadCredentials(path, true); err != nil || len(creds["admin"]) < 20 {
		t.Fatalf("once there is room: %v, %v", creds, err)
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	a := &auth{creds: map[string]string{"alice": "correct-horse-1"}, key: []byte("0123456789abcdef0123456789abcdef"), now: func() time.Time { return now }}
	req := func(cookie string) *http.Request {
		r := httptest.NewRequest("GET", "/crashes", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		}
		return r
	}
	good := a.session("alice")
	if u := a.user(req(good)); u != "alice" {
		t.Fatalf("valid session: user %q", u)
	}
	for name, cookie := range map[string]string{
		"none":     "",
		"tampered": strings.Replace(good, "alice", "mallory", 1),
		"garbage":  "x|y|z",
		"unsigned": "alice|99999999999",
	} {
		if u := a.user(req(cookie)); u != "" {
			t.Errorf("%s session: user %q, want none", name, u)
		}
	}
	now = now.Add(sessionLifetime + time.Second)
	if u := a.user(req(good)); u != "" {
		t.Errorf("expired session: user %q", u)
	}
	// A user removed from the credentials is signed out.
	now = now.Add(-sessionLifetime)
	delete(a.creds, "alice")
	if u := a.user(req(good)); u != "" {
		t.Errorf("removed user: user %q", u)
	}

	a.creds["alice"] = "correct-horse-1"
	r := httptest.NewRequest("GET", "/crashes", nil)
	r.SetBasicAuth("alice", "correct-horse-1")
	if u := a.user(r); u != "alice" {
		t.Errorf("basic auth: user %q", u)
	}
	r.SetBasicAuth("alice", "wrong-password!")
	if u := a.user(r); u != "" {
		t.Errorf("basic auth with a wrong password: user %q", u)
	}
	if a.csrf(req(good)) == a.csrf(req(a.session("alice")+"x")) {
		t.Error("two sessions share a form token")
	}
}

func TestSameOriginAndNext(t *testing.T) {
	tests := []struct {
		origin, site string
		want         bool
	}{
		{"", "", true},
		{"http://dash.example:4792", "", true},
		{"http://evil.example", "", false},
		{"", "same-origin", true},
		{"", "cross-site", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("POST", "http://dash.example:4792/login", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if tt.site != "" {
			r.Header.Set("Sec-Fetch-Site", tt.site)
		}
		if got := sameOrigin(r); got != tt.want {
			t.Errorf("origin %q site %q: sameOrigin = %v, want %v", tt.origin, tt.site, got, tt.want)
		}
	}
	for next, want := range map[string]string{
		"/crashes/app/1?days=7": "/crashes/app/1?days=7",
		"//evil.example/":       "/crashes",
		"/\\evil.example":       "/crashes",
		"https://evil.example":  "/crashes",
		"":                      "/crashes",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
