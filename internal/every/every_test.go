package every

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTick(t *testing.T) {
	for _, tc := range []struct {
		name        string
		immediately bool
		wantFirst   bool
	}{
		{"immediately", true, true},
		{"after an interval", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int32
			first := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				Tick(ctx, time.Hour, tc.immediately, func(context.Context) {
					if calls.Add(1) == 1 {
						close(first)
					}
				})
			}()
			select {
			case <-first:
				if !tc.wantFirst {
					t.Fatal("called before the first interval")
				}
			case <-time.After(50 * time.Millisecond):
				if tc.wantFirst {
					t.Fatal("not called at once")
				}
			}
			cancel()
			<-done
		})
	}
}

func TestTickRepeatsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Tick(ctx, time.Millisecond, false, func(context.Context) {
			if calls.Add(1) == 5 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Tick did not return after cancel")
	}
	if n := calls.Load(); n != 5 {
		t.Fatalf("%d calls, want 5 (none after cancel)", n)
	}
}

func TestTickCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	Tick(ctx, time.Millisecond, true, func(context.Context) { called = true })
	if called {
		t.Fatal("called with a context already done")
	}
}
