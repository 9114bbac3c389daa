package collector

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
)

// ErrorDomain is the domain of every ErrorInfo the collector returns.
const ErrorDomain = grpcerr.Domain

// Reasons in ErrorInfo details: what an SDK branches on.
const (
	ReasonBatchMalformed     = "BATCH_MALFORMED"
	ReasonBatchTooLarge      = "BATCH_TOO_LARGE"
	ReasonFieldTooLarge      = "FIELD_TOO_LARGE"
	ReasonDeviceMissing      = "DEVICE_MISSING"
	ReasonAppIDInvalid       = "APP_ID_INVALID"
	ReasonSentAtMissing      = "SENT_AT_MISSING"
	ReasonOverloaded         = "OVERLOADED"
	ReasonStorageUnavailable = "STORAGE_UNAVAILABLE"
	ReasonShuttingDown       = "SHUTTING_DOWN"
	ReasonRevocationsStale   = "REVOCATIONS_STALE"
	ReasonRateLimited        = "RATE_LIMITED"
)

// errMalformed is returned for a request that could not be decoded.
var errMalformed = errors.New("request could not be decoded as a consentry.v1.IngestRequest")

// retryDelay is the delay suggested to clients on retryable errors.
const retryDelay = time.Second

// spoolFullDelay is the delay suggested when the spool is full: ClickHouse
// has been away for a while, so retrying every second would only add load.
const spoolFullDelay = 5 * time.Second

// classification is how one error is reported: the gRPC code, the
// ErrorInfo reason, the retry delay suggested (0 for none: the client must
// not resend as is), and the reason counted in the rejects table.
type classification struct {
	code   codes.Code
	reason string
	delay  time.Duration
	reject pipeline.Reason
}

// retryAfter is implemented by errors that know when to retry, such as
// ratelimit's.
type retryAfter interface{ RetryAfter() time.Duration }

// classify maps an error from a stage or the sink to how it is reported.
// This is the one place errors become statuses.
func classify(err error) classification {
	var ra retryAfter
	switch {
	case errors.Is(err, ratelimit.ErrRateLimited) && errors.As(err, &ra):
		return classification{codes.ResourceExhausted, ReasonRateLimited, ra.RetryAfter(), pipeline.ReasonRateLimited}
	case errors.Is(err, ratelimit.ErrExceedsBurst):
		return classification{codes.ResourceExhausted, ReasonBatchTooLarge, 0, pipeline.ReasonBatchTooLarge}
	case errors.Is(err, errMalformed):
		return classification{codes.InvalidArgument, ReasonBatchMalformed, 0, pipeline.ReasonBatchMalformed}
	case errors.Is(err, limits.ErrBatchTooLarge), errors.Is(err, errBodyTooLarge):
		return classification{codes.ResourceExhausted, ReasonBatchTooLarge, 0, pipeline.ReasonBatchTooLarge}
	case errors.Is(err, limits.ErrFieldTooLarge):
		return classification{codes.InvalidArgument, ReasonFieldTooLarge, 0, pipeline.ReasonBatchTooLarge}
	case errors.Is(err, validate.ErrDeviceMissing):
		return classification{codes.InvalidArgument, ReasonDeviceMissing, 0, pipeline.ReasonBatchMalformed}
	case errors.Is(err, validate.ErrAppIDInvalid):
		return classification{codes.InvalidArgument, ReasonAppIDInvalid, 0, pipeline.ReasonBatchMalformed}
	case errors.Is(err, validate.ErrSentAtMissing):
		return classification{codes.InvalidArgument, ReasonSentAtMissing, 0, pipeline.ReasonBatchMalformed}
	case errors.Is(err, consent.ErrRevocationsStale):
		return classification{codes.Unavailable, ReasonRevocationsStale, retryDelay, pipeline.ReasonStorageUnavailable}
	case errors.Is(err, spool.ErrFull):
		return classification{codes.ResourceExhausted, ReasonOverloaded, spoolFullDelay, pipeline.ReasonSpoolFull}
	case errors.Is(err, pipeline.ErrOverloaded):
		return classification{codes.ResourceExhausted, ReasonOverloaded, retryDelay, pipeline.ReasonOverloaded}
	case errors.Is(err, pipeline.ErrStorageUnavailable):
		return classification{codes.Unavailable, ReasonStorageUnavailable, retryDelay, pipeline.ReasonStorageUnavailable}
	case errors.Is(err, pipeline.ErrClosed):
		return classification{codes.Unavailable, ReasonShuttingDown, retryDelay, pipeline.ReasonStorageUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return classification{codes.DeadlineExceeded, "", 0, pipeline.ReasonStorageUnavailable}
	case errors.Is(err, context.Canceled):
		return classification{codes.Canceled, "", 0, pipeline.ReasonStorageUnavailable}
	default:
		return classification{codes.Internal, "", 0, pipeline.ReasonStorageUnavailable}
	}
}

// toStatus converts err to a gRPC status error with an ErrorInfo and, for
// retryable errors, a RetryInfo. The message is err's text, which by
// convention names fields and sizes, never payload values.
func toStatus(err error) error {
	c := classify(err)
	msg := err.Error()
	if c.code == codes.Internal {
		msg = "internal error"
	}
	return grpcerr.Status(c.code, msg, c.reason, c.delay)
}
