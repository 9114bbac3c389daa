package consent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/consentry/consentry/internal/atomicfile"
)

// KeyRing holds the key that signs new tokens and every public key whose
// tokens are accepted. To rotate, make a new key the signing key and keep
// the old public key in the ring until its tokens have expired.
type KeyRing struct {
	signing *signingKey
	verify  map[string]ed25519.PublicKey
}

type signingKey struct {
	id   string
	priv ed25519.PrivateKey
}

// KeyRingConfig lists the keys of a KeyRing.
type KeyRingConfig struct {
	// SigningKey signs new tokens; nil for a verify-only ring.
	SigningKey ed25519.PrivateKey
	// VerifyKeys are further public keys to accept (older keys, or an
	// external consent platform's). The signing key is always accepted.
	VerifyKeys []ed25519.PublicKey
}

// NewKeyRing returns a key ring for cfg.
func NewKeyRing(cfg KeyRingConfig) (*KeyRing, error) {
	r := &KeyRing{verify: make(map[string]ed25519.PublicKey)}
	if cfg.SigningKey != nil {
		if len(cfg.SigningKey) != ed25519.PrivateKeySize {
			return nil, errors.New("new key ring: signing key is not an Ed25519 private key")
		}
		pub := cfg.SigningKey.Public().(ed25519.PublicKey)
		r.signing = &signingKey{id: KeyID(pub), priv: cfg.SigningKey}
		r.verify[r.signing.id] = pub
	}
	for _, pub := range cfg.VerifyKeys {
		if len(pub) != ed25519.PublicKeySize {
			return nil, errors.New("new key ring: verify key is not an Ed25519 public key")
		}
		r.verify[KeyID(pub)] = pub
	}
	if len(r.verify) == 0 {
		return nil, errors.New("new key ring: no keys")
	}
	return r, nil
}

// SigningKeyID returns the id of the signing key, or "" if there is none.
func (r *KeyRing) SigningKeyID() string {
	if r.signing == nil {
		return ""
	}
	return r.signing.id
}

// Verifies reports whether the ring verifies tokens signed by the key
// whose KeyID is id.
func (r *KeyRing) Verifies(id string) bool {
	_, ok := r.verify[id]
	return ok
}

// GenerateKey returns a new Ed25519 private key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return priv, nil
}

// ReadPrivateKeyFile reads a PKCS #8 PEM Ed25519 private key.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	return readKeyFile[ed25519.PrivateKey](path, "private", x509.ParsePKCS8PrivateKey)
}

// ReadPublicKeyFile reads a PKIX PEM Ed25519 public key.
func ReadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	return readKeyFile[ed25519.PublicKey](path, "public", x509.ParsePKIXPublicKey)
}

// readKeyFile reads the Ed25519 key K of the PEM "PRIVATE KEY" or
// "PUBLIC KEY" block (kind "private" or "public") in path, parsed with
// parse.
func readKeyFile[K ed25519.PrivateKey | ed25519.PublicKey](path, kind string, parse func([]byte) (any, error)) (K, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s key: %w", kind, err)
	}
	return parseKey[K](path, kind, b, parse)
}

// parseKey parses b, the contents of path, as readKeyFile does.
func parseKey[K ed25519.PrivateKey | ed25519.PublicKey](path, kind string, b []byte, parse func([]byte) (any, error)) (K, error) {
	blockType := strings.ToUpper(kind) + " KEY"
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != blockType {
		return nil, fmt.Errorf("read %s key %s: no PEM %s block", kind, path, blockType)
	}
	k, err := parse(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read %s key %s: %w", kind, path, err)
	}
	key, ok := k.(K)
	if !ok {
		return nil, fmt.Errorf("read %s key %s: not an Ed25519 key", kind, path)
	}
	return key, nil
}

// LoadOrCreatePrivateKeyFile reads the key at path, or creates one there
// (mode 0600) if the file does not exist.
func LoadOrCreatePrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	priv, err := ReadPrivateKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return priv, err
	}
	priv, err = GenerateKey()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("create private key: %w", err)
	}
	// Written whole or not at all, so a reader (a tool reading the key of
	// a collector that is starting) never sees a partial file, a full disk
	// leaves none behind, and a concurrent creator's key wins whole.
	b, err := atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, fmt.Errorf("create private key: %w", err)
	}
	return parseKey[ed25519.PrivateKey](path, "private", b, x509.ParsePKCS8PrivateKey)
}

// signJWS signs claims with the signing key as a compact JWS whose header
// names the key id and typ. Callers check r.signing first.
func (r *KeyRing) signJWS(claims jwt.Claims, typ string) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = r.signing.id
	tok.Header["typ"] = typ
	return tok.SignedString(r.signing.priv)
}

// parseJWS parses the compact JWS s into claims, checking that it is
// signed (EdDSA) by a key of the ring, looked up by its "kid", and issued
// by Issuer; opts add checks. It returns the header's kid and typ, which
// the caller checks.
func (r *KeyRing) parseJWS(s string, claims jwt.Claims, opts ...jwt.ParserOption) (kid, typ string, err error) {
	parser := jwt.NewParser(append([]jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
	}, opts...)...)
	_, err = parser.ParseWithClaims(s, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		typ, _ = t.Header["typ"].(string)
		pub, ok := r.verify[kid]
		if !ok {
			return nil, ErrUnknownKey
		}
		return pub, nil
	})
	return kid, typ, err
}
