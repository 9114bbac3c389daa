package consent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
)

// Errors the Service returns (besides the token errors of Verify,
// validate.ErrAppIDInvalid, pipeline.ErrOverloaded and pipeline.ErrClosed);
// callers branch on them with errors.Is.
var (
	// ErrInvalidRequest: a request field is missing or out of range.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrAppUnauthenticated: the app id is not registered or the app key
	// is wrong. The two are indistinguishable, so app ids cannot be
	// probed.
	ErrAppUnauthenticated = errors.New("app id or app key not accepted")
	// ErrScopeUnknown: a scope is not analytics, crash_reports or
	// location.
	ErrScopeUnknown = errors.New("unknown scope")
	// ErrScopeNotAllowed: the app is not registered for a scope it asked
	// for.
	ErrScopeNotAllowed = errors.New("scope not allowed for this app")
	// ErrStoreUnavailable: the store failed or has not been loaded yet;
	// retry later.
	ErrStoreUnavailable = errors.New("consent store unavailable")
)

// ErrorDomain is the domain of every ErrorInfo the consent service
// returns.
const ErrorDomain = grpcerr.Domain

// Reasons in ErrorInfo details and in the HTTP error body: what a client
// branches on.
const (
	// ReasonRequestInvalid: a field is missing or out of range (the
	// message names it).
	ReasonRequestInvalid = "REQUEST_INVALID"
	// ReasonAppIDInvalid: the app id is malformed.
	ReasonAppIDInvalid = "APP_ID_INVALID"
	// ReasonAppUnauthenticated: unknown app id or wrong app key.
	ReasonAppUnauthenticated = "APP_UNAUTHENTICATED"
	// ReasonScopeUnknown: a scope is not analytics, crash_reports or
	// location.
	ReasonScopeUnknown = "SCOPE_UNKNOWN"
	// ReasonScopeNotAllowed: the app may not ask for a scope.
	ReasonScopeNotAllowed = "SCOPE_NOT_ALLOWED"
	// ReasonTokenMissing: no consent token was given.
	ReasonTokenMissing = "TOKEN_MISSING"
	// ReasonTokenInvalid: the token is malformed, forged or signed by an
	// unknown key.
	ReasonTokenInvalid = "TOKEN_INVALID"
	// ReasonTokenExpired: the token expired; it is refused anyway.
	ReasonTokenExpired = "TOKEN_EXPIRED"
	// ReasonStoreUnavailable: the store failed or is not loaded; retry.
	ReasonStoreUnavailable = "STORE_UNAVAILABLE"
	// ReasonRevocationsStale: this replica's revocations are not fresh;
	// retry.
	ReasonRevocationsStale = "REVOCATIONS_STALE"
	// ReasonOverloaded: the service is overloaded; retry.
	ReasonOverloaded = "OVERLOADED"
	// ReasonRateLimited: too many failed grants from this client's address
	// (or for this app while its key is being guessed at); retry after
	// the delay given (RetryInfo, Retry-After), not before.
	ReasonRateLimited = "RATE_LIMITED"
	// ReasonShuttingDown: the service is stopping; retry elsewhere.
	ReasonShuttingDown = "SHUTTING_DOWN"

	// ReasonRequestMalformed: the HTTP body is not the request message in
	// JSON.
	ReasonRequestMalformed = "REQUEST_MALFORMED"
	// ReasonRequestTooLarge: the HTTP body exceeds the limit.
	ReasonRequestTooLarge = "REQUEST_TOO_LARGE"
	// ReasonContentTypeUnsupported: the HTTP Content-Type is not
	// application/json.
	ReasonContentTypeUnsupported = "CONTENT_TYPE_UNSUPPORTED"
	// ReasonMethodNotAllowed: the HTTP method is not POST.
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// ReasonNotFound: no such HTTP endpoint.
	ReasonNotFound = "NOT_FOUND"
	// ReasonOriginNotAllowed: a CORS preflight from an origin not allowed.
	ReasonOriginNotAllowed = "ORIGIN_NOT_ALLOWED"
)

