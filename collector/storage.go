package collector

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/pipeline"
)

// ErrClickHouseFailed reports that the managed ClickHouse failed
// Config.ClickHouseMaxFailures times within Config.ClickHouseFailureWindow
// and is no longer restarted: Serve returns it, wrapped, and consentryd
// then exits (with status 3) so that systemd or Kubernetes restarts the
// whole process.
var ErrClickHouseFailed = errors.New("managed clickhouse failed repeatedly")

const (
	// CollectorUser is the managed ClickHouse's user the collector (and
	// the consentry CLI on the same data dir) connects as: the only user
	// that may write, and the only one that may read the private
	// database of the session salts.
	CollectorUser = chserver.DefaultUser
	// CollectorPasswordFileName is the default name, in the data dir, of
	// CollectorUser's password file.
	CollectorPasswordFileName = "clickhouse-collector-password"
	// rejectsSpillFileName is the name, in the data dir, of the file that
	// keeps the reject counts ClickHouse could not take at shutdown.
	rejectsSpillFileName = "rejects-unstored.json"
)

const (
	// pingInterval is how often the collector checks that ClickHouse
	// answers.
	pingInterval = time.Second
	// pingTimeout bounds one check.
	pingTimeout = 2 * time.Second
	// pingFailuresDown is how many checks in a row must fail before
	// ClickHouse counts as down: one slow answer under load is not an
	// outage. (A managed server that exits counts as down at once.)
	pingFailuresDown = 2
)

// storageState is what the collector knows of its ClickHouse.
type storageState struct {
	// up: the last pings answered (or not pingFailuresDown in a row
	// failed).
	up atomic.Bool
	// fatal receives once when the managed ClickHouse is given up on.
	fatal chan error
}

// startManagedClickHouse starts the managed ClickHouse under DataDir,
// locked down: the collector connects as CollectorUser with the password
// from CollectorPasswordFile, the analyst may read only chCfg's database,
// there is no password-less user, and the ports listen on
// ClickHouseListenHost (loopback by default). It points chCfg at the
// server, writes its address for local tools, and watches its supervision.
func (a *App) startManagedClickHouse(ctx context.Context, chCfg *clickhouse.Config) error {
	analystPassword, err := loadAnalystPassword(a.cfg.AnalystPasswordFile)
	if err != nil {
		return err
	}
	collectorPassword, err := loadPassword(a.cfg.CollectorPasswordFile, "collector password")
	if err != nil {
		return err
	}
	sc := a.cfg.managedConfig(chCfg.DatabaseName())
	sc.Password, sc.ReadOnlyPassword = collectorPassword, analystPassword
	sc.Logger = a.log.Named("clickhouse-server")
	srv, err := chserver.Start(ctx, sc)
	if err != nil {
		return fmt.Errorf("start local clickhouse: %w", err)
	}
	a.chServer = srv
	chCfg.Addr, chCfg.Username, chCfg.Password = srv.Addr(), srv.User(), srv.Password()
	// Tell local tools (consentry demo, migrate) where it is; they read
	// the password from CollectorPasswordFile.
	if err := os.WriteFile(a.addrFile(), []byte(srv.Addr()+"\n"), 0o600); err != nil {
		return fmt.Errorf("write clickhouse address: %w", err)
	}
	a.log.Info("started local clickhouse", zap.String("addr", srv.Addr()), zap.String("data_dir", srv.DataDir()),
		zap.String("user", srv.User()))
	a.storage.fatal = make(chan error, 1)
	go func() {
		<-srv.Done() // after Stop too, so this ends with closeStorage
		if err := srv.Err(); err != nil {
			a.storage.fatal <- fmt.Errorf("%w: %w", ErrClickHouseFailed, err)
		}
	}()
	return nil
}

// managedConfig returns the managed server's configuration, without its
// passwords and logger. database is the analysts' database.
func (c Config) managedConfig(database string) chserver.Config {
	return chserver.Config{
		Binary:            c.ClickHouseBinary,
		DataDir:           filepath.Join(c.DataDir, "clickhouse"),
		ListenHost:        c.ClickHouseListenHost,
		User:              CollectorUser,
		ReadOnlyUser:      AnalystUser,
		ReadOnlyDatabases: []string{database},
		ReadOnlyNetworks:  c.AnalystNetworks,
		MaxFailures:       c.ClickHouseMaxFailures,
		FailureWindow:     c.ClickHouseFailureWindow,
		RestartBackoff:    c.ClickHouseRestartBackoff,
	}
}

// privateDir creates dir owner-only (0700), or makes an existing one so:
// it holds the secrets (signing key, consent secret, passwords) and the
// managed ClickHouse's data.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict data dir: %w", err)
		}
	}
	return nil
}

// loadPassword reads the password file path, creating it (owner-only)
// with a random password if it does not exist. what names it in errors.
func loadPassword(path, what string) (string, error) {
	p, err := readOrCreate(path, what, rand.Text)
	if err != nil {
		return "", err
	}
	if p = strings.TrimSpace(p); p == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return p, nil
}

