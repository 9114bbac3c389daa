package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/every"
	"github.com/consentry/consentry/pipeline"
)

// ErrClickHouseFailed reports that the managed ClickHouse failed
// Config.ClickHouseMaxFailures times within Config.ClickHouseFailureWindow
// and is no longer restarted: Serve returns it, wrapped, and consentryd
// then exits (with status 3) so that systemd or Kubernetes restarts the
// whole process.
var ErrClickHouseFailed = errors.New("managed clickhouse failed repeatedly")

const (
	// CollectorUser is the managed ClickHouse's user the collector (and
	// the consentry CLI on the same data dir) connects as: the only user
	// that may write, and the only one that may read the private
	// database of the session salts.
	CollectorUser = chserver.DefaultUser
	// CollectorPasswordFileName is the default name, in the data dir, of
	// CollectorUser's password file.
	CollectorPasswordFileName = "clickhouse-collector-password"
	// rejectsSpillFileName is the name, in the data dir, of the file that
	// keeps the reject counts ClickHouse could not take at shutdown.
	rejectsSpillFileName = "rejects-unstored.json"
)

const (
	// pingInterval is how often the collector checks that ClickHouse
	// answers.
	pingInterval = time.Second
	// pingTimeout bounds one check.
	pingTimeout = 2 * time.Second
	// pingFailuresDown is how many checks in a row must fail before
	// ClickHouse counts as down: one slow answer under load is not an
	// outage. (A managed server that exits counts as down at once.)
	pingFailuresDown = 2
)

// storage is the collector's ClickHouse side: the managed server (when no
// address is configured) and its supervision, the client with the schema
// migrated, a ping loop that knows whether ClickHouse answers, the
// rejects counter and the privacy counts. The sink that accepted rows go to is opened
// separately (openSink), once the consent gate it needs exists.
type storage struct {
	cfg     Config
	log     *zap.Logger
	server  *chserver.Server // nil with an external ClickHouse
	client  *clickhouse.Client
	rejects *clickhouse.Rejects
	counts  *clickhouse.PrivacyCounts
	loops   loops
	// erasures reports what keeps erasures from reaching rows: deletions
	// ClickHouse does not finish, detached parts.
	erasures *erasureWatch

	// up: the last pings answered (or fewer than pingFailuresDown in a
	// row failed).
	up atomic.Bool
	// fatal receives once when the managed ClickHouse is given up on; nil
	// without one.
	fatal chan error

	// flushOnce decides, once, at shutdown, whether ClickHouse answers:
	// flushCtx is the context the sink and the rejects counter flush
	// with, cancelled when it does not.
	flushOnce sync.Once
	flushCtx  context.Context
	flushDown bool
}

// openStorage starts the managed ClickHouse if needed, connects, migrates
// and starts the rejects counter and the ping loop. On error it cleans up
// after itself.
func openStorage(ctx context.Context, cfg Config, m *metrics.Metrics) (_ *storage, err error) {
	s := &storage{cfg: cfg, log: cfg.Logger, loops: loops{log: cfg.Logger}}
	defer func() {
		if err != nil {
			_ = s.close(context.WithoutCancel(ctx))
		}
	}()
	if err := privateDir(cfg.DataDir); err != nil {
		return nil, err
	}
	chCfg := cfg.ClickHouse
	chCfg.OnInsert = m.Inserted
	if chCfg.Addr == "" {
		if err := s.startServer(ctx, &chCfg); err != nil {
			return nil, err
		}
	}
	applied, err := s.connect(ctx, chCfg)
	if err != nil {
		return nil, err
	}
	s.log.Info("schema ready", zap.Ints("applied_migrations", applied), zap.String("server_version", s.client.Dialect().Version))
	if exposed := s.client.PasswordlessReaders(ctx); len(exposed) > 0 {
		return nil, fmt.Errorf("clickhouse: users who log in without a password can read %[2]s (%[1]s); it holds the daily salts "+
			"that keep sessions from being joined across days: give each a password, or take that database from them "+
			"(allow_databases in users.xml, or REVOKE ALL ON %[2]s.* FROM <user>), then start again (docs/operations.md#an-external-clickhouse)",
			strings.Join(exposed, ", "), s.client.PrivateDatabase())
	}
	s.up.Store(true)
	s.loops.goLoop("clickhouse-ping", s.watch)
	s.erasures = newErasureWatch(s.client, s.log.Named("erasures"), cfg.MutationCheckInterval, cfg.StalledMutationAge)
	s.loops.goLoop("clickhouse-erasures", s.erasures.run)
	if s.rejects, err = clickhouse.NewRejects(s.rejectsConfig(), s.client, s.log.Named("rejects")); err != nil {
		return nil, err
	}
	if s.counts, err = clickhouse.NewPrivacyCounts(s.cfg.Rejects, s.client, s.log.Named("privacy-counts")); err != nil {
		return nil, err
	}
	s.register(m)
	return s, nil
}

