package consent_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// shared is the ClickHouse server of the integration tests (Debian's
// 18.16 in CI); nil under -short. Each test uses a database of its own.
var shared *chserver.Server

// TestMain runs the tests with a shared ClickHouse server, and fails them
// if a goroutine outlives them: every loop here must be owned by a Run
// that returns.
func TestMain(m *testing.M) {
	code := chtest.Main(m, &shared)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
