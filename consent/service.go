package consent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
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
	// DefaultEraseTimeout bounds one erasure.
	DefaultEraseTimeout = 2 * time.Minute
	// DefaultResweepAfter is the propagation bound (5s) plus the
	// collector's longest ingest request (30s) plus a margin.
	DefaultResweepAfter = 40 * time.Second
	// DefaultResweepInterval is how often Run looks for due resweeps.
	DefaultResweepInterval = 10 * time.Second
	// DefaultMaxResweepsPerPass bounds the resweeps one pass runs.
	DefaultMaxResweepsPerPass = 100
)

// maxTracked bounds the consents whose resweeps a Service remembers in
// memory (those it erased itself, and those whose resweep failed); beyond
// it, resweeps run on the takeover schedule, as after a restart.
const maxTracked = 10000

// CounterRegistry registers counters whose value a function returns at
// each scrape; the collector's *metrics.Metrics implements it.
type CounterRegistry interface {
	Counter(name, help string, f func() float64)
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
	// Revocations is the replica's revocation set; its WriteTimeout bounds
	// recording a revocation. Required.
	Revocations *Revocations
	// Gate, if set, is the replica's ship-time gate: a consent this
	// replica erases is added to its erased consents at once.
	Gate *Gate
	// Secret keys the consent pseudonyms (see ConsentKey); it must be the
	// Filter's. Required, at least MinSecretSize bytes.
	Secret []byte
	// DefaultTTL is the validity of a token when Grant asks for none.
	// Default DefaultTTL.
	DefaultTTL time.Duration
	// MaxTTL caps the validity Grant may ask for. Default DefaultMaxTTL.
	MaxTTL time.Duration
	// EraseTimeout bounds one erasure. Default DefaultEraseTimeout.
	EraseTimeout time.Duration
	// ResweepAfter is how long after an erasure its consent's rows are
	// erased a second time (the resweep): batches that passed the consent
	// check just before the revocation may still be being stored when the
	// first erasure runs, and a shipper may be inserting rows it admitted
	// before it learned of the erasure. It must cover the propagation
	// bound plus the longer of the collector's longest ingest request and
	// its longest insert. Default DefaultResweepAfter.
	ResweepAfter time.Duration
	// ResweepInterval is how often Run looks in the store's erasures log
	// for erasures whose resweep is due and not on record. Default
	// DefaultResweepInterval.
	ResweepInterval time.Duration
	// MaxResweepsPerPass bounds the resweeps one look runs, oldest first.
	// Default DefaultMaxResweepsPerPass.
	MaxResweepsPerPass int
	// GrantLimits throttles failed grants per client address and per app
	// (see GrantLimitConfig); the zero value takes the defaults.
	GrantLimits GrantLimitConfig
	// Metrics, if set, gets the service's counters (failed and throttled
	// grants); *metrics.Metrics of the collector implements it.
	Metrics CounterRegistry
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
// Its methods are safe for concurrent use; Run must be running (on some
// replica) for erasures to be swept a second time.
type Service struct {
	consentryv1.UnimplementedConsentServiceServer
	cfg      ServiceConfig
	verifier *Verifier
	log      *zap.Logger
	limits   *grantLimiter
	// gap is ResweepAfter in whole seconds plus one: the store keeps
	// erasure times in whole seconds. takeover is how long after it is due
	// a replica runs a resweep another replica (or an earlier run of this
	// one) owes.
	gap, takeover time.Duration

	mu      sync.Mutex
	owned   map[string]time.Time // consent keys this Service erased, and when
	retryAt map[string]time.Time // consent keys whose resweep failed: not before
	failing bool                 // the last look for due resweeps failed
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
	cfg.DefaultTTL = cmp.Or(cfg.DefaultTTL, DefaultTTL)
	cfg.MaxTTL = cmp.Or(cfg.MaxTTL, DefaultMaxTTL)
	cfg.EraseTimeout = cmp.Or(cfg.EraseTimeout, DefaultEraseTimeout)
	cfg.ResweepAfter = cmp.Or(cfg.ResweepAfter, DefaultResweepAfter)
	cfg.ResweepInterval = cmp.Or(cfg.ResweepInterval, DefaultResweepInterval)
	cfg.MaxResweepsPerPass = cmp.Or(cfg.MaxResweepsPerPass, DefaultMaxResweepsPerPass)
	switch {
	case cfg.DefaultTTL < 0 || cfg.MaxTTL < 0 || cfg.EraseTimeout < 0 || cfg.ResweepAfter < 0 ||
		cfg.ResweepInterval < 0 || cfg.MaxResweepsPerPass < 0:
		return nil, errors.New("new consent service: negative duration or size")
	case cfg.DefaultTTL > cfg.MaxTTL:
		return nil, fmt.Errorf("new consent service: default TTL %v exceeds the maximum %v", cfg.DefaultTTL, cfg.MaxTTL)
	case cfg.Gate != nil && cfg.Gate.revs != cfg.Revocations:
		return nil, errors.New("new consent service: the gate is not over the service's revocations")
	case cfg.ResweepAfter <= cfg.Revocations.Bound():
		return nil, fmt.Errorf("new consent service: resweep delay %v must exceed the propagation bound %v",
			cfg.ResweepAfter, cfg.Revocations.Bound())
	}
	v, err := verifierOr(cfg.Verifier, cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("new consent service: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	cfg.Secret = bytes.Clone(cfg.Secret)
	limits, err := newGrantLimiter(cfg.GrantLimits, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("new consent service: %w", err)
	}
	if cfg.Metrics != nil {
		cfg.Metrics.Counter("consent_grants_failed_total",
			"Grants refused for an unknown app id or a wrong app key (the two look the same), since start; a burst means app keys are being guessed.",
			func() float64 { return float64(limits.failed.Load()) })
		cfg.Metrics.Counter("consent_grants_throttled_total",
			"Grants refused unchecked (RESOURCE_EXHAUSTED, RATE_LIMITED) because their address, or the app, had too many failed grants, since start.",
			func() float64 { return float64(limits.throttled.Load()) })
	}
	gap := cfg.ResweepAfter.Truncate(time.Second)
	if gap < cfg.ResweepAfter {
		gap += time.Second
	}
	return &Service{
		cfg:      cfg,
		verifier: v,
		log:      cfg.Logger,
		limits:   limits,
		gap:      gap + time.Second,
		takeover: cfg.EraseTimeout + cfg.ResweepInterval,
		owned:    make(map[string]time.Time),
		retryAt:  make(map[string]time.Time),
	}, nil
}

// Grant checks the app's id and key and the scopes asked for, and returns
// a signed consent token.
func (s *Service) Grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	return withStatus(s.grant(ctx, req))
}

// Revoke records the revocation of the token's consent durably, then in
// this replica's set; every other replica learns of it within the
// propagation bound. It is idempotent and returns the first revocation's
// time. With erase it deletes the consent's rows if the app is erasable
// and returns a signed receipt.
func (s *Service) Revoke(ctx context.Context, req *consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
	return withStatus(s.revoke(ctx, req))
}

// Status tells whether a token is accepted: VALID, EXPIRED, REVOKED or
// INVALID.
func (s *Service) Status(ctx context.Context, req *consentryv1.StatusRequest) (*consentryv1.StatusResponse, error) {
	return withStatus(s.status(ctx, req))
}

func (s *Service) grant(ctx context.Context, req *consentryv1.GrantRequest) (*consentryv1.GrantResponse, error) {
	appID := req.GetAppId()
	if !consentryv1.ValidAppID(appID) {
		return nil, fmt.Errorf("grant: %w: app_id must be 1-128 letters, digits, '.', '_' or '-'", pipeline.ErrAppIDInvalid)
	}
	scopes, err := parseScopes(req.GetScopes())
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	if v := req.GetConsentTextVersion(); !consentryv1.ValidConsentTextVersion(v) {
		return nil, fmt.Errorf("grant: %w: consent_text_version must be 1-%d printable characters",
			ErrInvalidRequest, consentryv1.MaxConsentTextVersionLen)
	}
	ttl, err := s.ttl(req.GetTtlSeconds())
	if err != nil {
		return nil, fmt.Errorf("grant: %w", err)
	}
	key := req.GetAppKey()
	if key == "" {
		// A malformed request, not a wrong key: say so, and do not count
		// it as a failed guess.
		return nil, fmt.Errorf("grant: %w: app_key is required", ErrInvalidRequest)
	}
	if !s.cfg.Apps.Loaded() {
		return nil, fmt.Errorf("grant: apps not loaded yet: %w", ErrStoreUnavailable)
	}
	now := s.cfg.Now()
	src := sourcePrefix(sourceOf(ctx))
	if wait, ok := s.limits.check(src, appID, now); !ok {
		return nil, fmt.Errorf("grant: %w", &GrantThrottledError{After: wait})
	}
	app, ok := s.cfg.Apps.App(appID)
	if !authenticate(app, ok, key) {
		// The app may have been added, or its key rotated, on another
		// replica since the last reload: look again before refusing. A
		// miss that turns into a hit is not a failure.
		var err error
		app, ok, err = s.cfg.Apps.Recheck(ctx, appID, HashAppKey(key))
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("grant: %w", ctx.Err())
		case err != nil && !errors.Is(err, ErrRegistryStopped) && !authenticate(app, ok, key):
			// The registry logs the store's failure once.
			return nil, fmt.Errorf("grant: re-read apps: %w", ErrStoreUnavailable)
		case !authenticate(app, ok, key):
			s.limits.fail(src, appID, now)
			// Debug: a guessing burst is logged once per window instead.
			s.log.Debug("grant refused", zap.String("app_id", appID), zap.Stringer("reason", consentryv1.ErrorReason_APP_UNAUTHENTICATED))
			return nil, fmt.Errorf("grant: %w", ErrAppUnauthenticated)
		}
	}
	for _, sc := range scopes {
		if !slices.Contains(app.Scopes, sc) {
			s.log.Info("grant refused", zap.String("app_id", appID), zap.Stringer("reason", consentryv1.ErrorReason_SCOPE_NOT_ALLOWED))
			return nil, fmt.Errorf("grant: %w: %s", ErrScopeNotAllowed, sc)
		}
	}
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
func parseScopes(scopes []string) ([]consentryv1.Scope, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: scopes: at least one is required", ErrInvalidRequest)
	}
	known := consentryv1.Scopes()
	seen := make([]bool, len(known))
	for i, sc := range scopes {
		k := slices.Index(known, consentryv1.Scope(sc))
		if k < 0 {
			return nil, fmt.Errorf("%w: scopes[%d] is not analytics, crash_reports or location", ErrScopeUnknown, i)
		}
		seen[k] = true
	}
	var out []consentryv1.Scope
	for k, ok := range seen {
		if ok {
			out = append(out, known[k])
		}
	}
	return out, nil
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
		// Stamped just before the write, which the ship-time gate relies
		// on: a revocation is visible at most WriteTimeout after the time
		// it states. Whole seconds, as the store keeps them: the time
		// reported now is the one every later call reports.
		rv := Revocation{
			ConsentHash: HashConsentID(c.ConsentID), AppID: c.AppID,
			RevokedAt: s.cfg.Now().Truncate(time.Second), ExpiresAt: c.ExpiresAt, Erase: req.GetErase(),
		}
		// Durably first: once Revoke returns, the revocation must survive
		// this replica and reach the others.
		wctx, cancel := context.WithTimeout(ctx, s.cfg.Revocations.WriteTimeout())
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

// erase deletes the consent's rows if its app is erasable and returns the
// signed receipt. The erasure's record in the store's audit log is what
// makes some replica sweep the consent's rows again (see Run); this one
// does so on time.
func (s *Service) erase(ctx context.Context, c Claims) (*consentryv1.ErasureReceipt, error) {
	if !s.cfg.Apps.Loaded() {
		return nil, fmt.Errorf("erase: apps not loaded yet: %w", ErrStoreUnavailable)
	}
	rc := Receipt{ConsentKey: ConsentKey(s.cfg.Secret, c.ConsentID), AppID: c.AppID, Outcome: OutcomeAnonymous}
	app, ok := s.cfg.Apps.App(c.AppID)
	if !ok {
		// Registered on another replica since the last reload? An
		// erasable app's rows must not be reported anonymous.
		var err error
		app, ok, err = s.cfg.Apps.Recheck(ctx, c.AppID, "")
		if err != nil && !ok && !errors.Is(err, ErrRegistryStopped) {
			return nil, fmt.Errorf("erase: re-read apps: %w", ErrStoreUnavailable)
		}
	}
	if ok && app.Policy == PolicyErasable {
		ectx, cancel := context.WithTimeout(ctx, s.cfg.EraseTimeout)
		rows, err := s.cfg.Store.Erase(ectx, c.AppID, rc.ConsentKey)
		cancel()
		if err != nil {
			s.log.Warn("erasure failed", zap.String("app_id", c.AppID), redactedError(err, rc.ConsentKey))
			return nil, fmt.Errorf("erase: %w", ErrStoreUnavailable)
		}
		rc.Outcome, rc.DeletedRows = OutcomeErased, rows
		s.own(rc.ConsentKey)
		if s.cfg.Gate != nil {
			s.cfg.Gate.markErased(rc.ConsentKey)
		}
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

// own notes that this Service erased consentKey, so its resweep runs as
// soon as it is due rather than on the takeover schedule.
func (s *Service) own(consentKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.owned) < maxTracked {
		s.owned[consentKey] = s.cfg.Now()
	}
}

// Run sweeps the rows of erased consents a second time until ctx is
// done, then returns nil. Every ResweepInterval it asks the store for
// erasures whose resweep is due (the first erasure was complete at least
// ResweepAfter ago, in whole seconds rounded up, plus one) and not on
// record (no later erasure was complete that long after the first), at
// most MaxResweepsPerPass of them, and erases each again: at once if this
// Service erased it, else once it has been due for EraseTimeout plus
// ResweepInterval, so the replica that erased it goes first and any
// replica, after any restart, finishes what another left. A resweep that
// succeeds is on record through the erasure it logs; one that fails is
// tried again ResweepAfter later. Call it once; stop it before closing
// the Store.
func (s *Service) Run(ctx context.Context) error {
	every.Tick(ctx, s.cfg.ResweepInterval, true, s.resweep)
	return nil
}

// resweep is one look for due resweeps, and their runs.
func (s *Service) resweep(ctx context.Context) {
	now := s.cfg.Now()
	qctx, cancel := context.WithTimeout(ctx, s.cfg.EraseTimeout)
	due, err := s.cfg.Store.UnsweptErasures(qctx, now.Add(-s.cfg.Revocations.cfg.Retain), now.Add(-s.gap),
		s.gap, s.cfg.MaxResweepsPerPass)
	cancel()
	s.mu.Lock()
	failed := s.failing
	s.failing = err != nil && ctx.Err() == nil
	s.forget(now)
	s.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil && !failed:
		// Store errors of this query carry times only.
		s.log.Warn("looking for due resweeps failed; will retry", zap.Error(err))
		return
	case err != nil:
		return
	case failed:
		s.log.Info("looking for due resweeps recovered")
	}
	for _, e := range due {
		if ctx.Err() != nil {
			return
		}
		if s.ready(e, now) {
			s.sweep(ctx, e, now)
		}
	}
}

// forget drops what is no longer worth remembering: consents erased so
// long ago that their resweep runs on the takeover schedule anyway, and
// retry times that have passed. s.mu must be held.
func (s *Service) forget(now time.Time) {
	for k, at := range s.owned {
		if now.Sub(at) > s.gap+s.takeover {
			delete(s.owned, k)
		}
	}
	for k, at := range s.retryAt {
		if !now.Before(at) {
			delete(s.retryAt, k)
		}
	}
}

// ready reports whether e's resweep should run now.
func (s *Service) ready(e Erasure, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.retryAt[e.ConsentKey]; ok && now.Before(at) {
		return false
	}
	due := e.First.Add(s.gap)
	if _, ok := s.owned[e.ConsentKey]; ok {
		return !now.Before(due)
	}
	return !now.Before(due.Add(s.takeover))
}

// sweep erases e's rows again.
func (s *Service) sweep(ctx context.Context, e Erasure, now time.Time) {
	ectx, cancel := context.WithTimeout(ctx, s.cfg.EraseTimeout)
	rows, err := s.cfg.Store.Erase(ectx, e.AppID, e.ConsentKey)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.owned, e.ConsentKey)
		delete(s.retryAt, e.ConsentKey)
		s.log.Info("resweep done", zap.String("app_id", e.AppID), zap.Uint64("rows", total(rows)))
		return
	}
	if ctx.Err() != nil {
		return // stopping: the store keeps it due.
	}
	if len(s.retryAt) < maxTracked {
		s.retryAt[e.ConsentKey] = now.Add(s.cfg.ResweepAfter)
	}
	s.log.Warn("resweep failed; will retry", zap.String("app_id", e.AppID), redactedError(err, e.ConsentKey))
}
