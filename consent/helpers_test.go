package consent

import (
	"crypto/ed25519"
	"net/netip"

	"go.uber.org/zap"
)

type ed25519PublicKey = ed25519.PublicKey

var netipZero netip.Addr

func zapNop() *zap.Logger { return zap.NewNop() }
