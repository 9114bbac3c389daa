package clickhouse

import (
	"slices"
	"strings"
	"testing"
)

func TestExceptionCode(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"Code: 40. DB::Exception: Checksum doesn't match: corrupted data.", 40},
		{"Code: 271, e.displayText() = DB::Exception: Cannot decompress", 271},
		{"Code: 1000", 1000},
		{"", 0},
		{"no code here", 0},
		{"Code: x", 0},
	} {
		if got := exceptionCode(tc.text); got != tc.want {
			t.Errorf("exceptionCode(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

func TestStalledMutationDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    StalledMutation
		want []string
	}{
		{"nothing known", StalledMutation{}, nil},
		{"failed on a damaged part", StalledMutation{FailedPart: "p1", FailureCode: 40}, []string{"p1"}},
		{"failed for another reason", StalledMutation{FailedPart: "p1", FailureCode: 241}, nil},
		{"found by reading", StalledMutation{Damaged: []string{"p2"}}, []string{"p2"}},
		{"both, once each", StalledMutation{FailedPart: "p2", FailureCode: 271, Damaged: []string{"p1", "p2"}}, []string{"p1", "p2"}},
		{"both, different", StalledMutation{FailedPart: "p3", FailureCode: 32, Damaged: []string{"p1"}}, []string{"p1", "p3"}},
	} {
		if got := tc.m.Damage(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Damage() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRedactMarker(t *testing.T) {
	key := "3f1c9a"
	failure := "Code: 47. DB::Exception: Missing columns: 'consent_key' while processing query: 'SELECT 1 WHERE (app_id = 'a') AND (consent_key = '3f1c9a')'"
	if got := redactMarker(failure, key); strings.Contains(got, key) || !strings.Contains(got, "Code: 47") {
		t.Errorf("redactMarker = %q: want the code, and not the key", got)
	}
	if got := redactMarker(failure, ""); got != failure {
		t.Errorf("with no marker: %q", got)
	}
}
