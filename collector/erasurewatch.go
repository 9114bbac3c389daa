package collector

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/internal/every"
)

const (
	// DefaultMutationCheckInterval is how often the collector looks for
	// deletions ClickHouse has not finished, and for detached parts.
	DefaultMutationCheckInterval = time.Minute
	// DefaultStalledMutationAge is how long after it was made an
	// unfinished deletion counts as stalled: an erasure takes seconds,
	// and a deletion queued behind a heavy load's merges some minutes.
	DefaultStalledMutationAge = 10 * time.Minute
)

// maxLoggedParts is how many detached parts a log line names; the line
// counts them all.
const maxLoggedParts = 20

// erasureWatch reports what keeps erasures from reaching rows: the
// deletions ClickHouse has not finished long after they were made, with
// the damaged parts that hold them up (see clickhouse.StalledMutation),
// and the parts in the tables' detached folders, whose rows no erasure
// and no TTL reaches (see clickhouse.DetachedPart). For each, a log line
// when what is found changes, and gauges an alert watches.
type erasureWatch struct {
	client   *clickhouse.Client
	log      *zap.Logger
	interval time.Duration
	age      time.Duration

	stalled  atomic.Int64 // unfinished deletions older than age
	damaged  atomic.Int64 // parts found damaged
	detached atomic.Int64 // detached parts

	// Owned by the loop.
	logged       map[string]string   // by server and table: what was logged
	scanned      map[string][]string // by server, table and oldest deletion: damaged parts
	detachedSeen string              // the detached parts last logged
	detachedErr  bool                // whether a failure to list them was logged
}

func newErasureWatch(client *clickhouse.Client, log *zap.Logger, interval, age time.Duration) *erasureWatch {
	return &erasureWatch{
		client: client, log: log,
		interval: cmp.Or(interval, DefaultMutationCheckInterval),
		age:      cmp.Or(age, DefaultStalledMutationAge),
		logged:   map[string]string{}, scanned: map[string][]string{},
	}
}

// run checks every interval until ctx ends.
func (w *erasureWatch) run(ctx context.Context) error {
	every.Tick(ctx, w.interval, true, func(ctx context.Context) {
		w.checkMutations(ctx)
		w.checkDetached(ctx)
	})
	return nil
}

// checkMutations looks for stalled deletions once.
func (w *erasureWatch) checkMutations(ctx context.Context) {
	found, err := w.client.StalledMutations(ctx, w.age)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("looking for stalled deletions failed", zap.Error(err))
		}
		if len(found) == 0 {
			return // keep what was reported
		}
	}
	var stalled, damaged int64
	seen := make(map[string]bool, len(found))
	scanned := make(map[string][]string, len(found))
	for _, m := range found {
		key := m.Server + "\x00" + m.Table
		if m.Server == "" && !w.client.Dialect().Modern {
			// The server does not say which part failed (before 21.8):
			// read them, once per stall (a new oldest deletion is a new
			// stall).
			scan := key + "\x00" + m.Oldest.String()
			parts, ok := w.scanned[scan]
			if !ok {
				var serr error
				if parts, serr = w.client.DamagedParts(ctx, m.Table); serr != nil {
					if ctx.Err() == nil {
						w.log.Warn("looking for damaged parts failed", zap.String("table", m.Table), zap.Error(serr))
					}
					return
				}
			}
			scanned[scan], m.Damaged = parts, parts
		}
		stalled += int64(m.Count)
		damaged += int64(len(m.Damage()))
		seen[key] = true
		if desc := m.String(); w.logged[key] != desc {
			w.logged[key] = desc
			w.log.Error("ClickHouse has not finished deletions of a table: erasures of it wait until the parts to blame are repaired or removed (docs/operations.md#a-damaged-clickhouse-part)",
				zap.String("table", m.Table), zap.String("stalled", desc), zap.Strings("damaged_parts", m.Damage()))
		}
	}
	if err == nil {
		for key, desc := range w.logged {
			if !seen[key] {
				w.log.Info("stalled deletions finished", zap.String("was", desc))
				delete(w.logged, key)
			}
		}
	}
	w.scanned = scanned
	w.stalled.Store(stalled)
	w.damaged.Store(damaged)
}

// checkDetached looks for detached parts once. A server that cannot
// tell (before 19.8, its data on another machine) is logged once, and
// counts none.
func (w *erasureWatch) checkDetached(ctx context.Context) {
	parts, err := w.client.DetachedParts(ctx)
	switch {
	case errors.Is(err, clickhouse.ErrDetachedUnknown):
		if !w.detachedErr {
			w.detachedErr = true
			w.log.Info("detached parts are not watched: ClickHouse before 19.8 does not list them, and its data is not on this machine", zap.Error(err))
		}
		return
	case err != nil:
		if ctx.Err() == nil {
			w.log.Warn("looking for detached parts failed", zap.Error(err))
		}
		return
	}
	w.detached.Store(int64(len(parts)))
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.String()
	}
	desc := strings.Join(names, "; ")
	if desc == w.detachedSeen {
		return
	}
	w.detachedSeen = desc
	if len(parts) == 0 {
		w.log.Info("no detached parts left")
		return
	}
	w.log.Warn("parts of the collector's tables are detached: their rows are beyond erasures and the retention TTL until the parts are dropped (docs/operations.md#detached-parts)",
		zap.Int("parts", len(parts)), zap.Strings("detached_parts", names[:min(len(names), maxLoggedParts)]))
}

// register exposes the gauges.
func (w *erasureWatch) register(m *metrics.Metrics) {
	m.Gauge("clickhouse_stalled_mutations", "Deletions (erasures) of the collector's tables that ClickHouse has not finished although they were made over 10 minutes ago (Config.StalledMutationAge), on every server, checked every minute. Erasures of such a table wait until the cause, most often a damaged part, is removed.",
		func() float64 { return float64(w.stalled.Load()) })
	m.Gauge("clickhouse_damaged_parts", "Parts of the collector's tables that ClickHouse cannot read (damaged, cut or missing files), found while deletions stalled.",
		func() float64 { return float64(w.damaged.Load()) })
	m.Gauge("clickhouse_detached_parts", "Parts in the detached folders of the collector's tables, on every server, checked every minute: set aside by ClickHouse (damaged, unexpected) or detached by an operator. Their rows are beyond erasures and the retention TTL until the parts are dropped.",
		func() float64 { return float64(w.detached.Load()) })
}
