// Package cors answers cross-origin requests (CORS) from the web origins an
// operator allows, for the collector's HTTP endpoints: the consent
// endpoints a web consent page calls and the ingest endpoint a web app's
// SDK sends to. Requests from other origins get no CORS headers, so
// browsers keep their pages from reading the answers, and preflights are
// refused.
package cors

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MaxAge is how long a browser may cache a preflight's answer.
const MaxAge = "600"

// Policy is the set of allowed origins and what their requests may send.
// The zero Policy, and a nil one, allow no origin.
type Policy struct {
	origins      map[string]bool
	allowHeaders string
}

// New returns a Policy allowing origins (scheme://host[:port], as browsers
// send them in Origin) to POST with the request headers allowHeaders
// (e.g. "Content-Type"). It fails on an origin that is not one.
func New(origins []string, allowHeaders ...string) (*Policy, error) {
	p := &Policy{origins: make(map[string]bool, len(origins)), allowHeaders: strings.Join(allowHeaders, ", ")}
	for _, o := range origins {
		norm, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		p.origins[norm] = true
	}
	return p, nil
}

// ParseOrigin checks that o is a serialized origin and returns it in the
// lower case browsers send.
func ParseOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("allowed origin %q is not scheme://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// Apply sets the CORS headers of the response to r when r comes from an
// allowed origin, and reports whether it does. With any origin allowed,
// every response varies by Origin, so a cache does not hand one origin's
// answer to another.
func (p *Policy) Apply(w http.ResponseWriter, r *http.Request) bool {
	if p == nil || len(p.origins) == 0 {
		return false
	}
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if !p.origins[strings.ToLower(origin)] {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	return true
}

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// Preflight sets the headers that answer a preflight from an allowed
// origin (Apply said so): POST, with the policy's headers.
func (p *Policy) Preflight(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Methods", http.MethodPost)
	if p.allowHeaders != "" {
		hdr.Set("Access-Control-Allow-Headers", p.allowHeaders)
	}
	hdr.Set("Access-Control-Max-Age", MaxAge)
}
