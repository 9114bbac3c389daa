package collector

import (
	"context"
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

// filter returns rows without the rows of erased consents, or rows itself
// when none is erased.
func (e *erasedKeys) filter(rows *pipeline.Rows) *pipeline.Rows {
	m := e.keys.Load()
	if m == nil || len(*m) == 0 {
		return rows
	}
	erased := func(c *pipeline.Common) bool { return e.has(c.ConsentKey) }
	any := false
	for _, check := range []func() bool{
		func() bool {
			return anyRow(rows.Sessions, func(r *pipeline.SessionRow) bool { return erased(&r.Common) })
		},
		func() bool {
			return anyRow(rows.Gestures, func(r *pipeline.GestureRow) bool { return erased(&r.Common) })
		},
		func() bool { return anyRow(rows.Crashes, func(r *pipeline.CrashRow) bool { return erased(&r.Common) }) },
		func() bool {
			return anyRow(rows.Customs, func(r *pipeline.CustomRow) bool { return erased(&r.Common) })
		},
		func() bool {
			return anyRow(rows.Diagnostics, func(r *pipeline.DiagnosticRow) bool { return erased(&r.Common) })
		},
	} {
		any = any || check()
	}
	if !any {
		return rows
	}
	return &pipeline.Rows{
		Sessions:    keep(rows.Sessions, func(r *pipeline.SessionRow) bool { return !erased(&r.Common) }),
		Gestures:    keep(rows.Gestures, func(r *pipeline.GestureRow) bool { return !erased(&r.Common) }),
		Crashes:     keep(rows.Crashes, func(r *pipeline.CrashRow) bool { return !erased(&r.Common) }),
		Customs:     keep(rows.Customs, func(r *pipeline.CustomRow) bool { return !erased(&r.Common) }),
		Diagnostics: keep(rows.Diagnostics, func(r *pipeline.DiagnosticRow) bool { return !erased(&r.Common) }),
	}
}

func anyRow[R any](rows []R, f func(*R) bool) bool {
	for i := range rows {
		if f(&rows[i]) {
			return true
		}
	}
	return false
}

func keep[R any](rows []R, f func(*R) bool) []R {
	var out []R
	for i := range rows {
		if f(&rows[i]) {
			out = append(out, rows[i])
		}
	}
	return out
}
