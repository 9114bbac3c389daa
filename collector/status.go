package collector

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
)

// ErrorDomain is the domain of every ErrorInfo the collector returns.
const ErrorDomain = grpcerr.Domain

// errMalformed is returned for a request that could not be decoded.
var errMalformed = pipeline.ErrMalformed.Specialize("request could not be decoded as a consentry.v1.IngestRequest", pipeline.ReasonBatchMalformed, 0)

// classify maps an error from a stage or the sink to the refusal it is
// reported as. This is the one place errors become statuses: a
// *pipeline.Refusal anywhere in the chain says how; a deadline or a
// cancellation is reported as such; anything else is an internal error.
func classify(err error) *pipeline.Refusal {
	var r *pipeline.Refusal
	switch {
	case errors.As(err, &r):
		return r
	case errors.Is(err, context.DeadlineExceeded):
		return &pipeline.Refusal{Code: codes.DeadlineExceeded, Counted: pipeline.ReasonStorageUnavailable}
	case errors.Is(err, context.Canceled):
		return &pipeline.Refusal{Code: codes.Canceled, Counted: pipeline.ReasonStorageUnavailable}
	default:
		return &pipeline.Refusal{Code: codes.Internal, Counted: pipeline.ReasonStorageUnavailable}
	}
}

// toStatus converts err to a gRPC status error with an ErrorInfo and, for
// retryable errors, a RetryInfo. The message is err's text, which by
// convention names fields and sizes, never payload values.
func toStatus(err error) error {
	r := classify(err)
	msg := err.Error()
	if r.Code == codes.Internal {
		msg = "internal error"
	}
	reason := ""
	if r.Reason != 0 {
		reason = r.Reason.String()
	}
	return grpcerr.Status(r.Code, msg, reason, r.RetryAfter)
}
