package collector

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // SDKs may compress requests.
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/geo"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/tlsconfig"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// App is a running collector: the managed ClickHouse (if any), the
// ClickHouse client, the spool (or the writer without one) and the rejects
// counter, the gRPC server, the HTTP server of ingest and consent, and the
// admin server (dashboard, metrics).
type App struct {
	cfg      Config
	log      *zap.Logger
	chServer *chserver.Server
	client   *clickhouse.Client
	writer   *clickhouse.Writer
	spool    *spool.Spool
	erased   erasedKeys
	rejects  *clickhouse.Rejects
	keys     *consent.KeyRing
	secret   []byte
	verifier *consent.Verifier
	revs     *consent.Revocations
	apps     *consent.Registry
	consent  *consent.Service
	salts    *anonymizer.Salts
	bounds   *geo.Boundaries
	ipdb     *geo.IPDB
	grpc     *grpc.Server
	health   *health.Server
	lis      net.Listener
	http     *http.Server
	httpLis  net.Listener
	admin    *http.Server
	adminLis net.Listener
	metrics  *metrics.Metrics

	// bgCancel stops the background loops (revocation and app refresh,
	// erasure resweeps); bg waits for them.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds an App: it starts the managed ClickHouse if no address is
// configured, applies schema migrations, and binds the gRPC listener. Call
// Serve to accept requests and Shutdown to stop.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	a := &App{cfg: cfg, log: cfg.Logger, metrics: metrics.New()}
	defer func() {
		if err != nil {
			a.closeStorage(context.WithoutCancel(ctx))
		}
	}()
	if err := a.openStorage(ctx); err != nil {
		return nil, err
	}
	if a.keys, err = loadKeys(cfg); err != nil {
		return nil, err
	}
	if err := a.startConsent(ctx); err != nil {
		return nil, err
	}
	if err := a.startLocation(ctx); err != nil {
		return nil, err
	}
	svc, err := a.newService()
	if err != nil {
		return nil, err
	}
	a.lis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	a.httpLis, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		a.lis.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	handler, err := consent.NewHTTPHandler(consent.HTTPConfig{
		Service: a.consent, AllowedOrigins: cfg.CORSOrigins, Logger: a.log.Named("consent-http"),
	})
	if err == nil {
		err = a.startAdmin()
	}
	if err != nil {
		a.lis.Close()
		a.httpLis.Close()
		return nil, err
	}
	lim := cfg.Limits
	if lim.MaxMessageBytes == 0 {
		lim.MaxMessageBytes = limits.DefaultConfig().MaxMessageBytes
	}
	mux := http.NewServeMux()
	var ingest http.Handler = &httpIngest{svc: svc, maxBytes: int64(lim.MaxMessageBytes)}
	bound := newInflight(cfg.MaxInflightRequests)
	if bound != nil {
		ingest = bound.wrap(ingest)
		a.metrics.Counter("ingest_requests_refused_inflight_total", "Ingest requests refused before their body was read because --max-inflight-requests were in flight.",
			func() float64 { return float64(bound.refused.Load()) })
	}
	mux.Handle(PathIngest, ingest)
	mux.Handle("/", handler) // the consent endpoints, and JSON 404s
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: zap.NewStdLog(a.log.Named("http"))}
	ingestTLS, adminTLS, err := a.loadTLS()
	if err != nil {
		a.lis.Close()
		a.httpLis.Close()
		a.adminLis.Close()
		return nil, err
	}
	a.http.TLSConfig, a.admin.TLSConfig = ingestTLS, adminTLS
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
	a.grpc = grpc.NewServer(opts...)
	consentryv1.RegisterIngestServiceServer(a.grpc, svc)
	consentryv1.RegisterConsentServiceServer(a.grpc, a.consent)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	reflection.Register(a.grpc)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(consentryv1.IngestService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(consentryv1.ConsentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return a, nil
}

// openStorage starts the managed ClickHouse if needed, connects, migrates,
// and starts the writer, the spool (which replays what an earlier run left
// unshipped) and the rejects counter.
func (a *App) openStorage(ctx context.Context) error {
	chCfg := a.cfg.ClickHouse
	chCfg.OnInsert = a.metrics.Inserted
	if chCfg.Addr == "" {
		analystPassword, err := loadAnalystPassword(a.cfg.AnalystPasswordFile)
		if err != nil {
			return err
		}
		srv, err := chserver.Start(ctx, chserver.Config{
			Binary:            a.cfg.ClickHouseBinary,
			DataDir:           filepath.Join(a.cfg.DataDir, "clickhouse"),
			ReadOnlyUser:      AnalystUser,
			ReadOnlyPassword:  analystPassword,
			ReadOnlyDatabases: []string{chCfg.DatabaseName()},
			Logger:            a.log.Named("clickhouse-server"),
		})
		if err != nil {
			return fmt.Errorf("start local clickhouse: %w", err)
		}
		a.chServer = srv
		chCfg.Addr = srv.Addr()
		// Tell local tools (consentry demo, migrate) where it is.
		if err := os.WriteFile(a.addrFile(), []byte(srv.Addr()+"\n"), 0o600); err != nil {
			return fmt.Errorf("write clickhouse address: %w", err)
		}
		a.log.Info("started local clickhouse", zap.String("addr", srv.Addr()), zap.String("data_dir", srv.DataDir()))
	}
	var err error
	if a.client, err = clickhouse.Open(ctx, chCfg, a.log.Named("clickhouse")); err != nil {
		return err
	}
	applied, err := a.client.Migrate(ctx)
	if err != nil {
		return err
	}
	a.log.Info("schema ready", zap.Ints("applied_migrations", applied), zap.String("server_version", a.client.Dialect().Version))
	if a.writer, err = clickhouse.NewWriter(a.cfg.Writer, a.client, a.log.Named("writer")); err != nil {
		return err
	}
	if !a.cfg.NoSpool {
		sc := a.cfg.Spool
		if err := a.erased.refresh(ctx, a.client); err != nil {
			return err
		}
		sc.Inserter = dedupInserter{c: a.client, erased: &a.erased}
		sc.Logger = a.log.Named("spool")
		if a.spool, err = spool.Open(ctx, sc); err != nil {
			return err
		}
		st := a.spool.Stats()
		a.log.Info("spool open", zap.String("dir", sc.Dir), zap.Int64("bytes_to_ship", st.Bytes),
			zap.Uint64("records_to_ship", st.PendingRecords), zap.Uint64("corrupt_records", st.CorruptRecords))
	}
	if a.rejects, err = clickhouse.NewRejects(a.cfg.Rejects, a.client, a.log.Named("rejects")); err != nil {
		return err
	}
	return nil
}

// dedupInserter ships the spool's records with deduplication tokens,
// leaving out the rows of consents erased since they were accepted.
type dedupInserter struct {
	c      *clickhouse.Client
	erased *erasedKeys
}

// Insert implements spool.Inserter.
func (d dedupInserter) Insert(ctx context.Context, rows *pipeline.Rows, token string) error {
	return d.c.InsertDedup(ctx, d.erased.filter(rows), token)
}

// sink returns where accepted rows go: the spool, or without one the
// writer.
func (a *App) sink() pipeline.Sink {
	if a.spool != nil {
		return a.spool
	}
	return a.writer
}

// Spool returns the write-ahead spool, nil with Config.NoSpool.
func (a *App) Spool() *spool.Spool { return a.spool }

// addrFile is where a managed server's address is written.
func (a *App) addrFile() string { return filepath.Join(a.cfg.DataDir, "clickhouse.addr") }

func loadKeys(cfg Config) (*consent.KeyRing, error) {
	priv, err := consent.LoadOrCreatePrivateKeyFile(cfg.ConsentSigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("consent signing key: %w", err)
	}
	var pubs []ed25519.PublicKey
	for _, f := range cfg.ConsentVerifyKeyFiles {
		pub, err := consent.ReadPublicKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("consent verify key: %w", err)
		}
		pubs = append(pubs, pub)
	}
	return consent.NewKeyRing(consent.KeyRingConfig{SigningKey: priv, VerifyKeys: pubs})
}

