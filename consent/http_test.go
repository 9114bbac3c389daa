package consent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/consentry/consentry/internal/grpcerr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const testOrigin = "https://consent.example.com"

func newTestHandler(t testing.TB, f *fixture) http.Handler {
	t.Helper()
	h, err := NewHTTPHandler(HTTPConfig{Service: f.svc, AllowedOrigins: []string{testOrigin}, Logger: f.svc.log})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
	err    grpcerr.HTTPErrorDetail // when the body is an error
}

func do(t testing.TB, h http.Handler, method, path, contentType, body string, hdr ...string) httpResult {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := httpResult{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if w.Code >= 400 {
		var e grpcerr.HTTPError
		if err := json.Unmarshal(res.body, &e); err != nil {
			t.Fatalf("error body %q is not JSON: %v", res.body, err)
		}
		res.err = e.Error
	}
	return res
}

func TestHTTPEndpoints(t *testing.T) {
	f := newFixture(t, nil, nil)
	runService(t, f)
	h := newTestHandler(t, f)

	// Grant, with proto field names.
	res := do(t, h, "POST", PathGrant, "application/json",
		`{"app_id": "com.example.notes", "app_key": "key-com.example.notes", "scopes": ["analytics"], "consent_text_version": "2026-11"}`)
	if res.status != http.StatusOK {
		t.Fatalf("grant: %d %s", res.status, res.body)
	}
	var grant consentryv1.GrantResponse
	if err := protojson.Unmarshal(res.body, &grant); err != nil {
		t.Fatal(err)
	}
	if grant.GetConsentToken() == "" || res.header.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Fatalf("grant: %s, headers %v", res.body, res.header)
	}

	// Status, with lowerCamelCase names; every field is present.
	res = do(t, h, "POST", PathStatus, "application/json; charset=utf-8", `{"consentToken": "`+grant.GetConsentToken()+`"}`)
	var raw map[string]any
	if err := json.Unmarshal(res.body, &raw); err != nil || res.status != http.StatusOK {
		t.Fatalf("status: %d %s", res.status, res.body)
	}
	if raw["state"] != "CONSENT_STATE_VALID" || raw["revokedAtUnixMs"] != "0" {
		t.Fatalf("status: %s", res.body)
	}

	// Revoke with erase.
	res = do(t, h, "POST", PathRevoke, "application/json", `{"consent_token": "`+grant.GetConsentToken()+`", "erase": true}`)
	var revoke consentryv1.RevokeResponse
	if err := protojson.Unmarshal(res.body, &revoke); err != nil || res.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if revoke.GetReceipt().GetOutcome() != OutcomeErased {
		t.Fatalf("revoke: %s", res.body)
	}
	if _, err := f.ring.VerifyReceipt(revoke.GetReceipt().GetSignedReceipt()); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPErrors(t *testing.T) {
	f := newFixture(t, nil, nil)
	h := newTestHandler(t, f)
	const secretish = "s3cr3t-b0dy"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
		reason      string
	}{
		{"bad JSON", "POST", PathGrant, "application/json", `{"app_id": "` + secretish, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"not an object", "POST", PathGrant, "application/json", `["` + secretish + `"]`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"null", "POST", PathGrant, "application/json", `null`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"empty", "POST", PathStatus, "application/json", ``, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"unknown field", "POST", PathGrant, "application/json", `{"` + secretish + `": 1}`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"wrong type", "POST", PathGrant, "application/json", `{"scopes": "` + secretish + `"}`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"duplicate field", "POST", PathStatus, "application/json", `{"consent_token": "a", "consentToken": "b"}`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_MALFORMED.String()},
		{"wrong method", "GET", PathGrant, "", ``, 405, "UNIMPLEMENTED", consentryv1.ErrorReason_METHOD_NOT_ALLOWED.String()},
		{"wrong content type", "POST", PathGrant, "text/plain", `{}`, 415, "INVALID_ARGUMENT", consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String()},
		{"no content type", "POST", PathGrant, "", `{}`, 415, "INVALID_ARGUMENT", consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String()},
		{"wrong charset", "POST", PathGrant, "application/json; charset=latin1", `{}`, 415, "INVALID_ARGUMENT", consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String()},
		{"oversize", "POST", PathGrant, "application/json", `{"app_id": "` + strings.Repeat("a", DefaultMaxBodySize) + `"}`, 413, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_TOO_LARGE.String()},
		{"unknown path", "POST", "/v1/consent/other", "application/json", `{}`, 404, "NOT_FOUND", consentryv1.ErrorReason_NOT_FOUND.String()},
		{"wrong key", "POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "app_key": "x", "scopes": ["analytics"], "consent_text_version": "1"}`,
			401, "UNAUTHENTICATED", consentryv1.ErrorReason_APP_UNAUTHENTICATED.String()},
		{"missing key", "POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "scopes": ["analytics"], "consent_text_version": "1"}`,
			400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"empty key", "POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "app_key": "", "scopes": ["analytics"], "consent_text_version": "1"}`,
			400, "INVALID_ARGUMENT", consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"scope not allowed", "POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "app_key": "key-com.example.notes", "scopes": ["location"], "consent_text_version": "1"}`,
			403, "PERMISSION_DENIED", consentryv1.ErrorReason_SCOPE_NOT_ALLOWED.String()},
		{"unknown scope", "POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "app_key": "key-com.example.notes", "scopes": ["` + secretish + `"], "consent_text_version": "1"}`,
			400, "INVALID_ARGUMENT", consentryv1.ErrorReason_SCOPE_UNKNOWN.String()},
		{"forged token", "POST", PathRevoke, "application/json", `{"consent_token": "` + secretish + `"}`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_TOKEN_INVALID.String()},
		{"missing token", "POST", PathRevoke, "application/json", `{}`, 400, "INVALID_ARGUMENT", consentryv1.ErrorReason_TOKEN_MISSING.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, h, tt.method, tt.path, tt.contentType, tt.body)
			if res.status != tt.status || res.err.Code != tt.code || res.err.Reason != tt.reason {
				t.Fatalf("%d %+v, want %d %s %s", res.status, res.err, tt.status, tt.code, tt.reason)
			}
			if res.err.Message == "" || strings.Contains(res.err.Message, secretish) {
				t.Fatalf("message %q is empty or quotes the body", res.err.Message)
			}
			if tt.status == 405 && res.header.Get("Allow") != "POST, OPTIONS" {
				t.Fatalf("Allow = %q", res.header.Get("Allow"))
			}
		})
	}

	// The store is down: 503 with Retry-After.
	tok := f.grant(t, erasableApp, "analytics")
	f.store.setFail(true)
	res := do(t, h, "POST", PathRevoke, "application/json", `{"consent_token": "`+tok+`"}`)
	if res.status != 503 || res.err.Reason != consentryv1.ErrorReason_STORE_UNAVAILABLE.String() || res.header.Get("Retry-After") != "1" {
		t.Fatalf("store down: %d %+v %v", res.status, res.err, res.header)
	}
}

