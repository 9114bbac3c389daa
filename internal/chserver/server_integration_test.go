package chserver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// helperEnv makes the test binary act as a parent process that starts a
// server and then waits to be killed; see TestChildDiesWithParent.
const helperEnv = "CHSERVER_TEST_HELPER_DATADIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(helperMain(dir))
	}
	// Every server was stopped or given up on: no supervisor or child
	// waiter may be left.
	goleak.VerifyTestMain(m)
}

// helperMain starts a server in dir, prints its pid, and blocks.
func helperMain(dir string) int {
	srv, err := chserver.Start(context.Background(), chserver.Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.PID())
	select {}
}

func start(t *testing.T, cfg chserver.Config) *chserver.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv
}

func open(t *testing.T, srv *chserver.Server, user, password string) driver.Conn {
	t.Helper()
	return openAddr(t, srv.Addr(), user, password)
}

func openAddr(t *testing.T, addr, user, password string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Database: "default", Username: user, Password: password},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("clickhouse.Open: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// processGone reports whether neither pid nor anything in its process
// group exists any more.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) &&
		errors.Is(syscall.Kill(-pid, 0), syscall.ESRCH)
}

func TestServer(t *testing.T) {
	chtest.RequireBinary(t)
	ctx := context.Background()
	cfg := chserver.Config{
		DataDir:          t.TempDir(),
		ReadOnlyUser:     "analyst",
		ReadOnlyPassword: "s3cret & <xml>",
		// The read-only user reads default, but not the secrets.
		ReadOnlyDatabases: []string{"default"},
		Logger:            zaptest.NewLogger(t),
	}

	srv, err := chserver.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	v, err := srv.Version(ctx)
	if err != nil || v == "" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	t.Logf("ClickHouse %s on %s (http %s), pid %d", v, srv.Addr(), srv.HTTPAddr(), srv.PID())
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:<port>", srv.Addr())
	}

	conn := open(t, srv, srv.User(), srv.Password())
	// 18.16 reports the configured "UTC" as "Etc/UTC".
	var tz, epoch string
	if err := conn.QueryRow(ctx, "SELECT timezone(), toString(toDateTime(86400))").Scan(&tz, &epoch); err != nil ||
		(tz != "UTC" && tz != "Etc/UTC") || epoch != "1970-01-02 00:00:00" {
		t.Errorf("timezone() = %q, toDateTime(86400) = %q, %v; want UTC", tz, epoch, err)
	}
	if err := conn.Exec(ctx, `CREATE TABLE events (id UInt32, name String) ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatalf("CREATE TABLE: %v", err)
	}
	// 18.16 needs the column list: without it, it sends clickhouse-go an
	// empty sample block.
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO events (id, name)")
	if err != nil {
		t.Fatalf("PrepareBatch: %v", err)
	}
	for i, name := range []string{"a", "b", "c"} {
		if err := batch.Append(uint32(i+1), name); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("Send: %v", err)
	}
	checkRows(t, conn, "a,b,c")
	for _, stmt := range []string{"CREATE DATABASE secrets", "CREATE TABLE secrets.salts (s String) ENGINE = MergeTree ORDER BY s"} {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	// The read-only user can read but not write, and needs its password.
	ro := open(t, srv, cfg.ReadOnlyUser, cfg.ReadOnlyPassword)
	checkRows(t, ro, "a,b,c")
	var n uint64
	if err := ro.QueryRow(ctx, "SELECT count() FROM secrets.salts").Scan(&n); err == nil {
		t.Error("the read-only user read a database outside ReadOnlyDatabases")
	}
	if err := ro.QueryRow(ctx, "SELECT count() FROM system.tables").Scan(&n); err != nil {
		t.Errorf("the read-only user cannot read system tables: %v", err)
	}
	// Not INSERT ... VALUES: 18.16 then waits for a data block that
	// clickhouse-go never sends.
	err = ro.Exec(ctx, "INSERT INTO events SELECT 4, 'd'")
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 164 { // READONLY
		t.Errorf("INSERT as read-only user: err = %v, want exception 164 (READONLY)", err)
	}
	bad := open(t, srv, cfg.ReadOnlyUser, "wrong")
	if err := bad.Ping(ctx); err == nil {
		t.Error("read-only user with a wrong password: Ping succeeded")
	}
	// An idle native connection holds up a server's shutdown for up to
	// 10s (its poll interval), so close them first.
	for _, c := range []driver.Conn{conn, ro, bad} {
		c.Close()
	}

	// Stop ends the process and its group, reports a clean exit on Wait,
	// and is idempotent.
	pid := srv.PID()
	wait := srv.Wait()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("pid %d still exists after Stop", pid)
	}
	if err := <-wait; err != nil {
		t.Errorf("Wait after Stop = %v, want nil", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	// The data survives a restart on the same DataDir.
	srv2 := start(t, cfg)
	checkRows(t, open(t, srv2, srv2.User(), srv2.Password()), "a,b,c")
}

func checkRows(t *testing.T, conn driver.Conn, want string) {
	t.Helper()
	names := chtest.QueryStrings(context.Background(), t, conn, "SELECT name FROM events ORDER BY id")
	if got := strings.Join(names, ","); got != want {
		t.Errorf("rows = %q, want %q", got, want)
	}
}

// TestWaitReportsUnexpectedExit: without restarts (MaxFailures 1), an
// unexpected exit ends supervision at once, and Wait says why.
func TestWaitReportsUnexpectedExit(t *testing.T) {
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), MaxFailures: 1})
	wait := srv.Wait()
	if err := syscall.Kill(srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wait:
		if !errors.Is(err, chserver.ErrGaveUp) || !strings.Contains(err.Error(), "exited unexpectedly") {
			t.Errorf("Wait = %v, want ErrGaveUp with an unexpected-exit error", err)
		}
		if st := srv.State(); st != chserver.StateFailed {
			t.Errorf("State = %v, want failed", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait reported nothing 10s after SIGKILL")
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Errorf("Stop after the child died: %v", err)
	}
}

func TestStopKillsWhenContextEnds(t *testing.T) {
	chtest.RequireBinary(t)
	srv, err := chserver.Start(context.Background(), chserver.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = srv.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop with an ended context = %v, want a killed error", err)
	}
	if !processGone(srv.PID()) {
		t.Errorf("pid %d still exists after Stop", srv.PID())
	}
}

func TestStartPortInUse(t *testing.T) {
	chtest.RequireBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	srv, err := chserver.Start(context.Background(), chserver.Config{DataDir: t.TempDir(), TCPPort: port})
	if err == nil {
		srv.Stop(context.Background())
		t.Fatal("Start succeeded on a port in use")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error does not say the address is in use: %v", err)
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := chserver.Start(context.Background(), chserver.Config{
		DataDir: t.TempDir(),
		Binary:  filepath.Join(t.TempDir(), "clickhouse-server"),
	})
	if !errors.Is(err, chserver.ErrNotFound) {
		t.Fatalf("Start with a missing binary: err = %v, want ErrNotFound", err)
	}
	t.Logf("Start: %v", err)
}

func TestStartTimeout(t *testing.T) {
	// A "server" that never answers.
	bin := filepath.Join(t.TempDir(), "clickhouse-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho starting up >&2\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := chserver.Start(context.Background(), chserver.Config{
		DataDir:      t.TempDir(),
		Binary:       bin,
		StartTimeout: 500 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(err.Error(), "starting up") {
		t.Fatalf("Start = %v, want a timeout quoting the output", err)
	}
	t.Logf("Start: %v", err)
}

// TestChildDiesWithParent starts a server from a child process, kills
// that process with SIGKILL, and checks that the server dies too.
func TestChildDiesWithParent(t *testing.T) {
	chtest.RequireBinary(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^$")
	parent.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	parent.Stderr = os.Stderr
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		parent.Wait()
		t.Fatalf("helper printed no pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper printed %q", line)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("server pid %d survived its parent's SIGKILL", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     chserver.Config
		wantErr string
	}{
		{"minimal", chserver.Config{DataDir: "/d"}, ""},
		{"ipv6 loopback", chserver.Config{DataDir: "/d", ListenHost: "::1"}, ""},
		{"wildcard", chserver.Config{DataDir: "/d", ListenHost: "0.0.0.0"}, ""},
		{"read-only user", chserver.Config{DataDir: "/d", ReadOnlyUser: "analyst", ReadOnlyPassword: "x"}, ""},
		{"read-only networks", chserver.Config{DataDir: "/d", ReadOnlyUser: "analyst", ReadOnlyPassword: "x", ReadOnlyNetworks: []string{"10.0.0.0/8", "192.0.2.7", "::1"}}, ""},
		{"user", chserver.Config{DataDir: "/d", User: "consentry", Password: "p"}, ""},
		{"restart policy", chserver.Config{DataDir: "/d", MaxFailures: 1, FailureWindow: time.Minute, RestartBackoff: time.Millisecond, MaxRestartBackoff: time.Second}, ""},
		{"user default", chserver.Config{DataDir: "/d", User: "default"}, `User must not be "default"`},
		{"bad user name", chserver.Config{DataDir: "/d", User: "a b"}, "User"},
		{"same users", chserver.Config{DataDir: "/d", User: "u", ReadOnlyUser: "u", ReadOnlyPassword: "x"}, "both"},
		{"read-only user without password", chserver.Config{DataDir: "/d", ReadOnlyUser: "analyst"}, "ReadOnlyPassword is required"},
		{"bad network", chserver.Config{DataDir: "/d", ReadOnlyUser: "analyst", ReadOnlyPassword: "x", ReadOnlyNetworks: []string{"everywhere"}}, "ReadOnlyNetworks"},
		{"negative failures", chserver.Config{DataDir: "/d", MaxFailures: -1}, "MaxFailures"},
		{"negative backoff", chserver.Config{DataDir: "/d", RestartBackoff: -1}, "RestartBackoff"},
		{"no DataDir", chserver.Config{}, "DataDir is required"},
		{"public host", chserver.Config{DataDir: "/d", ListenHost: "192.0.2.1"}, "ListenHost"},
		{"host name", chserver.Config{DataDir: "/d", ListenHost: "localhost"}, "ListenHost"},
		{"port range", chserver.Config{DataDir: "/d", TCPPort: 70000}, "TCPPort"},
		{"same ports", chserver.Config{DataDir: "/d", TCPPort: 9000, HTTPPort: 9000}, "both 9000"},
		{"negative timeout", chserver.Config{DataDir: "/d", StartTimeout: -1}, "StartTimeout"},
		{"bad read-only user", chserver.Config{DataDir: "/d", ReadOnlyUser: "a<b", ReadOnlyPassword: "x"}, "ReadOnlyUser"},
		{"read-only user default", chserver.Config{DataDir: "/d", ReadOnlyUser: "default", ReadOnlyPassword: "x"}, "ReadOnlyUser"},
		{"password only", chserver.Config{DataDir: "/d", ReadOnlyPassword: "x"}, "ReadOnlyPassword"},
		{"databases only", chserver.Config{DataDir: "/d", ReadOnlyDatabases: []string{"consentry"}}, "ReadOnlyUser is empty"},
		{"bad database", chserver.Config{DataDir: "/d", ReadOnlyUser: "analyst", ReadOnlyDatabases: []string{"a;b"}}, "ReadOnlyDatabases"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}
