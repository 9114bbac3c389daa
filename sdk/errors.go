package sdk

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Errors the Client returns, wrapped with context; branch on them with
// errors.Is. (Through gomobile they arrive as exceptions or NSErrors whose
// message contains the text below.)
var (
	// ErrInvalidConfig: New was given a Config it cannot use.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrInvalidArgument: a Record or consent call was given a value the
	// collector would refuse (an unknown gesture kind, a malformed name,
	// an out-of-range number). Nothing was recorded.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client closed")
	// ErrStorageInUse: another Client, in this or another process, uses
	// the storage folder.
	ErrStorageInUse = errors.New("storage folder in use by another client")
	// ErrStateUnreadable: the consent state in the storage folder cannot
	// be decrypted, most likely because Config.QueueKey differs from the
	// key it was written with (one damaged or lost file is read from its
	// copy; this needs both copies unreadable). Pass the earlier key, or
	// call DeleteStorage to start over (which forgets the consent).
	ErrStateUnreadable = errors.New("consent state unreadable: wrong queue key or corrupted file")
	// ErrStorageFull: the device's storage is full and the SDK could not
	// make room by dropping its own oldest queued events (counted as
	// evicted in Stats): nothing of its own was left to drop. Nothing was
	// written (a record, a grant's state, New's first key and state); it
	// works again once the app or the user frees space.
	ErrStorageFull = errors.New("device storage full")
	// ErrRejected: the collector refused a request for a reason a retry
	// cannot fix (a wrong app key, a scope the app may not ask for, a
	// malformed batch). The request is not retried.
	ErrRejected = errors.New("refused by the collector")
	// ErrUnavailable: the collector could not be reached, or asked to
	// retry later. Events stay queued and are retried with backoff.
	ErrUnavailable = errors.New("collector unavailable")
	// ErrConsentEnded: the collector reported the consent revoked,
	// expired or invalid; the queue was purged and recording stopped
	// until consent is granted again.
	ErrConsentEnded = errors.New("consent no longer valid")
)

// callError is a failed request to the collector, in a form common to
// both transports.
type callError struct {
	op     string     // "ingest", "grant", "revoke"
	code   codes.Code // the gRPC code, or the one the HTTP error names
	reason string     // the ErrorInfo reason, or the HTTP error's reason
	msg    string     // the server's message: names fields and sizes, never values
	status int        // the HTTP status, 0 for gRPC
	// collector: the HTTP error body was the collector's JSON error, not
	// a proxy's or a captive portal's page.
	collector bool
	// retryAfter is the server's pushback (RetryInfo or Retry-After), 0 if
	// none.
	retryAfter time.Duration
	err        error // the underlying error, if any
}

func (e *callError) Error() string {
	s := e.op + ": " + e.code.String()
	if e.status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.status)
	}
	if e.reason != "" {
		s += " " + e.reason
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.permanent() {
		return s + ": " + ErrRejected.Error()
	}
	return s + ": " + ErrUnavailable.Error()
}

func (e *callError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrRejected) and errors.Is(err, ErrUnavailable)
// work.
func (e *callError) Is(target error) bool {
	switch target {
	case ErrRejected:
		return e.permanent()
	case ErrUnavailable:
		return !e.permanent()
	}
	return false
}

// Reasons the collector returns that the SDK acts on.
var (
	reasonBatchTooLarge = consentryv1.ErrorReason_BATCH_TOO_LARGE.String()
	reasonTokenExpired  = consentryv1.ErrorReason_TOKEN_EXPIRED.String()
	reasonTokenInvalid  = consentryv1.ErrorReason_TOKEN_INVALID.String()
	reasonTokenMissing  = consentryv1.ErrorReason_TOKEN_MISSING.String()
)

// tooLarge reports whether the request was refused for its size: split it
// and send the halves.
func (e *callError) tooLarge() bool {
	if e.status != 0 || e.reason != "" {
		return e.status == 413 || e.reason == reasonBatchTooLarge
	}
	// RESOURCE_EXHAUSTED without a retry delay is a size limit (the
	// collector's contract, and gRPC's own message size check).
	return e.code == codes.ResourceExhausted && e.retryAfter == 0 && e.reason == ""
}

// permanent reports whether retrying the same request cannot succeed.
func (e *callError) permanent() bool {
	if e.tooLarge() {
		return true // unchanged; split it instead.
	}
	if e.status != 0 {
		// A 4xx page from a proxy or a captive portal is not the
		// collector's verdict: only its JSON error drops a batch.
		switch e.status {
		case 400, 401, 403, 415:
			return e.collector
		}
		return false
	}
	switch e.code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition:
		return true
	}
	return false
}

// tokenUnusable reports whether a revocation was refused because the token
// is expired, malformed or forged: the collector refuses it anyway, so the
// revocation has nothing left to do.
func (e *callError) tokenUnusable() bool {
	if e.code != codes.InvalidArgument {
		return false
	}
	switch e.reason {
	case reasonTokenExpired, reasonTokenInvalid, reasonTokenMissing:
		return true
	}
	return false
}
