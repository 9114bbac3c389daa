package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/pipeline"
)

// storage is the collector's ClickHouse side: the managed server (when no
// address is configured), the client with the schema migrated, the
// rejects counter and the privacy counts. The sink that accepted rows go
// to is opened separately (openSink), once the consent gate it needs
// exists.
type storage struct {
	cfg     Config
	log     *zap.Logger
	server  *chserver.Server // nil with an external ClickHouse
	client  *clickhouse.Client
	rejects *clickhouse.Rejects
	counts  *clickhouse.PrivacyCounts
}

// openStorage starts the managed ClickHouse if needed, connects, migrates
// and starts the rejects counter. On error it cleans up after itself.
func openStorage(ctx context.Context, cfg Config, m *metrics.Metrics) (_ *storage, err error) {
	s := &storage{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = s.close(context.WithoutCancel(ctx))
		}
	}()
	chCfg := cfg.ClickHouse
	chCfg.OnInsert = m.Inserted
	if chCfg.Addr == "" {
		if chCfg.Addr, err = s.startServer(ctx); err != nil {
			return nil, err
		}
	}
	if s.client, err = clickhouse.Open(ctx, chCfg, s.log.Named("clickhouse")); err != nil {
		return nil, err
	}
	applied, err := s.client.Migrate(ctx)
	if err != nil {
		return nil, err
	}
	s.log.Info("schema ready", zap.Ints("applied_migrations", applied), zap.String("server_version", s.client.Dialect().Version))
	if s.rejects, err = clickhouse.NewRejects(cfg.Rejects, s.client, s.log.Named("rejects")); err != nil {
		return nil, err
	}
	if s.counts, err = clickhouse.NewPrivacyCounts(cfg.Rejects, s.client, s.log.Named("privacy-counts")); err != nil {
		return nil, err
	}
	return s, nil
}

