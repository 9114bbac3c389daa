package chtest

import (
	"testing"
	"time"
)

func TestUntilUTCMidnight(t *testing.T) {
	vienna := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{time.Date(2026, 12, 5, 23, 59, 30, 0, time.UTC), 30 * time.Second},
		{time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), 12 * time.Hour},
		// 00:30 in Vienna is 23:30 UTC: half an hour to go.
		{time.Date(2026, 12, 6, 0, 30, 0, 0, vienna), 30 * time.Minute},
	} {
		if got := untilUTCMidnight(tc.now); got != tc.want {
			t.Errorf("untilUTCMidnight(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}
