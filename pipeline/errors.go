package pipeline

import (
	"time"

	"google.golang.org/grpc/codes"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Refusal is the one error type with which a stage or a sink refuses a
// batch as a whole (as the OpenTelemetry Collector's consumererror
// carries how to retry): it says how the edge answers the client — the
// gRPC code (and so the HTTP status), the ErrorInfo reason the SDK
// branches on, the delay after which resending may succeed (0: resending
// as is cannot succeed) — and the reason the rejects table counts. The
// edge (collector/status.go) maps a *Refusal found anywhere in an
// error's chain, and nothing else, to a status.
//
// Stages declare their refusals as sentinel values and wrap them with
// context, fmt.Errorf("limits: %d events: %w", n, ErrBatchTooLarge);
// callers branch on them with errors.Is, and read them with errors.As. A
// refusal may wrap a more general one (spool.ErrFull wraps
// ErrOverloaded), so errors.Is matches both and errors.As finds the most
// specific.
type Refusal struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the ErrorInfo reason.
	Reason consentryv1.ErrorReason
	// RetryAfter is the delay suggested to the client; 0 for none.
	RetryAfter time.Duration
	// Counted is the reason the rejects table counts the batch's events
	// under.
	Counted Reason

	msg  string
	wrap error    // the more general refusal this one specializes
	tmpl *Refusal // the sentinel this one was made from by After
}

// Refuse returns a refusal with code, reason, the counted reason and msg,
// retryable after retryAfter (0: not retryable).
func Refuse(code codes.Code, reason consentryv1.ErrorReason, counted Reason, retryAfter time.Duration, msg string) *Refusal {
	return &Refusal{Code: code, Reason: reason, Counted: counted, RetryAfter: retryAfter, msg: msg}
}

// Error returns the refusal's message.
func (r *Refusal) Error() string {
	if r.wrap != nil {
		return r.msg + ": " + r.wrap.Error()
	}
	return r.msg
}

// Unwrap returns the more general refusal r specializes, if any.
func (r *Refusal) Unwrap() error { return r.wrap }

// Is reports whether r is target or, through Unwrap, specializes it; a
// refusal made by After is its template.
func (r *Refusal) Is(target error) bool {
	t, ok := target.(*Refusal)
	return ok && r.tmpl != nil && r.tmpl == t
}

// Specialize returns a refusal like r (code, reason, counted reason,
// delay, except where set in s) with message msg, that wraps r, so that
// errors.Is(s, r) holds.
func (r *Refusal) Specialize(msg string, counted Reason, retryAfter time.Duration) *Refusal {
	return &Refusal{Code: r.Code, Reason: r.Reason, Counted: counted, RetryAfter: retryAfter, msg: msg, wrap: r}
}

// After returns a copy of r that suggests retrying after d, for
// refusals whose delay is known only when they happen (a rate limit). It
// matches r with errors.Is.
func (r *Refusal) After(d time.Duration) *Refusal {
	c := *r
	c.RetryAfter = d
	c.tmpl = r
	return &c
}

// retryDelay is the delay suggested for the general retryable refusals.
const retryDelay = time.Second

// The general refusals every stage and sink may return (wrapped with
// context: fmt.Errorf("insert sessions: %w", ErrStorageUnavailable)).
var (
	// ErrOverloaded means the collector is at capacity; the client should
	// retry after a delay. RESOURCE_EXHAUSTED, OVERLOADED.
	ErrOverloaded = Refuse(codes.ResourceExhausted, consentryv1.ErrorReason_OVERLOADED, ReasonOverloaded, retryDelay, "collector overloaded")
	// ErrStorageUnavailable means storage failed and the rows are not
	// durable; the client should retry with backoff. UNAVAILABLE,
	// STORAGE_UNAVAILABLE.
	ErrStorageUnavailable = Refuse(codes.Unavailable, consentryv1.ErrorReason_STORAGE_UNAVAILABLE, ReasonStorageUnavailable, retryDelay, "storage unavailable")
	// ErrClosed means the collector is shutting down. UNAVAILABLE,
	// SHUTTING_DOWN.
	ErrClosed = Refuse(codes.Unavailable, consentryv1.ErrorReason_SHUTTING_DOWN, ReasonStorageUnavailable, retryDelay, "collector shutting down")
	// ErrMalformed means the request could not be decoded or lacks a
	// required batch field; resending it cannot succeed. INVALID_ARGUMENT,
	// BATCH_MALFORMED.
	ErrMalformed = Refuse(codes.InvalidArgument, consentryv1.ErrorReason_BATCH_MALFORMED, ReasonBatchMalformed, 0, "batch malformed")
	// ErrAppIDInvalid means the app id breaks consentryv1.ValidAppID;
	// resending it cannot succeed. INVALID_ARGUMENT, APP_ID_INVALID.
	ErrAppIDInvalid = Refuse(codes.InvalidArgument, consentryv1.ErrorReason_APP_ID_INVALID, ReasonBatchMalformed, 0, "app id invalid")
	// ErrBatchTooLarge means the batch exceeds a batch-level limit; the
	// client splits it. RESOURCE_EXHAUSTED without a retry delay,
	// BATCH_TOO_LARGE.
	ErrBatchTooLarge = Refuse(codes.ResourceExhausted, consentryv1.ErrorReason_BATCH_TOO_LARGE, ReasonBatchTooLarge, 0, "batch too large")
)
