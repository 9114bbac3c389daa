package collector

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/chserver"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/limits"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
	"github.com/consentry/consentry/validate"
)

// App is a running collector: the managed ClickHouse (if any), the
// ClickHouse client, writer and rejects counter, and the gRPC server.
type App struct {
	cfg      Config
	log      *zap.Logger
	chServer *chserver.Server
	client   *clickhouse.Client
	writer   *clickhouse.Writer
	rejects  *clickhouse.Rejects
	keys     *consent.KeyRing
	grpc     *grpc.Server
	health   *health.Server
	lis      net.Listener

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
	a := &App{cfg: cfg, log: cfg.Logger}
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
	svc, err := a.newService()
	if err != nil {
		return nil, err
	}
	a.lis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	lim := cfg.Limits
	if lim.MaxMessageBytes == 0 {
		lim.MaxMessageBytes = limits.DefaultConfig().MaxMessageBytes
	}
	a.grpc = grpc.NewServer(
		grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxRecvMsgSize(lim.MaxMessageBytes),
	)
	consentryv1.RegisterIngestServiceServer(a.grpc, svc)
	a.health = health.NewServer()
	healthpb.RegisterHealthServer(a.grpc, a.health)
	reflection.Register(a.grpc)
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	a.health.SetServingStatus(consentryv1.IngestService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return a, nil
}

// openStorage starts the managed ClickHouse if needed, connects, migrates,
// and starts the writer and the rejects counter.
func (a *App) openStorage(ctx context.Context) error {
	chCfg := a.cfg.ClickHouse
	if chCfg.Addr == "" {
		srv, err := chserver.Start(ctx, chserver.Config{
			Binary:  a.cfg.ClickHouseBinary,
			DataDir: filepath.Join(a.cfg.DataDir, "clickhouse"),
			Logger:  a.log.Named("clickhouse-server"),
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
	if a.rejects, err = clickhouse.NewRejects(a.cfg.Rejects, a.client, a.log.Named("rejects")); err != nil {
		return err
	}
	return nil
}

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

// newService builds the stage pipeline and the ingest service.
func (a *App) newService() (*Service, error) {
	lim, err := limits.New(a.cfg.Limits)
	if err != nil {
		return nil, err
	}
	con, err := consent.NewFilter(consent.FilterConfig{Keys: a.keys})
	if err != nil {
		return nil, err
	}
	val, err := validate.New(a.cfg.Validation)
	if err != nil {
		return nil, err
	}
	anon, err := anonymizer.New(a.cfg.Anonymizer)
	if err != nil {
		return nil, err
	}
	return NewService(ServiceConfig{
		Stages:      []pipeline.Stage{lim, con, val, anon},
		Sink:        a.writer,
		Rejects:     a.rejects,
		MaxDeadline: lim.Config().MaxDeadline,
		Logger:      a.log.Named("ingest"),
	})
}

// Addr returns the gRPC listener's address.
func (a *App) Addr() string { return a.lis.Addr().String() }

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
	a.log.Info("collector serving", zap.String("grpc_addr", a.Addr()))
	if err := a.grpc.Serve(a.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve grpc: %w", err)
	}
	return nil
}

// Shutdown stops the collector gracefully: health turns NOT_SERVING, the
// gRPC server stops accepting and lets in-flight batches finish (until ctx
// ends, then cancels them), the writer flushes everything it accepted, the
// rejects counter flushes, and the managed ClickHouse stops. Safe to call
// more than once.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.health.Shutdown()
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
		a.shutdownErr = a.closeStorage(ctx)
		a.log.Info("collector stopped")
	})
	return a.shutdownErr
}

// closeStorage flushes and closes the writer, the rejects counter, the
// client and the managed server, in that order.
func (a *App) closeStorage(ctx context.Context) error {
	var errs []error
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
