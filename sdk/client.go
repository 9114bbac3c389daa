package sdk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Client records diagnostics under the user's consent and sends them to
// the collector. Its methods are safe for concurrent use. A Client owns
// its storage folder until Close.
type Client struct {
	s     *settings
	log   Logger
	store *stateStore
	queue *queue
	tr    transport
	lock  *dirLock
	stats counters
	// proc tags the records of this Client: their age is known only
	// within it.
	proc uint64
	// start is the base of the monotonic clock records carry.
	start time.Time
	// crumbs are the breadcrumbs crashes carry.
	crumbs *crumbRing
	// state is the app state crashes carry, a consentryv1.AppState.
	state atomic.Int32

	mu       sync.RWMutex // guards the fields below
	st       persistedState
	session  session
	location *consentryv1.CoarseLocation
	closed   bool
	// gen is canceled when the queue is purged: requests carrying the old
	// consent stop at once.
	gen       context.Context
	genCancel context.CancelFunc

	// revMu serializes revocation deliveries.
	revMu sync.Mutex

	kick    chan struct{}
	flushCh chan flushRequest
	ctx     context.Context // the sender's lifetime
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// session is the current app session.
type session struct {
	id    []byte
	start time.Time // monotonic
}

// flushRequest asks the sender to send everything queued.
type flushRequest struct {
	ctx  context.Context
	done chan error
}

// New opens the storage folder, resumes its queue and consent state, and
// starts sending in the background. Close the Client when the app stops.
func New(cfg *Config) (_ *Client, err error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	c := &Client{s: s, log: s.Logger, start: time.Now(), crumbs: newCrumbRing(s.MaxBreadcrumbs),
		kick: make(chan struct{}, 1), flushCh: make(chan flushRequest)}
	c.state.Store(int32(consentryv1.AppState_APP_STATE_FOREGROUND))
	defer func() {
		if err != nil {
			c.closeResources()
		}
	}()
	if err := os.MkdirAll(s.StorageDir, 0o700); err != nil {
		return nil, fmt.Errorf("new consentry client: storage folder: %w", err)
	}
	if c.lock, err = lockDir(s.StorageDir); err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	if err := c.openState(); err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	aead, err := newAEAD(c.st.DataKey)
	if err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	if c.queue, err = openQueue(filepath.Join(s.StorageDir, queueDirName), c.st.Epoch, aead, s.MaxQueueBytes, &c.stats); err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	if c.tr, err = newTransport(s); err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	var tag [8]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, fmt.Errorf("new consentry client: %w", err)
	}
	c.proc = binary.BigEndian.Uint64(tag[:])
	c.gen, c.genCancel = context.WithCancel(context.Background())
	c.ctx, c.cancel = context.WithCancel(context.Background())
	n, _ := c.queue.size()
	if n > 0 || len(c.st.Revocations) > 0 {
		c.logf(LevelInfo, "resuming: %d events queued, %d revocations pending", n, len(c.st.Revocations))
	}
	c.wg.Add(1)
	go c.run(n > 0)
	return c, nil
}

// NewClient is New under the name gomobile turns into a constructor,
// Client(cfg) in Java and Kotlin, which throws New's error. (The
// Objective-C initializer it also becomes drops the error; Swift code
// calls SdkNew(cfg, &error) instead.)
func NewClient(cfg *Config) (*Client, error) { return New(cfg) }

// closeResources releases what New acquired, for a failed New.
func (c *Client) closeResources() {
	if c.queue != nil {
		c.queue.close()
	}
	if c.tr != nil {
		c.tr.close()
	}
	if c.lock != nil {
		c.lock.release()
	}
}

func (c *Client) logf(level int, format string, args ...any) {
	c.log.Log(level, "consentry: "+fmt.Sprintf(format, args...))
}

// now returns the wall-clock time.
func (c *Client) now() time.Time { return c.s.now() }

// monoMs returns the monotonic time in ms since New.
func (c *Client) monoMs() int64 { return time.Since(c.start).Milliseconds() }

// covers reports whether the consent covers scope at now. c.mu is held.
func (c *Client) covers(scope string, now time.Time) bool {
	return c.st.Token != "" && now.UnixMilli() < c.st.ExpiresAtMs && slices.Contains(c.st.Scopes, scope)
}

// ConsentState returns "none" (never granted), "granted", "revoked",
// "revoke_pending" (revoked on the device; the collector has not confirmed
// yet) or "expired" (the token expired or the collector refused it: ask
// for consent again).
func (c *Client) ConsentState() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	switch {
	case c.st.Token != "" && c.now().UnixMilli() >= c.st.ExpiresAtMs:
		return StateExpired
	case c.st.Token != "":
		return StateGranted
	case len(c.st.Revocations) > 0:
		return StateRevokePending
	case c.st.Ended != "":
		return c.st.Ended
	}
	return StateNone
}

