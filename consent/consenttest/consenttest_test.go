package consenttest

import (
	"testing"
	"time"

	"github.com/consentry/consentry/consent"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestSignerTokenVerifies(t *testing.T) {
	s := New(t, nil)
	now := time.Now()
	token := s.Token(t, consent.Claims{AppID: "com.example.notes", Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	c, err := s.Ring.Verify(token, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.AppID != "com.example.notes" {
		t.Errorf("app id %q", c.AppID)
	}
	if _, err := New(t, nil).Ring.Verify(token, now); err == nil {
		t.Error("another signer's ring verified the token")
	}
}
