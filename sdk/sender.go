package sdk

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// sender is the background goroutine's state: when to send, and the
// backoff. Only that goroutine touches it, so only one batch is ever in
// flight.
type sender struct {
	c *Client
	// drain: send everything queued, not only full batches.
	drain bool
	// nextDrain is when the flush interval next sends what is queued.
	nextDrain time.Time
	// retryAt: no automatic send before it (backoff after a failure).
	retryAt time.Time
	// pushbackUntil: no send at all before it, Flush included: the
	// collector asked to wait.
	pushbackUntil time.Time
	attempt       int
	// revAt and revAttempt are the revocations' backoff.
	revAt      time.Time
	revAttempt int
}

// run is the sender goroutine. backlog says events from an earlier run are
// queued: they are sent at once.
func (c *Client) run(backlog bool) {
	defer c.wg.Done()
	s := &sender{c: c, drain: backlog, nextDrain: time.Now().Add(c.s.flushInterval)}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		c.expireIfDue()
		if c.hasPendingRevocations() && !now.Before(s.revAt) && !now.Before(s.pushbackUntil) {
			s.revocations(c.ctx)
		}
		if !now.Before(s.nextDrain) {
			s.drain = true
			s.nextDrain = now.Add(c.s.flushInterval)
		}
		if !now.Before(s.retryAt) && !now.Before(s.pushbackUntil) {
			if s.drain || c.fullBatchQueued() {
				s.send(c.ctx, s.drain)
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		wake := s.nextDrain
		if c.hasPendingRevocations() {
			wake = earliest(wake, later(s.revAt, s.pushbackUntil))
		}
		if s.drain {
			wake = earliest(wake, later(s.retryAt, s.pushbackUntil))
		}
		timer.Reset(max(time.Until(wake), time.Millisecond))
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-timer.C:
		case req := <-c.flushCh:
			req.done <- s.flush(req.ctx)
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fullBatchQueued reports whether a full batch is waiting.
func (c *Client) fullBatchQueued() bool {
	n, b := c.queue.size()
	return n >= c.s.MaxBatchEvents || b >= int64(c.s.MaxBatchBytes)
}

// revocations tries to deliver the pending revocations, scheduling a retry
// with backoff if that fails.
func (s *sender) revocations(ctx context.Context) error {
	c := s.c
	if err := c.deliverRevocations(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		s.revAttempt++
		d := s.delay(s.revAttempt, err)
		s.revAt = time.Now().Add(d)
		c.logf(LevelDebug, "revocation not delivered (%s); retrying in %v", errSummary(err), d.Round(time.Millisecond))
		return err
	}
	s.revAttempt = 0
	return nil
}

// send sends queued events (all of them, or only full batches) and updates
// the backoff. It returns the first error.
func (s *sender) send(ctx context.Context, all bool) error {
	c := s.c
	err := c.sendQueued(ctx, all)
	if err != nil && transient(err) {
		if ctx.Err() != nil {
			return err
		}
		s.attempt++
		d := s.delay(s.attempt, err)
		s.retryAt = time.Now().Add(d)
		s.drain = true
		c.stats.retries.Add(1)
		c.logf(LevelDebug, "send failed (%s); retrying in %v", errSummary(err), d.Round(time.Millisecond))
		return err
	}
	s.attempt, s.retryAt = 0, time.Time{}
	if all {
		s.drain = false
	}
	return err
}

// flush serves Flush: it syncs the queue, delivers pending revocations,
// and sends everything queued, unless the collector's pushback lasts.
func (s *sender) flush(ctx context.Context) error {
	c := s.c
	syncErr := c.queue.sync()
	if wait := time.Until(s.pushbackUntil); wait > 0 {
		return errors.Join(syncErr, fmt.Errorf("flush: %w: the collector asked to wait %v more", ErrUnavailable, wait.Round(time.Millisecond)))
	}
	var revErr error
	if c.hasPendingRevocations() {
		if revErr = s.revocations(ctx); revErr != nil {
			revErr = fmt.Errorf("flush: revocation still pending: %w", revErr)
		}
	}
	err := s.send(ctx, true)
	if err != nil {
		err = fmt.Errorf("flush: %w", err)
	}
	return errors.Join(syncErr, revErr, err)
}

// delay is the wait before retry attempt n (1, 2, ...) after err:
// exponential backoff from MinBackoff to MaxBackoff with full jitter, at
// least MinBackoff, and at least the collector's pushback, which also
// holds Flush back.
func (s *sender) delay(n int, err error) time.Duration {
	c := s.c
	ceiling := c.s.maxBackoff
	if n-1 < 62 {
		if exp := c.s.minBackoff << (n - 1); exp > 0 && exp < ceiling {
			ceiling = exp
		}
	}
	d := max(time.Duration(rand.Int64N(int64(ceiling)+1)), c.s.minBackoff)
	var ce *callError
	if errors.As(err, &ce) && ce.retryAfter > 0 {
		p := min(ce.retryAfter, maxPushback)
		s.pushbackUntil = time.Now().Add(p)
		d = max(d, p)
	}
	return d
}

// transient reports whether err is worth retrying: a failed request that
// was not refused for good.
func transient(err error) bool {
	var ce *callError
	return errors.As(err, &ce) && !ce.permanent()
}

// snapshot is what a batch is sent under.
type snapshot struct {
	token    string
	scopes   []string
	device   *consentryv1.DeviceContext
	epoch    uint64
	gen      context.Context
	maxAgeMs int64
}

// sendSnapshot returns the current consent to send under, or false if
// there is none.
func (c *Client) sendSnapshot() (snapshot, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.st.Token == "" || c.now().UnixMilli() >= c.st.ExpiresAtMs {
		return snapshot{}, false
	}
	dev := proto.CloneOf(c.s.device)
	if c.location != nil && slices.Contains(c.st.Scopes, ScopeLocation) {
		dev.Location = proto.CloneOf(c.location)
	}
	return snapshot{
		token: c.st.Token, scopes: slices.Clone(c.st.Scopes), device: dev, epoch: c.st.Epoch, gen: c.gen,
		maxAgeMs: c.s.MaxEventAgeMs,
	}, true
}

// errPermanent marks a batch dropped for a permanent error: reported, not
// retried.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return "batch dropped: " + e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// sendQueued sends batches from the head of the queue: until it is empty
// (all), or while a full batch is queued. It continues past batches
// dropped for a permanent error, returning the first such error at the
// end; it stops at a transient error or when the consent ends.
func (c *Client) sendQueued(ctx context.Context, all bool) error {
	var first error
	for ctx.Err() == nil {
		snap, ok := c.sendSnapshot()
		if !ok {
			return first
		}
		if !all && !c.fullBatchQueued() {
			return first
		}
		b, err := c.queue.peek(c.s.MaxBatchEvents, c.s.MaxBatchBytes)
		if err != nil || b == nil {
			return errors.Join(first, err)
		}
		if b.epoch != snap.epoch {
			c.queue.done(b)
			continue // purged in between
		}
		err = c.sendBatch(ctx, snap, b, 0, len(b.items))
		c.queue.done(b)
		if err != nil {
			if _, perm := errors.AsType[errPermanent](err); perm {
				if first == nil {
					first = err
				}
				continue
			}
			return err
		}
	}
	return errors.Join(first, ctx.Err())
}

// sendBatch sends b.items[lo:hi], which start at the head of the queue,
// and removes them from the queue once the collector accepted them or
// refused them for good. A batch refused as too large is split in half.
func (c *Client) sendBatch(ctx context.Context, snap snapshot, b *batch, lo, hi int) error {
	now := c.now()
	nowMono := c.monoMs()
	var events []*consentryv1.Event
	tooOld, purged := 0, 0
	for _, it := range b.items[lo:hi] {
		if it.corrupt {
			continue
		}
		e := it.rec.event
		if e.GetCreatedAtUnixMs() < now.UnixMilli()-snap.maxAgeMs {
			tooOld++
			continue
		}
		if !slices.Contains(snap.scopes, eventScope(e)) {
			purged++
			continue
		}
		e.AgeMs = nil
		if it.rec.proc == c.proc {
			age := max(nowMono-it.rec.monoMs, 0)
			e.AgeMs = &age
		}
		events = append(events, e)
	}
	finish := func() error {
		c.stats.tooOld.Add(int64(tooOld))
		c.stats.purged.Add(int64(purged))
		return c.queue.ack(b, hi)
	}
	if len(events) == 0 {
		return finish()
	}
	req := &consentryv1.IngestRequest{ConsentToken: snap.token, Device: snap.device, SentAtUnixMs: now.UnixMilli(), Events: events}
	actx, cancel := context.WithTimeout(ctx, c.s.requestTimeout)
	stop := context.AfterFunc(snap.gen, cancel)
	resp, err := c.tr.ingest(actx, req)
	stop()
	cancel()
	if snap.gen.Err() != nil {
		return fmt.Errorf("send: %w: consent revoked while sending", ErrConsentEnded)
	}
	if err != nil {
		var ce *callError
		if !errors.As(err, &ce) || !ce.permanent() {
			return err
		}
		if ce.tooLarge() && hi-lo > 1 {
			mid := lo + (hi-lo)/2
			c.logf(LevelDebug, "batch of %d events too large; splitting", hi-lo)
			if err := c.sendBatch(ctx, snap, b, lo, mid); err != nil {
				return err
			}
			return c.sendBatch(ctx, snap, b, mid, hi)
		}
		c.stats.permanent.Add(int64(len(events)))
		c.logf(LevelWarn, "batch of %d events refused (%s); dropped, not retried", len(events), errSummary(err))
		return errors.Join(errPermanent{err}, finish())
	}
	if st := consentEnded(resp); st != consentryv1.ConsentState_CONSENT_STATE_UNSPECIFIED {
		c.endConsent(snap.token, st)
		return fmt.Errorf("send: %w: the collector reports %s", ErrConsentEnded, st)
	}
	c.stats.sent.Add(int64(resp.GetAccepted()))
	c.stats.server.Add(int64(resp.GetDropped()))
	c.stats.batches.Add(1)
	if resp.GetDropped() > 0 {
		c.logf(LevelDebug, "collector dropped %d of %d events", resp.GetDropped(), len(events))
	}
	return finish()
}

// consentEnded returns the consent state a response reports if it means
// the consent is no longer usable (revoked, expired, invalid, missing),
// else UNSPECIFIED.
func consentEnded(resp *consentryv1.IngestResponse) consentryv1.ConsentState {
	switch st := resp.GetConsentState(); st {
	case consentryv1.ConsentState_CONSENT_STATE_REVOKED, consentryv1.ConsentState_CONSENT_STATE_EXPIRED,
		consentryv1.ConsentState_CONSENT_STATE_INVALID, consentryv1.ConsentState_CONSENT_STATE_MISSING:
		return st
	}
	for _, d := range resp.GetDrops() {
		switch d.GetReason() {
		case consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED:
			return consentryv1.ConsentState_CONSENT_STATE_REVOKED
		case consentryv1.DropReason_DROP_REASON_CONSENT_EXPIRED:
			return consentryv1.ConsentState_CONSENT_STATE_EXPIRED
		case consentryv1.DropReason_DROP_REASON_CONSENT_INVALID, consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP,
			consentryv1.DropReason_DROP_REASON_CONSENT_MISSING:
			return consentryv1.ConsentState_CONSENT_STATE_INVALID
		}
	}
	return consentryv1.ConsentState_CONSENT_STATE_UNSPECIFIED
}

// eventScope returns the scope that covers e.
func eventScope(e *consentryv1.Event) string {
	if e.GetCrash() != nil {
		return ScopeCrashReports
	}
	return ScopeAnalytics
}
