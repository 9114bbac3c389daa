package consentryv1

import (
	"time"
	"unicode"
	"unicode/utf8"
)

// The rules of the wire contract that the .proto files cannot state: the
// SDK checks them before it sends, the collector when it receives. They
// live here, beside the generated code, so both sides share one copy.

// Scope names a kind of data a user consented to; consent tokens carry
// scopes, and GrantRequest.scopes lists them.
type Scope string

// The scopes a consent can cover.
const (
	// ScopeAnalytics covers sessions, gestures, custom events and
	// diagnostics.
	ScopeAnalytics Scope = "analytics"
	// ScopeCrashReports covers crashes and handled exceptions.
	ScopeCrashReports Scope = "crash_reports"
	// ScopeLocation covers deriving a country and region from the
	// device's coordinates or its address.
	ScopeLocation Scope = "location"
)

// Scopes returns every scope, in a fixed order.
func Scopes() []Scope { return []Scope{ScopeAnalytics, ScopeCrashReports, ScopeLocation} }

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool {
	switch s {
	case ScopeAnalytics, ScopeCrashReports, ScopeLocation:
		return true
	}
	return false
}

// MaxAppIDLen is the longest app id, in bytes.
const MaxAppIDLen = 128

// ValidAppID reports whether id is a well-formed app id: 1 to MaxAppIDLen
// ASCII letters, digits, '.', '_' and '-', starting with a letter or
// digit.
func ValidAppID(id string) bool {
	if id == "" || len(id) > MaxAppIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// MaxConsentTextVersionLen is the longest consent text version, in
// characters.
const MaxConsentTextVersionLen = 64

// ValidConsentTextVersion reports whether v is 1 to
// MaxConsentTextVersionLen printable characters.
func ValidConsentTextVersion(v string) bool {
	if v == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxConsentTextVersionLen {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// The limits every collector admits by default (its flags can only be
// raised safely): the SDK keeps batches and fields within them, and the
// collector's limits and validate stages default to them.
const (
	// DefaultMaxBatchEvents is the most events in one batch.
	DefaultMaxBatchEvents = 1000
	// DefaultMaxMessageBytes is the largest encoded request.
	DefaultMaxMessageBytes = 4 << 20
	// DefaultMaxNameBytes bounds short strings: names, versions, screens,
	// stack frame fields, attribute keys.
	DefaultMaxNameBytes = 256
	// DefaultMaxTextBytes bounds free text: crash messages, attribute
	// values.
	DefaultMaxTextBytes = 8 << 10
	// DefaultMaxFrames bounds a stack trace.
	DefaultMaxFrames = 256
	// DefaultMaxAttributes bounds a custom event's attributes.
	DefaultMaxAttributes = 64
	// DefaultMaxBreadcrumbs bounds the breadcrumbs of one crash.
	DefaultMaxBreadcrumbs = 100
	// DefaultMaxBreadcrumbBytes bounds a breadcrumb's name.
	DefaultMaxBreadcrumbBytes = 256
	// DefaultMaxEventAge is how old an event may be when it arrives (events
	// queued offline): 14 days.
	DefaultMaxEventAge = 14 * 24 * time.Hour
)
