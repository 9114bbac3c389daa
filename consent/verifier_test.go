package consent

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func mustVerifier(t testing.TB, ring *KeyRing, size int) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Keys: ring, CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSign(t testing.TB, ring *KeyRing, c Claims) string {
	t.Helper()
	tok, err := ring.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signWithNotBefore signs a consent token with an "nbf" claim, as an
// external consent platform might.
func signWithNotBefore(t *testing.T, ring *KeyRing, nbf time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID: NewConsentID(), Issuer: Issuer, Audience: jwt.ClaimStrings{"com.example.notes"},
			NotBefore: jwt.NewNumericDate(nbf), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		},
		Scope: "analytics",
	})
	tok.Header["kid"] = ring.SigningKeyID()
	s, err := tok.SignedString(ring.signing.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifierCache(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	good := mustSign(t, ring, claims())
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + parts[1] + "." + flip(parts[2])
	foreign := mustSign(t, mustRing(t, mustKey(t)), claims())
	notYet := signWithNotBefore(t, ring, t0.Add(10*time.Minute))

	type call struct {
		token string
		now   time.Time
		want  error // nil: verifies
	}
	tests := []struct {
		name    string
		calls   []call
		wantLen int
	}{
		{"hit returns the same claims", []call{{good, t0, nil}, {good, t0.Add(time.Minute), nil}}, 1},
		{"expiry is enforced on a hit", []call{{good, t0, nil}, {good, t0.Add(time.Hour), ErrExpired}, {good, t0.Add(2 * time.Hour), ErrExpired}}, 1},
		{"an expired token is not cached", []call{{good, t0.Add(2 * time.Hour), ErrExpired}, {good, t0.Add(3 * time.Hour), ErrExpired}}, 0},
		{"a forgery is never cached", []call{{forged, t0, ErrSignature}, {forged, t0, ErrSignature}}, 0},
		{"a forgery after the good token still fails", []call{{good, t0, nil}, {forged, t0, ErrSignature}}, 1},
		{"unknown key", []call{{foreign, t0, ErrUnknownKey}, {foreign, t0, ErrUnknownKey}}, 0},
		{"missing", []call{{"", t0, ErrMissing}}, 0},
		{"too long", []call{{good + strings.Repeat("A", MaxTokenSize), t0, ErrMalformed}}, 0},
		{"nbf is enforced on a hit", []call{{notYet, t0.Add(20 * time.Minute), nil}, {notYet, t0, ErrMalformed}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustVerifier(t, ring, 0)
			var first Claims
			for i, c := range tt.calls {
				got, err := v.Verify(c.token, c.now)
				if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
					t.Fatalf("call %d: err = %v, want %v", i, err, c.want)
				}
				if err != nil {
					if !reflect.DeepEqual(got, Claims{}) {
						t.Fatalf("call %d: claims with an error: %+v", i, got)
					}
					continue
				}
				want, werr := ring.Verify(c.token, c.now)
				if werr != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("call %d: claims = %+v, key ring says %+v, %v", i, got, want, werr)
				}
				if first.ConsentID == "" {
					first = got
				} else if !reflect.DeepEqual(got, first) {
					t.Fatalf("call %d: claims changed: %+v, then %+v", i, first, got)
				}
			}
			if n := v.Len(); n != tt.wantLen {
				t.Fatalf("cached %d tokens, want %d", n, tt.wantLen)
			}
		})
	}
}

func TestVerifierClaimsAreTheCallers(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	tok := mustSign(t, ring, claims())
	v := mustVerifier(t, ring, 0)
	for range 2 {
		c, err := v.Verify(tok, t0)
		if err != nil {
			t.Fatal(err)
		}
		if c.Scopes[0] != consentryv1.ScopeAnalytics {
			t.Fatalf("cached scopes modified: %v", c.Scopes)
		}
		c.Scopes[0] = consentryv1.ScopeLocation
	}
}

func TestVerifierBounded(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	const size = 64
	v := mustVerifier(t, ring, size)
	for range 4 * size {
		if _, err := v.Verify(mustSign(t, ring, claims()), t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Len(); n > size {
		t.Fatalf("cached %d tokens, bound %d", n, size)
	}
}

func TestVerifierShardKeepsMostRecent(t *testing.T) {
	s := verifierShard{max: 4, index: make(map[[32]byte]int)}
	hot := &cacheEntry{key: [32]byte{1}}
	s.put(hot)
	for i := range 1000 {
		s.put(&cacheEntry{key: [32]byte{2, byte(i), byte(i >> 8)}})
		if s.get(hot.key) == nil {
			t.Fatalf("the most recently used entry was evicted after %d inserts", i+1)
		}
	}
	if len(s.entries) != 4 || len(s.index) != 4 {
		t.Fatalf("shard holds %d entries, %d indexed, want 4", len(s.entries), len(s.index))
	}
	for k, i := range s.index {
		if s.entries[i].key != k {
			t.Fatal("index out of step with entries")
		}
	}
}

func TestVerifierConcurrent(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	v := mustVerifier(t, ring, 32)
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = mustSign(t, ring, claims())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				tok := toks[(g*7+i)%len(toks)]
				if _, err := v.Verify(tok, t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewVerifierConfig(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	if _, err := NewVerifier(VerifierConfig{}); err == nil {
		t.Error("no key ring accepted")
	}
	if _, err := NewVerifier(VerifierConfig{Keys: ring, CacheSize: -1}); err == nil {
		t.Error("negative cache size accepted")
	}
	if v := mustVerifier(t, ring, 3); v.Keys() != ring {
		t.Error("Keys is not the ring")
	}
}
