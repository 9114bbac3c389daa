package anonymizer

import (
	"regexp"
	"strings"
)

// Scrubber replaces identifiers in free text with a marker naming what was
// removed, e.g. "[email]", so crashes still group.
type Scrubber struct {
	rules []rule
}

type rule struct {
	// may is a cheap test that is false only when re cannot match s; it
	// keeps the regular expressions off the common, clean strings.
	may  func(s string) bool
	re   *regexp.Regexp
	repl string
}

func contains(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

func containsAny(chars string) func(string) bool {
	return func(s string) bool { return strings.ContainsAny(s, chars) }
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			if s[i+j]|0x20 != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// minDigits returns a test for strings holding at least n ASCII digits.
func minDigits(n int) func(string) bool {
	return func(s string) bool {
		c := 0
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				if c++; c >= n {
					return true
				}
			}
		}
		return false
	}
}

// NewScrubber returns a Scrubber with the built-in detectors.
func NewScrubber() *Scrubber {
	return &Scrubber{rules: []rule{
		{func(s string) bool { return containsFold(s, "bearer") || containsFold(s, "token") }, regexp.MustCompile(`(?i)\b(?:bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}`), "[token]"},
		{contains("eyJ"), regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`), "[jwt]"},
		{contains("@"), regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`), "[email]"},
		{contains("-"), regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "[uuid]"},
		{containsAny(":-"), regexp.MustCompile(`(?i)\b(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}\b`), "[mac]"},
		{func(s string) bool { return strings.Contains(s, ".") && minDigits(4)(s) }, regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`), "[ip]"},
		{contains(":"), regexp.MustCompile(`(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}:?){0,6}[0-9a-f]{1,4}\b`), "[ip]"},
		{containsAny("/\\"), regexp.MustCompile(`(/Users/|/home/|[A-Za-z]:\\Users\\)[^/\\\s]+`), "${1}[user]"},
		{func(s string) bool { return len(s) >= 9 && minDigits(2)(s) }, regexp.MustCompile(`(?:\+|\b)\d[\d ()-]{7,}\d`), "[phone]"},
	}}
}

// Scrub returns s with every detected identifier replaced.
func (sc *Scrubber) Scrub(s string) string {
	if s == "" {
		return s
	}
	for _, r := range sc.rules {
		if r.may(s) {
			s = r.re.ReplaceAllString(s, r.repl)
		}
	}
	return s
}

// identifierKeys are normalized attribute keys that name identifiers.
var identifierKeys = map[string]bool{
	"deviceid": true, "userid": true, "uid": true, "email": true, "mail": true, "emailaddress": true,
	"phone": true, "phonenumber": true, "mobile": true, "msisdn": true, "ip": true, "ipaddress": true,
	"ipaddr": true, "idfa": true, "idfv": true, "gaid": true, "adid": true, "advertisingid": true,
	"androidid": true, "imei": true, "meid": true, "serial": true, "serialnumber": true,
	"installid": true, "installationid": true, "accountid": true, "username": true, "user": true,
	"name": true, "firstname": true, "lastname": true, "fullname": true, "address": true,
	"lat": true, "latitude": true, "lon": true, "lng": true, "longitude": true, "mac": true,
	"macaddress": true, "customerid": true, "clientid": true, "sessionid": true, "token": true,
	"password": true, "ssn": true,
}

// IsIdentifierKey reports whether an attribute key names an identifier,
// ignoring case and the separators '.', '_', '-' and ' '.
func IsIdentifierKey(k string) bool {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, k)
	if identifierKeys[n] {
		return true
	}
	for _, t := range identifierParts {
		if strings.Contains(n, t) {
			return true
		}
	}
	return false
}

// identifierParts are normalized fragments that make any key containing
// them name an identifier, e.g. "user_email" or "primaryPhoneNumber".
var identifierParts = []string{
	"email", "phone", "deviceid", "userid", "idfa", "idfv", "gaid", "imei", "androidid",
	"advertisingid", "ipaddr", "macaddr", "installid", "installationid", "accountid", "serialnumber",
}
