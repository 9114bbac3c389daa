package consent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of RegistryConfig.
const (
	// DefaultRegistryInterval is how often the apps are reloaded.
	DefaultRegistryInterval = 10 * time.Second
	// DefaultRecheckInterval is the shortest time between two reloads a
	// miss asks for: at most four a second per replica.
	DefaultRecheckInterval = 250 * time.Millisecond
	// DefaultMissTTL is how long the outcome of a miss's reload is reused
	// for the same app id and key.
	DefaultMissTTL = 2 * time.Second
	// DefaultMaxMisses bounds the misses remembered.
	DefaultMaxMisses = 4096
)

// ErrRegistryStopped is returned by Recheck when Run is not running (not
// yet started, or returned), so nothing can be reloaded.
var ErrRegistryStopped = errors.New("app registry not running")

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Store holds the apps. Required.
	Store Store
	// Interval is how often apps are reloaded; a change made elsewhere
	// (`consentry apps`) takes effect within it, or at once for a grant
	// that needs it (see Recheck). It also bounds each load. Default 10s.
	Interval time.Duration
	// RecheckInterval is the shortest time between the start of a reload
	// a miss asks for (Recheck) and the start of the reload before it:
	// however many misses there are, they cost the store at most one
	// read per RecheckInterval. Default DefaultRecheckInterval.
	RecheckInterval time.Duration
	// MissTTL is how long the outcome of a Recheck is reused for the same
	// app id and key hash without reading again: a client repeating a
	// wrong key costs one read per MissTTL. Default DefaultMissTTL.
	MissTTL time.Duration
	// MaxMisses bounds the (app id, key) misses remembered; the oldest go
	// first. Default DefaultMaxMisses.
	MaxMisses int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger logs load failures; nil means no logging.
	Logger *zap.Logger
}

// Registry holds the registered apps in memory, reloaded from the Store
// by Run every Interval and, sooner, when a lookup misses (Recheck). Reads
// take no lock. It is safe for concurrent use.
//
// Apps are never deleted through the Store, so an app missing from a load
// (one Put here a moment ago that the store does not show yet) is kept,
// and of two versions of an app the one updated last wins.
type Registry struct {
	cfg    RegistryConfig
	poller *poller
	mu     sync.Mutex                     // serializes writers
	apps   atomic.Pointer[map[string]App] // replaced, never modified

	// wake asks Run for a reload; it holds at most one request.
	wake chan struct{}

	rmu       sync.Mutex
	running   bool              // Run is running; guarded by rmu
	next      *reload           // the reload waiters join; nil if none asked; guarded by rmu
	lastStart time.Time         // when the last reload started; guarded by rmu
	misses    map[[32]byte]miss // recent Recheck outcomes; guarded by rmu
	missOrder []missEntry       // misses, oldest first; guarded by rmu
}

// reload is one reload from the store that Recheck callers wait for.
type reload struct {
	done chan struct{} // closed when it has finished
	err  error         // set before done is closed
}

// miss is a remembered Recheck outcome.
type miss struct {
	until time.Time
	err   error // the reload's error; nil if it found nothing newer
}

// NewRegistry returns an empty registry for cfg; Run fills it.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("new app registry: no store")
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultRegistryInterval)
	cfg.RecheckInterval = cmp.Or(cfg.RecheckInterval, DefaultRecheckInterval)
	cfg.MissTTL = cmp.Or(cfg.MissTTL, DefaultMissTTL)
	cfg.MaxMisses = cmp.Or(cfg.MaxMisses, DefaultMaxMisses)
	if cfg.Interval < 0 || cfg.RecheckInterval < 0 || cfg.MissTTL < 0 || cfg.MaxMisses < 0 {
		return nil, errors.New("new app registry: negative interval or size")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Logger = cmp.Or(cfg.Logger, zap.NewNop())
	r := &Registry{cfg: cfg, wake: make(chan struct{}, 1), misses: make(map[[32]byte]miss)}
	r.apps.Store(&map[string]App{})
	r.poller = newPoller("apps", cfg.Interval, cfg.Now, cfg.Logger, r.poll)
	return r, nil
}

// Run loads the apps, then reloads them every Interval, and when Recheck
// asks, until ctx is done; then it returns nil. Call it once.
func (r *Registry) Run(ctx context.Context) error {
	r.rmu.Lock()
	r.running = true
	r.rmu.Unlock()
	defer r.stopRechecks()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	r.reload(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.reload(ctx)
		case <-r.wake:
			// A miss asked: no sooner than RecheckInterval after the
			// last reload started. A tick meanwhile may have served it.
			r.rmu.Lock()
			wait := r.lastStart.Add(r.cfg.RecheckInterval).Sub(r.cfg.Now())
			r.rmu.Unlock()
			if wait > 0 {
				pause := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					pause.Stop()
					return nil
				case <-pause.C:
				}
			}
			r.rmu.Lock()
			asked := r.next != nil
			r.rmu.Unlock()
			if asked {
				r.reload(ctx)
			}
		}
	}
}

// reload loads the apps once, for the waiters who asked before it started.
func (r *Registry) reload(ctx context.Context) {
	r.rmu.Lock()
	waiting := r.next
	r.next = nil
	r.lastStart = r.cfg.Now()
	r.rmu.Unlock()
	err := r.poller.refresh(ctx) // failures are logged by refresh.
	if waiting != nil {
		waiting.err = err
		close(waiting.done)
	}
}

// stopRechecks releases the waiters of a reload that will not run.
func (r *Registry) stopRechecks() {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.running = false
	if r.next != nil {
		r.next.err = ErrRegistryStopped
		close(r.next.done)
		r.next = nil
	}
}