// statusClientClosedRequest is nginx's status for a request the client
// gave up on; net/http has none.
const statusClientClosedRequest = 499

// retryDelay is the delay suggested to clients on retryable errors.
const retryDelay = time.Second

// classification is how one error is reported over gRPC and HTTP.
type classification struct {
	code   codes.Code
	http   int
	reason string
	retry  bool
	// after, if set, replaces retryDelay as the delay suggested.
	after time.Duration
	// msg, if set, replaces the error's text: token errors carry parser
	// details that do not help a client.
	msg string
}

// retryDelay returns the delay suggested to the client, 0 for none.
func (c classification) retryDelay() time.Duration {
	switch {
	case !c.retry:
		return 0
	case c.after > 0:
		return c.after
	default:
		return retryDelay
	}
}

// classifyError maps an error of the Service to how it is reported. This
// is the one place the service's errors become statuses.
func classifyError(err error) classification {
	switch {
	case errors.Is(err, ErrInvalidRequest):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonRequestInvalid}
	case errors.Is(err, validate.ErrAppIDInvalid):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonAppIDInvalid}
	case errors.Is(err, ErrScopeUnknown):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonScopeUnknown}
	case errors.Is(err, ErrAppUnauthenticated):
		return classification{code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: ReasonAppUnauthenticated}
	case errors.Is(err, ErrScopeNotAllowed):
		return classification{code: codes.PermissionDenied, http: http.StatusForbidden, reason: ReasonScopeNotAllowed}
	case errors.Is(err, ErrMissing):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonTokenMissing,
			msg: "consent_token is required"}
	case errors.Is(err, ErrExpired):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonTokenExpired,
			msg: "consent token expired: expired tokens are already refused"}
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrSignature):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: ReasonTokenInvalid,
			msg: "consent token invalid: malformed, forged or signed by an unknown key"}
	case errors.Is(err, ErrGrantsThrottled):
		c := classification{code: codes.ResourceExhausted, http: http.StatusTooManyRequests, reason: ReasonRateLimited, retry: true}
		if te, ok := errors.AsType[*GrantThrottledError](err); ok {
			c.after = te.After
		}
		return c
	case errors.Is(err, ErrRevocationsStale):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: ReasonRevocationsStale, retry: true}
	case errors.Is(err, ErrStoreUnavailable):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: ReasonStoreUnavailable, retry: true}
	case errors.Is(err, pipeline.ErrOverloaded):
		return classification{code: codes.ResourceExhausted, http: http.StatusTooManyRequests, reason: ReasonOverloaded, retry: true}
	case errors.Is(err, pipeline.ErrClosed):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: ReasonShuttingDown, retry: true}
	case errors.Is(err, context.DeadlineExceeded):
		return classification{code: codes.DeadlineExceeded, http: http.StatusGatewayTimeout}
	case errors.Is(err, context.Canceled):
		return classification{code: codes.Canceled, http: statusClientClosedRequest}
	default:
		return classification{code: codes.Internal, http: http.StatusInternalServerError, msg: "internal error"}
	}
}

// message is the text reported to the client for err. Service errors
// name fields and sizes, never values.
func (c classification) message(err error) string {
	if c.msg != "" {
		return c.msg
	}
	return err.Error()
}

// toStatus converts err to a gRPC status error with an ErrorInfo and, for
// retryable errors, a RetryInfo.
func toStatus(err error) error {
	c := classifyError(err)
	return grpcerr.Status(c.code, c.message(err), c.reason, c.retryDelay())
}

// redactedError is a log field for a store error with the given values
// (a consent hash or pseudonym the failed query carried) blanked out, as
// a store's error text may quote its query.
func redactedError(err error, values ...string) zap.Field {
	msg := err.Error()
	for _, v := range values {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return zap.String("error", msg)
}
