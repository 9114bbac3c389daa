package collector

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/pipeline"
)

// erasedWindow is how far back the erased consents are kept: longer than
// any batch stays in a spool.
const erasedWindow = 30 * 24 * time.Hour

// erasedKeys holds the consent keys whose rows were erased, refreshed
// from the erasures table. Rows accepted just before a revocation with
// erasure can sit in the spool past the erasure (and its resweep, when
// ClickHouse is away); the shipper drops them instead of storing them.
type erasedKeys struct {
	keys atomic.Pointer[map[string]struct{}]
}

// has reports whether key's rows were erased.
func (e *erasedKeys) has(key string) bool {
	m := e.keys.Load()
	if m == nil || key == "" {
		return false
	}
	_, ok := (*m)[key]
	return ok
}

// refresh reloads the keys.
func (e *erasedKeys) refresh(ctx context.Context, c *clickhouse.Client) error {
	keys, err := c.ErasedConsentKeys(ctx, time.Now().Add(-erasedWindow))
	if err != nil {
		return err
	}
	e.keys.Store(&keys)
	return nil
}

// run refreshes the keys every interval until ctx ends.
func (e *erasedKeys) run(ctx context.Context, c *clickhouse.Client, interval time.Duration, log *zap.Logger) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.refresh(ctx, c); err != nil && ctx.Err() == nil {
			log.Warn("refreshing erased consents failed; will retry", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// filter returns rows without the rows of erased consents; rows itself,
// without copying, when it holds none.
func (e *erasedKeys) filter(rows *pipeline.Rows) *pipeline.Rows {
	if m := e.keys.Load(); m == nil || len(*m) == 0 {
		return rows
	}
	out := pipeline.Rows{
		Sessions:    drop(rows.Sessions, func(r *pipeline.SessionRow) bool { return e.has(r.ConsentKey) }),
		Gestures:    drop(rows.Gestures, func(r *pipeline.GestureRow) bool { return e.has(r.ConsentKey) }),
		Crashes:     drop(rows.Crashes, func(r *pipeline.CrashRow) bool { return e.has(r.ConsentKey) }),
		Customs:     drop(rows.Customs, func(r *pipeline.CustomRow) bool { return e.has(r.ConsentKey) }),
		Diagnostics: drop(rows.Diagnostics, func(r *pipeline.DiagnosticRow) bool { return e.has(r.ConsentKey) }),
	}
	if out.Len() == rows.Len() {
		return rows
	}
	return &out
}

// drop returns rows without those erased reports, rows itself if none.
func drop[R any](rows []R, erased func(*R) bool) []R {
	first := slices.IndexFunc(rows, func(r R) bool { return erased(&r) })
	if first < 0 {
		return rows
	}
	out := slices.Clone(rows[:first])
	for i := first + 1; i < len(rows); i++ {
		if !erased(&rows[i]) {
			out = append(out, rows[i])
		}
	}
	return out
}