// Recheck is for a lookup that missed: app id is not held, or the app
// held has another key hash than keyHash (its key may have been rotated
// elsewhere); keyHash "" means any key. It reloads the apps from the store
// and returns id's app as held afterwards, so an app added or re-keyed
// with `consentry apps` on another replica is found at once rather than
// after up to Interval.
//
// Reloads are shared and rate-limited: a Recheck waits for the next
// reload that starts after it asked (Run starts one at most
// RecheckInterval after the previous one started), and every Recheck
// waiting then shares it. The outcome for (id, keyHash) is reused for
// MissTTL without reading again. So a flood of misses costs the store at
// most one read per RecheckInterval, and a client repeating one wrong key
// waits at most once per MissTTL.
//
// The error is the reload's (the app held is returned with it), ctx's,
// or ErrRegistryStopped when Run is not running.
func (r *Registry) Recheck(ctx context.Context, id, keyHash string) (App, bool, error) {
	key := missKey(id, keyHash)
	now := r.cfg.Now()
	r.rmu.Lock()
	if m, ok := r.misses[key]; ok && now.Before(m.until) {
		r.rmu.Unlock()
		a, found := r.App(id)
		return a, found, m.err
	}
	if !r.running {
		r.rmu.Unlock()
		a, found := r.App(id)
		return a, found, ErrRegistryStopped
	}
	if r.next == nil {
		r.next = &reload{done: make(chan struct{})}
	}
	w := r.next
	r.rmu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default: // a request is pending already
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		a, found := r.App(id)
		return a, found, ctx.Err()
	}
	a, found := r.App(id)
	if !found || keyHash != "" && subtle.ConstantTimeCompare([]byte(a.KeyHash), []byte(keyHash)) != 1 || w.err != nil {
		r.remember(key, miss{until: r.cfg.Now().Add(r.cfg.MissTTL), err: w.err})
	}
	return a, found, w.err
}

// Notice is for a lookup that missed where waiting is not an option (the
// consent stage, on every batch): it asks Run for a reload, as Recheck
// does, without waiting for it, unless id was noticed or rechecked less
// than MissTTL ago. So an app registered elsewhere moments ago is held
// here within about RecheckInterval, and a stream of batches for an app
// that is not registered costs at most one read per MissTTL.
func (r *Registry) Notice(id string) {
	key := missKey(id, "")
	r.rmu.Lock()
	if m, ok := r.misses[key]; ok && r.cfg.Now().Before(m.until) || !r.running {
		r.rmu.Unlock()
		return
	}
	if r.next == nil {
		r.next = &reload{done: make(chan struct{})}
	}
	r.rmu.Unlock()
	// Counted as a miss at once: nobody waits for the outcome.
	r.remember(key, miss{until: r.cfg.Now().Add(r.cfg.MissTTL)})
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// remember records a miss's outcome, forgetting expired ones and, beyond
// MaxMisses, the oldest.
func (r *Registry) remember(key [32]byte, m miss) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	if r.cfg.MaxMisses == 0 {
		return
	}
	now := r.cfg.Now()
	// Entries are appended in time order and share one TTL, so the
	// oldest are at the front. A key remembered again has a newer entry
	// further on; its old one only leaves the queue.
	for len(r.missOrder) > 0 {
		e := r.missOrder[0]
		if now.Before(e.until) && len(r.misses) < r.cfg.MaxMisses {
			break
		}
		r.missOrder = r.missOrder[1:]
		if cur, ok := r.misses[e.key]; ok && cur.until.Equal(e.until) {
			delete(r.misses, e.key)
		}
	}
	r.misses[key] = m
	r.missOrder = append(r.missOrder, missEntry{key, m.until})
}

// missEntry is a miss in the order remembered.
type missEntry struct {
	key   [32]byte
	until time.Time
}

// missKey identifies a miss: the app id and the key hash presented. It is
// itself a hash, so memory per miss is fixed whatever the client sent.
func missKey(id, keyHash string) [32]byte {
	return sha256.Sum256([]byte(id + "\x00" + keyHash))
}

// Refresh loads the apps from the store now. Run calls it; it is exported
// for tests and tools.
func (r *Registry) Refresh(ctx context.Context) error {
	return r.poller.refresh(ctx)
}

// WaitLoaded blocks until the apps have been loaded once or ctx is done.
// Until then every app is unknown: a collector waits for it before
// serving, or rows of erasable apps would be stored without their
// pseudonym.
func (r *Registry) WaitLoaded(ctx context.Context) error {
	return r.poller.waitLoaded(ctx)
}

// Loaded reports whether the apps have been loaded once.
func (r *Registry) Loaded() bool { return r.poller.isLoaded() }

// App returns the app with id id, if it is registered.
func (r *Registry) App(id string) (App, bool) {
	a, ok := (*r.apps.Load())[id]
	if !ok {
		return App{}, false
	}
	a.Scopes = slices.Clone(a.Scopes)
	return a, true
}

// Put adds or replaces an app in memory with immediate effect, for the
// replica that wrote it to the store.
func (r *Registry) Put(a App) {
	a.Scopes = slices.Clone(a.Scopes)
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(*r.apps.Load())
	next[a.ID] = a
	r.apps.Store(&next)
}

// Len returns the number of apps held.
func (r *Registry) Len() int { return len(*r.apps.Load()) }

func (r *Registry) poll(ctx context.Context, _ time.Time) error {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
	defer cancel()
	apps, err := r.cfg.Store.Apps(lctx)
	if err != nil {
		return fmt.Errorf("load apps: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next := maps.Clone(*r.apps.Load())
	for _, a := range apps {
		if old, ok := next[a.ID]; ok && old.UpdatedAt.After(a.UpdatedAt) {
			continue
		}
		a.Scopes = slices.Clone(a.Scopes)
		next[a.ID] = a
	}
	r.apps.Store(&next)
	return nil
}
