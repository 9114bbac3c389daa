// Package abuse holds the attacks of the collector's abuse suite (make
// abuse, docs/operations.md "Threat model"): decode bombs, slow senders,
// idle connections, oversized, deeply nested and random messages, key
// guessing, each aimed at a collector's ingest ports from loopback
// addresses, and the well-behaved client whose latency shows what the
// attacks cost everyone else. The collector's integration tests use them
// too.
package abuse

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Frame returns msg as one gRPC message on the wire: a compressed flag, a
// 4-byte length, the bytes.
func Frame(msg []byte, compressed bool) []byte {
	b := make([]byte, 5, 5+len(msg))
	if compressed {
		b[0] = 1
	}
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// Gzip compresses b.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b) // a bytes.Buffer does not fail
	_ = w.Close()
	return buf.Bytes()
}

// Result is what a call got: the gRPC code and the ErrorInfo reason, or
// the HTTP status for HTTP calls; Err when there was no answer.
type Result struct {
	Code   codes.Code
	Reason string
	HTTP   int
	Err    error
}

// String is "CODE/REASON", the HTTP status, or the error.
func (r Result) String() string {
	switch {
	case r.Err != nil:
		return "no answer"
	case r.HTTP != 0:
		return strconv.Itoa(r.HTTP)
	case r.Reason != "":
		return r.Code.String() + "/" + r.Reason
	default:
		return r.Code.String()
	}
}

// GRPCClient sends pre-encoded gRPC requests over cleartext HTTP/2, as an
// attacker does: the message is encoded (and compressed) once, so an
// attack costs the sender nothing per request.
type GRPCClient struct {
	addr string
	c    *http.Client
}

// NewGRPCClient returns a client of the gRPC server at addr that connects
// from the loopback address from (nil: any).
func NewGRPCClient(addr string, from net.IP) *GRPCClient {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != nil {
		d.LocalAddr = &net.TCPAddr{IP: from}
	}
	return &GRPCClient{addr: addr, c: &http.Client{Transport: &http.Transport{Protocols: &p, DialContext: d.DialContext}}}
}

// Close closes the client's connections.
func (g *GRPCClient) Close() { g.c.CloseIdleConnections() }

// Call sends frame (see Frame), compressed with gzip if gzipped, to
// method (e.g. "/consentry.v1.IngestService/Ingest") and returns the
// status.
func (g *GRPCClient) Call(ctx context.Context, method string, frame []byte, gzipped bool) Result {
	return g.CallReader(ctx, method, bytes.NewReader(frame), gzipped)
}

// CallReader is Call with the request's bytes read from body as they
// come (a slow sender's).
func (g *GRPCClient) CallReader(ctx context.Context, method string, body io.Reader, gzipped bool) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.addr+method, body)
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	if gzipped {
		req.Header.Set("Grpc-Encoding", "gzip")
	}
	resp, err := g.c.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return Result{Err: err}
	}
	get := func(k string) string {
		if v := resp.Trailer.Get(k); v != "" {
			return v
		}
		return resp.Header.Get(k)
	}
	code, err := strconv.Atoi(get("Grpc-Status"))
	if err != nil {
		return Result{Err: fmt.Errorf("no grpc-status (HTTP %d)", resp.StatusCode)}
	}
	r := Result{Code: codes.Code(code)}
	if d := get("Grpc-Status-Details-Bin"); d != "" {
		if b, err := base64.RawStdEncoding.DecodeString(d); err == nil {
			var sp spb.Status
			if proto.Unmarshal(b, &sp) == nil {
				for _, det := range status.FromProto(&sp).Details() {
					if ei, ok := det.(interface{ GetReason() string }); ok {
						r.Reason = ei.GetReason()
					}
				}
			}
		}
	}
	return r
}
