// Package triagetest fills a ClickHouse with realistic rows (package
// internal/seed) for the tests of package triage, the dashboard and the
// analysts' example queries.
package triagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/seed"
	"github.com/consentry/consentry/pipeline"
)

// AppID is the app the rows are from.
const AppID = "com.example.notes"

// Days is how many days of rows there are, ending today.
const Days = 14

// Env is a seeded database.
type Env struct {
	// Client is connected to the database.
	Client *clickhouse.Client
	// Store reads it with K = 10.
	Store *triage.Store
	// Now is the time the Store's clock started at: the last minute of
	// the rows' last day (today, UTC), so every row is in the past.
	Now time.Time
	// Rows are the rows stored.
	Rows *pipeline.Rows
}

// Config shapes an Env.
type Config struct {
	// ClickHouse is the server and database; the database is migrated.
	ClickHouse clickhouse.Config
	// SessionsPerDay is passed to seed.Config; default 400.
	SessionsPerDay int
	// Now is a time of the day the rows end on; default time.Now. The
	// Store's clock starts at the last minute of that day.
	Now time.Time
	// Logger logs; nil logs nothing.
	Logger *zap.Logger
}

// Open connects, migrates and stores the rows. Close the Env's Client when
// done.
func Open(ctx context.Context, cfg Config) (*Env, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.SessionsPerDay == 0 {
		cfg.SessionsPerDay = 400
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	now := cfg.Now.UTC()
	c, err := clickhouse.Open(ctx, cfg.ClickHouse, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if _, err := c.Migrate(ctx); err != nil {
		c.Close()
		return nil, err
	}
	rows := seed.Rows(seed.Config{AppID: AppID, End: now, Days: Days, SessionsPerDay: cfg.SessionsPerDay, Seed: 7})
	if err := c.Insert(ctx, rows); err != nil {
		c.Close()
		return nil, fmt.Errorf("seed: %w", err)
	}
	// The Store's clock starts after the last row, so a decision is
	// later than every crash (a regression needs a crash after the
	// resolve), and runs a thousand times slower than real time: decisions
	// are ordered, and a test never crosses midnight.
	now = now.Truncate(24 * time.Hour).Add(24*time.Hour - time.Minute)
	start := time.Now()
	store, err := triage.New(triage.Config{Backend: c, K: 10, Now: func() time.Time { return now.Add(time.Since(start) / 1000) }})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Env{Client: c, Store: store, Now: now, Rows: rows}, nil
}

// Fresh drops and seeds the database db (and its private database) on the
// test server srv, and closes the Env's client when tb ends. It skips or
// fails tb as chtest.Require does when there is no server.
func Fresh(tb testing.TB, srv *chserver.Server, db string) *Env {
	tb.Helper()
	chtest.Require(tb, srv)
	conn := chtest.Conn(tb, srv)
	for _, d := range []string{db, db + "_private"} {
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+d); err != nil {
			tb.Fatal(err)
		}
	}
	env, err := Open(context.Background(), Config{ClickHouse: clickhouse.Config{Addr: srv.Addr(), Database: db, Username: srv.User(), Password: srv.Password()}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { env.Client.Close() })
	return env
}

// BreadcrumbColumns are the columns, as the crashes table will have them
// once the SDK sends breadcrumbs, that AddBreadcrumbs adds.
var BreadcrumbColumns = []string{
	"breadcrumb_time Array(DateTime('UTC'))",
	"breadcrumb_category Array(String)",
	"breadcrumb_message Array(String)",
}

// AddBreadcrumbs adds the breadcrumb columns to the crashes table of env
// (a no-op if it has them), as the SDK's crash data will, and stores a
// crash of the group fp at at with crumbs: a copy of a seeded crash of
// that group with a new event id. conn is connected to env's server.
func AddBreadcrumbs(ctx context.Context, conn driver.Conn, env *Env, fp uint64, at time.Time, crumbs []triage.Breadcrumb) error {
	db := env.Client.Database()
	for _, col := range BreadcrumbColumns {
		err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.crashes ADD COLUMN %s", db, col))
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("add %s: %w", col, err)
		}
	}
	var c *pipeline.CrashRow
	for i := range env.Rows.Crashes {
		if env.Rows.Crashes[i].Fingerprint == fp {
			c = &env.Rows.Crashes[i]
			break
		}
	}
	if c == nil {
		return fmt.Errorf("no seeded crash of %016x", fp)
	}
	var modules, functions, files []string
	var lines []uint32
	var inApp []uint8
	for _, f := range c.Frames {
		modules, functions, files, lines = append(modules, f.Module), append(functions, f.Function), append(files, f.File), append(lines, f.Line)
		inApp = append(inApp, map[bool]uint8{true: 1}[f.InApp])
	}
	var times []time.Time
	var categories, messages []string
	for _, b := range crumbs {
		times, categories, messages = append(times, b.Time), append(categories, b.Category), append(messages, b.Message)
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf(`INSERT INTO %s.crashes (app_id, event_date, event_time, event_id, session_key, app_version,
    device_class, device_model, os_name, os_version, country, region, exception_type, fingerprint, message,
    frame_module, frame_function, frame_file, frame_line, frame_in_app, thread, handled, app_state,
    breadcrumb_time, breadcrumb_category, breadcrumb_message)`, db))
	if err != nil {
		return err
	}
	defer batch.Close()
	id := [16]byte{0xb7, 0xea, 0xd0, byte(at.Unix()), byte(at.Unix() >> 8), byte(len(crumbs)), 0x40, 0, 0x80}
	if err := batch.Append(c.AppID, at.UTC(), at.UTC(), uuid.UUID(id), c.SessionKey, c.AppVersion,
		c.DeviceClass, c.DeviceModel, c.OSName, c.OSVersion, c.Country, c.Region, c.ExceptionType, c.Fingerprint, c.Message,
		modules, functions, files, lines, inApp, c.Thread, map[bool]uint8{true: 1}[c.Handled], c.AppState,
		times, categories, messages); err != nil {
		return err
	}
	return batch.Send()
}
