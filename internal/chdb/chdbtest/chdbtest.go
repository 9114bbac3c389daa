// Package chdbtest opens chDB (ClickHouse 26.x in process) for tests: it
// skips them under -short, fails them with the remedy when the library is
// missing, and closes the database when the test ends.
package chdbtest

import (
	"testing"

	"github.com/consentry/consentry/internal/chdb"
)

// Open opens chDB with cfg (the library found by chdb.Library when
// cfg.Library is empty) and closes it when t ends; a test may close it
// earlier, to open it again. chDB allows one database per process, so
// tests that use it must not run in parallel.
func Open(t testing.TB, cfg chdb.Config) *chdb.DB {
	t.Helper()
	if testing.Short() {
		t.Skip("loads chDB; skipped with -short")
	}
	if cfg.Library == "" {
		lib, err := chdb.Library()
		if err != nil {
			t.Fatalf("chDB library not found: run scripts/deps.sh --with-test-deps (%v)", err)
		}
		cfg.Library = lib
	}
	db, err := chdb.Open(cfg)
	if err != nil {
		t.Fatalf("open chDB: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close chDB: %v", err)
		}
	})
	return db
}
