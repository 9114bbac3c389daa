// Package every runs work at a fixed interval until its context ends: the
// one loop that Consentry's refreshers, watchers and flushers share, so
// that each of them is only the work it does.
package every

import (
	"context"
	"time"
)

// Tick calls f every interval until ctx is done: first at once when
// immediately is true, else one interval from now. A call in progress
// when ctx ends runs to its end (f gets ctx and should return when it is
// done). A call that takes longer than interval delays the next one
// rather than piling up: ticks are dropped, not queued.
func Tick(ctx context.Context, interval time.Duration, immediately bool, f func(context.Context)) {
	if immediately {
		if ctx.Err() != nil {
			return
		}
		f(ctx)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return // both were ready: done wins.
			}
			f(ctx)
		}
	}
}
