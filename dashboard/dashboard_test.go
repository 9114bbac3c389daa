package dashboard

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/dashboard/triage"
)

func TestNewRefusesToServeWithoutCredentials(t *testing.T) {
	store := &triage.Store{}
	tests := []struct {
		name  string
		cfg   Config
		error string
	}{
		{"no store", Config{Credentials: map[string]string{"a": "correct-horse-1"}}, "Store is required"},
		{"no credentials", Config{Store: store}, "no credentials"},
		{"short password", Config{Store: store, Credentials: map[string]string{"a": "short"}}, "at least 12"},
		{"bad user", Config{Store: store, Credentials: map[string]string{"a b": "correct-horse-1"}}, "plain name"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.error) {
			t.Errorf("%s: New = %v, want %q", tt.name, err, tt.error)
		}
	}
	if _, err := New(Config{Store: store, Credentials: map[string]string{"a": "correct-horse-1"}}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		counts []uint64
		points string
	}{
		{nil, ""},
		{[]uint64{0, 0}, `points="0.0,23.0 120.0,23.0 "`},
		{[]uint64{0, 5, 10}, `points="0.0,23.0 60.0,12.0 120.0,1.0 "`},
		{[]uint64{7}, `points="60.0,1.0 "`},
	}
	for _, tt := range tests {
		got := string(sparkline(tt.counts))
		if !strings.HasPrefix(got, "<svg") || !strings.Contains(got, tt.points) {
			t.Errorf("sparkline(%v) = %s, want %s", tt.counts, got, tt.points)
		}
	}
}
