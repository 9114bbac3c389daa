package clickhouse

import (
	"fmt"
	"testing"
)

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"18.16.1", "21.8.15.7", "26.7.2.1", "23.8.2.7-lts", "", "1", "x.y", "99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseVersion(s)
		if err != nil {
			return
		}
		if d.Major < 0 || d.Minor < 0 {
			t.Fatalf("ParseVersion(%q) = %+v", s, d)
		}
		if want := d.Major > 21 || d.Major == 21 && d.Minor >= 8; d.Modern != want {
			t.Fatalf("ParseVersion(%q) = %+v: Modern should be %v", s, d, want)
		}
		// The parsed version starts with what it reports.
		if again, err := ParseVersion(fmt.Sprintf("%d.%d", d.Major, d.Minor)); err != nil || again.Modern != d.Modern {
			t.Fatalf("ParseVersion(%d.%d) = %+v, %v", d.Major, d.Minor, again, err)
		}
	})
}
