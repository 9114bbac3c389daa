package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// transport carries requests to the collector. Errors are *callError,
// except when ctx ended first.
type transport interface {
	ingest(ctx context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error)
	grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error)
	revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error)
	close() error
}

// newTransport returns the transport s configures.
func newTransport(s *settings) (transport, error) {
	var tlsCfg *tls.Config
	if !s.Insecure || s.Transport == TransportHTTP {
		var err error
		if tlsCfg, err = tlsConfig(s); err != nil {
			return nil, err
		}
	}
	if s.Transport == TransportHTTP {
		return newHTTPTransport(s, tlsCfg)
	}
	return newGRPCTransport(s, tlsCfg)
}

// tlsConfig returns the TLS configuration: TLS 1.2 or later, the system's
// roots or the configured ones.
func tlsConfig(s *settings) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile == "" && len(s.CACertPEM) == 0 {
		return cfg, nil
	}
	pool := x509.NewCertPool()
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read CA file: %w", ErrInvalidConfig, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrInvalidConfig, s.CAFile)
		}
	}
	if len(s.CACertPEM) > 0 && !pool.AppendCertsFromPEM(s.CACertPEM) {
		return nil, fmt.Errorf("%w: CACertPEM holds no PEM certificate", ErrInvalidConfig)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// grpcTransport speaks gRPC, gzip-compressed.
type grpcTransport struct {
	dials   *dialWatch
	conn    *grpc.ClientConn
	ingestC consentryv1.IngestServiceClient
	consent consentryv1.ConsentServiceClient
	// testHookBeforeWatch, if set, runs when ready has found the channel
	// in TRANSIENT_FAILURE, before it watches for a dial.
	testHookBeforeWatch func()
}

func newGRPCTransport(s *settings, tlsCfg *tls.Config) (*grpcTransport, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	dials := &dialWatch{}
	conn, err := grpc.NewClient(s.Endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(dials.dial),
		grpc.WithUserAgent(sdkName),
		// Reconnecting backs off no slower than the SDK's own retries;
		// and a retry resets it (see ready).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: min(s.minBackoff, time.Second), Multiplier: 1.6, Jitter: 0.2,
				MaxDelay: min(s.maxBackoff, 2*time.Minute),
			},
			MinConnectTimeout: min(s.requestTimeout, 20*time.Second),
		}),
		// The SDK retries itself, honouring the collector's pushback.
		grpc.WithDisableRetry(),
		grpc.WithDefaultCallOptions(
			grpc.UseCompressor(gzip.Name),
			grpc.MaxCallSendMsgSize(4<<20),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint %q: %w", ErrInvalidConfig, s.Endpoint, err)
	}
	return &grpcTransport{
		dials:   dials,
		conn:    conn,
		ingestC: consentryv1.NewIngestServiceClient(conn),
		consent: consentryv1.NewConsentServiceClient(conn),
	}, nil
}

// ready makes a connection that failed try again now, and waits for that
// attempt. gRPC keeps a failed channel in TRANSIENT_FAILURE, failing
// requests at once, until its own reconnect backoff lets a new connection
// succeed; the SDK decides when to retry instead, so each retry is a real
// attempt.
func (t *grpcTransport) ready(ctx context.Context) {
	if t.conn.GetState() != connectivity.TransientFailure {
		return // idle and connecting channels wait for their attempt anyway
	}
	if t.testHookBeforeWatch != nil {
		t.testHookBeforeWatch()
	}
	dialed := t.dials.watch()
	t.conn.ResetConnectBackoff()
	// A dial of gRPC's own may have connected after the look at the state
	// and before the watch began; then no dial follows, and the channel
	// leaves TRANSIENT_FAILURE instead.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	left := make(chan struct{})
	go func() {
		t.conn.WaitForStateChange(wctx, connectivity.TransientFailure)
		close(left)
	}()
	select {
	case err := <-dialed:
		if err != nil {
			return // still unreachable: the request fails at once
		}
	case <-left:
	case <-ctx.Done():
		return
	}
	// Connected: wait for the handshake to finish.
	hctx, hcancel := context.WithTimeout(ctx, handshakeTimeout)
	defer hcancel()
	for st := t.conn.GetState(); st != connectivity.Ready && st != connectivity.Shutdown; st = t.conn.GetState() {
		if !t.conn.WaitForStateChange(hctx, st) {
			return
		}
	}
}

// handshakeTimeout bounds waiting for a TLS and HTTP/2 handshake once the
// TCP connection is up.
const handshakeTimeout = 10 * time.Second

// dialWatch tells waiters the outcome of the next dial.
type dialWatch struct {
	mu      sync.Mutex
	waiters []chan error
}

// watch returns a channel that receives the outcome of the next dial.
func (w *dialWatch) watch() <-chan error {
	ch := make(chan error, 1)
	w.mu.Lock()
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	return ch
}

// dial dials addr over TCP and tells the waiters how it went.
func (w *dialWatch) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", addr)
	w.mu.Lock()
	waiters := w.waiters
	w.waiters = nil
	w.mu.Unlock()
	for _, ch := range waiters {
		ch <- err
	}
	return conn, err
}

func (t *grpcTransport) ingest(ctx context.Context, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
	t.ready(ctx)
	resp, err := t.ingestC.Ingest(ctx, req)
	return resp, grpcError(ctx, "ingest", err)
}

func (t *grpcTransport) grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	t.ready(ctx)
	resp, err := t.consent.Grant(ctx, req)
	return resp, grpcError(ctx, "grant consent", err)
}

func (t *grpcTransport) revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	t.ready(ctx)
	resp, err := t.consent.Revoke(ctx, req)
	return resp, grpcError(ctx, "revoke consent", err)
}

func (t *grpcTransport) close() error { return t.conn.Close() }

// grpcError converts a gRPC error to a *callError with the ErrorInfo
// reason and the RetryInfo delay, or returns ctx's error if ctx ended.
func grpcError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctxError(op, ctx)
	}
	st, _ := status.FromError(err)
	ce := &callError{op: op, code: st.Code(), msg: st.Message(), err: err}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			ce.reason = d.GetReason()
		case *errdetails.RetryInfo:
			if v := d.GetRetryDelay(); v != nil {
				ce.retryAfter = max(v.AsDuration(), 0)
			}
		}
	}
	if ce.code == codes.Canceled || ce.code == codes.DeadlineExceeded {
		ce.retryAfter = 0
	}
	return ce
}

// ctxError is the error of a request whose context ended: retryable.
func ctxError(op string, ctx context.Context) error {
	code := codes.Canceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = codes.DeadlineExceeded
	}
	return &callError{op: op, code: code, err: ctx.Err()}
}

// maxPushback bounds the delay a server can ask for, so that a misbehaving
// server cannot stop an app's telemetry for days.
const maxPushback = time.Hour
