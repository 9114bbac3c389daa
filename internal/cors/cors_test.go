package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"https://example.com", "https://example.com", true},
		{"HTTPS://Example.com:8443", "https://example.com:8443", true},
		{"http://127.0.0.1:3000/", "http://127.0.0.1:3000", true},
		{"https://example.com/page", "", false},
		{"https://user@example.com", "", false},
		{"https://example.com?x", "", false},
		{"ftp://example.com", "", false},
		{"example.com", "", false},
		{"*", "", false},
	} {
		got, err := ParseOrigin(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestApply(t *testing.T) {
	p, err := New([]string{"https://App.example.com"}, "Content-Type", "Content-Encoding")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, origin string
		want         bool
	}{
		{"allowed", "https://app.example.com", true},
		{"another origin", "https://evil.example", false},
		{"another port", "https://app.example.com:444", false},
		{"no origin", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodOptions, "/v1/ingest", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			r.Header.Set("Access-Control-Request-Method", "POST")
			w := httptest.NewRecorder()
			if got := p.Apply(w, r); got != tc.want {
				t.Fatalf("Apply = %v, want %v", got, tc.want)
			}
			if w.Header().Get("Vary") != "Origin" {
				t.Errorf("Vary = %q, want Origin", w.Header().Get("Vary"))
			}
			acao := w.Header().Get("Access-Control-Allow-Origin")
			if (tc.want && acao != tc.origin) || (!tc.want && acao != "") {
				t.Errorf("Access-Control-Allow-Origin = %q", acao)
			}
			if IsPreflight(r) != (tc.origin != "") {
				t.Errorf("IsPreflight = %v", IsPreflight(r))
			}
		})
	}
	w := httptest.NewRecorder()
	p.Preflight(w)
	if w.Header().Get("Access-Control-Allow-Headers") != "Content-Type, Content-Encoding" || w.Header().Get("Access-Control-Allow-Methods") != "POST" {
		t.Errorf("preflight headers %v", w.Header())
	}
}

func TestNoOrigins(t *testing.T) {
	for _, p := range []*Policy{nil, {}} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Origin", "https://app.example.com")
		w := httptest.NewRecorder()
		if p.Apply(w, r) || len(w.Header()) != 0 {
			t.Errorf("a policy without origins set %v", w.Header())
		}
	}
}
