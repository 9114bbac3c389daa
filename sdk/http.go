package sdk

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The collector's HTTP endpoints, relative to the base URL.
const (
	pathIngest = "/v1/ingest"
	pathGrant  = "/v1/consent/grant"
	pathRevoke = "/v1/consent/revoke"
)

// maxResponseBytes bounds a response body read.
const maxResponseBytes = 1 << 20

// httpTransport posts protojson over HTTPS; ingest bodies are gzipped.
type httpTransport struct {
	base   string
	client *http.Client
}

func newHTTPTransport(s *settings, tlsCfg *tls.Config) (*httpTransport, error) {
	tr := &http.Transport{
		TLSClientConfig:     tlsCfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		Proxy:               http.ProxyFromEnvironment,
	}
	return &httpTransport{
		base:   strings.TrimRight(s.Endpoint, "/"),
		client: &http.Client{Transport: tr},
	}, nil
}

func (t *httpTransport) ingest(ctx context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
	resp := new(consentryv1.IngestResponse)
	return resp, t.post(ctx, "ingest", pathIngest, req, resp, true)
}

func (t *httpTransport) grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	resp := new(consentryv1.GrantResponse)
	return resp, t.post(ctx, "grant consent", pathGrant, req, resp, false)
}

func (t *httpTransport) revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	resp := new(consentryv1.RevokeResponse)
	return resp, t.post(ctx, "revoke consent", pathRevoke, req, resp, false)
}

func (t *httpTransport) close() error {
	t.client.CloseIdleConnections()
	return nil
}

// post sends the protojson of in to path and decodes a 200 response into
// out; anything else becomes a *callError.
func (t *httpTransport) post(ctx context.Context, op, path string, in, out proto.Message, compress bool) error {
	body, err := protojson.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	if compress {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		if _, err := zw.Write(body); err != nil {
			return fmt.Errorf("%s: compress: %w", op, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("%s: compress: %w", op, err)
		}
		body = buf.Bytes()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", sdkName)
	if compress {
		hreq.Header.Set("Content-Encoding", "gzip")
	}
	hresp, err := t.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return ctxError(op, ctx)
		}
		return &callError{op: op, code: codes.Unavailable, err: err}
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return ctxError(op, ctx)
		}
		return &callError{op: op, code: codes.Unavailable, err: err}
	}
	if hresp.StatusCode == http.StatusOK {
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, out); err != nil {
			return &callError{op: op, code: codes.Internal, msg: "response is not valid JSON of " +
				string(out.ProtoReflect().Descriptor().Name()), status: hresp.StatusCode}
		}
		return nil
	}
	return httpError(op, hresp, data)
}

// httpError converts an error response to a *callError: the code and
// reason from the JSON body {"error": {"code", "reason", "message"}} when
// there is one, else from the status; the pushback from Retry-After.
func httpError(op string, resp *http.Response, body []byte) *callError {
	ce := &callError{op: op, status: resp.StatusCode, code: statusCode(resp.StatusCode)}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		var c codes.Code
		if c.UnmarshalJSON([]byte(strconv.Quote(e.Error.Code))) == nil {
			ce.code = c
		}
		ce.reason, ce.msg, ce.collector = e.Error.Reason, e.Error.Message, true
	}
	ce.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return ce
}

// statusCode maps an HTTP status to the gRPC code it stands for.
func statusCode(s int) codes.Code {
	switch s {
	case 400, 415:
		return codes.InvalidArgument
	case 401:
		return codes.Unauthenticated
	case 403:
		return codes.PermissionDenied
	case 404:
		return codes.NotFound
	case 408, 504:
		return codes.DeadlineExceeded
	case 413, 429:
		return codes.ResourceExhausted
	case 501:
		return codes.Unimplemented
	case 502, 503:
		return codes.Unavailable
	}
	return codes.Unknown
}

// parseRetryAfter parses a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxPushback/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxPushback)
	}
	return 0
}
