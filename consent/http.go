package consent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/cors"
	"github.com/consentry/consentry/internal/grpcerr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// DefaultMaxBodySize is HTTPConfig.MaxBodySize's default.
const DefaultMaxBodySize = 64 << 10

// The HTTP endpoints.
const (
	PathGrant  = "/v1/consent/grant"
	PathRevoke = "/v1/consent/revoke"
	PathStatus = "/v1/consent/status"
)

// HTTPConfig configures the HTTPS+JSON consent endpoints.
type HTTPConfig struct {
	// Service serves the requests. Required.
	Service *Service
	// AllowedOrigins are the origins (scheme://host[:port]) of web consent
	// pages allowed to call the endpoints from a browser (CORS). Default
	// none: only same-origin pages, apps and servers.
	AllowedOrigins []string
	// MaxBodySize bounds a request body in bytes; larger ones get 413.
	// Default DefaultMaxBodySize.
	MaxBodySize int64
	// Logger logs refused requests with their path, status and reason,
	// never bodies or addresses; nil means no logging.
	Logger *zap.Logger
}

// NewHTTPHandler returns the handler of POST /v1/consent/grant,
// /v1/consent/revoke and /v1/consent/status, for consent toggles and web
// pages that do not speak gRPC. The body is the protojson of the request
// message (field names in proto or lowerCamelCase form; unknown fields are
// refused), with Content-Type application/json; the response is the
// protojson of the response message, every field present. Validation and
// errors are the gRPC service's; an error is the JSON
//
//	{"error": {"code": "INVALID_ARGUMENT", "reason": "SCOPE_UNKNOWN", "message": "..."}}
//
// with the matching HTTP status (400, 401, 403, 404, 405, 413, 415, 429,
// 503), and Retry-After when a retry may succeed.
func NewHTTPHandler(cfg HTTPConfig) (http.Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("new consent HTTP handler: no service")
	}
	cfg.MaxBodySize = cmp.Or(cfg.MaxBodySize, DefaultMaxBodySize)
	if cfg.MaxBodySize < 0 {
		return nil, errors.New("new consent HTTP handler: negative body size")
	}
	policy, err := cors.New(cfg.AllowedOrigins, "Content-Type")
	if err != nil {
		return nil, fmt.Errorf("new consent HTTP handler: %w", err)
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	svc := cfg.Service
	return &httpHandler{
		maxBody: cfg.MaxBodySize,
		cors:    policy,
		log:     cfg.Logger,
		endpoints: map[string]endpoint{
			PathGrant: {
				newRequest: func() proto.Message { return new(consentryv1.GrantRequest) },
				call: func(ctx context.Context, m proto.Message) (proto.Message, error) {
					return svc.grant(ctx, m.(*consentryv1.GrantRequest))
				},
			},
			PathRevoke: {
				newRequest: func() proto.Message { return new(consentryv1.RevokeRequest) },
				call: func(ctx context.Context, m proto.Message) (proto.Message, error) {
					return svc.revoke(ctx, m.(*consentryv1.RevokeRequest))
				},
			},
			PathStatus: {
				newRequest: func() proto.Message { return new(consentryv1.StatusRequest) },
				call: func(ctx context.Context, m proto.Message) (proto.Message, error) {
					return svc.status(ctx, m.(*consentryv1.StatusRequest))
				},
			},
		},
	}, nil
}

type endpoint struct {
	newRequest func() proto.Message
	// call's response is valid only when the error is nil.
	call func(context.Context, proto.Message) (proto.Message, error)
}

type httpHandler struct {
	endpoints map[string]endpoint
	maxBody   int64
	cors      *cors.Policy
	log       *zap.Logger
}

