package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/health"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/pipeline"
)

// App is a running collector, made of parts that each own their start and
// shutdown:
//
//   - storage: the managed ClickHouse (if any), the client, the rejects
//     counter;
//   - consent: keys, revocations, apps and the ConsentService, refreshed
//     from ClickHouse;
//   - kanon: the rows held back until k consents share their
//     combination of quasi-identifiers, and the release of held rows;
//   - sink: the write-ahead spool that ships to ClickHouse (or, without
//     one, the writer);
//   - location: boundaries, the IP database and the daily session salts;
//   - mappings: the R8/ProGuard mappings crashes are deobfuscated with;
//   - servers: gRPC, HTTP and admin (dashboard, metrics);
//   - alerts: crash alert webhooks, with Config.AlertRulesFile.
//
// New starts them in that order and pushes each one's close on a cleanup
// stack; a failed New and Shutdown unwind it newest first.
type App struct {
	cfg     Config
	log     *zap.Logger
	metrics *metrics.Metrics

	storage  *storage
	consent  *consentParts
	kanon    *kanonParts
	sink     *sink
	location *location
	mappings *mappingParts
	ingest   *Service // the stage pipeline the servers serve
	servers  *servers
	alerts   *alertParts // nil without Config.AlertRulesFile
	ready    *readiness

	cleanup      cleanup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New builds an App: it starts the managed ClickHouse if no address is
// configured, applies schema migrations, loads revocations and apps,
// opens the spool (shipping what an earlier run left), and binds the
// listeners. Call Serve to accept requests and Shutdown to stop.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.secretModes(); err != nil {
		return nil, fmt.Errorf("collector secrets: %w", err)
	}
	a := &App{cfg: cfg, log: cfg.Logger, metrics: metrics.New()}
	defer func() {
		if err != nil {
			_ = a.cleanup.run(context.WithoutCancel(ctx))
		}
	}()
	if a.storage, err = openStorage(ctx, cfg, a.metrics); err != nil {
		return nil, err
	}
	a.cleanup.push("storage", a.storage.close)
	client := a.storage.client

	if a.consent, err = startConsent(ctx, cfg, client, a.metrics, privacyCounter{a.storage.counts}); err != nil {
		return nil, err
	}
	a.cleanup.push("consent", a.consent.close)

	if a.kanon, err = startKanon(ctx, cfg, client); err != nil {
		return nil, err
	}
	a.cleanup.push("kanon", a.kanon.close)

	var gate spool.Gate
	if a.consent.gate != nil {
		gate = a.consent.gate
	}
	if a.sink, err = openSink(ctx, cfg, a.storage, gate, a.kanon, a.metrics); err != nil {
		return nil, err
	}
	a.cleanup.push("sink", a.sink.close)

	if a.location, err = startLocation(ctx, cfg, client); err != nil {
		return nil, err
	}
	a.cleanup.push("location", a.location.close)

	if a.mappings, err = startMappings(ctx, cfg, client, a.metrics); err != nil {
		return nil, err
	}
	a.cleanup.push("mappings", a.mappings.close)

	if a.ingest, err = a.newService(); err != nil {
		return nil, err
	}
	dash, err := a.newDashboard()
	if err != nil {
		return nil, err
	}
	hs := health.NewServer()
	a.ready = newReadiness(a.log.Named("readiness"), hs, cfg.HealthInterval)
	if a.servers, err = bindServers(serversConfig{
		cfg: cfg, ingest: a.ingest, consent: a.consent.service, dashboard: dash, metrics: a.metrics,
		health: hs, livez: a.ready.livez, readyz: a.ready.readyz,
	}); err != nil {
		return nil, err
	}
	a.cleanup.push("servers", a.servers.close)

	if a.alerts, err = startAlerts(cfg, client, a.metrics); err != nil {
		return nil, err
	}
	a.cleanup.push("alerts", a.alerts.close)

	a.addReadinessChecks()
	a.ready.start()
	a.cleanup.push("readiness", func(context.Context) error { a.ready.stop(); return nil })

	a.sink.register(a.metrics)
	a.consent.register(a.metrics)
	a.kanon.register(a.metrics)
	a.ready.register(a.metrics)
	return a, nil
}

// addReadinessChecks gives readiness what ingest needs right now: room in
// the sink (and, without a spool, ClickHouse answering), fresh
// revocations, and requests not refused for overload; and what the
// ConsentService needs: ClickHouse answering, since a revoke must be
// durable there before it returns.
func (a *App) addReadinessChecks() {
	a.ready.addIngest("sink", a.sink.accepting)
	a.ready.addConsent("clickhouse", a.storage.check)
	if a.consent.gate == nil {
		// With a spool, stale revocations hold up shipping, not ingest.
		revs := a.consent.revs
		a.ready.addIngest("revocations", func(now time.Time) error {
			if !revs.Fresh(now) {
				return fmt.Errorf("not refreshed within --revocation-bound (%v)", revs.Bound())
			}
			return nil
		})
	}
	a.ready.addIngest("overload", a.servers.edge.overloaded)
}

