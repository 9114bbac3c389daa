package chtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/internal/chserver"
)

// BreakableBinary writes a clickhouse-server binary, a script in a
// temporary directory, that runs the installed server until the file
// breakFile exists, and from then on fails at once with "broken on
// purpose": for tests of how a supervisor handles a server that cannot
// come back.
func BreakableBinary(tb testing.TB) (bin, breakFile string) {
	tb.Helper()
	real, args, err := chserver.Available("")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	breakFile = filepath.Join(dir, "broken")
	bin = filepath.Join(dir, "clickhouse-server")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then echo 'broken on purpose' >&2; exit 1; fi\nexec %q %s \"$@\"\n",
		breakFile, real, strings.Join(args, " "))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
	return bin, breakFile
}
