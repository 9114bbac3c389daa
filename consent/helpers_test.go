package consent

import (
	"context"
	"crypto/ed25519"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

type ed25519PublicKey = ed25519.PublicKey

var netipZero netip.Addr

func zapNop() *zap.Logger { return zap.NewNop() }

// gestureBatch returns a batch of one gesture from app with token,
// received at received.
func gestureBatch(token, app string, received time.Time) *pipeline.Batch {
	return pipeline.NewBatch(&consentryv1.IngestRequest{
		ConsentToken: token, Device: &consentryv1.DeviceContext{AppId: app},
		Events: []*consentryv1.Event{{Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}},
	}, received, netipZero)
}

// runUntilStopped calls run in a goroutine with a context that ends when
// the returned stop is called or the test ends; stop waits for run to
// return and fails the test if it returned an error.
func runUntilStopped(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}
