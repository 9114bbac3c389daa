package scrub

import (
	"strings"
	"testing"
	"time"
)

// TestLinearTime scrubs long repetitions of adversarial patterns: each
// must take time linear in its length, so that no input can make the
// scrubber slow.
func TestLinearTime(t *testing.T) {
	patterns := []string{
		"1.1:", "a:.", "eyJa-", "AIza-", "xoxb-", "glpat-", "SG.aaaa-", "a@", "a.", "@a.", "user=", "user-",
		"-", "Bearer a", "token ", "::a", "a::", "1 ", "1-", "0", "00 ", "(1) ", "+1 ", "1.", "1,", "DE89 ",
		"AT61", "/Users/", "/home/", `C:\Users\ a`, "lat=1.123 ", "1.123, ", "-1.123,", "a/", "Aa1/", "Aa1+",
		"x ", "\"user_id\":\"", "ID: ", "a b: ", "%40a.", "a%40", "[email]", "12:", "4111 ", "ab:", "ab-",
		"001a.", "\\\"", "=", "phone ", "v 1.2.3.4 ", "a (1.2.3.4) ", "a/1.2.3.4", "3F2504E0-", "Cookie: a",
		"ab cd ", "Aa0", "x-", "q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI/",
	}
	s := New(Config{})
	for _, p := range patterns {
		small := strings.Repeat(p, 2000)
		large := strings.Repeat(p, 32000)
		ts := fastest(func() { s.String(small) })
		tl := fastest(func() { s.String(large) })
		// 16 times the input may take 16 times as long, with generous slack
		// for noise on a busy machine.
		if tl > 100*time.Millisecond && tl > 64*ts {
			t.Errorf("pattern %q: %v for %d bytes but %v for %d bytes", p, ts, len(small), tl, len(large))
		}
	}
}

// fastest returns the shortest of three runs of f: a run that the
// machine's other work delayed says nothing about f.
func fastest(f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}
