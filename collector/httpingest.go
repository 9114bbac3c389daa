package collector

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/internal/cors"
	"github.com/consentry/consentry/internal/grpcerr"
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
//
// The body is read within the edge's bounds (see readBody), then scanned,
// charged and decoded like a gRPC message (edge.ingest).
//
// Web apps' SDKs may send from the origins cors allows (Config.CORSOrigins,
// the same as the consent endpoints'): their preflights are answered, with
// Content-Type and Content-Encoding allowed; other origins' are refused
// with ORIGIN_NOT_ALLOWED.
type httpIngest struct {
	svc  *Service
	edge *edge
	cors *cors.Policy
}

// ingestCORSHeaders are the request headers a web app's SDK sends.
var ingestCORSHeaders = []string{"Content-Type", "Content-Encoding"}

func (h *httpIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	corsOK := h.cors.Apply(w, r)
	if r.Method == http.MethodOptions {
		if cors.IsPreflight(r) {
			if !corsOK {
				grpcerr.WriteHTTP(w, http.StatusForbidden, codes.PermissionDenied, consentryv1.ErrorReason_ORIGIN_NOT_ALLOWED.String(), "origin not allowed", 0)
				return
			}
			h.cors.Preflight(w)
		}
		w.Header().Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		grpcerr.WriteHTTP(w, http.StatusMethodNotAllowed, codes.Unimplemented, consentryv1.ErrorReason_METHOD_NOT_ALLOWED.String(), "method must be POST", 0)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != contentTypeJSON && mt != contentTypeProtobuf {
		grpcerr.WriteHTTP(w, http.StatusUnsupportedMediaType, codes.InvalidArgument, consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String(),
			"Content-Type must be "+contentTypeJSON+" (protojson) or "+contentTypeProtobuf, 0)
		return
	}
	start := time.Now()
	body, err := h.readBody(w, r)
	if err != nil {
		if errors.Is(err, errTooSlow) {
			w.Header().Set("Connection", "close")
		}
		h.fail(w, h.edge.refuseUndecoded(h.svc, err, start))
		return
	}
	ctx := r.Context()
	if addr, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: addr})
	}
	format := limits.FormatProto
	if mt == contentTypeJSON {
		format = limits.FormatJSON
	}
	resp, err := h.edge.ingest(ctx, h.svc, body, format, start)
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

// readBody reads r's body within the edge's bounds, and returns it
// decompressed:
//
//   - a declared Content-Length over the message size is refused before
//     anything is read;
//   - the body must arrive at the minimum rate (after the grace period):
//     the read deadline is moved only as bytes arrive, and a body that
//     falls behind is cut off (errTooSlow);
//   - the buffer it is read into (and, for gzip, the inflater's state) is
//     charged to HTTP's receive bound as it grows (edge.readAll), and
//     requests being received from one address are bounded; nothing is
//     taken from what gRPC or processing need;
//   - gzip output stops at the message size and at the decompression
//     ratio, so a small compressed body cannot expand into a large one.
func (h *httpIngest) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.edge.maxMessage {
		return nil, fmt.Errorf("%w: Content-Length %d, at most %d", errBodyTooLarge, r.ContentLength, h.edge.maxMessage)
	}
	var remote netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap()
	}
	rc, err := h.edge.http.begin(remote, 0)
	if err != nil {
		return nil, err
	}
	defer rc.end()
	cfg := h.edge.cfg
	wire := &rateReader{r: r.Body, ctl: http.NewResponseController(w), start: time.Now(), grace: cfg.ReceiveGrace, rate: cfg.MinReceiveRate}
	var src io.Reader = wire
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, h.readError(wire, err)
		}
		defer zr.Close()
		src, gz = zr, true
	default:
		return nil, errMalformed
	}
	body, err := h.edge.readAll(src, rc, gz, func() int64 { return wire.n })
	switch {
	case err == nil:
		return body, nil
	case errors.Is(err, errBodyTooLarge), errors.Is(err, errDecompressionRatio), errors.Is(err, errReceiving):
		return nil, err
	default:
		return nil, h.readError(wire, err)
	}
}

// readError classifies a failed body read: too slow, or malformed (a
// broken gzip stream, a body cut short).
func (h *httpIngest) readError(wire *rateReader, err error) error {
	if wire.tooSlow || errors.Is(err, os.ErrDeadlineExceeded) {
		h.edge.httpTooSlow.Add(1)
		return fmt.Errorf("%w: %d bytes in %v", errTooSlow, wire.n, time.Since(wire.start).Round(time.Millisecond))
	}
	return errMalformed
}

// rateReader reads a body whose read deadline is its start plus the
// grace period plus its bytes so far at the minimum rate: it moves only
// as bytes arrive.
type rateReader struct {
	r       io.Reader
	ctl     *http.ResponseController
	start   time.Time
	grace   time.Duration
	rate    int64
	n       int64
	tooSlow bool
}

func (rr *rateReader) Read(p []byte) (int, error) {
	deadline := rr.start.Add(rr.grace + time.Duration(rr.n*int64(time.Second)/rr.rate))
	if !time.Now().Before(deadline) {
		rr.tooSlow = true
		return 0, os.ErrDeadlineExceeded
	}
	_ = rr.ctl.SetReadDeadline(deadline) // not supported only by exotic ResponseWriters; the server's ReadTimeout still applies.
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	return n, err
}

// fail answers err, a status error, as grpcerr.HTTPError JSON.
func (h *httpIngest) fail(w http.ResponseWriter, err error) {
	code, msg, reason, delay := grpcerr.Details(err)
	httpStatus := grpcerr.HTTPStatus(code)
	switch reason {
	case consentryv1.ErrorReason_BATCH_TOO_LARGE.String():
		httpStatus = http.StatusRequestEntityTooLarge
	case consentryv1.ErrorReason_RECEIVE_TOO_SLOW.String():
		httpStatus = http.StatusRequestTimeout
	}
	grpcerr.WriteHTTP(w, httpStatus, code, reason, msg, delay)
}