// startConsent builds the consent side (verifier cache, revocations, app
// registry, ConsentService), starts their background loops and waits until
// revocations and apps are loaded: ingest must not run before it knows the
// revocations (it would fail closed) and the apps' erasure policies.
func (a *App) startConsent(ctx context.Context) error {
	secret, err := loadSecret(a.cfg)
	if err != nil {
		return err
	}
	a.secret = secret
	if a.verifier, err = consent.NewVerifier(consent.VerifierConfig{Keys: a.keys}); err != nil {
		return err
	}
	if a.revs, err = consent.NewRevocations(consent.RevocationsConfig{
		Store: a.client, Interval: a.cfg.RevocationRefresh, Bound: a.cfg.RevocationBound, Logger: a.log.Named("revocations"),
	}); err != nil {
		return err
	}
	if a.apps, err = consent.NewRegistry(consent.RegistryConfig{
		Store: a.client, Interval: a.cfg.AppRefresh, Logger: a.log.Named("apps"),
	}); err != nil {
		return err
	}
	if a.consent, err = consent.NewService(consent.ServiceConfig{
		Keys: a.keys, Verifier: a.verifier, Store: a.client, Apps: a.apps, Revocations: a.revs,
		Secret: secret, Logger: a.log.Named("consent"),
	}); err != nil {
		return err
	}
	if a.spool != nil {
		a.bgGo(func(ctx context.Context) error {
			return a.erased.run(ctx, a.client, a.cfg.RevocationRefresh, a.log.Named("erasures"))
		})
	}
	for _, run := range []func(context.Context) error{a.revs.Run, a.apps.Run, a.consent.Run} {
		a.bgGo(run)
	}
	if err := a.revs.WaitLoaded(ctx); err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	if err := a.apps.WaitLoaded(ctx); err != nil {
		return fmt.Errorf("load apps: %w", err)
	}
	return nil
}

