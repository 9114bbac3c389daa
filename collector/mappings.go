package collector

import (
	"cmp"
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/internal/every"
)

// DefaultMappingRefresh is how often the collector looks for new mapping
// uploads (consentry mappings upload).
const DefaultMappingRefresh = time.Minute

// mappingParts are the R8/ProGuard mappings (package
// anonymizer/deobfuscate) the anonymizer deobfuscates crashes with,
// loaded at start and refreshed in the background.
type mappingParts struct {
	cache *deobfuscate.Cache
	loops loops
}

// startMappings loads the uploaded mappings and starts their refresh. A
// first load that fails is logged, not fatal: crashes are then stored
// obfuscated until a refresh succeeds.
func startMappings(ctx context.Context, cfg Config, client *clickhouse.Client, m *metrics.Metrics) (*mappingParts, error) {
	log := cfg.Logger.Named("mappings")
	cache, err := deobfuscate.NewCache(deobfuscate.CacheConfig{Source: client, MaxBytes: cfg.MappingMaxBytes, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := cache.Refresh(ctx); err != nil {
		log.Warn("mapping files not loaded", zap.Error(err))
	}
	p := &mappingParts{cache: cache, loops: loops{log: cfg.Logger}}
	m.Gauge("mappings_loaded", "R8/ProGuard mapping files loaded to deobfuscate crashes.", func() float64 { return float64(cache.Len()) })
	interval := cmp.Or(cfg.MappingRefresh, DefaultMappingRefresh)
	p.loops.goLoop("mappings", func(ctx context.Context) error {
		every.Tick(ctx, interval, false, func(ctx context.Context) {
			if err := cache.Refresh(ctx); err != nil && ctx.Err() == nil {
				log.Warn("mapping files not refreshed", zap.Error(err))
			}
		})
		return nil
	})
	return p, nil
}

// close stops the refresh.
func (p *mappingParts) close(context.Context) error {
	p.loops.stop()
	return nil
}
