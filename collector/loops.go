package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// loops runs a part's long-running background loops (refreshers,
// watchers) under one context that stop cancels. The zero value is ready
// to use.
type loops struct {
	log    *zap.Logger
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (l *loops) init() {
	l.once.Do(func() { l.ctx, l.cancel = context.WithCancel(context.Background()) })
}

// goLoop runs loop until stop; an error it returns is logged. A loop
// started after stop gets a cancelled context.
func (l *loops) goLoop(name string, loop func(context.Context) error) {
	l.init()
	ctx := l.ctx
	l.wg.Go(func() {
		if err := loop(ctx); err != nil && l.log != nil {
			l.log.Error("background loop failed", zap.String("loop", name), zap.Error(err))
		}
	})
}

// stop cancels the loops and waits for them to return. Safe to call more
// than once and on the zero value.
func (l *loops) stop() {
	l.init()
	l.cancel()
	l.wg.Wait()
}

// cleanup is a stack of closers: New pushes each part's close as the part
// starts, and run closes them in reverse order, on a failed New as on
// Shutdown.
type cleanup struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	name  string
	close func(context.Context) error
}

// push adds close, named for errors, to the stack.
func (c *cleanup) push(name string, close func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, cleanupStep{name, close})
}

// run pops and runs every step, newest first, and joins their errors.
func (c *cleanup) run(ctx context.Context) error {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", steps[i].name, err))
		}
	}
	return errors.Join(errs...)
}
