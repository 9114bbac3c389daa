package kanon

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	// DefaultK is the number of distinct consents of an app and day that
	// every stored combination of quasi-identifiers is shared by.
	DefaultK = 10
	// DefaultDelay is how long a row whose class is not yet published
	// waits for k consents before it is published generalized.
	DefaultDelay = time.Hour
	// DefaultReleaseInterval is how often a release pass runs.
	DefaultReleaseInterval = 30 * time.Second
	// DefaultRefreshInterval is how often a replica reloads the classes
	// published exactly, which it routes rows straight to.
	DefaultRefreshInterval = 5 * time.Second
	// DefaultSettle is how long a replica waits after claiming a release
	// slot before it reads who won the slot.
	DefaultSettle = 3 * time.Second
	// DefaultMaxAge is how far back in event days the published classes
	// are kept for routing: the collector's acceptance window.
	DefaultMaxAge = 14 * 24 * time.Hour
)

// Config configures k-anonymity over the stored rows. The zero Config,
// after defaults, holds rows back until ten consents share their
// combination, for at most an hour.
type Config struct {
	// K is the number of distinct consents of an app and UTC day that
	// every stored combination of quasi-identifiers must be shared by.
	// 0 means DefaultK; 1 turns k-anonymity off (every row is stored as
	// it is, at once).
	K int
	// Delay is how long a row whose exact combination has fewer than K
	// consents is held before the release publishes it at the finest
	// level of Hierarchy whose class reaches K (the top level at the
	// latest). 0 means DefaultDelay.
	Delay time.Duration
	// Hierarchy is the order in which attributes are generalized; the
	// zero value is DefaultHierarchy.
	Hierarchy Hierarchy
	// ReleaseInterval is how often a release pass runs (on one replica at
	// a time): the length of the slots replicas claim. A pass that needs
	// longer holds the next slots if it can claim them a second ahead,
	// which takes an interval of at least a second more than Settle
	// (Releaser.Run). 0 means DefaultReleaseInterval.
	ReleaseInterval time.Duration
	// RefreshInterval is how often a replica reloads the combinations
	// published exactly. 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Settle is how long a replica waits between claiming a release slot
	// and reading who won it; at least two seconds with ClickHouse,
	// whose clock has whole seconds (see Releaser.Run). 0 means
	// DefaultSettle, or a third of ReleaseInterval if that is less.
	Settle time.Duration
	// MaxAge is the oldest event day, before today, whose published
	// classes are kept in memory for routing: the acceptance window for
	// events (older days cannot receive rows). 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Enabled reports whether c asks for k-anonymity (K above 1).
func (c Config) Enabled() bool { return c.withDefaults().K > 1 }

// WithDefaults returns c with its zero fields set to the defaults, for
// callers that run the loops themselves (the collector).
func (c Config) WithDefaults() Config { return c.withDefaults() }

func (c Config) withDefaults() Config {
	c.K = cmp.Or(c.K, DefaultK)
	c.Delay = cmp.Or(c.Delay, DefaultDelay)
	c.Hierarchy = c.Hierarchy.orDefault()
	c.ReleaseInterval = cmp.Or(c.ReleaseInterval, DefaultReleaseInterval)
	c.RefreshInterval = cmp.Or(c.RefreshInterval, DefaultRefreshInterval)
	c.Settle = cmp.Or(c.Settle, min(DefaultSettle, c.ReleaseInterval/3))
	c.MaxAge = cmp.Or(c.MaxAge, DefaultMaxAge)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.K < 1 {
		errs = append(errs, fmt.Errorf("k %d: must be at least 1", c.K))
	}
	if c.Delay < time.Second {
		errs = append(errs, fmt.Errorf("delay %v: must be at least a second", c.Delay))
	}
	if c.ReleaseInterval < 100*time.Millisecond || c.RefreshInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("release and refresh intervals must be at least 100ms"))
	}
	if c.Settle < 0 || c.Settle >= c.ReleaseInterval {
		errs = append(errs, fmt.Errorf("settle %v: must be below the release interval %v", c.Settle, c.ReleaseInterval))
	}
	if c.MaxAge < 0 {
		errs = append(errs, errors.New("max age must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kanon config: %w", err)
	}
	return nil
}
