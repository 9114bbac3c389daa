package consent

import (
	"crypto/ed25519"
	"net/netip"
)

type ed25519PublicKey = ed25519.PublicKey

var netipZero netip.Addr
