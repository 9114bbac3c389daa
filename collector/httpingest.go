package collector

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/internal/grpcerr"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// PathIngest is the HTTP endpoint that takes the same batch as
// IngestService.Ingest, for apps that cannot use gRPC.
const PathIngest = "/v1/ingest"

// Content types the HTTP ingest endpoint takes and answers with.
const (
	contentTypeJSON     = "application/json"
	contentTypeProtobuf = "application/x-protobuf"
)

// httpIngest serves POST /v1/ingest: the body is an IngestRequest as
// protojson (Content-Type application/json) or binary protobuf
// (application/x-protobuf), optionally gzip-compressed (Content-Encoding:
// gzip); the answer is the IngestResponse in the same encoding. Errors are
// the gRPC service's, as grpcerr.HTTPError JSON with the matching HTTP
// status and Retry-After when a retry may succeed: what the SDK does with
// a gRPC status, it can do with these.
type httpIngest struct {
	svc      *Service
	maxBytes int64
}

func (h *httpIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		grpcerr.WriteHTTP(w, http.StatusMethodNotAllowed, codes.Unimplemented, consentryv1.ErrorReason_METHOD_NOT_ALLOWED.String(), "method must be POST", 0)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != contentTypeJSON && mt != contentTypeProtobuf {
		grpcerr.WriteHTTP(w, http.StatusUnsupportedMediaType, codes.InvalidArgument, consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String(),
			"Content-Type must be "+contentTypeJSON+" (protojson) or "+contentTypeProtobuf, 0)
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		h.svc.refuse(&consentryv1.IngestRequest{}, err)
		h.fail(w, toStatus(err))
		return
	}
	req := &consentryv1.IngestRequest{}
	// Unknown fields are skipped, as over gRPC, so newer SDKs work with
	// older collectors; strings that are not UTF-8 cost their event, not
	// the batch.
	if mt == contentTypeJSON {
		err = validate.UnmarshalRequestJSON(body, req)
	} else {
		err = validate.UnmarshalRequest(body, req)
	}
	if err != nil {
		h.svc.refuse(req, errMalformed)
		h.fail(w, toStatus(errMalformed))
		return
	}
	ctx := r.Context()
	if addr, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: addr})
	}
	resp, err := h.svc.Ingest(ctx, req)
	if err != nil {
		h.fail(w, err)
		return
	}
	var out []byte
	if mt == contentTypeJSON {
		out, err = protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
	} else {
		out, err = proto.Marshal(resp)
	}
	if err != nil {
		h.fail(w, toStatus(fmt.Errorf("encode response: %w", err)))
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// errBodyTooLarge is a request body, or its decompression, beyond the
// message size limit.
var errBodyTooLarge = pipeline.ErrBatchTooLarge.Specialize("request body exceeds the message size limit", pipeline.ReasonBatchTooLarge, 0)

// readBody reads r's body, decompressing gzip, up to h.maxBytes either way:
// a small compressed body cannot expand into a large one.
func (h *httpIngest) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, h.maxBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, errMalformed
		}
		defer zr.Close()
		src = zr
	default:
		return nil, errMalformed
	}
	body, err := io.ReadAll(io.LimitReader(src, h.maxBytes+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge), int64(len(body)) > h.maxBytes:
		return nil, errBodyTooLarge
	case err != nil:
		return nil, errMalformed
	}
	return body, nil
}

// fail answers err, a status error, as grpcerr.HTTPError JSON.
func (h *httpIngest) fail(w http.ResponseWriter, err error) {
	code, msg, reason, delay := grpcerr.Details(err)
	httpStatus := grpcerr.HTTPStatus(code)
	if reason == consentryv1.ErrorReason_BATCH_TOO_LARGE.String() {
		httpStatus = http.StatusRequestEntityTooLarge
	}
	grpcerr.WriteHTTP(w, httpStatus, code, reason, msg, delay)
}
