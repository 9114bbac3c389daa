package chserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// TestRestartsAfterSIGKILL kills the server with SIGKILL: the supervisor
// brings it back on the same ports with the same data and password,
// without anyone calling Start, and State tells the story.
func TestRestartsAfterSIGKILL(t *testing.T) {
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), RestartBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	conn := open(t, srv, srv.User(), srv.Password())
	if err := conn.Exec(ctx, "CREATE TABLE kept (n UInt8) ENGINE = TinyLog"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	addr, pid := srv.Addr(), srv.PID()
	if !srv.Up() {
		t.Fatalf("State = %v before the kill, want up", srv.State())
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Up turns false as soon as the child is gone.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Up() && srv.Restarts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("still up 5s after SIGKILL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.WaitUp(wctx); err != nil {
		t.Fatalf("WaitUp after SIGKILL: %v", err)
	}
	t.Logf("up again %v after SIGKILL (backoff 50ms)", time.Since(killed).Round(time.Millisecond))
	if srv.Addr() != addr || srv.PID() == pid || srv.Restarts() != 1 {
		t.Errorf("after the restart: Addr %s (was %s), PID %d (was %d), Restarts %d; want the same address, a new pid, 1 restart",
			srv.Addr(), addr, srv.PID(), pid, srv.Restarts())
	}
	conn = open(t, srv, srv.User(), srv.Password())
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE name = 'kept'").Scan(&n); err != nil || n != 1 {
		t.Errorf("the table made before the kill: count %d, %v; want 1", n, err)
	}
	conn.Close()
	select {
	case <-srv.Done():
		t.Errorf("Done is closed after a successful restart: %v", srv.Err())
	default:
	}
}

// TestGivesUpAfterRepeatedFailures: a server that cannot come back is
// restarted MaxFailures-1 times with growing pauses, then given up on:
// State is failed, Done is closed, Err and WaitUp wrap ErrGaveUp and
// quote its output.
func TestGivesUpAfterRepeatedFailures(t *testing.T) {
	chtest.RequireBinary(t)
	bin, breakFile := chtest.BreakableBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), Binary: bin,
		MaxFailures: 3, RestartBackoff: 100 * time.Millisecond, MaxRestartBackoff: 150 * time.Millisecond})
	if err := os.WriteFile(breakFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := syscall.Kill(srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not given up 30s after the kill; state %v", srv.State())
	}
	took := time.Since(began)
	err := srv.Err()
	if !errors.Is(err, chserver.ErrGaveUp) || !strings.Contains(err.Error(), "3 failures") || !strings.Contains(err.Error(), "broken on purpose") {
		t.Errorf("Err = %v; want ErrGaveUp after 3 failures quoting the output", err)
	}
	// Pauses: 100ms after the first failure, 150ms (capped) after the
	// second.
	if took < 250*time.Millisecond {
		t.Errorf("gave up %v after the kill, want at least the 250ms of backoff", took)
	}
	if st := srv.State(); st != chserver.StateFailed {
		t.Errorf("State = %v, want failed", st)
	}
	if err := srv.WaitUp(context.Background()); !errors.Is(err, chserver.ErrGaveUp) {
		t.Errorf("WaitUp = %v, want ErrGaveUp", err)
	}
	if got := <-srv.Wait(); !errors.Is(got, chserver.ErrGaveUp) {
		t.Errorf("Wait = %v, want ErrGaveUp", got)
	}
	t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
}

// TestStopWhileRestarting: Stop during a restart that never answers
// returns at once and leaves no process behind; WaitUp then reports
// ErrStopped.
func TestStopWhileRestarting(t *testing.T) {
	chtest.RequireBinary(t)
	real, args, err := chserver.Available("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hang := filepath.Join(dir, "hang")
	bin := filepath.Join(dir, "clickhouse-server")
	pidFile := filepath.Join(dir, "pid")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then echo $$ >%q; exec sleep 600; fi\nexec %q %s \"$@\"\n",
		hang, pidFile, real, strings.Join(args, " "))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := chserver.Start(context.Background(), chserver.Config{DataDir: t.TempDir(), Binary: bin, RestartBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait until the hanging restart runs.
	var hung int
	deadline := time.Now().Add(10 * time.Second)
	for hung == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no restart began within 10s; state %v", srv.State())
		}
		time.Sleep(10 * time.Millisecond)
		b, _ := os.ReadFile(pidFile)
		hung, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if st := srv.State(); st != chserver.StateRestarting {
		t.Errorf("State during the restart = %v, want restarting", st)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Errorf("Stop while restarting: %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Stop while restarting took %v", took)
	}
	if err := srv.WaitUp(context.Background()); !errors.Is(err, chserver.ErrStopped) {
		t.Errorf("WaitUp after Stop = %v, want ErrStopped", err)
	}
	if err := <-srv.Wait(); err != nil {
		t.Errorf("Wait after Stop = %v, want nil", err)
	}
	if st := srv.State(); st != chserver.StateStopped {
		t.Errorf("State = %v, want stopped", st)
	}
	if !processGone(hung) {
		t.Errorf("the restarting child (pid %d) survived Stop", hung)
	}
}
