// Package triagetest fills a ClickHouse with realistic rows (package
// internal/seed) for the tests of package triage, the dashboard and the
// analysts' example queries.
package triagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// AddCrash stores a crash of the group fp at at with crumbs as its
// breadcrumbs: a copy of a seeded crash of that group with a new event
// id, inserted as the collector inserts.
func AddCrash(ctx context.Context, env *Env, fp uint64, at time.Time, crumbs []pipeline.Breadcrumb) error {
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
	row := *c
	row.EventID = [16]byte{0xb7, 0xea, 0xd0, byte(at.Unix()), byte(at.Unix() >> 8), byte(len(crumbs)), 0x40, 0, 0x80}
	row.EventTime = at.UTC()
	row.Breadcrumbs = crumbs
	if err := env.Client.Insert(ctx, &pipeline.Rows{Crashes: []pipeline.CrashRow{row}}); err != nil {
		return fmt.Errorf("add crash: %w", err)
	}
	return nil
}
