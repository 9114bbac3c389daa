package consent

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// loop here must be owned by a Run that returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
