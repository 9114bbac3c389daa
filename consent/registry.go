package consent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultRegistryInterval is RegistryConfig.Interval's default.
const DefaultRegistryInterval = 10 * time.Second

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Store holds the apps. Required.
	Store Store
	// Interval is how often apps are reloaded; a change made elsewhere
	// (`consentry apps`) takes effect within it. It also bounds each load.
	// Default 10s.
	Interval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger logs load failures; nil means no logging.
	Logger *zap.Logger
}

// Registry holds the registered apps in memory, reloaded from the Store
// by Run. Reads take no lock. It is safe for concurrent use.
//
// Apps are never deleted through the Store, so an app missing from a load
// (one Put here a moment ago that the store does not show yet) is kept,
// and of two versions of an app the one updated last wins.
type Registry struct {
	cfg    RegistryConfig
	poller *poller
	mu     sync.Mutex                     // serializes writers
	apps   atomic.Pointer[map[string]App] // replaced, never modified
}

// NewRegistry returns an empty registry for cfg; Run fills it.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("new app registry: no store")
	}
	setDefault(&cfg.Interval, DefaultRegistryInterval)
	if cfg.Interval < 0 {
		return nil, errors.New("new app registry: negative interval")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &Registry{cfg: cfg}
	r.apps.Store(&map[string]App{})
	r.poller = newPoller("apps", cfg.Interval, cfg.Now, cfg.Logger, r.poll)
	return r, nil
}

// Run loads the apps, then reloads them every Interval until ctx is done,
// and returns nil. Call it once.
func (r *Registry) Run(ctx context.Context) error {
	r.poller.run(ctx)
	return nil
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
