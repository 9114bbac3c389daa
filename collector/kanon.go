package collector

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/internal/every"
	"github.com/consentry/consentry/pipeline"
)

// kanonParts is the collector's side of k-anonymity (package
// anonymizer/kanon): the router that lets rows of published classes
// through to the public tables and holds the rest back, the loop that
// keeps the router current, and the release loop that publishes held
// rows. Without k-anonymity (k of 1) it lets every row through and runs
// no loops.
type kanonParts struct {
	cfg      kanon.Config
	log      *zap.Logger
	client   *clickhouse.Client
	router   *kanon.Router // nil when k-anonymity is off
	releaser *kanon.Releaser
	loops    loops
	// held counts the rows held back since start.
	held atomic.Uint64
}

// kanonConfig returns the k-anonymity configuration of cfg, with the
// collector's clock and acceptance window.
func kanonConfig(cfg Config) kanon.Config {
	k := cfg.Anonymizer.Generalize
	if k.Now == nil {
		k.Now = cfg.Anonymizer.Now
	}
	if k.MaxAge == 0 && cfg.Validation.MaxAge > 0 {
		k.MaxAge = cfg.Validation.MaxAge
	}
	return k.WithDefaults()
}

// startKanon loads the published classes and starts the refresh, release
// and prune loops, when k-anonymity is on.
func startKanon(ctx context.Context, cfg Config, client *clickhouse.Client) (_ *kanonParts, err error) {
	k := &kanonParts{cfg: kanonConfig(cfg), log: cfg.Logger.Named("kanon"), client: client}
	k.loops.log = k.log
	if !k.cfg.Enabled() {
		return k, nil
	}
	defer func() {
		if err != nil {
			k.loops.stop()
		}
	}()
	k.router = kanon.NewRouter()
	last, err := kanon.RefreshRouter(ctx, client, k.router, k.cfg, time.Time{})
	if err != nil {
		return nil, err
	}
	if k.releaser, err = kanon.NewReleaser(kanon.ReleaserConfig{Config: k.cfg, Store: client, Logger: k.log.Named("release")}); err != nil {
		return nil, err
	}
	k.loops.goLoop("kanon-refresh", func(ctx context.Context) error { return k.refresh(ctx, last) })
	k.loops.goLoop("kanon-release", k.releaser.Run)
	k.loops.goLoop("kanon-prune", k.prune)
	return k, nil
}

// refresh reloads the published classes every RefreshInterval.
func (k *kanonParts) refresh(ctx context.Context, last time.Time) error {
	failing := false
	every.Tick(ctx, k.cfg.RefreshInterval, false, func(ctx context.Context) {
		next, err := kanon.RefreshRouter(ctx, k.client, k.router, k.cfg, last)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Harmless for privacy: rows of classes not yet known are
			// held, and the release publishes them.
			k.log.Warn("refreshing published classes failed; rows of new classes are held meanwhile", zap.Error(err))
			failing = true
		case err == nil:
			last, failing = next, false
		}
	})
	return nil
}

// prune drops old release slots and log partitions hourly (servers
// without TTL need it).
func (k *kanonParts) prune(ctx context.Context) error {
	every.Tick(ctx, time.Hour, false, func(ctx context.Context) {
		if err := k.client.PruneKanon(ctx, time.Now()); err != nil && ctx.Err() == nil {
			k.log.Warn("pruning k-anonymity tables failed", zap.Error(err))
		}
	})
	return nil
}

// split returns the rows that may be stored now and those to hold.
func (k *kanonParts) split(rows *pipeline.Rows) (public, held *pipeline.Rows) {
	if k == nil || k.router == nil {
		return rows, nil
	}
	public, held = k.router.Split(rows)
	if held != nil {
		k.held.Add(uint64(held.Len()))
	}
	return public, held
}

// inserter wraps the spool's inserter: rows of published classes go to
// next, the others to the held tables, both with the record's token.
// Held rows of a consent erased meanwhile are never published: release
// passes leave them out and delete them.
func (k *kanonParts) inserter(next spool.Inserter) spool.Inserter {
	if k == nil || k.router == nil {
		return next
	}
	return kanonInserter{k: k, next: next}
}

// kanonInserter is the spool.Inserter that holds rows back.
type kanonInserter struct {
	k    *kanonParts
	next spool.Inserter
}

// Insert implements spool.Inserter.
func (i kanonInserter) Insert(ctx context.Context, rows *pipeline.Rows, token string) error {
	public, held := i.k.split(rows)
	if held != nil {
		if err := i.k.client.InsertHeld(ctx, held, token); err != nil {
			return err
		}
	}
	return i.next.Insert(ctx, public, token)
}

// enabled reports whether rows may be held back.
func (k *kanonParts) enabled() bool { return k != nil && k.router != nil }

// register exposes the router's size and the rows held.
func (k *kanonParts) register(m *metrics.Metrics) {
	if k.router == nil {
		return
	}
	m.Gauge("kanon_published_classes", "Combinations of quasi-identifiers published exactly that this replica routes rows to directly (per app and day, within --max-event-age).",
		func() float64 { return float64(k.router.Len()) })
	m.Counter("kanon_held_rows_total", "Rows held back since start because fewer than --generalize-k consents shared their combination of quasi-identifiers; a release publishes them.",
		func() float64 { return float64(k.held.Load()) })
}

// close stops the loops; a release pass in progress is cancelled, and the
// next one (on any replica) completes it.
func (k *kanonParts) close(context.Context) error {
	k.loops.stop()
	return nil
}

// privacyCounter counts scrub detections and consent events in the
// privacy counts table, for consentry privacy-report.
type privacyCounter struct{ c *clickhouse.PrivacyCounts }

// CountDetections implements anonymizer.DetectionCounter.
func (p privacyCounter) CountDetections(app, detector string, n int) {
	p.c.Count(app, clickhouse.CountScrub, detector, n)
}

// CountConsentEvent implements consent.EventCounter.
func (p privacyCounter) CountConsentEvent(app, event string) {
	p.c.Count(app, clickhouse.CountConsent, event, 1)
}