// startLocation loads the boundary dataset and the IP database, fetches
// today's session salt from ClickHouse, and starts the loops that keep the
// salts (and the IP database) current.
func (a *App) startLocation(ctx context.Context) error {
	var err error
	if a.bounds, err = geo.LoadBoundaries(); err != nil {
		return err
	}
	if a.cfg.GeoIPFile != "" {
		if a.ipdb, err = geo.OpenIPDB(geo.IPDBConfig{Path: a.cfg.GeoIPFile, IncludeNonPublic: a.cfg.GeoIPIncludeNonPublic}); err != nil {
			return err
		}
		a.bgGo(a.watchIPDB)
	}
	a.salts = anonymizer.NewSalts(anonymizer.SaltsConfig{Store: a.client, Now: a.cfg.Anonymizer.Now, Logger: a.log.Named("salts")})
	if err := a.salts.Refresh(ctx); err != nil {
		return fmt.Errorf("session salts: %w", err)
	}
	a.bgGo(a.salts.Run)
	return nil
}

// watchIPDB reloads the IP database when its file changes, until ctx ends.
func (a *App) watchIPDB(ctx context.Context) error {
	last := modTime(a.cfg.GeoIPFile)
	t := time.NewTicker(a.cfg.GeoIPReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if m := modTime(a.cfg.GeoIPFile); !m.Equal(last) {
			if err := a.ipdb.Reload(); err != nil {
				a.log.Warn("reloading the IP database failed; keeping the loaded one", zap.Error(err))
				continue
			}
			last = m
			a.log.Info("reloaded the IP database")
		}
	}
}

// modTime returns the modification time of path, zero if unknown.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// bgGo runs loop in the background until stopBackground.
func (a *App) bgGo(loop func(context.Context) error) {
	if a.bgCancel == nil {
		a.bgCtx, a.bgCancel = context.WithCancel(context.Background())
	}
	ctx := a.bgCtx
	a.bg.Go(func() {
		if err := loop(ctx); err != nil {
			a.log.Error("background loop failed", zap.Error(err))
		}
	})
}

// stopBackground stops the background loops and waits for them; pending
// erasure resweeps run before the consent service's loop returns.
func (a *App) stopBackground() {
	if a.bgCancel != nil {
		a.bgCancel()
		a.bg.Wait()
		a.bgCancel = nil
	}
	if a.ipdb != nil {
		a.ipdb.Close()
		a.ipdb = nil
	}
}

// AnalystUser is the read-only ClickHouse user a managed server gets.
const AnalystUser = "analyst"

// readOrCreate returns the contents of the secret file path without its
// line ending, creating it (and its directory, owner-only) with generate's
// value if it does not exist. what names the secret in errors.
func readOrCreate(path, what string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		v := generate()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		return v, nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// loadAnalystPassword reads the analyst's password file, creating it with
// a random password if it does not exist.
func loadAnalystPassword(path string) (string, error) {
	p, err := readOrCreate(path, "analyst password", rand.Text)
	if err != nil {
		return "", err
	}
	if p = strings.TrimSpace(p); p == "" {
		return "", fmt.Errorf("analyst password file %s is empty", path)
	}
	return p, nil
}

// loadSecret returns the configured consent secret, or reads the secret
// file, creating it with a random secret if it does not exist.
func loadSecret(cfg Config) ([]byte, error) {
	if len(cfg.ConsentSecret) > 0 {
		if len(cfg.ConsentSecret) < consent.MinSecretSize {
			return nil, fmt.Errorf("consent secret: at least %d bytes", consent.MinSecretSize)
		}
		return cfg.ConsentSecret, nil
	}
	secret, err := readOrCreate(cfg.ConsentSecretFile, "consent secret", func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
		return hex.EncodeToString(b)
	})
	if err != nil {
		return nil, err
	}
	if len(secret) < consent.MinSecretSize {
		return nil, fmt.Errorf("consent secret %s: at least %d bytes", cfg.ConsentSecretFile, consent.MinSecretSize)
	}
	return []byte(secret), nil
}

