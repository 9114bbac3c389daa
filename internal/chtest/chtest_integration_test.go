package chtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// shared is started by TestMain with chtest.StartMain; nil under -short.
var shared *chserver.Server

func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }

func TestStartAndConn(t *testing.T) {
	srv := chtest.Start(t)
	conn := chtest.Conn(t, srv)
	ctx := context.Background()
	if err := conn.Exec(ctx, "CREATE TABLE t (n UInt8) ENGINE = Memory"); err != nil {
		t.Fatalf("CREATE TABLE: %v", err)
	}
	if err := conn.Exec(ctx, "INSERT INTO t SELECT number FROM system.numbers LIMIT 3"); err != nil {
		t.Fatalf("INSERT: %v", err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("count() = %d, %v; want 3", n, err)
	}
}

func TestShared(t *testing.T) {
	chtest.Require(t, shared)
	conn := chtest.Conn(t, shared)
	var db string
	if err := conn.QueryRow(context.Background(), "SELECT currentDatabase()").Scan(&db); err != nil || db != "default" {
		t.Fatalf("currentDatabase() = %q, %v; want default", db, err)
	}
}
