package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The scopes a consent can cover (plain strings, so gomobile binds them).
const (
	// ScopeAnalytics covers sessions, gestures, custom events and
	// diagnostics.
	ScopeAnalytics = string(consentryv1.ScopeAnalytics)
	// ScopeCrashReports covers crashes and handled exceptions.
	ScopeCrashReports = string(consentryv1.ScopeCrashReports)
	// ScopeLocation covers sending coarse coordinates (SetLocation).
	ScopeLocation = string(consentryv1.ScopeLocation)
)

// parseScopes splits a comma-separated list of scopes and checks them.
func parseScopes(scopes string) ([]string, error) {
	list := splitList(scopes)
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no scope: want a comma-separated list of analytics, crash_reports, location", ErrInvalidArgument)
	}
	var out []string
	for _, sc := range list {
		switch {
		case consentryv1.Scope(sc).Valid():
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		default:
			return nil, fmt.Errorf("%w: scope %q is not analytics, crash_reports or location", ErrInvalidArgument, sc)
		}
	}
	return out, nil
}

// tokenLifetime returns how long a consent token is valid (its exp minus
// its iat claim), read without verification: the SDK only uses it to stop
// recording when the token expires, measured on its own clock so that a
// device clock that is off neither expires it early nor late. The
// collector decides on its own clock and reports CONSENT_STATE_EXPIRED.
func tokenLifetime(tok string) (time.Duration, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	var claims struct {
		IssuedAt  int64 `json:"iat"`
		ExpiresAt int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.ExpiresAt <= claims.IssuedAt || claims.IssuedAt <= 0 ||
		claims.ExpiresAt-claims.IssuedAt > int64(10*365*24*time.Hour/time.Second) {
		return 0, false
	}
	return time.Duration(claims.ExpiresAt-claims.IssuedAt) * time.Second, true
}

// GrantConsent asks the collector for a consent token covering scopes, a
// comma-separated list of "analytics", "crash_reports" and "location",
// after the user opted in, and keeps it (encrypted) in the storage folder.
// Recording starts once it returns nil. It needs the network; on error
// nothing changes. Granting again replaces the token: queued events the
// new scopes do not cover are then dropped, not sent, and the replaced
// token is revoked (in the background, retried like RevokeConsent's), so
// the collector's consent records show the user's current choice and the
// old token, with its wider scopes, is accepted nowhere.
func (c *Client) GrantConsent(scopes string) error {
	list, err := parseScopes(scopes)
	if err != nil {
		return fmt.Errorf("grant consent: %w", err)
	}
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return fmt.Errorf("grant consent: %w", ErrClosed)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.requestTimeout)
	defer cancel()
	resp, err := c.tr.grant(ctx, &consentryv1.GrantRequest{
		AppId: c.s.AppID, AppKey: c.s.AppKey, Scopes: list, ConsentTextVersion: c.s.ConsentTextVersion,
	})
	if err != nil {
		return err
	}
	now := c.now()
	expires := resp.GetExpiresAtUnixMs()
	if life, ok := tokenLifetime(resp.GetConsentToken()); ok {
		// On the device's clock, which may be off from the collector's.
		expires = now.Add(life).UnixMilli()
	}
	if resp.GetConsentToken() == "" || expires <= now.UnixMilli() {
		return fmt.Errorf("grant consent: %w: the response has no token, or an expired one", ErrRejected)
	}
	granted := resp.GetScopes()
	if len(granted) == 0 {
		granted = list
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("grant consent: %w", ErrClosed)
	}
	next := c.st.clone()
	if old := c.st.Token; old != "" && old != resp.GetConsentToken() {
		next.Revocations = append(next.Revocations, pendingRevocation{Token: old, RequestedAtMs: now.UnixMilli()})
	}
	next.Token, next.ExpiresAtMs, next.Scopes, next.Ended = resp.GetConsentToken(), expires, granted, ""
	if err := c.saveState(&next); err != nil {
		return fmt.Errorf("grant consent: %w", err)
	}
	if !slices.Contains(granted, ScopeLocation) {
		c.location = nil
	}
	if !slices.Contains(granted, ScopeAnalytics) {
		c.crumbs.clear()
	}
	c.st = next
	c.logf(LevelInfo, "consent granted: %s", strings.Join(granted, ","))
	c.wake()
	return nil
}

// RevokeConsent withdraws the user's consent: it deletes the queue at
// once, stops recording, persists the revocation, and then tries to
// deliver it to the collector (asking it to delete what it stored under
// this consent too, with erase, if the app's policy allows). If the
// collector cannot be reached, RevokeConsent still returns nil: the
// revocation is kept and retried in the background and on every start
// until the collector confirms it (ConsentState is "revoke_pending" until
// then). Without a current consent it does nothing.
func (c *Client) RevokeConsent(erase bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("revoke consent: %w", ErrClosed)
	}
	tok := c.st.Token
	if tok == "" {
		c.mu.Unlock()
		return nil
	}
	next := c.st.clone()
	next.Token, next.ExpiresAtMs, next.Scopes, next.Ended = "", 0, nil, StateRevoked
	next.Revocations = append(next.Revocations, pendingRevocation{Token: tok, Erase: erase, RequestedAtMs: c.now().UnixMilli()})
	err := c.purgeLocked(&next)
	c.mu.Unlock()
	if err != nil {
		// The queue is gone and nothing more is recorded; the revocation
		// is delivered from memory if it could not be persisted.
		c.wake()
		return fmt.Errorf("revoke consent: %w", err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.requestTimeout)
	defer cancel()
	if err := c.deliverRevocations(ctx); err != nil {
		c.logf(LevelInfo, "revocation pending, retried in the background: %v", errSummary(err))
		c.wake()
	}
	return nil
}

