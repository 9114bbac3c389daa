package collector

import (
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
	"google.golang.org/grpc/reflection"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/consent"
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
	// inflight bounds the ingest requests in flight; nil without a bound.
	inflight *inflight
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
	if lim.MaxMessageBytes == 0 {
		lim.MaxMessageBytes = limits.DefaultConfig().MaxMessageBytes
	}
	bound := newInflight(cfg.MaxInflightRequests)
	s.inflight = bound
	if bound != nil {
		sc.metrics.Counter("ingest_requests_refused_inflight_total", "Ingest requests refused before their body was read because --max-inflight-requests were in flight.",
			func() float64 { return float64(bound.refused.Load()) })
	}

	// HTTP: ingest and the consent endpoints.
	consentHTTP, err := consent.NewHTTPHandler(consent.HTTPConfig{
		Service: sc.consent, AllowedOrigins: cfg.CORSOrigins, Logger: s.log.Named("consent-http"),
	})
	if err != nil {
		return nil, err
	}
	var ingest http.Handler = &httpIngest{svc: sc.ingest, maxBytes: int64(lim.MaxMessageBytes)}
	if bound != nil {
		ingest = bound.wrap(ingest)
	}
	mux := http.NewServeMux()
	mux.Handle(PathIngest, ingest)
	mux.Handle("/", consentHTTP) // the consent endpoints, and JSON 404s
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
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

	// gRPC.
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxRecvMsgSize(lim.MaxMessageBytes),
	}
	if ingestTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(ingestTLS)))
	}
	if bound != nil {
		opts = append(opts, grpc.InTapHandle(bound.tap), grpc.StatsHandler(statsHandler{}))
	}
	s.grpc = grpc.NewServer(opts...)
	consentryv1.RegisterIngestServiceServer(s.grpc, sc.ingest)
	consentryv1.RegisterConsentServiceServer(s.grpc, sc.consent)
	s.health = sc.health
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
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
