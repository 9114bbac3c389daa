package scrub

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNumber(t *testing.T) {
	s := New(Config{})
	for _, c := range []struct {
		key  string
		v    int64
		want Kind
	}{
		{"pages", 490154203237518, IMEI},
		{"pages", 15425956777140, IMEI}, // 015425956777140
		{"mode", 4111111111111111, Card},
		{"mode", 376697291903846, Card},
		{"mode", 5018143559202004917, Card},
		{"attempt", 4366412345678, Phone},      // +43 664 1234567
		{"attempt", 14155552671, Phone},        // +1 415 555 2671
		{"attempt", 4155552671, Phone},         // (415) 555-2671
		{"attempt", 919876543210, Phone},       // +91 98765 43210
		{"attempt", 5511987654321, Phone},      // +55 11 98765-4321
		{"attempt", 4915212345670, Phone},      // +49 152 12345670
		{"attempt", 447911123456, Phone},       // +44 7911 123456
		{"attempt", 33612345678, Phone},        // +33 6 12 34 56 78
		{"attempt", 818012345678, Phone},       // +81 80-1234-5678
		{"attempt", 34612345678, Phone},        // +34 612 34 56 78
		{"count", -4366412345678, Phone},       // the sign is no disguise
		{"created_at", 1733350123, 0},          // an epoch time
		{"created_at", 2060000000, 0},          // one in 2035
		{"ts", 1733350123456, 0},               // in milliseconds
		{"size_bytes", 17179869184, 0},         // 16 GiB
		{"version_code", 2026112901, 0},        // a date-based build
		{"count", 12, 0},                       // small numbers
		{"count", 999999999, 0},                // nine digits
		{"x", math.MinInt64, 0},                // no panic
		{"created_at", 4111111111111111, Card}, // a card under any key
	} {
		if got := s.Number(c.key, c.v); got != c.want {
			t.Errorf("Number(%q, %d) = %v, want %v", c.key, c.v, got, c.want)
		}
	}
	off := New(Config{Disabled: []Kind{Phone, Card, IMEI}})
	if k := off.Number("x", 4111111111111111); k != 0 {
		t.Errorf("with the detectors off, Number = %v", k)
	}
	if n := testing.AllocsPerRun(100, func() { s.Number("size_bytes", 4366412345678) }); n != 0 {
		t.Errorf("Number allocates %v times", n)
	}
}

// TestNumberFalsePositives measures how often numbers that apps really
// send as attributes are taken for identifiers: with the key an app
// would give them, and under a key that says nothing ("value"). Run with
// -v for the figures (docs/privacy.md quotes them).
func TestNumberFalsePositives(t *testing.T) {
	s := New(Config{})
	r := rand.New(rand.NewPCG(2026, 12))
	day := func(y int) int64 { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Unix() }
	between := func(lo, hi int64) int64 { return lo + r.Int64N(hi-lo) }
	logUniform := func(lo, hi float64) int64 {
		return int64(math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo))))
	}
	sets := []struct {
		name, key string
		gen       func() int64
		maxKeyed  float64 // the highest share of false positives allowed under the key
	}{
		{"epoch seconds 2015-2032", "created_at", func() int64 { return between(day(2015), day(2033)) }, 0},
		{"epoch seconds 2033-2040", "created_at", func() int64 { return between(day(2033), day(2041)) }, 0},
		{"epoch milliseconds 2015-2040", "timestamp_ms", func() int64 { return between(day(2015), day(2041))*1000 + r.Int64N(1000) }, 0},
		{"epoch microseconds", "ts_us", func() int64 { return between(day(2015), day(2041)) * 1_000_000 }, 0.005},
		{"durations up to a week, ms", "duration_ms", func() int64 { return r.Int64N(7 * 86_400_000) }, 0},
		{"sizes 1 B to 10 TB", "size_bytes", func() int64 { return logUniform(1, 1e13) }, 0.005},
		{"counts 1 to 1e9", "count", func() int64 { return logUniform(1, 1e9) }, 0},
		{"versionCode, semantic", "version_code", func() int64 {
			return int64(r.IntN(30))*1_000_000 + int64(r.IntN(100))*10_000 + int64(r.IntN(100))*100 + int64(r.IntN(100))
		}, 0},
		{"versionCode, yyyyMMddNN", "version_code", func() int64 {
			d := time.Unix(between(day(2015), day(2031)), 0).UTC()
			v, _ := strconv.ParseInt(d.Format("20060102"), 10, 64)
			return v*100 + int64(r.IntN(100))
		}, 0},
		{"prices in cents", "price_cents", func() int64 { return logUniform(1, 1e8) }, 0},
		{"random 31-bit ids", "item_id", func() int64 { return r.Int64N(1 << 31) }, 0.06},
		{"random 63-bit hashes", "hash", func() int64 { return r.Int64() }, 0.05},
	}
	const n = 20000
	for _, set := range sets {
		keyed, neutral := 0, 0
		for range n {
			v := set.gen()
			if s.Number(set.key, v) != 0 {
				keyed++
			}
			if s.Number("value", v) != 0 {
				neutral++
			}
		}
		fk, fn := float64(keyed)/n, float64(neutral)/n
		t.Logf("%-30s under %-14q %6.2f%% taken for identifiers; under \"value\" %6.2f%%", set.name, set.key, 100*fk, 100*fn)
		if fk > set.maxKeyed {
			t.Errorf("%s under %q: %.2f%% false positives, want at most %.2f%%", set.name, set.key, 100*fk, 100*set.maxKeyed)
		}
	}
}

