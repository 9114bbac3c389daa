package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debianRoot returns a Debian 12 file system with systemd and Debian's
// ClickHouse, made once with debootstrap and kept in the repository's
// .cache (about 470 MB; a minute from Debian's mirror).
func debianRoot(t *testing.T) string {
	t.Helper()
	cache, err := filepath.Abs("../.cache/nspawn")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cache, "bookworm")
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/clickhouse-server")); err == nil {
		return root
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(cache, "bookworm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // it becomes the container's /
		t.Fatal(err)
	}
	command(t, "", nil, false, "debootstrap", "--variant=minbase",
		"--include=systemd,systemd-sysv,dbus,clickhouse-server,ca-certificates", "bookworm", tmp, "http://deb.debian.org/debian")
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	return root
}

// container is a Debian system booted with systemd-nspawn.
type container struct {
	t      *testing.T
	nspawn *exec.Cmd
	init   int // the container's PID 1, as the host sees it
	exited chan error
}

// boot boots root in a container with a network of its own (loopback
// only) and waits for its systemd to finish starting up.
func boot(t *testing.T, root string) *container {
	t.Helper()
	c := &container{t: t, exited: make(chan error, 1)}
	// No systemd runs on the host: --register=no --keep-unit keep nspawn
	// from asking it for a machine or a scope.
	c.nspawn = exec.Command("systemd-nspawn", "--quiet", "--directory", root, "--boot",
		"--register=no", "--keep-unit", "--console=passive", "--private-network",
		"--machine", fmt.Sprintf("consentry-test-%d", os.Getpid()))
	logFile := filepath.Join(t.TempDir(), "nspawn.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	log := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	c.nspawn.Stdout, c.nspawn.Stderr = f, f
	if err := c.nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- c.nspawn.Wait() }()
	t.Cleanup(func() { c.stop(log) })
	// The container's PID 1 is the child of systemd-nspawn that runs
	// systemd (nspawn forks an intermediate child first), and it is up
	// once systemctl can ask it whether it has finished starting.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-c.exited:
			t.Fatalf("systemd-nspawn exited: %v\n%s", err, log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's systemd did not come up within 2 minutes:\n%s", log())
		}
		time.Sleep(200 * time.Millisecond)
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.nspawn.Process.Pid, c.nspawn.Process.Pid))
		for _, f := range strings.Fields(string(b)) {
			if comm, _ := os.ReadFile("/proc/" + f + "/comm"); strings.TrimSpace(string(comm)) == "systemd" {
				c.init, _ = strconv.Atoi(f)
			}
		}
		if c.init == 0 {
			continue
		}
		out, _ := c.run(true, "timeout", "60", "systemctl", "is-system-running", "--wait")
		if s := strings.TrimSpace(out); s == "running" || s == "degraded" {
			return c
		}
	}
}

// run runs a command inside the container and returns its output; it
// fails the test if the command fails, unless allowFail.
func (c *container) run(allowFail bool, args ...string) (string, error) {
	c.t.Helper()
	return command(c.t, "", nil, allowFail, "nsenter", append([]string{"--target", strconv.Itoa(c.init), "--all"}, args...)...)
}

// stop powers the container off (systemd-nspawn turns SIGTERM into a
// clean shutdown), and kills it if that takes over a minute.
func (c *container) stop(log func() string) {
	_ = c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		_ = c.nspawn.Process.Kill()
		<-c.exited
		c.t.Errorf("the container did not shut down within a minute:\n%s", log())
	}
}