func TestHTTPCORS(t *testing.T) {
	f := newFixture(t, nil, nil)
	h := newTestHandler(t, f)
	preflight := []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}

	res := do(t, h, "OPTIONS", PathGrant, "", "", append([]string{"Origin", testOrigin}, preflight...)...)
	if res.status != http.StatusNoContent || res.header.Get("Access-Control-Allow-Origin") != testOrigin ||
		res.header.Get("Access-Control-Allow-Methods") != "POST" || res.header.Get("Access-Control-Allow-Headers") != "Content-Type" ||
		res.header.Get("Vary") != "Origin" {
		t.Fatalf("allowed preflight: %d %v", res.status, res.header)
	}

	res = do(t, h, "OPTIONS", PathGrant, "", "", append([]string{"Origin", "https://evil.example"}, preflight...)...)
	if res.status != http.StatusForbidden || res.err.Reason != consentryv1.ErrorReason_ORIGIN_NOT_ALLOWED.String() || res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight: %d %v", res.status, res.header)
	}

	res = do(t, h, "POST", PathStatus, "application/json", `{"consent_token": "x"}`, "Origin", testOrigin)
	if res.header.Get("Access-Control-Allow-Origin") != testOrigin {
		t.Fatalf("allowed POST: %v", res.header)
	}
	res = do(t, h, "POST", PathStatus, "application/json", `{"consent_token": "x"}`, "Origin", "https://evil.example")
	if res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin's POST: %v", res.header)
	}

	res = do(t, h, "OPTIONS", PathGrant, "", "")
	if res.status != http.StatusNoContent || res.header.Get("Allow") != "POST, OPTIONS" {
		t.Fatalf("plain OPTIONS: %d %v", res.status, res.header)
	}

	// Default: no origin allowed.
	plain, err := NewHTTPHandler(HTTPConfig{Service: f.svc})
	if err != nil {
		t.Fatal(err)
	}
	res = do(t, plain, "OPTIONS", PathGrant, "", "", append([]string{"Origin", testOrigin}, preflight...)...)
	if res.status != http.StatusForbidden {
		t.Fatalf("preflight without allowed origins: %d", res.status)
	}
}

