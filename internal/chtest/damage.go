package chtest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// DamagePart flips one byte in the middle of a column file (*.bin) of the
// MergeTree part in dir (system.parts' path), the first by name that is
// not one of the columns keep: for tests of what one damaged byte of a
// stopped server's data does. It returns the file's name.
func DamagePart(tb testing.TB, dir string, keep ...string) string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool {
		return slices.Contains(keep, filepath.Base(f[:len(f)-len(".bin")]))
	})
	if len(files) == 0 {
		tb.Fatalf("chtest: no column file to damage in %s", dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		tb.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return filepath.Base(files[0])
}