// TestSystemdUnitRuns runs the unit for real: it boots Debian 12 with
// systemd in a container (systemd-nspawn), installs consentryd, the
// consentry CLI and the unit as deploy/README.md says, and checks that
// the service starts under its sandbox with its managed ClickHouse,
// stores the demo's batches, keeps its secrets its own, stops cleanly,
// refuses to start with a misspelt setting, is rated by
// systemd-analyze security as the unit file is, and comes back on its
// state.
func TestSystemdUnitRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a container")
	}
	requireCommand(t, "debootstrap", "debootstrap")
	requireCommand(t, "systemd-nspawn", "systemd-container")
	root := debianRoot(t)

	// Install, as deploy/README.md does, on a clean state.
	for _, p := range []string{"var/lib/private/consentry", "var/lib/consentry", "etc/consentry"} {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	command(t, "", nil, false, "install", "-m", "0755", consentryd, consentryCLI, filepath.Join(root, "usr/local/bin/"))
	command(t, "", nil, false, "install", "-m", "0644", unitFile, filepath.Join(root, "etc/systemd/system/consentryd.service"))
	for link, target := range map[string]string{
		"etc/systemd/system/multi-user.target.wants/consentryd.service": "/etc/systemd/system/consentryd.service",
		// Debian's own ClickHouse service is not needed: consentryd
		// manages its server.
		"etc/systemd/system/clickhouse-server.service": "/dev/null",
	} {
		p := filepath.Join(root, link)
		_ = os.Remove(p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}

	c := boot(t, root)
	// serving waits until consentryd, as the unit runs it, serves, and
	// returns what it logged: the unit is active as soon as consentryd
	// runs (Type=exec), before its ClickHouse and schema are ready.
	serving := func() string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for ; ; time.Sleep(500 * time.Millisecond) {
			out, _ := c.run(true, "systemctl", "show", "consentryd", "-p", "MainPID", "--value")
			if pid := strings.TrimSpace(out); pid != "" && pid != "0" {
				log, _ := c.run(true, "journalctl", "_PID="+pid, "--no-pager", "-o", "cat")
				if strings.Contains(log, "collector serving") {
					return log
				}
			}
			if time.Now().After(deadline) {
				status, _ := c.run(true, "systemctl", "status", "--no-pager", "-n", "30", "consentryd")
				t.Fatalf("consentryd does not serve after 2 minutes:\n%s", status)
			}
		}
	}
	serving()

	// The demo through the service: what it accepts lands in ClickHouse.
	out, _ := c.run(false, "/usr/local/bin/consentry", "demo", "--data-dir", "/var/lib/consentry")
	if !strings.Contains(out, "accepted 200, dropped 0") || !regexp.MustCompile(`(?m)^  sessions +[1-9]`).MatchString(out) {
		t.Fatalf("the demo through the service:\n%s", out)
	}

	// Its state: the service's own user, nobody else's to read.
	out, _ = c.run(false, "stat", "-c", "%a %U %n", "/var/lib/private", "/var/lib/consentry/", "/var/lib/consentry/consent-secret",
		"/var/lib/consentry/consent-signing-key.pem", "/var/lib/consentry/clickhouse-collector-password")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "700 root ") {
		t.Fatalf("state:\n%s", out)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); f[0] != "600" && f[0] != "700" || f[1] == "root" {
			t.Errorf("%s: want 0600 or 0700, owned by the service's own user", l)
		}
	}

	// The sandbox as systemd applies it.
	out, _ = c.run(false, "systemd-analyze", "security", "--no-pager", "consentryd")
	m := regexp.MustCompile(`Overall exposure level for consentryd.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if got, _ := strconv.ParseFloat(m[1], 64); got > 1.5 {
		t.Errorf("running unit's exposure %v, want at most 1.5", got)
	}
	t.Logf("exposure of the running unit: %s", m[1])

	// A clean stop.
	start := time.Now()
	c.run(false, "systemctl", "stop", "consentryd")
	out, _ = c.run(false, "systemctl", "show", "consentryd", "-p", "Result", "-p", "ExecMainStatus")
	if !strings.Contains(out, "Result=success") || !strings.Contains(out, "ExecMainStatus=0") {
		t.Errorf("after systemctl stop:\n%s", out)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))

	// A misspelt setting stops the start, and says why.
	if err := os.MkdirAll(filepath.Join(root, "etc/consentry"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/consentry/consentryd.env"), []byte("CONSENTRY_SPOOL_MAX_BYTE=1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := c.run(true, "systemctl", "start", "consentryd"); err == nil {
		t.Errorf("started with a misspelt setting:\n%s", out)
	}
	out, _ = c.run(false, "journalctl", "-u", "consentryd", "--no-pager", "-o", "cat", "-n", "20")
	if !strings.Contains(out, "CONSENTRY_SPOOL_MAX_BYTE names no flag") {
		t.Errorf("the journal does not say why the start failed:\n%s", out)
	}
	c.run(false, "systemctl", "stop", "consentryd")
	if err := os.Remove(filepath.Join(root, "etc/consentry/consentryd.env")); err != nil {
		t.Fatal(err)
	}

	// Started again, it comes back on its state: the schema is there.
	c.run(false, "systemctl", "reset-failed", "consentryd")
	c.run(false, "systemctl", "start", "consentryd")
	out = serving()
	if !strings.Contains(out, `"applied_migrations":[]`) {
		t.Errorf("the restarted service did not find its schema:\n%s", out)
	}
}
