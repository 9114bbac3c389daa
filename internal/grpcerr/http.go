package grpcerr

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HTTPError is the JSON body of an error answered over HTTP:
//
//	{"error": {"code": "INVALID_ARGUMENT", "reason": "BATCH_MALFORMED", "message": "..."}}
type HTTPError struct {
	Error HTTPErrorDetail `json:"error"`
}

// HTTPErrorDetail is the error of an HTTPError.
type HTTPErrorDetail struct {
	// Code is the gRPC code's canonical name, e.g. "RESOURCE_EXHAUSTED".
	Code string `json:"code"`
	// Reason is the ErrorInfo reason an SDK branches on; "" for none.
	Reason string `json:"reason"`
	// Message says what is wrong, never quoting payload values.
	Message string `json:"message"`
}

// CodeName returns c's canonical name, e.g. "INVALID_ARGUMENT", as
// google.rpc.Code spells it; "UNKNOWN" for a code it does not define.
func CodeName(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return "UNKNOWN"
}

// HTTPStatus returns the HTTP status for a gRPC code, as the gRPC-HTTP
// mapping of google.rpc.Code has it.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable, codes.Canceled:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// Details returns the code, message, ErrorInfo reason and RetryInfo delay
// of a status error (codes.Unknown and err's text for other errors).
func Details(err error) (code codes.Code, msg, reason string, retryDelay time.Duration) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.RetryInfo:
			retryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	return st.Code(), st.Message(), reason, retryDelay
}

// WriteHTTP writes an HTTPError with status httpStatus, and a Retry-After
// header (whole seconds, at least 1) when retryDelay is positive.
func WriteHTTP(w http.ResponseWriter, httpStatus int, code codes.Code, reason, msg string, retryDelay time.Duration) {
	body, err := json.Marshal(HTTPError{Error: HTTPErrorDetail{Code: CodeName(code), Reason: reason, Message: msg}})
	if err != nil { // cannot happen: the fields are strings.
		body = []byte(`{"error":{"code":"INTERNAL","reason":"","message":"internal error"}}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	if retryDelay > 0 {
		hdr.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(retryDelay.Seconds())))))
	}
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
