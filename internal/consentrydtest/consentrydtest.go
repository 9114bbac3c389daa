// Package consentrydtest builds the consentryd binary and runs it in
// tests as users run it: a child process on loopback ports, ready once
// its admin port's /readyz answers 200, stopped with SIGTERM.
package consentrydtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Build compiles cmd/consentryd into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "consentryd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/consentry/consentry/cmd/consentryd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build consentryd: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address, "127.0.0.1:port", that is free
// now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ErrStopTimeout reports that consentryd did not exit within Stop's
// timeout after SIGTERM; Stop killed it.
var ErrStopTimeout = errors.New("consentryd did not stop in time after SIGTERM")

// Process is a running consentryd.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	err    error         // what Wait returned; set before exited is closed
}

// Start starts cmd, a consentryd command line, and fails tb if it cannot.
// The test's cleanup kills the process if it still runs then.
func Start(tb testing.TB, cmd *exec.Cmd) *Process {
	tb.Helper()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start consentryd: %v", err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// WaitReady waits until GET http://admin/readyz answers 200. It fails tb,
// quoting logs(), when the process exits first or timeout passes.
func (p *Process) WaitReady(tb testing.TB, admin string, timeout time.Duration, logs func() []byte) {
	tb.Helper()
	p.WaitPath(tb, admin, "/readyz", timeout, logs)
}

// WaitPath waits until GET http://admin followed by path answers 200 (a
// probe's path, say). It fails tb, quoting logs(), when the process exits
// first or timeout passes.
func (p *Process) WaitPath(tb testing.TB, admin, path string, timeout time.Duration, logs func() []byte) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + admin + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			tb.Fatalf("consentryd exited before %s answered 200: %v\n%s", path, p.err, logs())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consentryd: no 200 from %s after %v\n%s", path, timeout, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM, as an orchestrator would, and waits for the
// process to exit. It returns what the process's exit says (nil for
// status 0), or an error wrapping ErrStopTimeout after killing it when it
// runs on after timeout.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop consentryd: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%w (%v)", ErrStopTimeout, timeout)
	}
}

// WaitServing waits until the collector at the gRPC address addr answers
// health checks as serving: started, its schema, salts and consent state
// loaded. It fails tb when exited (which may be nil) reports that the
// collector ended first, or when timeout passes: a collector run in
// process, or one whose admin address is not known, has no Process to
// ask.
func WaitServing(tb testing.TB, addr string, timeout time.Duration, exited func() error) {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if exited != nil {
			if err := exited(); err != nil {
				tb.Fatalf("consentryd ended before it served: %v", err)
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("consentryd does not serve %v after its start: %v, %v", timeout, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
