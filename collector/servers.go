package collector

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // SDKs may compress requests.
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/cors"
	"github.com/consentry/consentry/internal/tlsconfig"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// servers are the collector's listeners: gRPC (ingest, consent, health,
// reflection), HTTP (ingest and the consent endpoints) and admin (the
// dashboard, metrics, pprof).
type servers struct {
	log      *zap.Logger
	grpc     *grpc.Server
	health   *health.Server
	grpcLis  net.Listener
	http     *http.Server
	httpLis  net.Listener
	admin    *http.Server
	adminLis net.Listener
	// edge bounds what clients cost before their requests are processed.
	edge *edge
}

// serversConfig is what bindServers wires together.
type serversConfig struct {
	cfg     Config
	ingest  *Service
	consent *consent.Service
	// dashboard serves the admin port's pages.
	dashboard http.Handler
	metrics   *metrics.Metrics
	// health is the gRPC health service; readiness sets its statuses.
	health *health.Server
	// livez and readyz answer the probes on the admin port.
	livez, readyz http.HandlerFunc
}

// bindServers builds the servers and binds their listeners; Serve
// accepts on them. On error every listener bound so far is closed.
func bindServers(sc serversConfig) (_ *servers, err error) {
	cfg := sc.cfg
	s := &servers{log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = s.close(context.Background())
		}
	}()
	for _, l := range []struct {
		addr string
		lis  *net.Listener
	}{{cfg.GRPCAddr, &s.grpcLis}, {cfg.HTTPAddr, &s.httpLis}, {cfg.AdminAddr, &s.adminLis}} {
		if *l.lis, err = net.Listen("tcp", l.addr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", l.addr, err)
		}
	}
	ingestTLS, adminTLS, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}

	lim := cfg.Limits
	lim.MaxMessageBytes = cmp.Or(lim.MaxMessageBytes, limits.DefaultConfig().MaxMessageBytes)
	ec := cfg.Edge.WithDefaults()
	lc := limits.ListenerConfig{MaxConnections: ec.MaxConnections, MaxConnectionsPerAddress: ec.MaxConnectionsPerAddress,
		MinReceiveRate: ec.MinReceiveRate, ReceiveGrace: ec.ReceiveGrace}
	httpLis := limits.NewListener(s.httpLis, lc)
	lc.Budget = limits.NewBudget(ec.MaxReceivingBytes)
	grpcLis := limits.NewListener(s.grpcLis, lc)
	s.grpcLis, s.httpLis = grpcLis, httpLis
	if s.edge, err = newEdge(edgeParts{cfg: ec, lim: lim, grpcReceiving: lc.Budget, grpcLis: grpcLis, httpLis: httpLis}); err != nil {
		return nil, err
	}
	s.edge.register(sc.metrics)

	// HTTP: ingest and the consent endpoints. Headers must arrive within
	// HeaderTimeout; an ingest body must keep up the minimum rate
	// (httpingest.go); the consent endpoints' small bodies must arrive
	// within ReadTimeout.
	consentHTTP, err := consent.NewHTTPHandler(consent.HTTPConfig{
		Service: sc.consent, AllowedOrigins: cfg.CORSOrigins, Logger: s.log.Named("consent-http"),
	})
	if err != nil {
		return nil, err
	}
	ingestCORS, err := cors.New(cfg.CORSOrigins, ingestCORSHeaders...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(PathIngest, &httpIngest{svc: sc.ingest, edge: s.edge, cors: ingestCORS})
	mux.Handle("/", consentHTTP) // the consent endpoints, and JSON 404s
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: ec.HeaderTimeout, ReadTimeout: 30 * time.Second,
		IdleTimeout: ec.IdleTimeout, MaxHeaderBytes: ec.MaxHeaderBytes,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: int(ec.MaxConcurrentStreams), MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 1 << 20},
		TLSConfig: ingestTLS, ErrorLog: zap.NewStdLog(s.log.Named("http"))}

	// Admin: metrics, pprof, the dashboard.
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", sc.metrics.Handler())
	admin.HandleFunc("GET "+PathLivez, sc.livez)
	admin.HandleFunc("GET "+PathReadyz, sc.readyz)
	if cfg.Pprof {
		admin.HandleFunc("/debug/pprof/", pprof.Index)
		admin.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
		admin.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		admin.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	admin.Handle("/", sc.dashboard)
	s.admin = &http.Server{Handler: admin, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		TLSConfig: adminTLS, ErrorLog: zap.NewStdLog(s.log.Named("admin-http"))}

	// gRPC. grpc-go reads a message whole before the handler decodes it,
	// into pooled 16 KiB frames appended as they arrive (a slow sender
	// holds what it sent, not what it declared: the gRPC listener
	// charges what it reads to the receive budget), and checks
	// MaxRecvMsgSize on the declared length. It does not inflate gzip
	// messages (gzipPassthrough): the edge does, within its bounds.
	// Static 64 KiB stream windows (no BDP growth to 16 MiB) bound what a
	// stream can push that nobody reads; the handler opens the window to
	// the message it reads. Every method's receipt is bounded by the
	// edge (registrar).
	cod := newCodec()
	cod.gzipMarker = s.edge.gzipMarker
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(cod),
		grpc.RPCDecompressor(gzipPassthrough{marker: s.edge.gzipMarker}), //nolint:staticcheck // the one way to take gzip off gRPC per server; supported throughout 1.x

		grpc.MaxRecvMsgSize(lim.MaxMessageBytes),
		grpc.MaxConcurrentStreams(ec.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(uint32(ec.MaxHeaderBytes)),
		grpc.ConnectionTimeout(ec.HeaderTimeout),
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(1 << 20),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: ec.IdleTimeout, Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Minute}),
	}
	if ingestTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(ingestTLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	reg := registrar{srv: s.grpc, e: s.edge, ingest: sc.ingest}
	consentryv1.RegisterIngestServiceServer(reg, sc.ingest)
	consentryv1.RegisterConsentServiceServer(reg, sc.consent)
	s.health = sc.health
	healthpb.RegisterHealthServer(reg, s.health)
	reflection.Register(reg)
	return s, nil
}

