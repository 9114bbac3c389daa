package consent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Errors the Service returns (besides the token errors of Verify,
// pipeline.ErrAppIDInvalid, pipeline.ErrOverloaded and pipeline.ErrClosed);
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

// statusClientClosedRequest is nginx's status for a request the client
// gave up on; net/http has none.
const statusClientClosedRequest = 499

// retryDelay is the delay suggested to clients on retryable errors.
const retryDelay = time.Second

// classification is how one error is reported over gRPC and HTTP.
type classification struct {
	code   codes.Code
	http   int
	reason consentryv1.ErrorReason
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
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_REQUEST_INVALID}
	case errors.Is(err, pipeline.ErrAppIDInvalid):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_APP_ID_INVALID}
	case errors.Is(err, ErrScopeUnknown):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_SCOPE_UNKNOWN}
	case errors.Is(err, ErrAppUnauthenticated):
		return classification{code: codes.Unauthenticated, http: http.StatusUnauthorized, reason: consentryv1.ErrorReason_APP_UNAUTHENTICATED}
	case errors.Is(err, ErrScopeNotAllowed):
		return classification{code: codes.PermissionDenied, http: http.StatusForbidden, reason: consentryv1.ErrorReason_SCOPE_NOT_ALLOWED}
	case errors.Is(err, ErrMissing):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_TOKEN_MISSING,
			msg: "consent_token is required"}
	case errors.Is(err, ErrExpired):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_TOKEN_EXPIRED,
			msg: "consent token expired: expired tokens are already refused"}
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrSignature):
		return classification{code: codes.InvalidArgument, http: http.StatusBadRequest, reason: consentryv1.ErrorReason_TOKEN_INVALID,
			msg: "consent token invalid: malformed, forged or signed by an unknown key"}
	case errors.Is(err, ErrGrantsThrottled):
		c := classification{code: codes.ResourceExhausted, http: http.StatusTooManyRequests, reason: consentryv1.ErrorReason_RATE_LIMITED, retry: true}
		if te, ok := errors.AsType[*GrantThrottledError](err); ok {
			c.after = te.After
		}
		return c
	case errors.Is(err, ErrRevocationsStale):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: consentryv1.ErrorReason_REVOCATIONS_STALE, retry: true}
	case errors.Is(err, ErrStoreUnavailable):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: consentryv1.ErrorReason_STORE_UNAVAILABLE, retry: true}
	case errors.Is(err, pipeline.ErrOverloaded):
		return classification{code: codes.ResourceExhausted, http: http.StatusTooManyRequests, reason: consentryv1.ErrorReason_OVERLOADED, retry: true}
	case errors.Is(err, pipeline.ErrClosed):
		return classification{code: codes.Unavailable, http: http.StatusServiceUnavailable, reason: consentryv1.ErrorReason_SHUTTING_DOWN, retry: true}
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
	return grpcerr.Status(c.code, c.message(err), c.reason.String(), c.retryDelay())
}

// withStatus returns resp, or err as toStatus reports it: the result of
// an RPC handler.
func withStatus[R any](resp *R, err error) (*R, error) {
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
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