// newService builds the stage pipeline and the ingest service.
func (a *App) newService() (*Service, error) {
	lim, err := limits.New(a.cfg.Limits)
	if err != nil {
		return nil, err
	}
	con, err := consent.NewFilter(consent.FilterConfig{
		Verifier: a.verifier, Revocations: a.revs, Apps: a.apps, Secret: a.secret,
	})
	if err != nil {
		return nil, err
	}
	stages := []pipeline.Stage{lim, con}
	if rl := a.cfg.RateLimit; rl.EventsPerSecond > 0 || len(rl.Overrides) > 0 {
		if rl.MaxBatchEvents == 0 {
			rl.MaxBatchEvents = lim.Config().MaxEvents
		}
		if rl.Now == nil {
			rl.Now = time.Now
		}
		l, err := ratelimit.New(rl)
		if err != nil {
			return nil, err
		}
		stages = append(stages, l)
	}
	val, err := validate.New(a.cfg.Validation)
	if err != nil {
		return nil, err
	}
	ac := a.cfg.Anonymizer
	ac.Salts, ac.Coordinates, ac.Regions = a.salts, a.bounds, a.bounds
	if a.ipdb != nil {
		ac.IPs = a.ipdb
	}
	anon, err := anonymizer.New(ac)
	if err != nil {
		return nil, err
	}
	return NewService(ServiceConfig{
		Stages:      append(stages, val, anon),
		Sink:        a.sink(),
		Metrics:     a.metrics,
		Rejects:     a.rejects,
		MaxDeadline: lim.Config().MaxDeadline,
		Logger:      a.log.Named("ingest"),
	})
}

// startAdmin binds the admin server, which serves the dashboard.
func (a *App) startAdmin() error {
	creds, err := dashboard.LoadCredentials(a.cfg.DashboardCredentialsFile, true)
	if err != nil {
		return err
	}
	store, err := triage.New(triage.Config{Backend: a.client, K: a.cfg.DashboardK})
	if err != nil {
		return err
	}
	dash, err := dashboard.New(dashboard.Config{Store: store, Credentials: creds, Logger: a.log.Named("dashboard")})
	if err != nil {
		return err
	}
	if a.adminLis, err = net.Listen("tcp", a.cfg.AdminAddr); err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.AdminAddr, err)
	}
	a.registerGauges()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	if a.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", dash)
	a.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		ErrorLog: zap.NewStdLog(a.log.Named("admin-http"))}
	return nil
}

