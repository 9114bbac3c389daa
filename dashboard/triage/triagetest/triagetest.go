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
	// Now is the time the Store's clock started at: today, UTC, where the
	// rows end.
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
	// Now is the time rows end at and the Store takes as now; default
	// time.Now.
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
	// The Store's clock starts at now and runs, so decisions are ordered.
	start := time.Now()
	store, err := triage.New(triage.Config{Backend: c, K: 10, Now: func() time.Time { return now.Add(time.Since(start)) }})
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
