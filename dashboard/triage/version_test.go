package triage

import (
	"slices"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"4.12.0", "4.12.0", 0},
		{"4.9", "4.10", -1},
		{"4.12", "4.12.1", -1},
		{"4.13.0", "4.12.9", 1},
		{"10.0", "9.9.9", 1},
		{"4.12.0-beta", "4.12.0", 1},
		{"4.12.0-beta.2", "4.12.0-beta.10", -1},
		{"2024.11.3+build7", "2024.11.3+build8", -1},
		{"1.0.a", "1.0.1", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	v := []string{"4.12.1", "4.9.0", "4.12.0", "4.10.2", "4.12"}
	slices.SortFunc(v, CompareVersions)
	if want := []string{"4.9.0", "4.10.2", "4.12", "4.12.0", "4.12.1"}; !slices.Equal(v, want) {
		t.Errorf("sorted %v, want %v", v, want)
	}
}

func TestComparableVersion(t *testing.T) {
	for v, want := range map[string]bool{"4.12.0": true, "other": false, "": false, "v4": false, "2024.1": true} {
		if got := comparableVersion(v); got != want {
			t.Errorf("comparableVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestEscalating(t *testing.T) {
	s := &Store{cfg: Config{EscalateFactor: 2, EscalateMin: 10}}
	tests := []struct {
		name   string
		counts []uint64
		want   bool
	}{
		{"steady", []uint64{5, 5, 5, 5, 5, 5, 5, 5}, false},
		{"ten times today", []uint64{3, 3, 3, 3, 3, 3, 3, 30}, true},
		{"doubled but few", []uint64{2, 2, 2, 2, 2, 2, 2, 8}, false},
		{"new today", []uint64{0, 0, 0, 0, 0, 0, 0, 12}, true},
		{"falling", []uint64{40, 40, 40, 40, 40, 40, 40, 12}, false},
		{"no days", nil, false},
	}
	for _, tt := range tests {
		if got := s.escalating(tt.counts); got != tt.want {
			t.Errorf("%s: escalating(%v) = %v, want %v", tt.name, tt.counts, got, tt.want)
		}
	}
}