// loadTLS returns the TLS configurations of the ingest servers (gRPC and
// HTTP, with client certificates if configured) and of the admin server,
// or nil ones without TLS.
func (a *App) loadTLS() (ingest, admin *tls.Config, err error) {
	c := a.cfg.TLS
	if c.CertFile == "" {
		return nil, nil, nil
	}
	c.Logger = a.log.Named("tls")
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

// registerGauges exposes the state of the writer and the revocations as
// metrics.
func (a *App) registerGauges() {
	if a.spool != nil {
		sp := a.spool
		a.metrics.Gauge("spool_bytes", "Bytes accepted into the spool and not yet shipped to ClickHouse; ingest is refused (overloaded) beyond --spool-max-bytes.",
			func() float64 { return float64(sp.Stats().Bytes) })
		a.metrics.Gauge("spool_segments", "Segment files in the spool.", func() float64 { return float64(sp.Stats().Segments) })
		a.metrics.Gauge("spool_pending_records", "Spooled batches not yet shipped to ClickHouse.", func() float64 { return float64(sp.Stats().PendingRecords) })
		a.metrics.Gauge("spool_ship_lag_seconds", "Age of the oldest spooled batch not yet shipped: how far ClickHouse is behind.", func() float64 { return sp.Stats().ShipLag.Seconds() })
		a.metrics.Counter("spool_corrupt_records_total", "Invalid spool records found and skipped (bad checksum, length or payload), since start.", func() float64 { return float64(sp.Stats().CorruptRecords) })
		a.metrics.Counter("spool_fsyncs_total", "Spool fsyncs; divided by accepted batches it shows how well group commit works.", func() float64 { return float64(sp.Stats().Fsyncs) })
	}
	a.metrics.Gauge("writer_pending_rows", "Rows accepted but not yet stored in ClickHouse by the writer; ingest is refused (overloaded) beyond --writer-max-pending-rows.",
		func() float64 { return float64(a.writer.Stats().PendingRows) })
	a.metrics.Gauge("revocations_refresh_age_seconds", "Seconds since the last successful revocation refresh began; ingest is refused beyond --revocation-bound.",
		func() float64 {
			last, ok := a.revs.LastRefresh()
			if !ok {
				return math.Inf(1)
			}
			return time.Since(last).Seconds()
		})
}

// Metrics returns the collector's metrics.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Addr returns the gRPC listener's address.
func (a *App) Addr() string { return a.lis.Addr().String() }

// HTTPAddr returns the consent HTTP listener's address.
func (a *App) HTTPAddr() string { return a.httpLis.Addr().String() }

// AdminAddr returns the admin (dashboard) listener's address.
func (a *App) AdminAddr() string { return a.adminLis.Addr().String() }

// ClickHouseAddr returns the native-protocol address of the ClickHouse in
// use.
func (a *App) ClickHouseAddr() string {
	if a.chServer != nil {
		return a.chServer.Addr()
	}
	return a.cfg.ClickHouse.Addr
}

// Keys returns the consent key ring.
func (a *App) Keys() *consent.KeyRing { return a.keys }

// Client returns the ClickHouse client.
func (a *App) Client() *clickhouse.Client { return a.client }

// Serve accepts gRPC requests until Shutdown. It returns nil after a
// shutdown.
func (a *App) Serve() error {
	a.log.Info("collector serving", zap.String("grpc_addr", a.Addr()), zap.String("http_addr", a.HTTPAddr()),
		zap.String("admin_addr", a.AdminAddr()), zap.String("dashboard_credentials", a.cfg.DashboardCredentialsFile))
	errc := make(chan error, 3)
	for _, s := range []struct {
		name string
		srv  *http.Server
		lis  net.Listener
	}{{"http", a.http, a.httpLis}, {"admin", a.admin, a.adminLis}} {
		go func() {
			serve := func() error { return s.srv.Serve(s.lis) }
			if s.srv.TLSConfig != nil {
				serve = func() error { return s.srv.ServeTLS(s.lis, "", "") }
			}
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", s.name, err)
				return
			}
			errc <- nil
		}()
	}
	go func() {
		if err := a.grpc.Serve(a.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("serve grpc: %w", err)
			return
		}
		errc <- nil
	}()
	// The first server to stop ends Serve: on Shutdown both stop.
	return <-errc
}

// Shutdown stops the collector gracefully: health turns NOT_SERVING, the
// HTTP, admin and gRPC servers stop accepting and let in-flight batches
// finish (until ctx ends, then cancel them), the spool ships what it can
// until ctx ends (the rest waits for the next start) and the writer
// flushes what it accepted, the rejects counter flushes, and the managed
// ClickHouse stops. Safe to call more than once.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.health.Shutdown()
		httpErr := errors.Join(a.http.Shutdown(ctx), a.admin.Shutdown(ctx))
		done := make(chan struct{})
		go func() {
			a.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			a.grpc.Stop()
			<-done
		}
		a.stopBackground()
		a.shutdownErr = errors.Join(httpErr, a.closeStorage(ctx))
		a.log.Info("collector stopped")
	})
	return a.shutdownErr
}

// closeStorage flushes and closes the writer, the rejects counter, the
// client and the managed server, in that order.
func (a *App) closeStorage(ctx context.Context) error {
	a.stopBackground()
	var errs []error
	if a.spool != nil {
		// Ships what it can until ctx ends; the rest stays in the spool
		// for the next start.
		errs = append(errs, a.spool.Close(ctx))
	}
	if a.writer != nil {
		errs = append(errs, a.writer.Close(ctx))
	}
	if a.rejects != nil {
		errs = append(errs, a.rejects.Close(ctx))
	}
	if a.client != nil {
		errs = append(errs, a.client.Close())
	}
	if a.chServer != nil {
		errs = append(errs, a.chServer.Stop(ctx))
		if err := os.Remove(a.addrFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close storage: %w", err)
	}
	return nil
}
