// Package grpcerr builds the gRPC statuses Consentry's services return: a
// code, a message, an ErrorInfo reason an SDK can branch on, and, for
// retryable errors, a RetryInfo with the delay to wait.
package grpcerr

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the domain of every ErrorInfo Consentry returns.
const Domain = "consentry.dev"

// Status returns a status error with code and msg, an ErrorInfo carrying
// reason if it is not empty, and a RetryInfo carrying retryDelay if it is
// positive.
func Status(code codes.Code, msg, reason string, retryDelay time.Duration) error {
	st := status.New(code, msg)
	var details []protoadapt.MessageV1
	if reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: Domain})
	}
	if retryDelay > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)})
	}
	if len(details) > 0 {
		if withDetails, err := st.WithDetails(details...); err == nil {
			st = withDetails
		}
	}
	return st.Err()
}
