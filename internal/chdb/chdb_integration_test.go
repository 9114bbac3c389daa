package chdb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chdb"
	"github.com/consentry/consentry/internal/chdb/chdbtest"
)

func TestChDB(t *testing.T) {
	db := chdbtest.Open(t, chdb.Config{})
	ctx := context.Background()

	v, err := db.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	t.Logf("chDB %s, data in %s", v, db.Path())
	if !strings.HasPrefix(v, "26.") {
		t.Errorf("Version = %q, want 26.x", v)
	}

	for _, sql := range []string{
		`CREATE TABLE events (
			app LowCardinality(String),
			day Date,
			kind Enum8('view' = 1, 'tap' = 2),
			n UInt32
		) ENGINE = MergeTree
		PARTITION BY toYYYYMM(day)
		ORDER BY (app, day)
		TTL day + INTERVAL 400 DAY`,
		`INSERT INTO events VALUES ('a', today(), 'view', 1), ('b', today(), 'tap', 2), ('a', today(), 'tap', 3)`,
		// A row past its TTL is dropped when parts merge.
		`INSERT INTO events VALUES ('old', today() - 500, 'view', 4)`,
		`OPTIMIZE TABLE events FINAL`,
	} {
		if err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("Exec(%.40q): %v", sql, err)
		}
	}
	out, err := db.Query(ctx, "SELECT app, sum(n) FROM events GROUP BY app ORDER BY app", "CSV")
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if want := "\"a\",4\n\"b\",2\n"; out != want {
		t.Errorf("Query = %q, want %q", out, want)
	}
	out, err = db.Query(ctx, "SELECT toTypeName(app) FROM events LIMIT 1", "")
	if err != nil || out != "LowCardinality(String)\n" {
		t.Errorf("toTypeName(app) = %q, %v", out, err)
	}

	_, err = db.Query(ctx, "SELEKT 1", "CSV")
	if err == nil || !strings.Contains(err.Error(), "Syntax error") {
		t.Errorf("invalid query: err = %v, want chDB's syntax error", err)
	}
	t.Logf("invalid query: %v", err)
	err = db.Exec(ctx, "SELECT * FROM no_such_table")
	if err == nil || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("missing table: err = %v, want chDB's message", err)
	}
	if _, err := db.Query(ctx, "SELECT 1\x00", ""); err == nil {
		t.Error("query with a NUL byte: no error")
	}
}

// TestGoSignalsSurvive checks that the Go runtime still handles SIGSEGV
// once chDB has started: a nil dereference must be a recoverable panic,
// not a crash.
func TestGoSignalsSurvive(t *testing.T) {
	db := chdbtest.Open(t, chdb.Config{})
	if _, err := db.Query(context.Background(), "SELECT 1", ""); err != nil {
		t.Fatal(err)
	}
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		var p *int
		_ = *p
	}()
	if recovered == nil {
		t.Fatal("nil dereference did not panic")
	}
}

func TestOneDBPerProcess(t *testing.T) {
	db := chdbtest.Open(t, chdb.Config{})
	lib, _ := chdb.Library()
	if _, err := chdb.Open(chdb.Config{Library: lib}); !errors.Is(err, chdb.ErrBusy) {
		t.Errorf("second Open: err = %v, want ErrBusy", err)
	}
	ctx := context.Background()

	// Concurrent queries take turns.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := db.Query(ctx, "SELECT sum(number) FROM numbers(100000)", ""); err != nil {
				t.Errorf("query %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	// A context that ends while a query waits for the connection.
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := db.Query(expired, "SELECT 1", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired context: err = %v", err)
	}

	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := db.Query(ctx, "SELECT 1", ""); !errors.Is(err, chdb.ErrClosed) {
		t.Errorf("Query after Close: err = %v, want ErrClosed", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db := chdbtest.Open(t, chdb.Config{Path: dir})
	if err := db.Exec(ctx, "CREATE TABLE kept (n UInt8) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(ctx, "INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = chdbtest.Open(t, chdb.Config{Path: dir})
	if out, err := db.Query(ctx, "SELECT n FROM kept", ""); err != nil || out != "7\n" {
		t.Errorf("after reopening: %q, %v; want 7", out, err)
	}
}

func TestLibraryMissing(t *testing.T) {
	t.Setenv(chdb.LibraryEnv, "/nonexistent/libchdb.so")
	if _, err := chdb.Library(); !errors.Is(err, chdb.ErrNotFound) {
		t.Errorf("Library: err = %v, want ErrNotFound", err)
	}
	if _, err := chdb.Open(chdb.Config{}); !errors.Is(err, chdb.ErrNotFound) {
		t.Errorf("Open: err = %v, want ErrNotFound", err)
	}
}
