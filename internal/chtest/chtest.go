// Package chtest starts ClickHouse servers for integration tests.
//
// A test that needs its own server calls Start, which skips the test under
// -short, and Conn:
//
//	func TestSink(t *testing.T) {
//		srv := chtest.Start(t)
//		conn := chtest.Conn(t, srv)
//		...
//	}
//
// Starting a server takes about half a second. A package with many such
// tests can share one server for the whole test binary by starting it in
// TestMain with StartMain:
//
//	var srv *chserver.Server // nil under -short
//
//	func TestMain(m *testing.M) {
//		flag.Parse()
//		if testing.Short() {
//			os.Exit(m.Run())
//		}
//		s, stop, err := chtest.StartMain("")
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		srv = s
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
//
// and each test then calls chtest.Require(t, srv) before chtest.Conn.
// Tests sharing a server should use their own tables or databases.
//
// The servers are locked down as the collector's is: there is no default
// user, and clients connect as srv.User() with srv.Password() (a random
// password generated for each server), which Conn does:
//
//	cfg := clickhouse.Config{Addr: srv.Addr(), Username: srv.User(), Password: srv.Password()}
//
// Without -short, a missing server binary fails the test (or StartMain)
// with "clickhouse-server not found: run scripts/deps.sh".
package chtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/internal/chserver"
)

// timeout bounds starting and stopping a server, and opening a connection.
const timeout = time.Minute

// Start starts a fresh ClickHouse server in tb.TempDir() on free ports
// and stops it in tb.Cleanup. The server's output goes to the test log.
// Under -short it skips tb.
func Start(tb testing.TB) *chserver.Server {
	tb.Helper()
	RequireBinary(tb)
	cfg := chserver.Config{
		DataDir: tb.TempDir(),
		Logger:  zaptest.NewLogger(tb),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv, err := chserver.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("chtest: %v", err)
	}
	// Registered after TempDir's own cleanup, so it runs before the
	// directory is removed.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			tb.Errorf("chtest: %v", err)
		}
	})
	return srv
}

// Main runs a test binary's tests with one server shared by all of them,
// started before and stopped after; *shared is set to it (nil under
// -short, when the tests that need it skip through Require). It returns
// the exit code. Use it as the whole TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }
func Main(m *testing.M, shared **chserver.Server) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	srv, stop, err := StartMain("")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	*shared = srv
	return m.Run()
}

// StartMain starts a server for a whole test binary, for use in TestMain,
// where there is no testing.TB to skip or fail. dir is the DataDir; ""
// makes a temporary directory, which stop removes. stop stops the server;
// call it after m.Run. StartMain does not look at -short: check
// testing.Short (after flag.Parse) before calling it.
func StartMain(dir string) (srv *chserver.Server, stop func(), err error) {
	if _, _, err := chserver.Available(""); err != nil {
		return nil, nil, fmt.Errorf("chtest: clickhouse-server not found: run scripts/deps.sh (%w)", err)
	}
	removeDir := false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "chtest-"); err != nil {
			return nil, nil, fmt.Errorf("chtest: %w", err)
		}
		removeDir = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv, err = chserver.Start(ctx, chserver.Config{DataDir: dir})
	if err != nil {
		if removeDir {
			os.RemoveAll(dir)
		}
		return nil, nil, fmt.Errorf("chtest: %w", err)
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "chtest: %v\n", err)
		}
		if removeDir {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintf(os.Stderr, "chtest: %v\n", err)
			}
		}
	}
	return srv, stop, nil
}

// Require skips tb under -short and fails it if srv, a server from
// StartMain, is nil.
func Require(tb testing.TB, srv *chserver.Server) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs clickhouse-server; skipped with -short")
	}
	if srv == nil {
		tb.Fatal("chtest: no shared server: call chtest.StartMain from TestMain")
	}
}

// Conn opens a clickhouse-go native connection to srv's default database
// as srv's administrative user, checks it with Ping, and closes it in
// tb.Cleanup.
//
// Close connections before stopping a server yourself: an idle native
// connection delays shutdown by up to 10 seconds. (Cleanups run last
// registered first, so a Conn opened after Start is closed in time.)
func Conn(tb testing.TB, srv *chserver.Server) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{srv.Addr()},
		Auth:        clickhouse.Auth{Database: "default", Username: srv.User(), Password: srv.Password()},
		DialTimeout: 10 * time.Second,
		ReadTimeout: timeout,
	})
	if err != nil {
		tb.Fatalf("chtest: open connection to %s: %v", srv.Addr(), err)
	}
	tb.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		tb.Fatalf("chtest: ping %s: %v", srv.Addr(), err)
	}
	return conn
}

// QueryStrings runs query, whose result is one String column, on conn
// and returns its rows; it fails tb if the query, a scan or reading the
// rows fails.
func QueryStrings(ctx context.Context, tb testing.TB, conn driver.Conn, query string, args ...any) []string {
	tb.Helper()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		tb.Fatalf("chtest: %v\n%s", err, query)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatalf("chtest: scan: %v\n%s", err, query)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("chtest: rows: %v\n%s", err, query)
	}
	if err := rows.Close(); err != nil {
		tb.Fatalf("chtest: close rows: %v\n%s", err, query)
	}
	return out
}

// CheckModes fails tb for every path of modes that is missing or whose
// permission bits are not the mode modes gives it: for the files and
// folders a locked-down server keeps private.
func CheckModes(tb testing.TB, modes map[string]os.FileMode) {
	tb.Helper()
	for path, want := range modes {
		fi, err := os.Stat(path)
		if err != nil {
			tb.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			tb.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}

// RequireBinary skips tb under -short and fails it if no server binary
// is installed: for tests that start a ClickHouse server of their own.
func RequireBinary(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts clickhouse-server; skipped with -short")
	}
	if _, _, err := chserver.Available(""); err != nil {
		tb.Fatalf("clickhouse-server not found: run scripts/deps.sh (%v)", err)
	}
}

// ClearOfUTCMidnight waits, if midnight UTC is less than within away, until
// it has passed. Stored rows, daily salts, k-anonymity classes and
// escalation alerts are all per UTC day, so a test that expects one day's
// outcome must not straddle two (a full test run that crossed midnight
// saw the k-anonymity and alert tests fail on it).
func ClearOfUTCMidnight(tb testing.TB, within time.Duration) {
	tb.Helper()
	if wait := untilUTCMidnight(time.Now()); wait < within {
		tb.Logf("waiting %v for midnight UTC to pass", wait.Round(time.Second))
		time.Sleep(wait + time.Second)
	}
}

// untilUTCMidnight returns how long after now the next UTC day begins.
func untilUTCMidnight(now time.Time) time.Duration {
	return now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Sub(now)
}
