package childproc

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestKillGroup: Kill ends the child and what it started in its group,
// onExit runs before Done is closed, and Err says how the child ended.
func TestKillGroup(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var exited bool
	p, err := Start(cmd, func(p *Process) { exited = p.Err() != nil })
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, _ := out.Read(buf) // the grandchild's pid: the group is complete
	if n == 0 || p.Exited() {
		t.Fatalf("the child wrote %q and exited %v", buf[:n], p.Exited())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if !exited || !p.Exited() {
		t.Fatalf("onExit saw an error %v, Exited %v; want both true", exited, p.Exited())
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("Err = %v, want killed by SIGKILL", p.Err())
	}
	// The grandchild is gone too (or a zombie its new parent has yet to
	// reap).
	stat := "/proc/" + strings.TrimSpace(string(buf[:n])) + "/stat"
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the grandchild outlived Kill: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Signalling a group that is gone is no error.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal after exit: %v", err)
	}
}

func TestExitStatus(t *testing.T) {
	p, err := Start(exec.Command("true"), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if p.Err() != nil {
		t.Fatalf("Err = %v, want nil", p.Err())
	}
	if _, err := Start(exec.Command("/nonexistent/binary"), nil); err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
}
