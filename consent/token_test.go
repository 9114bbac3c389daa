package consent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func mustRing(t testing.TB, cfg KeyRingConfig) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustKey(t testing.TB) KeyRingConfig {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return KeyRingConfig{SigningKey: k}
}

func claims() Claims {
	return Claims{AppID: "com.example.notes", Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics},
		TextVersion: "v3", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func TestVerify(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	other := mustRing(t, mustKey(t))
	good, err := ring.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	tamperedSig := parts[0] + "." + parts[1] + "." + flip(parts[2])
	tamperedClaims := parts[0] + "." + flip(parts[1]) + "." + parts[2]
	hsToken := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"valid", good, t0.Add(time.Minute), nil},
		{"missing", "", t0, ErrMissing},
		{"garbage", "not-a-token", t0, ErrMalformed},
		{"tampered signature", tamperedSig, t0, ErrSignature},
		{"tampered claims", tamperedClaims, t0, nil /* any error */},
		{"unknown key", foreign, t0, ErrUnknownKey},
		{"expired", good, t0.Add(2 * time.Hour), ErrExpired},
		{"wrong algorithm", hsToken, t0, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ring.Verify(tt.token, tt.now)
			switch {
			case tt.name == "tampered claims":
				if err == nil {
					t.Fatal("tampered claims verified")
				}
			case tt.want == nil:
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.AppID != "com.example.notes" || len(c.Scopes) != 1 || c.TextVersion != "v3" || c.ConsentID == "" || c.KeyID != ring.SigningKeyID() {
					t.Fatalf("claims = %+v", c)
				}
			case !errors.Is(err, tt.want):
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

// flip changes one character of a base64url segment.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestRotation(t *testing.T) {
	oldCfg := mustKey(t)
	oldRing := mustRing(t, oldCfg)
	oldTok, err := oldRing.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	newCfg := mustKey(t)
	newCfg.VerifyKeys = append(newCfg.VerifyKeys, oldCfg.SigningKey.Public().(ed25519PublicKey))
	rotated := mustRing(t, newCfg)
	if _, err := rotated.Verify(oldTok, t0); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
	newTok, err := rotated.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rotated.Verify(newTok, t0)
	if err != nil || c.KeyID == KeyID(oldCfg.SigningKey.Public().(ed25519PublicKey)) {
		t.Fatalf("new token: %+v, %v", c, err)
	}
}

func TestFilter(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	tok, err := ring.Sign(claims()) // analytics only
	if err != nil {
		t.Fatal(err)
	}
	revoked := revokedSet{}
	f, err := NewFilter(FilterConfig{Keys: ring, Revocations: revoked, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	events := []*consentryv1.Event{
		{Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}},
		{Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{}}},
	}
	tests := []struct {
		name      string
		token     string
		app       string
		revoke    bool
		state     consentryv1.ConsentState
		wantDrops []consentryv1.DropReason
	}{
		{"scope", tok, "com.example.notes", false, consentryv1.ConsentState_CONSENT_STATE_VALID,
			[]consentryv1.DropReason{0, consentryv1.DropReason_DROP_REASON_CONSENT_SCOPE}},
		{"wrong app", tok, "com.example.other", false, consentryv1.ConsentState_CONSENT_STATE_INVALID,
			[]consentryv1.DropReason{consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP, consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP}},
		{"missing", "", "com.example.notes", false, consentryv1.ConsentState_CONSENT_STATE_MISSING,
			[]consentryv1.DropReason{consentryv1.DropReason_DROP_REASON_CONSENT_MISSING, consentryv1.DropReason_DROP_REASON_CONSENT_MISSING}},
		{"revoked", tok, "com.example.notes", true, consentryv1.ConsentState_CONSENT_STATE_REVOKED,
			[]consentryv1.DropReason{consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED, consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clear(revoked)
			if tt.revoke {
				c, _ := ring.Verify(tok, t0)
				revoked[c.ConsentID] = true
			}
			b := pipeline.NewBatch(&consentryv1.IngestRequest{
				ConsentToken: tt.token, Device: &consentryv1.DeviceContext{AppId: tt.app}, Events: events,
			}, t0, netipZero)
			if err := f.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if b.ConsentState != tt.state {
				t.Errorf("state = %v, want %v", b.ConsentState, tt.state)
			}
			for i, want := range tt.wantDrops {
				if got := b.DropReasonOf(i); got != want {
					t.Errorf("event %d: drop = %v, want %v", i, got, want)
				}
			}
		})
	}
}

type revokedSet map[string]bool

func (r revokedSet) Revoked(id string) (time.Time, bool) { return t0, r[id] }

func (r revokedSet) Fresh(time.Time) bool { return true }