func TestNewHTTPHandlerConfig(t *testing.T) {
	f := newFixture(t, nil, nil)
	for _, o := range []string{"*", "consent.example.com", "https://consent.example.com/page", "ftp://x", "https://u@x", "null"} {
		if _, err := NewHTTPHandler(HTTPConfig{Service: f.svc, AllowedOrigins: []string{o}}); err == nil {
			t.Errorf("origin %q accepted", o)
		}
	}
	if _, err := NewHTTPHandler(HTTPConfig{}); err == nil {
		t.Error("no service accepted")
	}
	if _, err := NewHTTPHandler(HTTPConfig{Service: f.svc, AllowedOrigins: []string{"HTTPS://Consent.Example.com:8443"}}); err != nil {
		t.Errorf("origin with port and upper case: %v", err)
	}
}

// FuzzHTTP: whatever the method, path, content type and body, the
// handler does not panic, answers no 5xx but 503, and answers JSON.
func FuzzHTTP(f *testing.F) {
	fx := newFixture(f, nil, nil)
	h := newTestHandler(f, fx)
	tok := fx.grant(f, erasableApp, "analytics")
	seeds := []struct{ method, path, ct, body string }{
		{"POST", PathGrant, "application/json", `{"app_id": "com.example.notes", "app_key": "key-com.example.notes", "scopes": ["analytics"], "consent_text_version": "v"}`},
		{"POST", PathGrant, "application/json", `{"appId": "com.example.notes", "ttlSeconds": "-5", "scopes": []}`},
		{"POST", PathRevoke, "application/json", `{"consent_token": "` + tok + `", "erase": true}`},
		{"POST", PathStatus, "application/json", `{"consent_token": "` + tok + `"}`},
		{"POST", PathStatus, "application/json", `{"consent_token": 5}`},
		{"POST", PathStatus, "application/json; charset=UTF-8", `{"consent_token": "\ud800"}`},
		{"GET", PathStatus, "", ``},
		{"OPTIONS", PathStatus, "", ``},
		{"POST", "/", "application/json", `{}`},
		{"POST", PathGrant, "application/json", `{"scopes": [null]}`},
		{"POST", PathGrant, "application/json", `{"ttl_seconds": 1e400}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		r.Method = method
		r.URL.Path = path
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q %q: %s", w.Code, method, path, w.Body)
		}
		out, _ := io.ReadAll(w.Body)
		if w.Code == http.StatusNoContent && len(out) == 0 {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("status %d: body %q is not JSON", w.Code, out)
		}
	})
}
