package consent

import (
	"context"
	"errors"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// RevocationChecker tells whether a consent was revoked.
type RevocationChecker interface {
	Revoked(consentID string) bool
}

// FilterConfig configures the consent stage.
type FilterConfig struct {
	// Keys verifies tokens. Required.
	Keys *KeyRing
	// Revocations, if set, is consulted for every verified token.
	Revocations RevocationChecker
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Filter is the pipeline stage that enforces consent: it verifies the
// batch's token and drops every event the token does not cover.
type Filter struct {
	cfg FilterConfig
}

// NewFilter returns the consent stage.
func NewFilter(cfg FilterConfig) (*Filter, error) {
	if cfg.Keys == nil {
		return nil, errors.New("new consent filter: no key ring")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Filter{cfg: cfg}, nil
}

// Process verifies b's token. On failure every event is dropped with the
// matching reason; otherwise events whose kind the scopes do not cover are
// dropped with DROP_REASON_CONSENT_SCOPE. It never refuses the batch as a
// whole: the response tells the SDK what to do.
func (f *Filter) Process(_ context.Context, b *pipeline.Batch) error {
	c, err := f.cfg.Keys.Verify(b.Request.GetConsentToken(), f.cfg.Now())
	state, reason := classify(err)
	if err == nil {
		switch {
		case c.AppID != b.Request.GetDevice().GetAppId():
			state, reason = consentryv1.ConsentState_CONSENT_STATE_INVALID, consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP
		case f.cfg.Revocations != nil && f.cfg.Revocations.Revoked(c.ConsentID):
			state, reason = consentryv1.ConsentState_CONSENT_STATE_REVOKED, consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED
		}
	}
	b.ConsentState = state
	if reason != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
		b.DropAll(reason)
		return nil
	}
	b.AppID = c.AppID
	b.Scopes = c.Scopes
	for i, e := range b.Request.GetEvents() {
		s := pipeline.EventScope(e)
		if s == "" {
			continue // the validate stage names unknown kinds.
		}
		if !b.HasScope(s) {
			b.Drop(i, consentryv1.DropReason_DROP_REASON_CONSENT_SCOPE)
		}
	}
	return nil
}

func classify(err error) (consentryv1.ConsentState, consentryv1.DropReason) {
	switch {
	case err == nil:
		return consentryv1.ConsentState_CONSENT_STATE_VALID, consentryv1.DropReason_DROP_REASON_UNSPECIFIED
	case errors.Is(err, ErrMissing):
		return consentryv1.ConsentState_CONSENT_STATE_MISSING, consentryv1.DropReason_DROP_REASON_CONSENT_MISSING
	case errors.Is(err, ErrExpired):
		return consentryv1.ConsentState_CONSENT_STATE_EXPIRED, consentryv1.DropReason_DROP_REASON_CONSENT_EXPIRED
	default:
		return consentryv1.ConsentState_CONSENT_STATE_INVALID, consentryv1.DropReason_DROP_REASON_CONSENT_INVALID
	}
}
