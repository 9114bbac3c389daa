package consent

import (
	"bytes"
	"testing"
	"time"
)

var testSecret = bytes.Repeat([]byte{7}, MinSecretSize)

func TestFilterConsentKey(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	apps := newTestRegistry(t, newFakeStore())
	apps.Put(testApp("com.example.erasable", PolicyErasable, t0))
	apps.Put(testApp("com.example.anonymous", PolicyAnonymous, t0))
	tests := []struct {
		name     string
		app      string
		apps     AppLookup
		erasable bool
	}{
		{"erasable", "com.example.erasable", apps, true},
		{"anonymous", "com.example.anonymous", apps, false},
		{"unregistered is anonymous", "com.example.unknown", apps, false},
		{"no registry is anonymous", "com.example.erasable", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(FilterConfig{Keys: ring, Apps: tt.apps, Secret: testSecret, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			c := claims()
			c.AppID = tt.app
			tok := mustSign(t, ring, c)
			b := gestureBatch(tok, tt.app, t0)
			b.ConsentKey = "stale value"
			if err := f.Process(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			verified, _ := ring.Verify(tok, t0)
			want := ""
			if tt.erasable {
				want = ConsentKey(testSecret, verified.ConsentID)
			}
			if b.ConsentKey != want {
				t.Fatalf("ConsentKey = %q, want %q", b.ConsentKey, want)
			}
			if b.ConsentID != verified.ConsentID {
				t.Fatalf("ConsentID = %q, want the token's %q", b.ConsentID, verified.ConsentID)
			}
			if b.ConsentKey != "" && (b.ConsentKey == verified.ConsentID || len(b.ConsentKey) != 64) {
				t.Fatal("the consent key is not a hex HMAC")
			}
		})
	}
}

func TestConsentKey(t *testing.T) {
	a, b := ConsentKey(testSecret, "id1"), ConsentKey(testSecret, "id2")
	other := ConsentKey(bytes.Repeat([]byte{8}, MinSecretSize), "id1")
	if a == b || a == other || a != ConsentKey(testSecret, "id1") {
		t.Fatal("ConsentKey is not a keyed function of the id")
	}
}

func TestNewFilterConfig(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	otherVerifier := mustVerifier(t, mustRing(t, mustKey(t)), 0)
	apps := newTestRegistry(t, newFakeStore())
	tests := []struct {
		name string
		cfg  FilterConfig
		ok   bool
	}{
		{"keys", FilterConfig{Keys: ring}, true},
		{"verifier", FilterConfig{Verifier: mustVerifier(t, ring, 0)}, true},
		{"nothing", FilterConfig{}, false},
		{"verifier of another ring", FilterConfig{Keys: ring, Verifier: otherVerifier}, false},
		{"apps without secret", FilterConfig{Keys: ring, Apps: apps}, false},
		{"apps with short secret", FilterConfig{Keys: ring, Apps: apps, Secret: []byte("short")}, false},
		{"apps with secret", FilterConfig{Keys: ring, Apps: apps, Secret: testSecret}, true},
	}
	for _, tt := range tests {
		if _, err := NewFilter(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}
