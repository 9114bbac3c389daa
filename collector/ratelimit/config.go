package ratelimit

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Bounds on the configuration, so that the bucket arithmetic (nanoseconds in
// an int64) cannot overflow.
const (
	// MaxEventsPerSecond bounds every rate: one event per nanosecond.
	MaxEventsPerSecond = 1e9
	// MaxRefill bounds the time an empty bucket takes to fill,
	// burst/rate, for every rate.
	MaxRefill = 365 * 24 * time.Hour
)

// Config configures the limiter. Zero fields take their defaults.
type Config struct {
	// EventsPerSecond is the sustained rate each app may send, in events
	// per second. 0 means unlimited, the default.
	EventsPerSecond float64
	// Burst is how many events an app may send at once after being idle:
	// the size of its bucket. 0 means, for each app, twice its rate
	// rounded up, but at least MaxBatchEvents, so that every batch the
	// limits stage admits can fit. A batch larger than the burst is
	// refused with ErrExceedsBurst.
	Burst int
	// MaxBatchEvents is the largest batch the limits stage admits; it only
	// sets the default Burst. Default consentryv1.DefaultMaxBatchEvents.
	MaxBatchEvents int
	// Overrides sets the rate of individual apps, by app id, replacing
	// EventsPerSecond for them; 0 means unlimited. New copies the map.
	Overrides map[string]float64
	// MaxApps bounds how many apps the limiter tracks, and so its memory.
	// When a new app would exceed it, the least recently used app is
	// forgotten: its bucket is full again the next time it sends. Default
	// 10000.
	MaxApps int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults: unlimited rates, bounded tracking.
func DefaultConfig() Config {
	return Config{
		MaxBatchEvents: consentryv1.DefaultMaxBatchEvents,
		MaxApps:        10000,
		Now:            time.Now,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxBatchEvents = cmp.Or(c.MaxBatchEvents, d.MaxBatchEvents)
	c.MaxApps = cmp.Or(c.MaxApps, d.MaxApps)
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}

// burst returns the bucket size for an app limited to rate events per
// second.
func (c Config) burst(rate float64) int {
	if c.Burst > 0 {
		return c.Burst
	}
	return max(int(math.Ceil(2*rate)), c.MaxBatchEvents)
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Burst < 0:
		return fmt.Errorf("ratelimit: burst %d is negative", c.Burst)
	case c.MaxBatchEvents < 1:
		return fmt.Errorf("ratelimit: max batch events %d is below 1", c.MaxBatchEvents)
	case c.MaxApps < 1:
		return fmt.Errorf("ratelimit: max apps %d is below 1", c.MaxApps)
	}
	if err := c.validRate(c.EventsPerSecond); err != nil {
		return fmt.Errorf("ratelimit: events per second: %w", err)
	}
	for app, rate := range c.Overrides {
		if !consentryv1.ValidAppID(app) {
			return fmt.Errorf("ratelimit: override for app %q: %w", app, pipeline.ErrAppIDInvalid)
		}
		if err := c.validRate(rate); err != nil {
			return fmt.Errorf("ratelimit: override for app %q: %w", app, err)
		}
	}
	return nil
}

// validRate reports whether rate is 0 (unlimited) or a usable limit.
func (c Config) validRate(rate float64) error {
	switch {
	case rate == 0:
		return nil
	case math.IsNaN(rate) || rate < 0 || rate > MaxEventsPerSecond:
		return fmt.Errorf("%v is not in [0, %g]", rate, MaxEventsPerSecond)
	}
	if refill := float64(c.burst(rate)) / rate; refill > MaxRefill.Seconds() {
		return fmt.Errorf("%g events/s with a burst of %d takes %.0fs to refill, more than %v", rate, c.burst(rate), refill, MaxRefill)
	}
	return nil
}
