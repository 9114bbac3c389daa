package deobfuscate

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultMaxBytes bounds the memory the parsed mappings of a Cache hold.
const DefaultMaxBytes = 1 << 30

// MaxFileBytes is the largest mapping file stored: R8's mappings of large
// apps are tens of megabytes.
const MaxFileBytes = 256 << 20

// Key names the build a mapping file belongs to.
type Key struct {
	// AppID and AppVersion as the SDK reports them, e.g.
	// com.example.notes and 4.12.0.
	AppID      string
	AppVersion string
	// AppBuild is the build number, e.g. 4120003; "" for a mapping of
	// every build of the version.
	AppBuild string
}

// Stored describes a stored mapping file.
type Stored struct {
	Key
	// UploadedAt is when it was uploaded; a later upload for the same
	// Key replaces it.
	UploadedAt time.Time
	// Bytes is the file's size.
	Bytes uint64
}

// Source holds the uploaded mapping files; *clickhouse.Client is one.
type Source interface {
	// ListMappings returns the latest upload of every Key.
	ListMappings(ctx context.Context) ([]Stored, error)
	// ReadMapping returns the file of the upload s.
	ReadMapping(ctx context.Context, s Stored) ([]byte, error)
}

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Source holds the mapping files; required.
	Source Source
	// MaxBytes bounds the memory of the parsed mappings (Mapping.Size);
	// default DefaultMaxBytes. The latest uploads are kept first.
	MaxBytes int64
	// Logger logs mappings that cannot be read; default none.
	Logger *zap.Logger
}

// Cache keeps the parsed mappings of the uploaded files in memory, the
// latest uploads first within MaxBytes, for the ingest path to find
// without waiting: Refresh loads new uploads, Mapping only looks up.
type Cache struct {
	cfg     CacheConfig
	mu      sync.Mutex // serializes Refresh
	loaded  atomic.Pointer[map[Key]*entry]
	refused map[Stored]bool // uploads that do not parse, not retried
}

// entry is one loaded mapping.
type entry struct {
	uploadedAt time.Time
	m          *Mapping
}

// NewCache returns an empty Cache; call Refresh to load mappings.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if cfg.Source == nil {
		return nil, errors.New("deobfuscate: Source is required")
	}
	if cfg.MaxBytes < 0 {
		return nil, errors.New("deobfuscate: MaxBytes must not be negative")
	}
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, DefaultMaxBytes)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c := &Cache{cfg: cfg, refused: make(map[Stored]bool)}
	empty := make(map[Key]*entry)
	c.loaded.Store(&empty)
	return c, nil
}

// Mapping returns the mapping of an app's version and build: the one
// uploaded for that build, else the one for every build of the version;
// nil if none is loaded.
func (c *Cache) Mapping(appID, version, build string) *Mapping {
	loaded := *c.loaded.Load()
	if len(loaded) == 0 {
		return nil
	}
	if e, ok := loaded[Key{appID, version, build}]; ok {
		return e.m
	}
	if e, ok := loaded[Key{appID, version, ""}]; ok {
		return e.m
	}
	return nil
}

// Len returns the number of mappings loaded.
func (c *Cache) Len() int { return len(*c.loaded.Load()) }

// Refresh lists the uploads and loads the new ones, the latest first,
// until one does not fit in MaxBytes (with those loaded before); the
// mappings of older uploads are let go. A file that does not parse is logged and skipped
// until it is uploaded again.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	list, err := c.cfg.Source.ListMappings(ctx)
	if err != nil {
		return fmt.Errorf("deobfuscate: list mappings: %w", err)
	}
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b Stored) int { return b.UploadedAt.Compare(a.UploadedAt) })
	old := *c.loaded.Load()
	next := make(map[Key]*entry, len(list))
	var (
		used int64
		full bool // a mapping did not fit: older ones are not read
		errs []error
	)
	for _, s := range list {
		if c.refused[s] {
			continue
		}
		if e, ok := old[s.Key]; ok && e.uploadedAt.Equal(s.UploadedAt) {
			if used+e.m.Size() <= c.cfg.MaxBytes {
				next[s.Key] = e
				used += e.m.Size()
			}
			continue
		}
		if full {
			continue // older than what filled the bound: not read
		}
		data, err := c.cfg.Source.ReadMapping(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("deobfuscate: read mapping of %s %s: %w", s.AppID, s.AppVersion, err))
			continue
		}
		m, err := Parse(bytes.NewReader(data))
		if err != nil {
			c.refused[s] = true
			c.cfg.Logger.Warn("mapping file skipped", zap.String("app_id", s.AppID), zap.String("app_version", s.AppVersion),
				zap.String("app_build", s.AppBuild), zap.Error(err))
			continue
		}
		if used+m.Size() > c.cfg.MaxBytes {
			full = true
			c.cfg.Logger.Warn("mapping file not loaded: the mappings in memory reached their bound", zap.String("app_id", s.AppID),
				zap.String("app_version", s.AppVersion), zap.Int64("max_bytes", c.cfg.MaxBytes))
			continue
		}
		next[s.Key] = &entry{uploadedAt: s.UploadedAt, m: m}
		used += m.Size()
	}
	c.loaded.Store(&next)
	return errors.Join(errs...)
}