// loadTLS returns the TLS configurations of the ingest servers (gRPC and
// HTTP, with client certificates if configured) and of the admin server,
// or nil ones without TLS.
func loadTLS(cfg Config) (ingest, admin *tls.Config, err error) {
	c := cfg.TLS
	if c.CertFile == "" {
		return nil, nil, nil
	}
	c.Logger = cfg.Logger.Named("tls")
	in, err := tlsconfig.Load(c)
	if err != nil {
		return nil, nil, err
	}
	c.ClientCAFile = ""
	ad, err := tlsconfig.Load(c)
	if err != nil {
		return nil, nil, err
	}
	return in.TLSConfig(), ad.TLSConfig(), nil
}

// serve accepts on every listener until shutdown; the first server to
// stop ends it, with nil after a shutdown.
func (s *servers) serve() error {
	errc := make(chan error, 3)
	for _, h := range []struct {
		name string
		srv  *http.Server
		lis  net.Listener
	}{{"http", s.http, s.httpLis}, {"admin", s.admin, s.adminLis}} {
		go func() {
			serve := func() error { return h.srv.Serve(h.lis) }
			if h.srv.TLSConfig != nil {
				serve = func() error { return h.srv.ServeTLS(h.lis, "", "") }
			}
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", h.name, err)
				return
			}
			errc <- nil
		}()
	}
	go func() {
		if err := s.grpc.Serve(s.grpcLis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("serve grpc: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// shutdown turns health NOT_SERVING, stops accepting, and lets in-flight
// requests finish until ctx ends, then cancels them.
func (s *servers) shutdown(ctx context.Context) error {
	s.health.Shutdown()
	err := errors.Join(s.http.Shutdown(ctx), s.admin.Shutdown(ctx))
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
	return err
}

// close closes whatever listeners are bound; after shutdown it does
// nothing.
func (s *servers) close(context.Context) error {
	for _, lis := range []net.Listener{s.grpcLis, s.httpLis, s.adminLis} {
		if lis != nil {
			_ = lis.Close() // already closed after shutdown, or never served.
		}
	}
	return nil
}
