package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/testclock"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// clock is a fake clock that only moves when told to.
func newClock() *testclock.Clock { return testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// step advances the clock, then asks for n events of app.
type step struct {
	advance time.Duration
	app     string
	n       int
	want    error         // nil, ErrRateLimited or ErrExceedsBurst
	retry   time.Duration // the RetryAfter wanted with ErrRateLimited
}

func TestAllow(t *testing.T) {
	// 10 events/s: a token refills every 100ms; burst 20: 2s from empty to full.
	base := Config{EventsPerSecond: 10, MaxBatchEvents: 20}
	third := time.Duration(math.Round(1e9 / 3)) // one token at 3 events/s
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"burst then refuse", base, []step{
			{app: "a", n: 20},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"one at a time", base, []step{
			{app: "a", n: 10}, {app: "a", n: 10},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
			{advance: 100 * time.Millisecond, app: "a", n: 1},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"refill", base, []step{
			{app: "a", n: 20},
			{advance: time.Second, app: "a", n: 10},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
			{advance: 250 * time.Millisecond, app: "a", n: 2},
			{app: "a", n: 1, want: ErrRateLimited, retry: 50 * time.Millisecond},
		}},
		{"refill stops at burst", base, []step{
			{app: "a", n: 20},
			{advance: time.Hour, app: "a", n: 20},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"refused batch takes nothing", base, []step{
			{app: "a", n: 15},
			{app: "a", n: 10, want: ErrRateLimited, retry: 500 * time.Millisecond},
			{app: "a", n: 5},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"retry delay is exact", base, []step{
			{app: "a", n: 20},
			{app: "a", n: 7, want: ErrRateLimited, retry: 700 * time.Millisecond},
			{advance: 700*time.Millisecond - time.Nanosecond, app: "a", n: 7, want: ErrRateLimited, retry: time.Nanosecond},
			{advance: time.Nanosecond, app: "a", n: 7},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"retry delay is exact at a fractional rate", Config{EventsPerSecond: 3, MaxBatchEvents: 6}, []step{
			{app: "a", n: 6},
			{app: "a", n: 1, want: ErrRateLimited, retry: third},
			{advance: third - time.Nanosecond, app: "a", n: 1, want: ErrRateLimited, retry: time.Nanosecond},
			{advance: time.Nanosecond, app: "a", n: 1},
		}},
		{"retry delay for a whole bucket", base, []step{
			{app: "a", n: 20},
			{app: "a", n: 20, want: ErrRateLimited, retry: 2 * time.Second},
			{advance: 2 * time.Second, app: "a", n: 20},
		}},
		{"batch over burst", base, []step{
			{app: "a", n: 21, want: ErrExceedsBurst},
			{app: "a", n: 20}, // the refusal took nothing
		}},
		{"batch over explicit burst", Config{EventsPerSecond: 10, Burst: 5}, []step{
			{app: "a", n: 6, want: ErrExceedsBurst},
			{app: "a", n: 5},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
		}},
		{"default burst is twice the rate", Config{EventsPerSecond: 100, MaxBatchEvents: 20}, []step{
			{app: "a", n: 200},
			{app: "a", n: 1, want: ErrRateLimited, retry: 10 * time.Millisecond},
			{app: "a", n: 201, want: ErrExceedsBurst},
		}},
		{"default burst fits the largest batch", Config{EventsPerSecond: 1, MaxBatchEvents: 50}, []step{
			{app: "a", n: 50},
			{app: "a", n: 1, want: ErrRateLimited, retry: time.Second},
		}},
		{"apps are independent", base, []step{
			{app: "a", n: 20},
			{app: "a", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
			{app: "b", n: 20},
		}},
		{"overrides", Config{EventsPerSecond: 10, MaxBatchEvents: 20, Overrides: map[string]float64{"big": 100, "free": 0}}, []step{
			{app: "big", n: 200},
			{app: "big", n: 1, want: ErrRateLimited, retry: 10 * time.Millisecond},
			{app: "small", n: 20},
			{app: "small", n: 1, want: ErrRateLimited, retry: 100 * time.Millisecond},
			{app: "free", n: 1 << 30},
			{app: "free", n: 1 << 30},
		}},
		{"override limits one app only", Config{Overrides: map[string]float64{"slow": 1}, MaxBatchEvents: 2}, []step{
			{app: "slow", n: 2},
			{app: "slow", n: 1, want: ErrRateLimited, retry: time.Second},
			{app: "other", n: 1 << 30},
		}},
		{"unlimited by default", Config{}, []step{
			{app: "a", n: 1 << 30},
			{app: "a", n: 1 << 30},
		}},
		{"empty batches are free", base, []step{
			{app: "a", n: 20},
			{app: "a", n: 0},
			{app: "a", n: -1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.cfg.Now = clk.Now
			l, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				clk.Add(s.advance)
				err := l.Allow(s.app, s.n)
				if s.want == nil {
					if err != nil {
						t.Fatalf("step %d: Allow(%q, %d) = %v, want nil", i, s.app, s.n, err)
					}
					continue
				}
				if !errors.Is(err, s.want) {
					t.Fatalf("step %d: Allow(%q, %d) = %v, want %v", i, s.app, s.n, err, s.want)
				}
				var le *Error
				if got := errors.As(err, &le); got != (s.want == ErrRateLimited) {
					t.Fatalf("step %d: errors.As(%v, *Error) = %v", i, err, got)
				}
				if le != nil && le.RetryAfter() != s.retry {
					t.Fatalf("step %d: RetryAfter() = %v, want %v", i, le.RetryAfter(), s.retry)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	clk := newClock()
	l, err := New(Config{EventsPerSecond: 10, MaxBatchEvents: 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Allow("app-1", 20); err != nil {
		t.Fatal(err)
	}
	err = l.Allow("app-1", 5)
	// The edge needs only the sentinel and the RetryAfter method.
	var retry interface{ RetryAfter() time.Duration }
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &retry) || retry.RetryAfter() != 500*time.Millisecond {
		t.Fatalf("err = %v, want ErrRateLimited retrying after 500ms", err)
	}
	var le *Error
	if !errors.As(err, &le) || le.AppID != "app-1" || le.Events != 5 || le.Limit != 10 {
		t.Fatalf("err = %#v, want app-1, 5 events, limit 10", le)
	}
	const want = `rate limited: app "app-1": 5 events exceed its limit of 10 events/s; retry after 500ms`
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}

	err = l.Allow("app-1", 21)
	if !errors.Is(err, ErrExceedsBurst) || errors.Is(err, ErrRateLimited) || errors.As(err, &retry) {
		t.Fatalf("err = %v, want ErrExceedsBurst only", err)
	}
	if !strings.Contains(err.Error(), `app "app-1": 21 events, at most 20 at once`) {
		t.Fatalf("err = %q lacks the sizes", err)
	}
}

func batch(app string, events, dropped int) *pipeline.Batch {
	req := &consentryv1.IngestRequest{Events: make([]*consentryv1.Event, events)}
	b := pipeline.NewBatch(req, time.Now(), netip.Addr{})
	b.AppID = app
	for i := range dropped {
		b.Drop(i, consentryv1.DropReason_DROP_REASON_CONSENT_SCOPE)
	}
	return b
}

func TestProcess(t *testing.T) {
	clk := newClock()
	l, err := New(Config{EventsPerSecond: 10, MaxBatchEvents: 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var st pipeline.Stage = l
	ctx := context.Background()
	tests := []struct {
		name string
		b    *pipeline.Batch
		want error
	}{
		{"fits", batch("a", 10, 0), nil},
		{"dropped events are free", batch("a", 30, 20), nil},
		{"bucket empty", batch("a", 1, 0), ErrRateLimited},
		{"over burst", batch("b", 21, 0), ErrExceedsBurst},
		{"unverified, every event dropped", batch("", 50, 50), nil},
		{"unverified with live events", batch("", 1, 0), errNoApp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropped := tt.b.DroppedCount()
			err := st.Process(ctx, tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Process = %v, want %v", err, tt.want)
			}
			if tt.b.DroppedCount() != dropped {
				t.Fatal("Process dropped events; it refuses batches as a whole")
			}
		})
	}
}

// TestConcurrent checks under -race that concurrent batches never take more
// than the bucket holds.
func TestConcurrent(t *testing.T) {
	const (
		apps       = 8
		goroutines = 16
		burst      = 500
	)
	clk := newClock()
	l, err := New(Config{EventsPerSecond: 1, Burst: burst, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var allowed [apps]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range burst {
				app := (g + i) % apps
				err := l.Allow(fmt.Sprint("app-", app), 1)
				switch {
				case err == nil:
					allowed[app].Add(1)
				case !errors.Is(err, ErrRateLimited):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for app := range allowed {
		if got := allowed[app].Load(); got != burst {
			t.Errorf("app-%d: %d events allowed, want exactly the burst, %d", app, got, burst)
		}
	}
}

// TestConcurrentEviction churns through more apps than the limiter tracks
// from many goroutines, with the clock moving.
func TestConcurrentEviction(t *testing.T) {
	clk := newClock()
	l, err := New(Config{EventsPerSecond: 100, MaxApps: 64, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				if i%100 == 0 {
					clk.Add(time.Millisecond)
				}
				if err := l.Allow(fmt.Sprint("app-", (g*7919+i)%500), 1); err != nil && !errors.Is(err, ErrRateLimited) {
					t.Error(err)
					return
				}
				if n := l.Apps(); n > 64 {
					t.Errorf("tracking %d apps, more than MaxApps 64", n)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEviction(t *testing.T) {
	clk := newClock()
	l, err := New(Config{EventsPerSecond: 1, MaxBatchEvents: 10, MaxApps: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	allow := func(app string, n int, want error) {
		t.Helper()
		if err := l.Allow(app, n); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("Allow(%q, %d) = %v, want %v", app, n, err, want)
		}
	}
	for _, app := range []string{"a", "b", "c"} {
		allow(app, 10, nil) // empties each bucket
	}
	allow("a", 1, ErrRateLimited) // a is now the most recently used
	allow("d", 10, nil)           // forgets b, the least recently used
	if n := l.Apps(); n != 3 {
		t.Fatalf("tracking %d apps, want 3", n)
	}
	allow("a", 1, ErrRateLimited) // a is remembered
	allow("b", 10, nil)           // b was forgotten: full again; forgets c
	allow("d", 1, ErrRateLimited)
	allow("c", 10, nil)
	if n := l.Apps(); n != 3 {
		t.Fatalf("tracking %d apps, want 3", n)
	}

	// Memory stays bounded however many apps send.
	for i := range 100_000 {
		allow(fmt.Sprint("app-", i), 1, nil)
	}
	if n := l.Apps(); n != 3 {
		t.Fatalf("tracking %d apps, want 3", n)
	}
}

func TestUnlimitedAppsAreNotTracked(t *testing.T) {
	l, err := New(Config{Overrides: map[string]float64{"slow": 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := l.Allow(fmt.Sprint("app-", i), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Allow("slow", 1); err != nil {
		t.Fatal(err)
	}
	if n := l.Apps(); n != 1 {
		t.Fatalf("tracking %d apps, want only the limited one", n)
	}
}

func TestOverridesAreCopied(t *testing.T) {
	o := map[string]float64{"a": 1}
	l, err := New(Config{Overrides: o, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	o["a"] = 0
	if err := l.Allow("a", 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Allow("a", 1); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v: changing the caller's map changed the limiter", err)
	}
	if l.Config().Overrides["a"] != 1 {
		t.Fatal("Config().Overrides shares the caller's map")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"zero", Config{}, ""},
		{"typical", Config{EventsPerSecond: 500, Overrides: map[string]float64{"com.example.big": 5000, "free": 0}}, ""},
		{"slow but refills within a year", Config{EventsPerSecond: 1e-3}, ""},
		{"negative rate", Config{EventsPerSecond: -1}, "events per second: -1 is not in"},
		{"NaN rate", Config{EventsPerSecond: math.NaN()}, "NaN is not in"},
		{"infinite rate", Config{EventsPerSecond: math.Inf(1)}, "+Inf is not in"},
		{"refill too slow", Config{EventsPerSecond: 1e-6}, "to refill, more than"},
		{"negative burst", Config{Burst: -1}, "burst -1 is negative"},
		{"negative max apps", Config{MaxApps: -1}, "max apps -1"},
		{"negative max batch", Config{MaxBatchEvents: -1}, "max batch events -1"},
		{"bad override rate", Config{Overrides: map[string]float64{"a": -2}}, `override for app "a": -2 is not in`},
		{"bad override app", Config{Overrides: map[string]float64{"not an id": 1}}, `override for app "not an id": app id invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, apps := range []int{1, 10_000} {
		names := make([]string, apps)
		for i := range names {
			names[i] = fmt.Sprint("app-", i)
		}
		// A rate no loop reaches, so every call is allowed and updates a bucket.
		l, err := New(Config{EventsPerSecond: MaxEventsPerSecond, MaxApps: apps})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint("apps=", apps), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := l.Allow(names[i%apps], 1); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(fmt.Sprint("apps=", apps, "/parallel"), func(b *testing.B) {
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					if err := l.Allow(names[i%apps], 1); err != nil && !errors.Is(err, ErrRateLimited) {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}
