package consent_test

import (
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
	goleak.VerifyTestMain(chtest.SharedM{M: m, Shared: &shared})
}
