package chtest

import (
	"testing"

	"github.com/consentry/consentry/internal/chserver"
)

// SharedM runs a test binary's tests as Main does, with one shared
// server. Its Run method makes it usable where a testing.M is wrapped,
// such as goleak.VerifyTestMain, which then checks for leaked goroutines
// after the server has stopped:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(chtest.SharedM{M: m, Shared: &shared})
//	}
type SharedM struct {
	M      *testing.M
	Shared **chserver.Server
}

// Run runs the tests with Main and returns the exit code.
func (s SharedM) Run() int { return Main(s.M, s.Shared) }
