// Package childproc starts child processes tied to this one, for the
// servers Consentry manages and tests run (ClickHouse, ZooKeeper): each
// child runs in a process group of its own, which is signalled as a
// whole, and gets SIGKILL when this process dies, even by SIGKILL.
package childproc

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// Process is a started child process. Its methods are safe for
// concurrent use.
type Process struct {
	pid  int
	done chan struct{}
	err  error // set before done is closed
}

// Start starts cmd in a process group of its own, with SIGKILL as its
// parent-death signal (it replaces cmd.SysProcAttr). onExit, if not nil,
// is called once the child has exited, after Err is set and before Done
// is closed.
//
// Pdeathsig fires when the thread that forked the child exits, not only
// when the process does, and the Go runtime ends a thread when a goroutine
// locked to it returns. So the child is forked from a goroutine that holds
// its thread until the child has exited: no other goroutine runs there,
// and the thread outlives the child.
func Start(cmd *exec.Cmd, onExit func(*Process)) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		if onExit != nil {
			onExit(p)
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// PID returns the child's process id, which is also its process group
// id.
func (p *Process) PID() int { return p.pid }

// Done returns a channel that is closed once the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns what waiting for the child returned (nil for a zero exit
// status); only meaningful once Done is closed.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the child's process group. A group that no longer
// exists is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d with %v: %w", p.pid, sig, err)
	}
	return nil
}

// Kill sends SIGKILL to the process group and waits for the child to
// exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	<-p.done // SIGKILL cannot be caught; the wait is short
	return nil
}