// newService builds the stage pipeline and the ingest service.
func (a *App) newService() (*Service, error) {
	lim, err := limits.New(a.cfg.Limits)
	if err != nil {
		return nil, err
	}
	con, err := a.consent.filter()
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
	acfg := a.location.anonymizerConfig(a.cfg.Anonymizer)
	acfg.Detections = privacyCounter{a.storage.counts}
	acfg.EventIDKey = a.eventIDKey()
	acfg.Mappings = a.mappings.cache
	anon, err := anonymizer.New(acfg)
	if err != nil {
		return nil, err
	}
	a.metrics.Counter("attributes_dropped_numbers_total", "Numeric custom event attributes dropped because their value is an IMEI, a payment card or a phone number, since start.",
		func() float64 { return float64(anon.NumbersDropped()) })
	return NewService(ServiceConfig{
		Stages:      append(stages, val, anon),
		Sink:        a.sink,
		Metrics:     a.metrics,
		Rejects:     a.storage.rejects,
		MaxDeadline: lim.Config().MaxDeadline,
		Logger:      a.log.Named("ingest"),
	})
}

// newDashboard builds the crash triage dashboard the admin port serves.
func (a *App) newDashboard() (*dashboard.Handler, error) {
	creds, err := dashboard.LoadCredentials(a.cfg.DashboardCredentialsFile, true)
	if err != nil {
		return nil, err
	}
	store, err := triage.New(triage.Config{Backend: a.storage.client, K: a.cfg.DashboardK})
	if err != nil {
		return nil, err
	}
	return dashboard.New(dashboard.Config{Store: store, Credentials: creds, Logger: a.log.Named("dashboard")})
}

// Spool returns the write-ahead spool, nil with Config.NoSpool.
func (a *App) Spool() *spool.Spool { return a.sink.spool }

// Metrics returns the collector's metrics.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Addr returns the gRPC listener's address.
func (a *App) Addr() string { return a.servers.grpcLis.Addr().String() }

// HTTPAddr returns the HTTP (ingest and consent) listener's address.
func (a *App) HTTPAddr() string { return a.servers.httpLis.Addr().String() }

// AdminAddr returns the admin (dashboard, metrics) listener's address.
func (a *App) AdminAddr() string { return a.servers.adminLis.Addr().String() }

// ClickHouseAddr returns the native-protocol address of the ClickHouse in
// use.
func (a *App) ClickHouseAddr() string { return a.storage.addr() }

// Keys returns the consent key ring.
func (a *App) Keys() *consent.KeyRing { return a.consent.keys }

// Client returns the ClickHouse client.
func (a *App) Client() *clickhouse.Client { return a.storage.client }

// ClickHouseUp reports whether the ClickHouse the collector uses answers:
// a managed server is up (not restarting, not given up on), and of the
// pings sent every second, fewer than two in a row have failed. It drives
// consentry_clickhouse_up; with the spool, ingest goes on while it is
// false; without, ingest is refused.
func (a *App) ClickHouseUp() bool { return a.storage.clickHouseUp() }

// Serve accepts requests until Shutdown. It returns nil after a shutdown,
// and an error wrapping ErrClickHouseFailed if the managed ClickHouse
// fails for good; call Shutdown then.
func (a *App) Serve() error {
	a.log.Info("collector serving", zap.String("grpc_addr", a.Addr()), zap.String("http_addr", a.HTTPAddr()),
		zap.String("admin_addr", a.AdminAddr()), zap.String("dashboard_credentials", a.cfg.DashboardCredentialsFile))
	errc := make(chan error, 1)
	go func() { errc <- a.servers.serve() }()
	select {
	case err := <-errc:
		return err
	case err := <-a.storage.fatal: // nil without a managed ClickHouse: never ready
		return err
	}
}

// Shutdown stops the collector gracefully: health turns NOT_SERVING (and
// /readyz 503); with a ShutdownDelay the servers go on serving for it, so
// that load balancers stop sending first; then the servers stop
// accepting and let in-flight batches finish (until ctx
// ends, then cancel them); then the parts close newest first: the
// location loops stop, the spool ships what it can until ctx ends (the
// rest waits for the next start) or the writer flushes what it accepted,
// the consent loops stop, the rejects counter flushes, and the managed
// ClickHouse stops. If ClickHouse does not answer (a managed one that is
// restarting gets half the time left to come back), nothing waits for
// it: unshipped batches stay in the spool and reject counts in the data
// dir for the next start. Safe to call more than once.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.ready.shuttingDown()
		a.linger(ctx)
		a.shutdownErr = errors.Join(a.servers.shutdown(ctx), a.cleanup.run(ctx))
		a.log.Info("collector stopped")
	})
	return a.shutdownErr
}

// linger serves on, not ready, for the shutdown delay or until ctx ends.
func (a *App) linger(ctx context.Context) {
	d := a.cfg.ShutdownDelay
	if d <= 0 {
		return
	}
	a.log.Info("not ready; serving on before the listeners close", zap.Duration("shutdown_delay", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
