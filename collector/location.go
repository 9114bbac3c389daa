package collector

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/geo"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/every"
)

// location is what the anonymizer needs to place and re-key events: the
// embedded boundary dataset, the optional IP database (reloaded when its
// file changes) and the daily session salts shared through ClickHouse.
type location struct {
	cfg    Config
	log    *zap.Logger
	bounds *geo.Boundaries
	ipdb   *geo.IPDB // nil without Config.GeoIPFile
	salts  *anonymizer.Salts
	loops  loops
}

// startLocation loads the boundary dataset and the IP database, fetches
// today's session salt, and starts the loops that keep the salts (and the
// IP database) current.
func startLocation(ctx context.Context, cfg Config, client *clickhouse.Client) (_ *location, err error) {
	l := &location{cfg: cfg, log: cfg.Logger, loops: loops{log: cfg.Logger}}
	defer func() {
		if err != nil {
			_ = l.close(context.WithoutCancel(ctx))
		}
	}()
	if l.bounds, err = geo.LoadBoundaries(); err != nil {
		return nil, err
	}
	if cfg.GeoIPFile != "" {
		if l.ipdb, err = geo.OpenIPDB(geo.IPDBConfig{Path: cfg.GeoIPFile, IncludeNonPublic: cfg.GeoIPIncludeNonPublic}); err != nil {
			return nil, err
		}
		l.loops.goLoop("geoip", l.watchIPDB)
	}
	l.salts = anonymizer.NewSalts(anonymizer.SaltsConfig{Store: client, Now: cfg.Anonymizer.Now, Logger: l.log.Named("salts")})
	if err := l.salts.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("session salts: %w", err)
	}
	l.loops.goLoop("salts", l.salts.Run)
	return l, nil
}

// anonymizerConfig returns cfg with the location sources set.
func (l *location) anonymizerConfig(cfg anonymizer.Config) anonymizer.Config {
	cfg.Salts, cfg.Coordinates, cfg.Regions = l.salts, l.bounds, l.bounds
	if l.ipdb != nil {
		cfg.IPs = l.ipdb
	}
	return cfg
}

// watchIPDB reloads the IP database when its file changes, until ctx ends.
func (l *location) watchIPDB(ctx context.Context) error {
	last := modTime(l.cfg.GeoIPFile)
	every.Tick(ctx, l.cfg.GeoIPReload, false, func(context.Context) {
		m := modTime(l.cfg.GeoIPFile)
		if m.Equal(last) {
			return
		}
		if err := l.ipdb.Reload(); err != nil {
			l.log.Warn("reloading the IP database failed; keeping the loaded one", zap.Error(err))
			return
		}
		last = m
		l.log.Info("reloaded the IP database")
	})
	return nil
}

// modTime returns the modification time of path, zero if unknown.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// close stops the loops and closes the IP database.
func (l *location) close(context.Context) error {
	l.loops.stop()
	if l.ipdb != nil {
		l.ipdb.Close()
		l.ipdb = nil
	}
	return nil
}
