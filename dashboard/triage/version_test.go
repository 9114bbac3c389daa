package triage

import (
	"slices"
	"strings"
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

func TestValidVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"4.13.1": true, "4": true, "4.14.0-beta.2": true, "2024.11+7": true, "4.12.0-rc1+build.5": true, "10.0.0.1234": true,
		"": false, "other": false, "v4.13": false, "4..1": false, "4.": false, ".4": false, "4.13.1-": false, "4.13 1": false,
		"4.13.1-<b>": false, "4.13.1-.x": false, "４.13": false, strings.Repeat("1", 65): false,
	} {
		if got := ValidVersion(v); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNextVersions(t *testing.T) {
	tests := []struct {
		seen []string
		want []string
	}{
		{[]string{"4.12.0", "4.13.0", "4.12.1"}, []string{"4.13.1", "4.14.0", "5.0.0"}},
		{[]string{"4.9.3", "4.10.0", "other"}, []string{"4.10.1", "4.11.0", "5.0.0"}},
		{[]string{"4.13"}, []string{"4.13.1", "4.14.0", "5.0.0"}},
		{[]string{"2.0.0-beta.1", "1.9.0"}, []string{"1.9.1", "1.10.0", "2.0.0"}},
		{[]string{"7.1.0.42"}, []string{"7.1.0.43", "7.2.0", "8.0.0"}},
		{[]string{"other", ""}, nil},
	}
	for _, tt := range tests {
		if got := NextVersions(tt.seen); !slices.Equal(got, tt.want) {
			t.Errorf("NextVersions(%v) = %v, want %v", tt.seen, got, tt.want)
		}
	}
}

func TestMajorVersion(t *testing.T) {
	for v, want := range map[string]string{"4.12.0": "4", "10": "10", "2024.11-beta": "2024", "other": "", "": ""} {
		if got := MajorVersion(v); got != want {
			t.Errorf("MajorVersion(%q) = %q, want %q", v, got, want)
		}
	}
}
