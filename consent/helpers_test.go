package consent

import (
	"crypto/ed25519"
	"net/netip"
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