const allowMethods = "POST, OPTIONS"

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store") // responses carry tokens.
	hdr.Set("X-Content-Type-Options", "nosniff")
	ep, ok := h.endpoints[r.URL.Path]
	if !ok {
		h.fail(w, r, http.StatusNotFound, codes.NotFound, consentryv1.ErrorReason_NOT_FOUND,
			"no such endpoint: use POST "+PathGrant+", "+PathRevoke+" or "+PathStatus)
		return
	}
	corsOK := h.cors.Apply(w, r)
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		h.options(w, r, corsOK)
		return
	default:
		hdr.Set("Allow", allowMethods)
		h.fail(w, r, http.StatusMethodNotAllowed, codes.Unimplemented, consentryv1.ErrorReason_METHOD_NOT_ALLOWED, "method must be POST")
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		h.fail(w, r, http.StatusUnsupportedMediaType, codes.InvalidArgument, consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED,
			"Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			h.fail(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_TOO_LARGE,
				fmt.Sprintf("request body exceeds %d bytes", h.maxBody))
			return
		}
		h.fail(w, r, http.StatusBadRequest, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_MALFORMED, "request body could not be read")
		return
	}
	req := ep.newRequest()
	if msg := decodeRequest(body, req); msg != "" {
		h.fail(w, r, http.StatusBadRequest, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_MALFORMED, msg)
		return
	}
	resp, err := ep.call(withSource(r.Context(), remoteAddr(r)), req)
	if err != nil {
		c := classifyError(err)
		h.failAfter(w, r, c.http, c.code, c.reason, c.message(err), c.retryDelay())
		return
	}
	out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, codes.Internal, consentryv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "internal error")
		return
	}
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// options answers a CORS preflight, or an OPTIONS request naming the
// methods.
func (h *httpHandler) options(w http.ResponseWriter, r *http.Request, corsOK bool) {
	if cors.IsPreflight(r) {
		if !corsOK {
			h.fail(w, r, http.StatusForbidden, codes.PermissionDenied, consentryv1.ErrorReason_ORIGIN_NOT_ALLOWED, "origin not allowed")
			return
		}
		h.cors.Preflight(w)
	}
	w.Header().Set("Allow", allowMethods)
	w.WriteHeader(http.StatusNoContent)
}

// remoteAddr returns the address of r's client: the connection's peer.
// Forwarded-for headers are client input and not trusted.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isJSON reports whether a Content-Type is application/json in UTF-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// decodeRequest decodes body into m and returns "" or a message saying
// what is wrong, without quoting the body.
func decodeRequest(body []byte, m proto.Message) string {
	desc := m.ProtoReflect().Descriptor()
	name := string(desc.FullName())
	fields := desc.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = string(fields.Get(i).Name())
	}
	hint := fmt.Sprintf("; %s has the fields %s", name, strings.Join(names, ", "))
	if len(bytes.TrimSpace(body)) == 0 {
		return "request body is empty: send a JSON object" + hint
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return fmt.Sprintf("request body is not valid JSON (syntax error at byte %d)", se.Offset)
		}
		return "request body must be a JSON object" + hint
	}
	if obj == nil {
		return "request body must be a JSON object" + hint
	}
	for k := range obj {
		if fields.ByJSONName(k) == nil && fields.ByTextName(k) == nil {
			return "request body has a field " + name + " does not define" + hint
		}
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(body, m); err != nil {
		return "request body is not a valid " + name + ": a field is repeated or has a value of the wrong type" + hint
	}
	return ""
}

// fail writes an error response and logs it.
func (h *httpHandler) fail(w http.ResponseWriter, r *http.Request, status int, code codes.Code, reason consentryv1.ErrorReason, msg string) {
	h.failAfter(w, r, status, code, reason, msg, 0)
}

// failAfter is fail with a Retry-After of retryDelay, if positive.
func (h *httpHandler) failAfter(w http.ResponseWriter, r *http.Request, status int, code codes.Code, reason consentryv1.ErrorReason, msg string, retryDelay time.Duration) {
	name := ""
	if reason != consentryv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		name = reason.String()
	}
	grpcerr.WriteHTTP(w, status, code, name, msg, retryDelay)
	lvl := zap.DebugLevel
	if status >= http.StatusInternalServerError {
		lvl = zap.WarnLevel
	}
	// The path is logged only if it is one of ours: any other is client
	// input.
	path := r.URL.Path
	if _, ok := h.endpoints[path]; !ok {
		path = "other"
	}
	h.log.Log(lvl, "consent HTTP request refused", zap.String("path", path), zap.Int("status", status), zap.Stringer("reason", reason))
}