// startServer starts the managed ClickHouse under DataDir and returns its
// native address, which it also writes to DataDir/clickhouse.addr for
// local tools (consentry demo, migrate).
func (s *storage) startServer(ctx context.Context) (string, error) {
	analystPassword, err := loadAnalystPassword(s.cfg.AnalystPasswordFile)
	if err != nil {
		return "", err
	}
	srv, err := chserver.Start(ctx, chserver.Config{
		Binary:            s.cfg.ClickHouseBinary,
		DataDir:           filepath.Join(s.cfg.DataDir, "clickhouse"),
		ReadOnlyUser:      AnalystUser,
		ReadOnlyPassword:  analystPassword,
		ReadOnlyDatabases: []string{s.cfg.ClickHouse.DatabaseName()},
		Logger:            s.log.Named("clickhouse-server"),
	})
	if err != nil {
		return "", fmt.Errorf("start local clickhouse: %w", err)
	}
	s.server = srv
	if err := os.WriteFile(s.addrFile(), []byte(srv.Addr()+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write clickhouse address: %w", err)
	}
	s.log.Info("started local clickhouse", zap.String("addr", srv.Addr()), zap.String("data_dir", srv.DataDir()))
	return srv.Addr(), nil
}

// addrFile is where a managed server's address is written.
func (s *storage) addrFile() string { return filepath.Join(s.cfg.DataDir, "clickhouse.addr") }

// addr returns the native address of the ClickHouse in use.
func (s *storage) addr() string {
	if s.server != nil {
		return s.server.Addr()
	}
	return s.cfg.ClickHouse.Addr
}

// close flushes the rejects counter, closes the client and stops the
// managed server, in that order.
func (s *storage) close(ctx context.Context) error {
	var errs []error
	if s.rejects != nil {
		errs = append(errs, s.rejects.Close(ctx))
	}
	if s.counts != nil {
		errs = append(errs, s.counts.Close(ctx))
	}
	if s.client != nil {
		errs = append(errs, s.client.Close())
	}
	if s.server != nil {
		errs = append(errs, s.server.Stop(ctx))
		if err := os.Remove(s.addrFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close storage: %w", err)
	}
	return nil
}

// sink is where accepted rows go: the write-ahead spool, which ships them
// to ClickHouse through the consent gate, or without one the writer, which
// acknowledges once ClickHouse has them.
type sink struct {
	spool  *spool.Spool
	writer *clickhouse.Writer
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

// Write implements pipeline.Sink, noting refusals for a full sink.
func (s *sink) Write(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	var err error
	if s.spool != nil {
		err = s.spool.Write(ctx, rows, origin)
	} else {
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

// openSink opens the spool (replaying what an earlier run left unshipped)
// or, with Config.NoSpool, starts the writer. k decides which rows are
// held back for k-anonymity.
func openSink(ctx context.Context, cfg Config, client *clickhouse.Client, gate spool.Gate, erased *erasedKeys, k *kanonParts) (*sink, error) {
	log := cfg.Logger
	if cfg.NoSpool {
		w, err := clickhouse.NewWriter(cfg.Writer, client, log.Named("writer"))
		if err != nil {
			return nil, err
		}
		s := &sink{writer: w, kanon: k, writerMax: cmp.Or(cfg.Writer.MaxPendingRows, clickhouse.DefaultMaxPendingRows)}
		if k.enabled() {
			if s.held, err = clickhouse.NewHeldWriter(cfg.Writer, client, log.Named("held-writer")); err != nil {
				_ = w.Close(ctx)
				return nil, err
			}
		}
		return s, nil
	}
	sc := cfg.Spool
	sc.Inserter = k.inserter(dedupInserter{c: client, erased: erased})
	sc.Gate = gate
	sc.Logger = log.Named("spool")
	sp, err := spool.Open(ctx, sc)
	if err != nil {
		return nil, err
	}
	st := sp.Stats()
	log.Info("spool open", zap.String("dir", sc.Dir), zap.Int64("bytes_to_ship", st.Bytes),
		zap.Uint64("records_to_ship", st.PendingRecords), zap.Uint64("corrupt_records", st.CorruptRecords))
	return &sink{spool: sp, spoolMax: cmp.Or(sc.MaxBytes, spool.DefaultMaxBytes)}, nil
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

// register exposes the sink's gauges and counters.
func (s *sink) register(m *metrics.Metrics) {
	if sp := s.spool; sp != nil {
		m.Gauge("spool_bytes", "Bytes accepted into the spool and not yet shipped to ClickHouse; ingest is refused (overloaded) beyond --spool-max-bytes.",
			func() float64 { return float64(sp.Stats().Bytes) })
		m.Gauge("spool_segments", "Segment files in the spool.", func() float64 { return float64(sp.Stats().Segments) })
		m.Gauge("spool_pending_records", "Spooled batches not yet shipped to ClickHouse.", func() float64 { return float64(sp.Stats().PendingRecords) })
		m.Gauge("spool_ship_lag_seconds", "Age of the oldest spooled batch not yet shipped: how far ClickHouse is behind.", func() float64 { return sp.Stats().ShipLag.Seconds() })
		m.Counter("spool_corrupt_records_total", "Invalid spool records found and skipped (bad checksum, length or payload), since start.", func() float64 { return float64(sp.Stats().CorruptRecords) })
		m.Counter("spool_fsyncs_total", "Spool fsyncs; divided by accepted batches it shows how well group commit works.", func() float64 { return float64(sp.Stats().Fsyncs) })
		return
	}
	w := s.writer
	m.Gauge("writer_pending_rows", "Rows accepted but not yet stored in ClickHouse by the writer; ingest is refused (overloaded) beyond --writer-max-pending-rows.",
		func() float64 { return float64(w.Stats().PendingRows) })
}

// accepting reports why a batch would be refused now, nil if it would be
// stored.
// A write refused for a full sink within fullWindow makes it not ready.
func (s *sink) accepting(now time.Time) error {
	recent := now.Sub(time.Unix(0, s.fullAt.Load())) < fullWindow
	if s.spool != nil {
		if st := s.spool.Stats(); st.Bytes >= s.spoolMax || recent && st.Bytes > s.spoolMax/2 {
			return fmt.Errorf("spool full: %d bytes not yet shipped (--spool-max-bytes %d)", st.Bytes, s.spoolMax)
		}
		return nil
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

// close ships what the spool can until ctx ends (the rest stays in the
// spool for the next start), or flushes what the writer accepted.
func (s *sink) close(ctx context.Context) error {
	if s.spool != nil {
		return s.spool.Close(ctx)
	}
	if s.held != nil {
		return errors.Join(s.writer.Close(ctx), s.held.Close(ctx))
	}
	return s.writer.Close(ctx)
}
