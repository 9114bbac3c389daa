package consent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// RevocationChecker tells whether a consent was revoked; *Revocations
// implements it.
type RevocationChecker interface {
	// Revoked reports whether the consent with id consentID was revoked,
	// and when.
	Revoked(consentID string) (revokedAt time.Time, ok bool)
	// Fresh reports whether, at now, every revocation older than the
	// propagation bound is known.
	Fresh(now time.Time) bool
}

// AppLookup finds registered apps; *Registry implements it.
type AppLookup interface {
	// App returns the app with id id, if it is registered.
	App(id string) (App, bool)
	// Notice says App missed id, so the lookup can look for it in the
	// store soon, without the caller waiting (see Registry.Notice).
	Notice(id string)
}

// FilterConfig configures the consent stage.
type FilterConfig struct {
	// Keys verifies tokens. Required unless Verifier is set.
	Keys *KeyRing
	// Verifier verifies tokens with a cache; set it to share one cache
	// with the Service. If nil, the filter makes one over Keys with the
	// default cache size. If both are set, Verifier must use Keys.
	Verifier *Verifier
	// Revocations, if set, is consulted for every verified token: a batch
	// of a consent known to be revoked is dropped
	// (DROP_REASON_CONSENT_REVOKED). While it is not fresh, batches with a
	// valid token are refused with ErrRevocationsStale, unless Gate is
	// set.
	Revocations RevocationChecker
	// Gate, if set, is the ship-time gate of the sink accepted rows go to
	// (a spool that checks every batch with it before storing it). Then
	// revocation is enforced again when the rows are shipped, against the
	// revocations as they are then, so while Revocations is stale batches
	// are accepted instead of refused: a ClickHouse outage does not stop
	// ingest for privacy's sake. It must be over Revocations. Leave it nil
	// when rows are stored without such a gate (no spool): then stale
	// revocations refuse the batch.
	Gate *Gate
	// Apps, if set, gives each app's erasure policy; an app it does not
	// know, or every app if it is nil, is treated as anonymous.
	Apps AppLookup
	// Secret keys the consent pseudonyms stored with rows of erasable apps
	// (see ConsentKey). Required, at least MinSecretSize bytes, when Apps
	// is set; it must be the Service's.
	Secret []byte
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Filter is the pipeline stage that enforces consent: it verifies the
// batch's token and drops every event the token does not cover.
type Filter struct {
	cfg      FilterConfig
	verifier *Verifier
}

// NewFilter returns the consent stage.
func NewFilter(cfg FilterConfig) (*Filter, error) {
	switch {
	case cfg.Keys == nil && cfg.Verifier == nil:
		return nil, errors.New("new consent filter: no key ring")
	case cfg.Keys != nil && cfg.Verifier != nil && cfg.Verifier.Keys() != cfg.Keys:
		return nil, errors.New("new consent filter: the verifier uses another key ring")
	case cfg.Apps != nil && len(cfg.Secret) < MinSecretSize:
		return nil, fmt.Errorf("new consent filter: the secret must have at least %d bytes", MinSecretSize)
	case cfg.Gate != nil && (cfg.Revocations == nil || cfg.Revocations != RevocationChecker(cfg.Gate.revs)):
		return nil, errors.New("new consent filter: the gate is not over the filter's revocations")
	}
	v, err := verifierOr(cfg.Verifier, cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("new consent filter: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Secret = bytes.Clone(cfg.Secret)
	return &Filter{cfg: cfg, verifier: v}, nil
}

// Process verifies b's token. On failure every event is dropped with the
// matching reason (a revoked consent: DROP_REASON_CONSENT_REVOKED, which
// the SDK learns from the response's CONSENT_STATE_REVOKED); otherwise
// events whose kind the scopes do not cover are dropped with
// DROP_REASON_CONSENT_SCOPE, and b.ConsentKey is set when the app is
// erasable. Without a Gate it refuses the batch as a whole with
// ErrRevocationsStale when the token is valid but the revocations are not
// fresh: storing events of a consent that may have been revoked would
// break the propagation bound. With a Gate such a batch is accepted; the
// gate refuses it at ship time if its consent turns out to have been
// revoked by the time it was received.
func (f *Filter) Process(_ context.Context, b *pipeline.Batch) error {
	now := f.cfg.Now()
	c, err := f.verifier.Verify(b.Request.GetConsentToken(), now)
	state, reason := classify(err)
	if err == nil {
		switch {
		case c.AppID != b.Request.GetDevice().GetAppId():
			state, reason = consentryv1.ConsentState_CONSENT_STATE_INVALID, consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP
		case f.cfg.Revocations != nil:
			if f.cfg.Gate == nil && !f.cfg.Revocations.Fresh(now) {
				return fmt.Errorf("consent check: %w", ErrRevocationsStale)
			}
			if _, revoked := f.cfg.Revocations.Revoked(c.ConsentID); revoked {
				state, reason = consentryv1.ConsentState_CONSENT_STATE_REVOKED, consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED
			}
		}
	}
	b.ConsentState = state
	b.ConsentKey, b.ConsentID = "", ""
	if reason != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
		b.DropAll(reason)
		return nil
	}
	b.AppID = c.AppID
	b.Scopes = c.Scopes
	b.ConsentID = c.ConsentID
	if f.cfg.Apps != nil {
		a, ok := f.cfg.Apps.App(c.AppID)
		if !ok {
			// A valid token names an app that was registered when it was
			// granted, perhaps on another replica moments ago: have the
			// registry look soon. Ingest does not wait for the store
			// (which may be away); meanwhile the rows carry no link to
			// the consent, as an anonymous app's.
			f.cfg.Apps.Notice(c.AppID)
		}
		if ok && a.Policy == PolicyErasable {
			b.ConsentKey = ConsentKey(f.cfg.Secret, c.ConsentID)
		}
	}
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