// purgeLocked makes next the state with a new queue epoch, deletes the
// queue, and stops what the old consent started: in-flight requests, the
// session, the location and the breadcrumbs. c.mu is held.
func (c *Client) purgeLocked(next *persistedState) error {
	if err := next.newEpoch(); err != nil {
		return err
	}
	aead, err := newAEAD(next.DataKey)
	if err != nil {
		return err
	}
	// Persist first: if the process dies before the segments are deleted,
	// they belong to a past epoch and are deleted on the next start.
	saveErr := c.store.save(next)
	c.st = *next
	n, qErr := c.queue.reset(next.Epoch, aead)
	if diskFull(saveErr) {
		// The purge freed the queue's space. If it held none, replacing
		// the state file (delete, then write) needs none: a crash in
		// between leaves no state, no consent, which is what the user
		// asked for.
		if saveErr = c.store.save(next); diskFull(saveErr) {
			saveErr = c.store.replace(next)
		}
	}
	c.stats.purged.Add(int64(n))
	c.genCancel()
	c.gen, c.genCancel = context.WithCancel(context.Background())
	c.session = session{}
	c.location = nil
	c.crumbs.clear()
	c.logf(LevelInfo, "queue purged: %d events deleted", n)
	return errors.Join(saveErr, qErr)
}

// endConsent ends the consent whose token is tok because the collector
// reported it revoked, expired or invalid (state), purging the queue. It
// does nothing if the consent changed meanwhile.
func (c *Client) endConsent(tok string, state consentryv1.ConsentState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.Token != tok || tok == "" {
		return
	}
	next := c.st.clone()
	next.Token, next.ExpiresAtMs, next.Scopes = "", 0, nil
	switch state {
	case consentryv1.ConsentState_CONSENT_STATE_REVOKED:
		next.Ended = StateRevoked
	case consentryv1.ConsentState_CONSENT_STATE_EXPIRED:
		next.Ended = StateExpired
	default: // invalid or missing: the token is unusable; ask again.
		next.Ended = StateExpired
	}
	c.logf(LevelWarn, "consent ended (%s): purging the queue and stopping", state)
	if err := c.purgeLocked(&next); err != nil {
		c.logf(LevelError, "purging after the consent ended: %v", err)
	}
}

// expireIfDue ends the consent if its token has expired.
func (c *Client) expireIfDue() {
	c.mu.RLock()
	tok, exp := c.st.Token, c.st.ExpiresAtMs
	c.mu.RUnlock()
	if tok != "" && c.now().UnixMilli() >= exp {
		c.endConsent(tok, consentryv1.ConsentState_CONSENT_STATE_EXPIRED)
	}
}

// hasPendingRevocations reports whether a revocation awaits confirmation.
func (c *Client) hasPendingRevocations() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.st.Revocations) > 0
}

// deliverRevocations sends the pending revocations, oldest first, and
// forgets each once the collector confirms it, or reports its token
// expired or invalid (it refuses such a token anyway). It stops at the
// first other failure and returns it.
func (c *Client) deliverRevocations(ctx context.Context) error {
	c.revMu.Lock()
	defer c.revMu.Unlock()
	c.mu.RLock()
	pending := slices.Clone(c.st.Revocations)
	c.mu.RUnlock()
	for _, p := range pending {
		rctx, cancel := context.WithTimeout(ctx, c.s.requestTimeout)
		_, err := c.tr.revoke(rctx, &consentryv1.RevokeRequest{ConsentToken: p.Token, Erase: p.Erase})
		cancel()
		if err != nil {
			var ce *callError
			if !errors.As(err, &ce) || !ce.tokenUnusable() {
				return err
			}
		}
		c.mu.Lock()
		next := c.st.clone()
		next.Revocations = slices.DeleteFunc(next.Revocations, func(r pendingRevocation) bool { return r.Token == p.Token })
		saveErr := c.saveState(&next)
		c.st = next
		c.mu.Unlock()
		if saveErr != nil {
			// Confirmed, so nothing is lost: a later save or the next
			// start sends it again, which the collector answers the same.
			c.logf(LevelWarn, "saving a confirmed revocation failed: %v", saveErr)
		}
		c.logf(LevelInfo, "revocation confirmed by the collector")
	}
	return nil
}

// saveState saves next as the consent state. On a full disk it drops the
// oldest queued events to make room (see queue.makeRoom) and tries once
// more. c.mu is held.
func (c *Client) saveState(next *persistedState) error {
	err := c.store.save(next)
	if diskFull(err) && c.queue.free() {
		err = c.store.save(next)
	}
	return err
}

// errSummary describes err for a log line: the code and reason of a
// collector error, never the server's text, or the error's own text for
// local errors (which hold no payloads).
func errSummary(err error) string {
	var ce *callError
	if errors.As(err, &ce) {
		s := ce.op + ": " + ce.code.String()
		if ce.status != 0 {
			s += fmt.Sprintf(" (HTTP %d)", ce.status)
		}
		if ce.reason != "" {
			s += " " + ce.reason
		}
		return s
	}
	return err.Error()
}