// rejectsConfig returns the rejects counter's configuration: counts that
// cannot be stored at shutdown are kept in the data dir for the next run.
func (a *App) rejectsConfig() clickhouse.RejectsConfig {
	rc := a.cfg.Rejects
	if rc.SpillFile == "" {
		rc.SpillFile = filepath.Join(a.cfg.DataDir, rejectsSpillFileName)
	}
	return rc
}

// ClickHouseUp reports whether the ClickHouse the collector uses answers:
// a managed server is up (not restarting, not given up on), and of the
// pings sent every second, fewer than two in a row have failed. It drives
// the consentry_clickhouse_up metric, and suits readiness: with the
// spool, ingest goes on while it is false; without, ingest is refused.
func (a *App) ClickHouseUp() bool {
	if a.chServer != nil && !a.chServer.Up() {
		return false
	}
	return a.storage.up.Load()
}

// watchClickHouse pings ClickHouse every pingInterval until ctx ends and
// keeps ClickHouseUp current, logging each change.
func (a *App) watchClickHouse(ctx context.Context) error {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := a.pingClickHouse(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failed = 0
			if !a.storage.up.Swap(true) {
				a.log.Info("clickhouse answers again")
			}
			continue
		}
		if failed++; failed >= pingFailuresDown && a.storage.up.Swap(false) {
			a.log.Warn("clickhouse does not answer", zap.Error(err))
		}
	}
}

// pingClickHouse checks once that ClickHouse answers.
func (a *App) pingClickHouse(ctx context.Context) error {
	if a.chServer != nil && !a.chServer.Up() {
		return fmt.Errorf("managed clickhouse is %v", a.chServer.State())
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := a.client.Conn().Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// registerStorageGauges exposes ClickHouseUp and the managed server's
// restarts as metrics.
func (a *App) registerStorageGauges() {
	a.metrics.Gauge("clickhouse_up", "1 when the ClickHouse the collector stores into answers (pinged every second; a managed server also up, not restarting), else 0.",
		func() float64 {
			if a.ClickHouseUp() {
				return 1
			}
			return 0
		})
	if srv := a.chServer; srv != nil {
		a.metrics.Counter("clickhouse_restarts_total", "Restarts of the managed ClickHouse after it exited unexpectedly, since start.",
			func() float64 { return float64(srv.Restarts()) })
	}
}

// upSink refuses writes at once while ClickHouse is known to be down, so
// that without a spool requests fail fast (UNAVAILABLE, with a retry
// delay) instead of waiting for an insert that cannot succeed.
type upSink struct {
	pipeline.Sink
	up func() bool
}

// Write implements pipeline.Sink.
func (s upSink) Write(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	if !s.up() {
		return fmt.Errorf("clickhouse does not answer: %w", pipeline.ErrStorageUnavailable)
	}
	return s.Sink.Write(ctx, rows, origin)
}

// closeSinks closes the spool, the writer and the rejects counter, shipping
// and flushing what they hold if ClickHouse answers. A managed ClickHouse
// that is restarting is waited for, for at most half of what is left of
// ctx. If ClickHouse then does not answer, nothing waits for it, so
// shutdown stays well within its bound, and nothing acknowledged is lost:
// the spool keeps what it has not shipped for the next start, the writer
// fails the requests still waiting (none of them was acknowledged), and
// the rejects counter keeps its counts in the data dir for the next run.
func (a *App) closeSinks(ctx context.Context) []error {
	flushCtx, down := ctx, false
	if a.client != nil && !a.reachableAtShutdown(ctx) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		flushCtx, down = c, true
		a.log.Warn("clickhouse does not answer at shutdown: unshipped batches stay in the spool and reject counts in the data dir for the next start")
	}
	var errs []error
	if a.spool != nil {
		// Ships what it can until flushCtx ends; the rest stays in the
		// spool for the next start.
		errs = append(errs, a.spool.Close(flushCtx))
	}
	if a.writer != nil {
		err := a.writer.Close(flushCtx)
		if down && errors.Is(err, context.Canceled) {
			a.log.Warn("the writer failed the requests still waiting for clickhouse", zap.Error(err))
			err = nil
		}
		errs = append(errs, err)
	}
	if a.rejects != nil {
		errs = append(errs, a.rejects.Close(flushCtx))
	}
	return errs
}

// reachableAtShutdown reports whether ClickHouse answers now, waiting for a
// managed server that is restarting for at most half of what is left of
// ctx.
func (a *App) reachableAtShutdown(ctx context.Context) bool {
	if a.chServer != nil && a.chServer.State() == chserver.StateRestarting {
		left := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		wctx, cancel := context.WithTimeout(ctx, left/2)
		err := a.chServer.WaitUp(wctx)
		cancel()
		if err != nil {
			a.log.Warn("the managed clickhouse did not come back before shutdown", zap.Error(err))
			return false
		}
	}
	return a.pingClickHouse(ctx) == nil
}
