package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// MinSecretSize is the minimum size in bytes of the server secret that
// keys consent pseudonyms.
const MinSecretSize = 32

// ConsentKey returns the pseudonym stored with every row of an erasable
// app: the hex HMAC-SHA-256 of consentID under secret. Without the secret
// it cannot be computed from the consent id nor reversed, so the stored
// rows hold no consent id; with it, the Service can find a consent's rows
// to erase them. The Filter and the Service both derive it here.
func ConsentKey(secret []byte, consentID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(consentID))
	return hex.EncodeToString(m.Sum(nil))
}

// SecretName names the server secret in the store's record of its
// fingerprint (see SecretFingerprint).
const SecretName = "consent_secret"

// SigningKeyName names the consent signing key in the store's record of
// the key ids replicas sign with.
const SigningKeyName = "consent_signing_key"

// SecretFingerprint returns a fingerprint of the server secret: the hex
// HMAC-SHA-256 under it of a fixed message no consent id can be (it
// starts with a NUL byte). Every replica must share the secret (it keys
// the consent pseudonyms and the stored event ids), so the collector
// records the fingerprint in the store and refuses to start with a secret
// whose fingerprint differs; the fingerprint tells nothing of the secret.
func SecretFingerprint(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("\x00consentry server secret fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil))
}
