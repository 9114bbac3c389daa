package clickhouse

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		modern       bool
		bad          bool
	}{
		{in: "18.16.1", major: 18, minor: 16},
		{in: "19.17.4.11", major: 19, minor: 17},
		{in: "21.3.20.1", major: 21, minor: 3},
		{in: "21.7.11.3", major: 21, minor: 7},
		{in: "21.8.15.7", major: 21, minor: 8, modern: true},
		{in: "21.12.4.1", major: 21, minor: 12, modern: true},
		{in: "22.3.1.1", major: 22, minor: 3, modern: true},
		{in: "24.8.4.13", major: 24, minor: 8, modern: true},
		{in: "26.7.2.1", major: 26, minor: 7, modern: true},
		{in: "23.8.2.7-lts", major: 23, minor: 8, modern: true},
		{in: " 24.3 \n", major: 24, minor: 3, modern: true},
		{in: "", bad: true},
		{in: "24", bad: true},
		{in: "v24.8", bad: true},
		{in: "24.x.1", bad: true},
		{in: "24.8.y", bad: true},
		{in: "-1.2", bad: true},
	}
	for _, tt := range tests {
		d, err := ParseVersion(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseVersion(%q) = %+v, want an error", tt.in, d)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if d.Major != tt.major || d.Minor != tt.minor || d.Modern != tt.modern {
			t.Errorf("ParseVersion(%q) = %d.%d modern=%v, want %d.%d modern=%v", tt.in, d.Major, d.Minor, d.Modern, tt.major, tt.minor, tt.modern)
		}
	}
}
