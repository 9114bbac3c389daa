package clickhouse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"slices"
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

// FuzzParseSpill: whatever the reject counts file holds after a crash or
// a damaged byte, reading it never panics; and a file spill wrote with
// any one bit flipped is refused or reads as the rows written (a flip
// that changes only a key's case: encoding/json matches keys in any
// case), never as other counts.
func FuzzParseSpill(f *testing.F) {
	rows := []byte(`[{"minute":29426000,"app":"com.example.a","reason":"rate_limited","events":3}]`)
	whole, err := json.Marshal(spillFile{Rows: rows, CRC32C: crc32.Checksum(rows, spillTable)})
	if err != nil {
		f.Fatal(err)
	}
	want, err := parseSpill(whole)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{whole, rows, nil, []byte("{}"), []byte(`{"rows":null,"crc32c":0}`), []byte("[]")} {
		f.Add(s, -1)
	}
	f.Add(whole, 10)
	f.Fuzz(func(t *testing.T, b []byte, flip int) {
		_, _ = parseSpill(b) // must not panic
		if flip >= 0 && flip < 8*len(whole) {
			d := bytes.Clone(whole)
			d[flip/8] ^= 1 << (flip % 8)
			if got, err := parseSpill(d); err == nil && !slices.Equal(got, want) {
				t.Fatalf("a spill file with bit %d flipped read as %+v, written as %+v", flip, got, want)
			}
		}
	})
}