// TestBareNationalNumbersInText measures both directions of the
// privacy-first rule for phone numbers written without separators (see
// bareNational): how many generated North American, Indian, Brazilian, Chinese,
// Italian and Russian
// numbers are found in the contexts of the adversarial test, and how
// many long numbers of crash logs are taken for phone numbers, with the
// words that say what they are and without. Run with -v for the figures
// (docs/privacy.md quotes them).
func TestBareNationalNumbersInText(t *testing.T) {
	s := New(Config{})
	r := rand.New(rand.NewPCG(14, 2026))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	from := func(set string) string { return string(set[r.IntN(len(set))]) }
	phones := []struct {
		name string
		gen  func() string
	}{
		{"US 10 digits", func() string { return from("23456789") + digits(2) + from("23456789") + digits(6) }},
		{"IN 10 digits", func() string { return from("6789") + digits(9) }},
		{"BR 11 digits", func() string { return from("123456") + "1" + "9" + digits(8) }},
		{"CN 11 digits", func() string { return "1" + from("3456789") + digits(9) }},
		{"IT 10 digits", func() string { return "3" + digits(9) }},
		{"RU 8 + 10 digits", func() string { return "89" + digits(9) }},
	}
	contexts := []string{"%s", "sync failed for %s after 3 attempts", "GET /api/v2/%s/state 404", "ref=%s", "to:%s",
		"retry@%s", "ticket #%s", "failed (%s) code 7", `{"ref":"%s","n":1}`, "line one\n%s\nline three", "a\t%s\tb", "1;%s;2"}
	for _, p := range phones {
		found, total := 0, 0
		for range 2000 {
			v := p.gen()
			in := strings.Replace(contexts[r.IntN(len(contexts))], "%s", v, 1)
			total++
			if !strings.Contains(s.String(in), v) {
				found++
			}
		}
		t.Logf("%-14s found %d of %d in text", p.name, found, total)
		if found != total {
			t.Errorf("%s: %d of %d found", p.name, found, total)
		}
	}
	day := func(y int) int64 { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Unix() }
	long := []struct {
		name    string
		gen     func() int64
		said    []string // texts that say what the number is
		maxSaid float64
	}{
		{"sizes 1 to 100 GB", func() int64 { return 1e9 + r.Int64N(99e9) },
			[]string{"allocated %d bytes", "size: %d", "Bytes before following region: %d", "free=%d", "heap_size=%d"}, 0},
		{"epoch seconds 2015-2032", func() int64 { return day(2015) + r.Int64N(day(2033)-day(2015)) },
			[]string{"ts=%d", "timestamp: %d", "at %d", "expires_at=%d"}, 0},
		{"epoch seconds 2033-2040", func() int64 { return day(2033) + r.Int64N(day(2041)-day(2033)) },
			[]string{"ts=%d", "timestamp: %d", "created_at=%d", "time %d"}, 0},
		{"durations in ms", func() int64 { return 1e9 + r.Int64N(9e9) }, []string{"took %d ms", "duration_ms=%d", "elapsed %d"}, 0},
		{"versionCode yyyyMMddNN", func() int64 {
			v, _ := strconv.ParseInt(time.Unix(day(2015)+r.Int64N(day(2031)-day(2015)), 0).UTC().Format("20060102"), 10, 64)
			return v*100 + int64(r.IntN(100))
		}, []string{"versionCode %d", "build: %d", "version=%d"}, 0},
		{"offsets and hashes", func() int64 { return 1e9 + r.Int64N(1<<34) }, []string{"offset %d", "hash=%d", "crc %d", "checksum: %d"}, 0},
	}
	for _, l := range long {
		said, bare := 0, 0
		const n = 2000
		for range n {
			v := strconv.FormatInt(l.gen(), 10)
			in := strings.Replace(l.said[r.IntN(len(l.said))], "%d", v, 1)
			if !strings.Contains(s.String(in), v) {
				said++
			}
			if !strings.Contains(s.String("value "+v+" seen"), v) {
				bare++
			}
		}
		fs, fb := float64(said)/n, float64(bare)/n
		t.Logf("%-24s taken for phone numbers: %6.2f%% with a word that says what it is, %6.2f%% without", l.name, 100*fs, 100*fb)
		if fs > l.maxSaid {
			t.Errorf("%s: %.2f%% taken for phone numbers with their words", l.name, 100*fs)
		}
	}
}