// Scopes returns the granted scopes, comma-separated in the collector's
// order ("analytics,crash_reports,location"), or "" without consent.
func (c *Client) Scopes() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.st.Token == "" || c.now().UnixMilli() >= c.st.ExpiresAtMs {
		return ""
	}
	return strings.Join(c.st.Scopes, ",")
}

// Stats returns the Client's counters. Go-only (gomobile does not bind
// struct results).
func (c *Client) Stats() Stats {
	n, b := c.queue.size()
	c.mu.RLock()
	pending := len(c.st.Revocations)
	c.mu.RUnlock()
	k := &c.stats
	return Stats{
		QueuedEvents: int64(n), QueuedBytes: b,
		RecordedEvents: k.recorded.Load(), SentEvents: k.sent.Load(), SentBatches: k.batches.Load(),
		Retries: k.retries.Load(), DroppedEvicted: k.evicted.Load(), DroppedTooOld: k.tooOld.Load(),
		DroppedPermanentError: k.permanent.Load(), DroppedServer: k.server.Load(), DroppedPurged: k.purged.Load(),
		DroppedCorrupt: k.corruptCount.Load(), PendingRevocations: int64(pending),
	}
}

// Flush sends everything queued now, within Config.FlushTimeoutMs, and
// returns the first error (events that could not be sent stay queued and
// are retried in the background). It does not send while the collector's
// pushback (RetryInfo, Retry-After) lasts, and returns an error wrapping
// ErrUnavailable instead.
func (c *Client) Flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.flushTimeout)
	defer cancel()
	return c.FlushContext(ctx)
}

// FlushContext is Flush bounded by ctx instead of Config.FlushTimeoutMs.
// Go-only.
func (c *Client) FlushContext(ctx context.Context) error {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	return c.requestFlush(ctx)
}

// requestFlush has the sender flush, and waits for it.
func (c *Client) requestFlush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case c.flushCh <- req:
	case <-ctx.Done():
		return fmt.Errorf("flush: %w", ctx.Err())
	case <-c.ctx.Done():
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("flush: %w", ctx.Err())
	}
}

// Close ends the current session, sends what it can within
// Config.FlushTimeoutMs, stops the background sender and closes the queue.
// Events it could not send stay queued for the next Client on the same
// folder; Close reports only failures to persist them, not network
// errors. Later calls return the first call's result.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if err := c.EndSession(); err != nil {
			c.logf(LevelWarn, "closing: recording the session end failed: %v", err)
		}
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), c.s.flushTimeout)
		if err := c.requestFlush(ctx); err != nil {
			c.logf(LevelInfo, "closing: events stay queued: %s", errSummary(err))
		}
		cancel()
		c.cancel()
		c.wg.Wait()
		c.genCancel()
		qErr := c.queue.close()
		c.tr.close()
		c.closeErr = errors.Join(qErr, c.lock.release())
		if c.closeErr != nil {
			c.closeErr = fmt.Errorf("close: %w", c.closeErr)
		}
	})
	return c.closeErr
}

// newEventID returns a random 16-byte event id with the UUID version 4
// bits set.
func newEventID() ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("draw event id: %w", err)
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id, nil
}

// randomID returns n random bytes.
func randomID(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("draw id: %w", err)
	}
	return b, nil
}

// recordBufs holds buffers for record plaintexts.
var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// record stamps e with an id and the time, and appends it to the queue if
// the consent covers scope; otherwise it does nothing and returns nil.
// With durable, it returns once the record is on stable storage. A
// gesture or custom event recorded leaves a breadcrumb.
func (c *Client) record(op, scope string, e *consentryv1.Event, durable bool) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	now := c.now()
	if !c.covers(scope, now) {
		return nil
	}
	id, err := newEventID()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	e.EventId = id
	e.CreatedAtUnixMs = now.UnixMilli()
	if e.SessionId == nil && c.session.id != nil {
		e.SessionId = c.session.id
	}
	bp := recordBufs.Get().(*[]byte)
	plain, err := encodeRecord((*bp)[:0], c.proc, c.monoMs(), e)
	if err == nil {
		err = c.queue.append(plain, durable)
	}
	clear(plain)
	*bp = plain[:0]
	recordBufs.Put(bp)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	c.stats.recorded.Add(1)
	if cr, ok := crumbOf(e); ok && c.covers(ScopeAnalytics, now) {
		cr.at = time.Now()
		c.crumbs.add(cr)
	}
	if n, b := c.queue.size(); n >= c.s.MaxBatchEvents || b >= int64(c.s.MaxBatchBytes) {
		c.wake()
	}
	return nil
}

// wake nudges the sender without blocking.
func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
