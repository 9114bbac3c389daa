// Package consenttest signs consent tokens for tests, failing the test
// instead of returning errors.
package consenttest

import (
	"crypto/ed25519"
	"testing"

	"github.com/consentry/consentry/consent"
)

// Signer signs consent tokens with one key.
type Signer struct {
	// Ring holds the key; pass it where a test needs a verifier.
	Ring *consent.KeyRing
}

// New returns a Signer for priv, or for a new key if priv is nil.
func New(t testing.TB, priv ed25519.PrivateKey) *Signer {
	t.Helper()
	if priv == nil {
		var err error
		if priv, err = consent.GenerateKey(); err != nil {
			t.Fatalf("consenttest: generate key: %v", err)
		}
	}
	ring, err := consent.NewKeyRing(consent.KeyRingConfig{SigningKey: priv})
	if err != nil {
		t.Fatalf("consenttest: key ring: %v", err)
	}
	return &Signer{Ring: ring}
}

// Token returns c signed.
func (s *Signer) Token(t testing.TB, c consent.Claims) string {
	t.Helper()
	token, err := s.Ring.Sign(c)
	if err != nil {
		t.Fatalf("consenttest: sign: %v", err)
	}
	return token
}
