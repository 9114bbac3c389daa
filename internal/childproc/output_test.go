package childproc

import (
	"slices"
	"strings"
	"testing"
)

func TestOutput(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		lines  []string // passed to onLine, after Flush
		kept   string
	}{
		{"lines split across writes", []string{"one\ntw", "o\nthr", "ee!!"}, []string{"one", "two", "three!!"}, "ne\ntwo\nthree!!"},
		{"empty lines", []string{"\n\na\n"}, []string{"", "", "a"}, "\n\na\n"},
		{"runaway line", []string{"0123456789abcdef", "gh\n"}, []string{"0123456789abcdef", "gh"}, "56789abcdefgh\n"},
		{"nothing", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			w := NewOutput(14, func(l string) { lines = append(lines, l) })
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			w.Flush()
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("lines %q, want %q", lines, tt.lines)
			}
			if got := w.String(); got != tt.kept || len(got) > 14 {
				t.Errorf("kept %q, want %q", got, tt.kept)
			}
			if strings.Contains(strings.Join(lines, ""), "\n") {
				t.Errorf("a line passed on holds a newline: %q", lines)
			}
		})
	}
}
