package consent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Defaults of ServiceConfig.
const (
	// DefaultTTL is a year: consent is asked for again about yearly, and
	// revocation, not expiry, is how a user withdraws it. The TTL also
	// bounds how long a revocation must be kept.
	DefaultTTL = 365 * 24 * time.Hour
	// DefaultMaxTTL is 13 months, the longest consent is commonly
	// considered valid without asking again.
	DefaultMaxTTL = 395 * 24 * time.Hour
	// DefaultWriteTimeout bounds recording a revocation.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultEraseTimeout bounds one erasure.
	DefaultEraseTimeout = 2 * time.Minute
	// DefaultResweepAfter is the propagation bound (5s) plus the
	// collector's longest ingest request (30s) plus a margin.
	DefaultResweepAfter = 40 * time.Second
	// DefaultMaxPendingResweeps bounds the resweeps waiting to run.
	DefaultMaxPendingResweeps = 10000
)

// MaxTextVersionLen is the longest consent_text_version accepted, in
// characters.
const MaxTextVersionLen = 64

// maxResweepAttempts is how often a failing resweep is tried.
const maxResweepAttempts = 3

// knownScopes returns the scopes a consent can cover, in canonical order.
func knownScopes() [3]pipeline.Scope {
	return [...]pipeline.Scope{pipeline.ScopeAnalytics, pipeline.ScopeCrashReports, pipeline.ScopeLocation}
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Keys signs tokens and erasure receipts; it must hold a signing key.
	// Required.
	Keys *KeyRing
	// Verifier verifies tokens; set it to share a cache with the Filter.
	// If nil, one over Keys is made. It must use Keys.
	Verifier *Verifier
	// Store records revocations and erases rows. Required.
	Store Store
	// Apps are the registered apps. Required.
	Apps *Registry
	// Revocations is the replica's revocation set. Required.
	Revocations *Revocations
	// Secret keys the consent pseudonyms (see ConsentKey); it must be the
	// Filter's. Required, at least MinSecretSize bytes.
	Secret []byte
	// DefaultTTL is the validity of a token when Grant asks for none.
	// Default DefaultTTL.
	DefaultTTL time.Duration
	// MaxTTL caps the validity Grant may ask for. Default DefaultMaxTTL.
	MaxTTL time.Duration
	// WriteTimeout bounds recording a revocation in the store. It must be
	// shorter than the revocations' Overlap, which must cover it (see
	// RevocationsConfig.Overlap). Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// EraseTimeout bounds one erasure. Default DefaultEraseTimeout.
	EraseTimeout time.Duration
	// ResweepAfter is when an erasure runs a second time: batches that
	// passed the consent check just before the revocation may still be
	// being stored when the first erasure runs. It must cover the
	// propagation bound plus the collector's longest ingest request.
	// Default DefaultResweepAfter.
	ResweepAfter time.Duration
	// MaxPendingResweeps bounds the resweeps waiting to run; beyond it
	// Revoke with erase is refused with pipeline.ErrOverloaded. Default
	// DefaultMaxPendingResweeps.
	MaxPendingResweeps int
	// Now returns the current time, for tokens and revocations; nil means
	// time.Now.
	Now func() time.Time
	// Counter, if set, counts grants and erasure receipts per app, for
	// the privacy report (consentry privacy-report); it must not block.
	Counter EventCounter
	// Logger logs grants, revocations and erasures with app ids and
	// counts, never tokens, consent ids, pseudonyms or app keys; nil means
	// no logging.
	Logger *zap.Logger
}

// EventCounter counts consent events per app: EventGranted, and
// EventReceipt followed by the receipt's outcome.
type EventCounter interface {
	CountConsentEvent(appID, event string)
}

// Consent events counted by ServiceConfig.Counter.
const (
	// EventGranted is a token issued by Grant.
	EventGranted = "granted"
	// EventReceipt, followed by the outcome (OutcomeErased or
	// OutcomeAnonymous), is an erasure receipt issued by Revoke.
	EventReceipt = "receipt_"
)

// Service implements consentryv1.ConsentServiceServer: it issues consent
// tokens, records revocations and erases what was stored under a consent.
// Its methods are safe for concurrent use; Run must be running for
// erasures to be swept a second time.
type Service struct {
	consentryv1.UnimplementedConsentServiceServer
	cfg      ServiceConfig
	verifier *Verifier
	log      *zap.Logger

	mu      sync.Mutex
	pending []resweep           // due times are non-decreasing
	queued  map[string]struct{} // consent keys in pending
	stopped bool                // Run has returned
	wake    chan struct{}       // signals Run that pending became non-empty
}

