package scrub

import (
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinearTime scrubs long repetitions of adversarial patterns: the
// work each takes must be linear in its length, so that no input can make
// the scrubber slow.
//
// Work is counted, not timed by the wall clock, which a busy machine
// stretches at random: the CPU time of the scrubbing thread alone (the
// goroutine is locked to it, so other processes and goroutines do not
// count) and the bytes allocated, which are exact.
func TestLinearTime(t *testing.T) {
	patterns := []string{
		"1.1:", "a:.", "eyJa-", "AIza-", "xoxb-", "glpat-", "SG.aaaa-", "a@", "a.", "@a.", "user=", "user-",
		"-", "Bearer a", "token ", "::a", "a::", "1 ", "1-", "0", "00 ", "(1) ", "+1 ", "1.", "1,", "DE89 ",
		"AT61", "/Users/", "/home/", `C:\Users\ a`, "lat=1.123 ", "1.123, ", "-1.123,", "a/", "Aa1/", "Aa1+",
		"x ", "\"user_id\":\"", "ID: ", "a b: ", "%40a.", "a%40", "[email]", "12:", "4111 ", "ab:", "ab-",
		"001a.", "\\\"", "=", "phone ", "v 1.2.3.4 ", "a (1.2.3.4) ", "a/1.2.3.4", "3F2504E0-", "Cookie: a",
		"ab cd ", "Aa0", "x-", "q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI/",
		"q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uIé", "q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI.0é", "1.1.1.1..0::", "1.1.1.1..0:0:0:0:0:0:0:0:0:0:0:0:0:", "0:1:2:3:4:5:6:7:8:9:a:b:c:d:e:f:",
		"DE 89 ", "DE89-", "DE89.0", "LC55 ", "N 48.20849 ", "48.20849 N, ", "1.123N ", "0:1a:", "138 0013 ", "a://a:", "a://:a@", "x://a:b@c/", "A's iPad ", "Abs-iphone-", "DE89370400440532013000-abc-", "3F2504E0-4F89-41D3-9A0C-0305E82C3301-a-", "Abs-iphone ", "a(at)b ", "(dot)", "8989 ", "8989-", "00008030-", "00008030-001A2D3E0C12802E-", "/storage/1A2B-", "/data/app/~~R4nd0mB4se64xyz==/a-", strings.Repeat("0", 70) + "%0@a.aa ",
		"logged in as ", "signed in as @", "logged in user a", "@ab1 ", "cc @a, ", "@" + strings.Repeat("a", 40), "as @a1b2.",
		"network 'a' ", "wifi: a-1 ", "a name: A ", "wifi=A ", "network \"", "/invite?ref=a&ref=", "/join?" + strings.Repeat("a", 250) + "&code=x&",
		"groups=1(a),", ",1(a)", "uid=1(ab)", "gid=1(", "=1(" + strings.Repeat("a", 63),
	}
	s := New(Config{})
	for _, p := range patterns {
		small := strings.Repeat(p, 2000)
		large := strings.Repeat(p, 32000)
		ws := measure(t, func() { s.String(small) })
		wl := measure(t, func() { s.String(large) })
		// 16 times the input may take 16 times the work, with slack for
		// the caches of a larger input and for the clock's granularity.
		if wl.cpu > 20*time.Millisecond && wl.cpu > 40*ws.cpu {
			t.Errorf("pattern %q: %v of CPU for %d bytes but %v for %d bytes", p, ws.cpu, len(small), wl.cpu, len(large))
		}
		// Under -race, sync.Pool drops buffers at random: bytes say nothing.
		if !raceEnabled && wl.bytes > 1<<16 && wl.bytes > 24*ws.bytes {
			t.Errorf("pattern %q: %d bytes allocated for %d bytes but %d for %d bytes", p, ws.bytes, len(small), wl.bytes, len(large))
		}
	}
}

// work is what one call cost.
type work struct {
	cpu   time.Duration // CPU time of the calling thread
	bytes uint64        // heap bytes allocated
}

// measure returns the least CPU time and the fewest bytes allocated of
// three runs of f, the CPU time counted on the calling goroutine's own
// thread. Tests of this package do not run in parallel, so the heap's
// count is f's alone.
func measure(t *testing.T, f func()) work {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := work{cpu: time.Duration(math.MaxInt64), bytes: math.MaxUint64}
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := threadCPU(t)
		f()
		d := threadCPU(t) - start
		runtime.ReadMemStats(&after)
		w.cpu = min(w.cpu, d)
		w.bytes = min(w.bytes, after.TotalAlloc-before.TotalAlloc)
	}
	return w
}

// threadCPU returns the CPU time the calling thread has used.
func threadCPU(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