// connect opens the client and brings the schema up to date, retrying
// with backoff while ClickHouse is unreachable or too busy to answer,
// for up to ClickHouseStartTimeout: a collector restarted during an
// outage, or next to a loaded server, comes up once the server answers
// rather than exiting at the first timeout. Other errors end at once.
func (s *storage) connect(ctx context.Context, chCfg clickhouse.Config) ([]int, error) {
	deadline := time.Now().Add(s.cfg.ClickHouseStartTimeout)
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		applied, err := s.tryConnect(ctx, chCfg)
		if err == nil {
			return applied, nil
		}
		if !clickhouse.Unavailable(err) || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		s.log.Warn("clickhouse does not answer at start; retrying", zap.Int("attempt", attempt),
			zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for clickhouse: %w (last: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// tryConnect is one attempt of connect.
func (s *storage) tryConnect(ctx context.Context, chCfg clickhouse.Config) ([]int, error) {
	client, err := clickhouse.Open(ctx, chCfg, s.log.Named("clickhouse"))
	if err != nil {
		return nil, err
	}
	applied, err := client.Migrate(ctx)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.client = client
	return applied, nil
}

// startServer starts the managed ClickHouse under DataDir, locked down:
// the collector connects as CollectorUser with the password from
// CollectorPasswordFile, the analyst may read only chCfg's database,
// there is no password-less user, and the ports listen on
// ClickHouseListenHost (loopback by default). It points chCfg at the
// server, writes its address for local tools (consentry demo, migrate),
// and watches its supervision.
func (s *storage) startServer(ctx context.Context, chCfg *clickhouse.Config) error {
	analystPassword, err := LoadPassword(s.cfg.AnalystPasswordFile, "analyst password")
	if err != nil {
		return err
	}
	collectorPassword, err := LoadPassword(s.cfg.CollectorPasswordFile, "collector password")
	if err != nil {
		return err
	}
	sc := s.cfg.managedConfig(chCfg.DatabaseName())
	sc.Password, sc.ReadOnlyPassword = collectorPassword, analystPassword
	sc.Logger = s.log.Named("clickhouse-server")
	srv, err := chserver.Start(ctx, sc)
	if err != nil {
		return fmt.Errorf("start local clickhouse: %w", err)
	}
	s.server = srv
	chCfg.Addr, chCfg.Username, chCfg.Password = srv.Addr(), srv.User(), srv.Password()
	// Local tools read the password from CollectorPasswordFile.
	if err := os.WriteFile(s.addrFile(), []byte(srv.Addr()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write clickhouse address: %w", err)
	}
	if err := os.WriteFile(s.httpAddrFile(), []byte(srv.HTTPAddr()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write clickhouse address: %w", err)
	}
	s.log.Info("started local clickhouse", zap.String("addr", srv.Addr()), zap.String("http_addr", srv.HTTPAddr()),
		zap.String("data_dir", srv.DataDir()), zap.String("user", srv.User()),
		zap.Bool("analyst_settings_constraints", srv.SettingsConstraints()))
	s.fatal = make(chan error, 1)
	go func() {
		<-srv.Done() // after Stop too, so this ends with close
		if err := srv.Err(); err != nil {
			s.fatal <- fmt.Errorf("%w: %w", ErrClickHouseFailed, err)
		}
	}()
	return nil
}

// managedConfig returns the managed server's configuration, without its
// passwords and logger. database is the analysts' database.
func (c Config) managedConfig(database string) chserver.Config {
	return chserver.Config{
		Binary:            c.ClickHouseBinary,
		DataDir:           filepath.Join(c.DataDir, "clickhouse"),
		ListenHost:        c.ClickHouseListenHost,
		TCPPort:           c.ClickHouseNativePort,
		HTTPPort:          c.ClickHouseHTTPPort,
		ReadOnlyLimits:    c.AnalystLimits,
		User:              CollectorUser,
		ReadOnlyUser:      AnalystUser,
		ReadOnlyDatabases: []string{database},
		ReadOnlyNetworks:  c.AnalystNetworks,
		MaxFailures:       c.ClickHouseMaxFailures,
		FailureWindow:     c.ClickHouseFailureWindow,
		RestartBackoff:    c.ClickHouseRestartBackoff,
	}
}

// privateDir creates dir owner-only (0700), or makes an existing one so:
// it holds the secrets (signing key, consent secret, passwords) and the
// managed ClickHouse's data.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict data dir: %w", err)
		}
	}
	return nil
}

// rejectsConfig returns the rejects counter's configuration: counts that
// cannot be stored at shutdown are kept in the data dir for the next run.
func (s *storage) rejectsConfig() clickhouse.RejectsConfig {
	rc := s.cfg.Rejects
	if rc.SpillFile == "" {
		rc.SpillFile = filepath.Join(s.cfg.DataDir, rejectsSpillFileName)
	}
	return rc
}

// addrFile is where a managed server's address is written.
func (s *storage) addrFile() string { return filepath.Join(s.cfg.DataDir, "clickhouse.addr") }

// httpAddrFile is where the managed server's HTTP address is written,
// for BI tools and scripts.
func (s *storage) httpAddrFile() string { return filepath.Join(s.cfg.DataDir, "clickhouse-http.addr") }

// addr returns the native address of the ClickHouse in use.
func (s *storage) addr() string {
	if s.server != nil {
		return s.server.Addr()
	}
	return s.cfg.ClickHouse.Addr
}

// clickHouseUp reports whether ClickHouse answers: a managed server is up
// (not restarting, not given up on), and of the pings sent every second,
// fewer than two in a row have failed.
func (s *storage) clickHouseUp() bool {
	if s.server != nil && !s.server.Up() {
		return false
	}
	return s.up.Load()
}

// check is clickHouseUp as a readiness check.
func (s *storage) check(time.Time) error {
	if s.server != nil && !s.server.Up() {
		return fmt.Errorf("managed clickhouse is %v", s.server.State())
	}
	if !s.up.Load() {
		return errors.New("clickhouse does not answer")
	}
	return nil
}

// watch pings ClickHouse every pingInterval until ctx ends and keeps
// clickHouseUp current, logging each change.
func (s *storage) watch(ctx context.Context) error {
	failed := 0
	every.Tick(ctx, pingInterval, false, func(ctx context.Context) {
		err := s.ping(ctx)
		switch {
		case ctx.Err() != nil:
		case err == nil:
			failed = 0
			if !s.up.Swap(true) {
				s.log.Info("clickhouse answers again")
			}
		default:
			if failed++; failed >= pingFailuresDown && s.up.Swap(false) {
				s.log.Warn("clickhouse does not answer", zap.Error(err))
			}
		}
	})
	return nil
}

// ping checks once that ClickHouse answers.
func (s *storage) ping(ctx context.Context) error {
	if s.server != nil && !s.server.Up() {
		return fmt.Errorf("managed clickhouse is %v", s.server.State())
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// register exposes clickHouseUp, the managed server's restarts and the
// stalled deletions.
func (s *storage) register(m *metrics.Metrics) {
	m.Gauge("clickhouse_up", "1 when the ClickHouse the collector stores into answers (pinged every second; a managed server also up, not restarting), else 0.",
		func() float64 {
			if s.clickHouseUp() {
				return 1
			}
			return 0
		})
	s.erasures.register(m)
	if srv := s.server; srv != nil {
		m.Counter("clickhouse_restarts_total", "Restarts of the managed ClickHouse after it exited unexpectedly, since start.",
			func() float64 { return float64(srv.Restarts()) })
	}
}

// flushContext returns the context to ship and flush with at shutdown:
// ctx while ClickHouse answers (a managed one that is restarting gets
// half of what is left of ctx to come back), else a cancelled one, so
// that nothing waits for a ClickHouse that is not there. Decided once.
func (s *storage) flushContext(ctx context.Context) (flush context.Context, down bool) {
	s.flushOnce.Do(func() {
		s.flushCtx = ctx
		if s.client != nil && !s.reachableAtShutdown(ctx) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			s.flushCtx, s.flushDown = c, true
			s.log.Warn("clickhouse does not answer at shutdown: unshipped batches stay in the spool and reject counts in the data dir for the next start")
		}
	})
	return s.flushCtx, s.flushDown
}

// reachableAtShutdown reports whether ClickHouse answers now, waiting for a
// managed server that is restarting for at most half of what is left of
// ctx.
func (s *storage) reachableAtShutdown(ctx context.Context) bool {
	if s.server != nil && s.server.State() == chserver.StateRestarting {
		left := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		wctx, cancel := context.WithTimeout(ctx, left/2)
		err := s.server.WaitUp(wctx)
		cancel()
		if err != nil {
			s.log.Warn("the managed clickhouse did not come back before shutdown", zap.Error(err))
			return false
		}
	}
	return s.ping(ctx) == nil
}

// close stops the ping loop, flushes the rejects counter (or keeps its
// counts in the data dir when ClickHouse does not answer), closes the
// client and stops the managed server, in that order.
func (s *storage) close(ctx context.Context) error {
	s.loops.stop()
	var errs []error
	flush, _ := s.flushContext(ctx)
	if s.rejects != nil {
		errs = append(errs, s.rejects.Close(flush))
	}
	if s.counts != nil {
		errs = append(errs, s.counts.Close(flush))
	}
	if s.client != nil {
		errs = append(errs, s.client.Close())
	}
	if s.server != nil {
		errs = append(errs, s.server.Stop(ctx))
		for _, f := range []string{s.addrFile(), s.httpAddrFile()} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close storage: %w", err)
	}
	return nil
}

// sink is where accepted rows go: the write-ahead spool, which ships them
// to ClickHouse through the consent gate, or without one the writer, which
// acknowledges once ClickHouse has them and refuses at once while
// ClickHouse is down.
type sink struct {
	spool   *spool.Spool
	writer  *clickhouse.Writer
	storage *storage
	// kanon decides which rows the writer must not store yet, and held
	// groups those into the held tables; the spool's inserter does both
	// for the spool.
	kanon *kanonParts
	held  *clickhouse.Writer
	// spoolMax and writerMax are the spool's and the writer's bounds.
	spoolMax  int64
	writerMax int
	// fullAt is when a write was last refused for a full sink (Unix ns).
	fullAt atomic.Int64
}

// openSink opens the spool (replaying what an earlier run left unshipped)
// or, with Config.NoSpool, starts the writer. k decides which rows are
// held back for k-anonymity; m observes the spool's syncs.
func openSink(ctx context.Context, cfg Config, st *storage, gate spool.Gate, k *kanonParts, m *metrics.Metrics) (*sink, error) {
	log := cfg.Logger
	if cfg.NoSpool {
		w, err := clickhouse.NewWriter(cfg.Writer, st.client, log.Named("writer"))
		if err != nil {
			return nil, err
		}
		s := &sink{writer: w, storage: st, kanon: k, writerMax: cmp.Or(cfg.Writer.MaxPendingRows, clickhouse.DefaultMaxPendingRows)}
		if k.enabled() {
			if s.held, err = clickhouse.NewHeldWriter(cfg.Writer, st.client, log.Named("held-writer")); err != nil {
				_ = w.Close(ctx)
				return nil, err
			}
		}
		return s, nil
	}
	sc := cfg.Spool
	sc.Inserter = k.inserter(dedupInserter{c: st.client})
	sc.Gate = gate
	sc.Logger = log.Named("spool")
	sc.OnSync = m.Synced
	sp, err := spool.Open(ctx, sc)
	if err != nil {
		return nil, err
	}
	stats := sp.Stats()
	log.Info("spool open", zap.String("dir", sc.Dir), zap.Int64("bytes_to_ship", stats.Bytes),
		zap.Uint64("records_to_ship", stats.PendingRecords), zap.Uint64("corrupt_records", stats.CorruptRecords))
	return &sink{spool: sp, storage: st, spoolMax: cmp.Or(sc.MaxBytes, spool.DefaultMaxBytes)}, nil
}

// dedupInserter ships the spool's records with deduplication tokens.
// Records of revoked or erased consents never reach it: the spool's gate
// drops them.
type dedupInserter struct{ c *clickhouse.Client }

// Insert implements spool.Inserter.
func (d dedupInserter) Insert(ctx context.Context, rows *pipeline.Rows, token string) error {
	return d.c.InsertDedup(ctx, rows, token)
}

// Write implements pipeline.Sink. Without a spool it refuses at once
// while ClickHouse is known to be down (UNAVAILABLE, with a retry delay)
// instead of waiting for an insert that cannot succeed. It notes
// refusals for a full sink, for readiness.
func (s *sink) Write(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	var err error
	switch {
	case s.spool != nil:
		err = s.spool.Write(ctx, rows, origin)
	case !s.storage.clickHouseUp():
		err = fmt.Errorf("clickhouse does not answer: %w", pipeline.ErrStorageUnavailable)
	default:
		err = s.writeHolding(ctx, rows, origin)
	}
	if errors.Is(err, pipeline.ErrOverloaded) {
		s.fullAt.Store(time.Now().UnixNano())
	}
	return err
}

// writeHolding writes rows through the writer, and the rows to hold
// through the held writer, at once.
func (s *sink) writeHolding(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	public, held := s.kanon.split(rows)
	if held == nil {
		return s.writer.Write(ctx, rows, origin)
	}
	heldErr := make(chan error, 1)
	go func() { heldErr <- s.held.Write(ctx, held, origin) }()
	return errors.Join(s.writer.Write(ctx, public, origin), <-heldErr)
}

// register exposes the sink's gauges and counters.
func (s *sink) register(m *metrics.Metrics) {
	if sp := s.spool; sp != nil {
		m.Gauge("spool_bytes", "Bytes accepted into the spool and not yet shipped to ClickHouse; ingest is refused (overloaded) beyond --spool-max-bytes.",
			func() float64 { return float64(sp.Stats().Bytes) })
		m.Gauge("spool_segments", "Segment files in the spool.", func() float64 { return float64(sp.Stats().Segments) })
		m.Gauge("spool_pending_records", "Spooled batches not yet shipped to ClickHouse.", func() float64 { return float64(sp.Stats().PendingRecords) })
		m.Gauge("spool_ship_lag_seconds", "Age of the oldest spooled batch not yet shipped: how far ClickHouse is behind.", func() float64 { return sp.Stats().ShipLag.Seconds() })
		m.Counter("spool_corrupt_records_total", "Spooled batches lost to damage (bad checksum, length or payload) and skipped, since start.", func() float64 { return float64(sp.Stats().CorruptRecords) })
		m.Counter("spool_corrupt_events_total", "Events in the spooled batches lost to damage, since start.", func() float64 { return float64(sp.Stats().CorruptEvents) })
		m.Counter("spool_gate_dropped_records_total", "Spooled batches not shipped because their consent was revoked or erased while they waited, since start.", func() float64 { return float64(sp.Stats().GateDroppedRecords) })
		m.Counter("spool_gate_dropped_events_total", "Events of spooled batches not shipped because their consent was revoked or erased while they waited, since start.", func() float64 { return float64(sp.Stats().GateDroppedEvents) })
		m.Gauge("spool_free_bytes", "Free bytes on the spool's volume (measured at most a second ago); ingest is refused (overloaded) below spool_reserve_bytes.", func() float64 { return float64(sp.Stats().FreeBytes) })
		m.Gauge("spool_reserve_bytes", "Free space the spool leaves on its volume (--spool-reserve-bytes).", func() float64 { return float64(sp.Stats().ReserveBytes) })
		m.Gauge("spool_max_bytes", "Bytes not yet shipped the spool holds at most (--spool-max-bytes); beyond, ingest is refused.", func() float64 { return float64(s.spoolMax) })
		m.Counter("spool_fsyncs_total", "Spool fsyncs; divided by accepted batches it shows how well group commit works.", func() float64 { return float64(sp.Stats().Fsyncs) })
		return
	}
	w := s.writer
	m.Gauge("writer_pending_rows", "Rows accepted but not yet stored in ClickHouse by the writer; ingest is refused (overloaded) beyond --writer-max-pending-rows.",
		func() float64 { return float64(w.Stats().PendingRows) })
}

// accepting reports why a batch would be refused now, nil if it would be
// stored. A write refused for a full sink within fullWindow makes it not
// ready. Without a spool, ClickHouse must answer.
func (s *sink) accepting(now time.Time) error {
	if s.spool != nil {
		return s.spool.Accepting()
	}
	recent := now.Sub(time.Unix(0, s.fullAt.Load())) < fullWindow
	if err := s.storage.check(now); err != nil {
		return err
	}
	for _, w := range []*clickhouse.Writer{s.writer, s.held} {
		if w == nil {
			continue
		}
		if st := w.Stats(); st.PendingRows >= s.writerMax || recent && st.PendingRows > s.writerMax/2 {
			return fmt.Errorf("writer backlog full: %d rows wait for ClickHouse (--writer-max-pending-rows %d)", st.PendingRows, s.writerMax)
		}
	}
	return nil
}

// fullWindow is how long a refusal for a full sink counts.
const fullWindow = 2 * time.Second

// close ships what the spool can (the rest stays in the spool for the
// next start), or flushes what the writer accepted, while ClickHouse
// answers; when it does not, nothing waits for it: the writer fails the
// requests still waiting (none of them was acknowledged).
func (s *sink) close(ctx context.Context) error {
	flush, down := s.storage.flushContext(ctx)
	if s.spool != nil {
		return s.spool.Close(flush)
	}
	err := s.writer.Close(flush)
	if s.held != nil {
		err = errors.Join(err, s.held.Close(flush))
	}
	if down && errors.Is(err, context.Canceled) {
		s.storage.log.Warn("the writer failed the requests still waiting for clickhouse", zap.Error(err))
		err = nil
	}
	return err
}