// resweep is a second erasure of a consent's rows.
type resweep struct {
	appID, consentKey string
	due               time.Time // on the monotonic clock
	attempt           int
}

// NewService returns the consent service for cfg.
func NewService(cfg ServiceConfig) (*Service, error) {
	switch {
	case cfg.Keys == nil || cfg.Keys.SigningKeyID() == "":
		return nil, errors.New("new consent service: no signing key")
	case cfg.Verifier != nil && cfg.Verifier.Keys() != cfg.Keys:
		return nil, errors.New("new consent service: the verifier uses another key ring")
	case cfg.Store == nil || cfg.Apps == nil || cfg.Revocations == nil:
		return nil, errors.New("new consent service: store, apps and revocations are required")
	case len(cfg.Secret) < MinSecretSize:
		return nil, fmt.Errorf("new consent service: the secret must have at least %d bytes", MinSecretSize)
	}
	setDefault(&cfg.DefaultTTL, DefaultTTL)
	setDefault(&cfg.MaxTTL, DefaultMaxTTL)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDefault(&cfg.EraseTimeout, DefaultEraseTimeout)
	setDefault(&cfg.ResweepAfter, DefaultResweepAfter)
	if cfg.MaxPendingResweeps == 0 {
		cfg.MaxPendingResweeps = DefaultMaxPendingResweeps
	}
	switch {
	case cfg.DefaultTTL < 0 || cfg.MaxTTL < 0 || cfg.WriteTimeout < 0 || cfg.EraseTimeout < 0 ||
		cfg.ResweepAfter < 0 || cfg.MaxPendingResweeps < 0:
		return nil, errors.New("new consent service: negative duration or size")
	case cfg.DefaultTTL > cfg.MaxTTL:
		return nil, fmt.Errorf("new consent service: default TTL %v exceeds the maximum %v", cfg.DefaultTTL, cfg.MaxTTL)
	case cfg.WriteTimeout >= cfg.Revocations.cfg.Overlap:
		return nil, fmt.Errorf("new consent service: write timeout %v must be shorter than the revocations' overlap %v",
			cfg.WriteTimeout, cfg.Revocations.cfg.Overlap)
	case cfg.ResweepAfter <= cfg.Revocations.Bound():
		return nil, fmt.Errorf("new consent service: resweep delay %v must exceed the propagation bound %v",
			cfg.ResweepAfter, cfg.Revocations.Bound())
	}
	v := cfg.Verifier
	if v == nil {
		var err error
		if v, err = NewVerifier(VerifierConfig{Keys: cfg.Keys}); err != nil {
			return nil, fmt.Errorf("new consent service: %w", err)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Secret = bytes.Clone(cfg.Secret)
	return &Service{
		cfg:      cfg,
		verifier: v,
		log:      cfg.Logger,
		queued:   make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
	}, nil
}

// Grant checks the app's id and key and the scopes asked for, and returns
// a signed consent token.
func (s *Service) Grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	resp, err := s.grant(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// Revoke records the revocation of the token's consent durably, then in
// this replica's set; every other replica learns of it within the
// propagation bound. It is idempotent and returns the first revocation's
// time. With erase it deletes the consent's rows if the app is erasable
// and returns a signed receipt.
func (s *Service) Revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	resp, err := s.revoke(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// Status tells whether a token is accepted: VALID, EXPIRED, REVOKED or
// INVALID.
func (s *Service) Status(ctx context.Context, req *consentryv1.StatusRequest) (*consentryv1.StatusResponse, error) {
	resp, err := s.status(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *Service) grant(_ context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	appID := req.GetAppId()
	if !validate.ValidAppID(appID) {
		return nil, fmt.Errorf("grant: %w: app_id must be 1-128 letters, digits, '.', '_' or '-'", validate.ErrAppIDInvalid)
	}
	scopes, err := parseScopes(req.GetScopes())
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	if v := req.GetConsentTextVersion(); !validTextVersion(v) {
		return nil, fmt.Errorf("grant: %w: consent_text_version must be 1-%d printable characters",
			ErrInvalidRequest, MaxTextVersionLen)
	}
	ttl, err := s.ttl(req.GetTtlSeconds())
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	if !s.cfg.Apps.Loaded() {
		return nil, fmt.Errorf("grant: apps not loaded yet: %w", ErrStoreUnavailable)
	}
	app, ok := s.cfg.Apps.App(appID)
	if !authenticate(app, ok, req.GetAppKey()) {
		s.log.Info("grant refused", zap.String("app_id", appID), zap.String("reason", ReasonAppUnauthenticated))
		return nil, fmt.Errorf("grant: %w", ErrAppUnauthenticated)
	}
	for _, sc := range scopes {
		if !slices.Contains(app.Scopes, sc) {
			s.log.Info("grant refused", zap.String("app_id", appID), zap.String("reason", ReasonScopeNotAllowed))
			return nil, fmt.Errorf("grant: %w: %s", ErrScopeNotAllowed, sc)
		}
	}
	now := s.cfg.Now()
	exp := now.Add(ttl).Truncate(time.Second) // tokens state whole seconds.
	tok, err := s.cfg.Keys.Sign(Claims{
		AppID: appID, Scopes: scopes, TextVersion: req.GetConsentTextVersion(), IssuedAt: now, ExpiresAt: exp,
	})
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	s.log.Debug("consent granted", zap.String("app_id", appID), zap.Int("scopes", len(scopes)))
	if s.cfg.Counter != nil {
		s.cfg.Counter.CountConsentEvent(appID, EventGranted)
	}
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	return &consentryv1.GrantResponse{ConsentToken: tok, ExpiresAtUnixMs: exp.UnixMilli(), Scopes: names}, nil
}

// parseScopes checks that scopes are known and not empty, and returns them
// deduplicated in canonical order.
func parseScopes(scopes []string) ([]pipeline.Scope, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: scopes: at least one is required", ErrInvalidRequest)
	}
	known := knownScopes()
	var seen [len(known)]bool
	for i, sc := range scopes {
		k := slices.Index(known[:], pipeline.Scope(sc))
		if k < 0 {
			return nil, fmt.Errorf("%w: scopes[%d] is not analytics, crash_reports or location", ErrScopeUnknown, i)
		}
		seen[k] = true
	}
	var out []pipeline.Scope
	for k, ok := range seen {
		if ok {
			out = append(out, known[k])
		}
	}
	return out, nil
}

// validTextVersion reports whether v is 1 to MaxTextVersionLen printable
// characters.
func validTextVersion(v string) bool {
	if v == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > MaxTextVersionLen {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ttl returns the validity for ttl_seconds: the default for 0, capped at
// the maximum.
func (s *Service) ttl(seconds int64) (time.Duration, error) {
	switch {
	case seconds < 0:
		return 0, fmt.Errorf("%w: ttl_seconds must not be negative", ErrInvalidRequest)
	case seconds == 0:
		return s.cfg.DefaultTTL, nil
	case seconds >= int64(s.cfg.MaxTTL/time.Second):
		return s.cfg.MaxTTL, nil
	default:
		return time.Duration(seconds) * time.Second, nil
	}
}

// authenticate compares key with the app's key hash in constant time. An
// unknown app is compared against a hash no key has, so it takes the same
// time and fails the same way as a wrong key.
func authenticate(app App, known bool, key string) bool {
	want := app.KeyHash
	if !known {
		want = HashAppKey("\x00no app")
	}
	got := HashAppKey(key)
	eq := subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
	return known && eq && key != ""
}

func (s *Service) revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	now := s.cfg.Now()
	c, err := s.verifier.Verify(req.GetConsentToken(), now)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	revokedAt, ok := s.cfg.Revocations.Revoked(c.ConsentID)
	if !ok {
		// Another replica may have revoked it less than the bound ago:
		// catch up once, so a repeat reports the first time. A failure
		// here shows again when the revocation is written.
		if s.cfg.Revocations.Refresh(ctx) == nil {
			revokedAt, ok = s.cfg.Revocations.Revoked(c.ConsentID)
		}
	}
	if !ok {
		// Whole seconds, as the store keeps them: the time reported now
		// is the one every later call reports.
		rv := Revocation{
			ConsentHash: HashConsentID(c.ConsentID), AppID: c.AppID,
			RevokedAt: now.Truncate(time.Second), ExpiresAt: c.ExpiresAt, Erase: req.GetErase(),
		}
		// Durably first: once Revoke returns, the revocation must survive
		// this replica and reach the others.
		wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		err := s.cfg.Store.PutRevocation(wctx, rv)
		cancel()
		if err != nil {
			s.log.Warn("recording a revocation failed", zap.String("app_id", c.AppID), redactedError(err, rv.ConsentHash))
			return nil, fmt.Errorf("revoke: record revocation: %w", ErrStoreUnavailable)
		}
		if err := s.cfg.Revocations.Add(rv); err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
		revokedAt, _ = s.cfg.Revocations.Revoked(c.ConsentID) // the earliest, if revoked concurrently.
		s.log.Info("consent revoked", zap.String("app_id", c.AppID), zap.Bool("erase", req.GetErase()))
	}
	resp := &consentryv1.RevokeResponse{
		RevokedAtUnixMs:    revokedAt.UnixMilli(),
		PropagationBoundMs: s.cfg.Revocations.Bound().Milliseconds(),
	}
	if req.GetErase() {
		// Erasure is idempotent, so a repeated Revoke erases again: that
		// is how a client retries an erasure that failed.
		if resp.Receipt, err = s.erase(ctx, c); err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
	}
	return resp, nil
}

// erase deletes the consent's rows if its app is erasable, schedules the
// resweep, and returns the signed receipt.
func (s *Service) erase(ctx context.Context, c Claims) (*consentryv1.ErasureReceipt, error) {
	if !s.cfg.Apps.Loaded() {
		return nil, fmt.Errorf("erase: apps not loaded yet: %w", ErrStoreUnavailable)
	}
	rc := Receipt{ConsentKey: ConsentKey(s.cfg.Secret, c.ConsentID), AppID: c.AppID, Outcome: OutcomeAnonymous}
	if app, ok := s.cfg.Apps.App(c.AppID); ok && app.Policy == PolicyErasable {
		// Reserve the resweep before deleting, so no erasure goes without.
		if err := s.schedule(c.AppID, rc.ConsentKey); err != nil {
			return nil, fmt.Errorf("erase: %w", err)
		}
		ectx, cancel := context.WithTimeout(ctx, s.cfg.EraseTimeout)
		rows, err := s.cfg.Store.Erase(ectx, c.AppID, rc.ConsentKey)
		cancel()
		if err != nil {
			s.log.Warn("erasure failed", zap.String("app_id", c.AppID), redactedError(err, rc.ConsentKey))
			return nil, fmt.Errorf("erase: %w", ErrStoreUnavailable)
		}
		rc.Outcome, rc.DeletedRows = OutcomeErased, rows
		s.log.Info("consent erased", zap.String("app_id", c.AppID), zap.Uint64("rows", total(rows)))
	}
	if rc.DeletedRows == nil {
		rc.DeletedRows = map[string]uint64{}
	}
	rc.ErasedAt = s.cfg.Now().Truncate(time.Millisecond)
	signed, err := s.cfg.Keys.SignReceipt(rc)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	if s.cfg.Counter != nil {
		s.cfg.Counter.CountConsentEvent(c.AppID, EventReceipt+rc.Outcome)
	}
	return &consentryv1.ErasureReceipt{
		Outcome:        rc.Outcome,
		DeletedRows:    rc.DeletedRows,
		ErasedAtUnixMs: rc.ErasedAt.UnixMilli(),
		SignedReceipt:  signed,
	}, nil
}

func total(rows map[string]uint64) uint64 {
	var n uint64
	for _, v := range rows {
		n += v
	}
	return n
}

func (s *Service) status(_ context.Context, req *consentryv1.StatusRequest) (*consentryv1.StatusResponse, error) {
	now := s.cfg.Now()
	c, err := s.verifier.Verify(req.GetConsentToken(), now)
	switch {
	case errors.Is(err, ErrMissing):
		return nil, fmt.Errorf("status: %w", err)
	case errors.Is(err, ErrExpired):
		return &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_EXPIRED}, nil
	case err != nil:
		return &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_INVALID}, nil
	}
	if !s.cfg.Revocations.Fresh(now) {
		return nil, fmt.Errorf("status: %w", ErrRevocationsStale)
	}
	resp := &consentryv1.StatusResponse{
		State:           consentryv1.ConsentState_CONSENT_STATE_VALID,
		AppId:           c.AppID,
		ExpiresAtUnixMs: c.ExpiresAt.UnixMilli(),
	}
	for _, sc := range c.Scopes {
		resp.Scopes = append(resp.Scopes, string(sc))
	}
	if at, ok := s.cfg.Revocations.Revoked(c.ConsentID); ok {
		resp.State = consentryv1.ConsentState_CONSENT_STATE_REVOKED
		resp.RevokedAtUnixMs = at.UnixMilli()
	}
	return resp, nil
}

// schedule queues a resweep of consentKey's rows ResweepAfter from now,
// unless one is queued already (the earlier one covers the same in-flight
// batches, as they passed the check before the first revocation).
func (s *Service) schedule(appID, consentKey string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return fmt.Errorf("schedule resweep: %w", pipeline.ErrClosed)
	case len(s.pending) >= s.cfg.MaxPendingResweeps:
		return fmt.Errorf("schedule resweep: %d erasures pending: %w", len(s.pending), pipeline.ErrOverloaded)
	}
	if _, ok := s.queued[consentKey]; ok {
		return nil
	}
	s.enqueue(resweep{appID: appID, consentKey: consentKey, due: time.Now().Add(s.cfg.ResweepAfter)})
	return nil
}

// enqueue appends rs to pending and wakes Run. s.mu must be held.
func (s *Service) enqueue(rs resweep) {
	s.pending = append(s.pending, rs)
	s.queued[rs.consentKey] = struct{}{}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sweeps erasures a second time when they are due, until ctx is done.
// Then it sweeps the ones still pending at once, bounded by EraseTimeout,
// rather than skip them (running early catches fewer in-flight batches,
// not none), refuses further erasures with pipeline.ErrClosed, and
// returns nil. Stop it before closing the Store. Call it once.
func (s *Service) Run(ctx context.Context) error {
	for {
		var due <-chan time.Time
		var t *time.Timer
		s.mu.Lock()
		if len(s.pending) > 0 {
			t = time.NewTimer(time.Until(s.pending[0].due))
			due = t.C
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			s.drain(ctx)
			return nil
		case <-s.wake:
			if t != nil {
				t.Stop()
			}
		case <-due:
			s.mu.Lock()
			rs := s.pending[0]
			s.pending = slices.Delete(s.pending, 0, 1)
			delete(s.queued, rs.consentKey)
			s.mu.Unlock()
			s.sweep(ctx, rs)
		}
	}
}

// sweep erases rs's rows again, requeueing it after a failure.
func (s *Service) sweep(ctx context.Context, rs resweep) {
	ectx, cancel := context.WithTimeout(ctx, s.cfg.EraseTimeout)
	rows, err := s.cfg.Store.Erase(ectx, rs.appID, rs.consentKey)
	cancel()
	if err == nil {
		s.log.Info("resweep done", zap.String("app_id", rs.appID), zap.Uint64("rows", total(rows)))
		return
	}
	if ctx.Err() != nil {
		s.mu.Lock()
		s.pending = slices.Insert(s.pending, 0, rs) // drain runs it.
		s.queued[rs.consentKey] = struct{}{}
		s.mu.Unlock()
		return
	}
	rs.attempt++
	if rs.attempt >= maxResweepAttempts {
		s.log.Error("resweep failed; giving up", zap.String("app_id", rs.appID),
			zap.Int("attempts", rs.attempt), redactedError(err, rs.consentKey))
		return
	}
	s.log.Warn("resweep failed; will retry", zap.String("app_id", rs.appID), redactedError(err, rs.consentKey))
	rs.due = time.Now().Add(s.cfg.ResweepAfter)
	s.mu.Lock()
	if _, ok := s.queued[rs.consentKey]; !ok {
		s.enqueue(rs)
	}
	s.mu.Unlock()
}

// drain stops scheduling and sweeps everything pending at once.
func (s *Service) drain(ctx context.Context) {
	s.mu.Lock()
	s.stopped = true
	pending := s.pending
	s.pending, s.queued = nil, make(map[string]struct{})
	s.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.EraseTimeout)
	defer cancel()
	failed := 0
	for _, rs := range pending {
		if _, err := s.cfg.Store.Erase(dctx, rs.appID, rs.consentKey); err != nil {
			failed++
		}
	}
	if failed > 0 {
		s.log.Error("resweeps at shutdown failed", zap.Int("failed", failed), zap.Int("pending", len(pending)))
	} else {
		s.log.Info("resweeps run early at shutdown", zap.Int("count", len(pending)))
	}
}
