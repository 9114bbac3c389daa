package consent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Issuer is the "iss" claim of tokens Consentry issues.
const Issuer = "consentry"

// Errors Verify returns; callers branch on them with errors.Is.
var (
	// ErrMissing: no token was given.
	ErrMissing = errors.New("consent token missing")
	// ErrMalformed: the token cannot be parsed or lacks a required claim.
	ErrMalformed = errors.New("consent token malformed")
	// ErrUnknownKey: the token names a key id the ring does not hold.
	ErrUnknownKey = errors.New("consent token signed by unknown key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("consent token signature invalid")
	// ErrExpired: the token expired.
	ErrExpired = errors.New("consent token expired")
)

// Claims is what a consent token states.
type Claims struct {
	// ConsentID is the random consent id.
	ConsentID string
	// AppID is the app the consent was given to.
	AppID string
	// Scopes are the kinds of data consented to.
	Scopes []consentryv1.Scope
	// TextVersion is the version of the consent text shown.
	TextVersion string
	// IssuedAt and ExpiresAt bound the token's validity.
	IssuedAt, ExpiresAt time.Time
	// KeyID is the id of the key that signed the token.
	KeyID string
}

// NewConsentID returns a random consent id.
func NewConsentID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// KeyID derives a key id from a public key: the first 12 bytes of its
// SHA-256, base64url. Deriving it means a key file needs no extra metadata.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
	Ver   string `json:"ver,omitempty"`
}

// Sign returns c as a token signed by the ring's signing key. ConsentID,
// IssuedAt and KeyID are filled in when empty.
func (r *KeyRing) Sign(c Claims) (string, error) {
	if r.signing == nil {
		return "", errors.New("sign consent token: no signing key configured")
	}
	if c.AppID == "" || len(c.Scopes) == 0 || c.ExpiresAt.IsZero() {
		return "", errors.New("sign consent token: app id, scopes and expiry are required")
	}
	if c.ConsentID == "" {
		c.ConsentID = NewConsentID()
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	scopes := make([]string, len(c.Scopes))
	for i, s := range c.Scopes {
		scopes[i] = string(s)
	}
	s, err := r.signJWS(jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        c.ConsentID,
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{c.AppID},
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Scope: strings.Join(scopes, " "),
		Ver:   c.TextVersion,
	}, "consent+jwt")
	if err != nil {
		return "", fmt.Errorf("sign consent token: %w", err)
	}
	return s, nil
}

// Verify checks token's signature, key and expiry at now and returns its
// claims. It does not check the app or revocations; the Filter does. An
// erasure receipt is not a consent token and is refused as malformed.
func (r *KeyRing) Verify(token string, now time.Time) (Claims, error) {
	c, _, err := r.verifyToken(token, now)
	return c, err
}

// verifyToken is Verify that also returns the token's "nbf" claim (zero when
// absent), which a Verifier must keep checking on cache hits.
func (r *KeyRing) verifyToken(token string, now time.Time) (Claims, time.Time, error) {
	if token == "" {
		return Claims{}, time.Time{}, ErrMissing
	}
	var jc jwtClaims
	kid, typ, err := r.parseJWS(token, &jc,
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
	)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownKey):
		return Claims{}, time.Time{}, ErrUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, time.Time{}, ErrExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, time.Time{}, ErrSignature
	default:
		return Claims{}, time.Time{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if typ == receiptType {
		return Claims{}, time.Time{}, fmt.Errorf("%w: an erasure receipt is not a consent token", ErrMalformed)
	}
	if jc.ID == "" || len(jc.Audience) != 1 || jc.Audience[0] == "" || jc.Scope == "" {
		return Claims{}, time.Time{}, fmt.Errorf("%w: missing jti, aud or scope", ErrMalformed)
	}
	c := Claims{
		ConsentID:   jc.ID,
		AppID:       jc.Audience[0],
		TextVersion: jc.Ver,
		ExpiresAt:   jc.ExpiresAt.Time,
		KeyID:       kid,
	}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time
	}
	for _, s := range strings.Fields(jc.Scope) {
		c.Scopes = append(c.Scopes, consentryv1.Scope(s))
	}
	var nbf time.Time
	if jc.NotBefore != nil {
		nbf = jc.NotBefore.Time
	}
	return c, nbf, nil
}
