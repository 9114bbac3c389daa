package collector

import (
	"strings"
	"testing"
	"time"
)

// TestErasureWatchConfig: negative intervals are refused (a ticker of
// one would panic), zero means the defaults.
func TestErasureWatchConfig(t *testing.T) {
	for _, c := range []Config{{MutationCheckInterval: -time.Second}, {StalledMutationAge: -time.Minute}} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "mutation") {
			t.Errorf("Validate(%v, %v) = %v, want the negative duration refused", c.MutationCheckInterval, c.StalledMutationAge, err)
		}
	}
	if err := (Config{}).Validate(); err != nil && strings.Contains(err.Error(), "mutation") {
		t.Errorf("the zero config: %v", err)
	}
	w := newErasureWatch(nil, nil, 0, 0)
	if w.interval != DefaultMutationCheckInterval || w.age != DefaultStalledMutationAge {
		t.Errorf("defaults: %v, %v", w.interval, w.age)
	}
}
