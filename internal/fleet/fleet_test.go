package fleet

import (
	"testing"
)

// TestCohorts checks that devices in cohorts share their quasi-identifiers
// in groups at least Cohort strong, and that without cohorts they are
// drawn one by one.
func TestCohorts(t *testing.T) {
	for _, tc := range []struct {
		devices, cohort, groups int
	}{
		{40, 10, 4},
		{25, 10, 2}, // 13 and 12 devices
		{5, 10, 1},  // fewer devices than a cohort: one cohort
		{12, 1, 0},
	} {
		cfg := Config{Devices: tc.devices, Cohort: tc.cohort, Seed: 3}.withDefaults()
		devs := cfg.devices()
		if len(devs) != tc.devices {
			t.Fatalf("%+v: %d devices", tc, len(devs))
		}
		sizes := make(map[device]int)
		for _, d := range devs {
			sizes[d]++
		}
		if tc.groups == 0 {
			// Spread around their cities, no two alike.
			if len(sizes) != tc.devices {
				t.Errorf("%+v: %d distinct devices, want %d", tc, len(sizes), tc.devices)
			}
			continue
		}
		if len(sizes) > tc.groups {
			t.Errorf("%+v: %d distinct devices, want at most %d cohorts", tc, len(sizes), tc.groups)
		}
		for d, n := range sizes {
			if n < min(tc.cohort, tc.devices) {
				t.Errorf("%+v: cohort %+v has %d devices, want at least %d", tc, d, n, tc.cohort)
			}
		}
	}
	// The same seed makes the same fleet.
	a := Config{Devices: 20, Cohort: 10, Seed: 9}.withDefaults().devices()
	b := Config{Devices: 20, Cohort: 10, Seed: 9}.withDefaults().devices()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("device %d differs between runs of one seed", i)
		}
	}
}
