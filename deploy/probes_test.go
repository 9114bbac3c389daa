package deploy

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a process's writes and a test's
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// collector is a consentryd process a test started, with its admin port.
type collector struct {
	t      *testing.T
	cmd    *exec.Cmd
	admin  string
	exited chan error
	log    syncBuffer
}

// startCollector starts cmd, a consentryd (or what runs one) whose admin
// port is admin. It is killed when t ends, and its log shown if t failed.
func startCollector(t *testing.T, cmd *exec.Cmd, admin string) *collector {
	t.Helper()
	c := &collector{t: t, cmd: cmd, admin: admin, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = &c.log, &c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("consentryd's log:\n%s", c.log.String())
		}
	})
	return c
}

// managedCollector starts consentryd on its local default, a managed
// ClickHouse, in dataDir, on free loopback ports.
func managedCollector(t *testing.T, dataDir string) *collector {
	t.Helper()
	requireCommand(t, "clickhouse-server", "clickhouse-server")
	admin := freeAddr(t)
	cmd := exec.Command(consentryd)
	cmd.Env = []string{
		"CONSENTRY_DATA_DIR=" + dataDir,
		"CONSENTRY_GRPC_ADDR=" + freeAddr(t),
		"CONSENTRY_HTTP_ADDR=" + freeAddr(t),
		"CONSENTRY_ADMIN_ADDR=" + admin,
		"CONSENTRY_CLICKHOUSE_NATIVE_PORT=0",
		"CONSENTRY_CLICKHOUSE_HTTP_PORT=0",
		"CONSENTRY_LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH"),
	}
	return startCollector(t, cmd, admin)
}

// waitFor waits up to 2 minutes until GET path on the admin port answers
// 200, and fails the test if the collector exits first.
func (c *collector) waitFor(path string) {
	c.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := client.Get("http://" + c.admin + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-c.exited:
			c.t.Fatalf("consentryd exited (%v) before %s answered 200", err, path)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no 200 within 2 minutes (last: %v, %v)", path, resp, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stop sends SIGTERM, as the kubelet and systemd do, and fails the test
// unless the collector exits cleanly within grace.
func (c *collector) stop(grace time.Duration) {
	c.t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			c.t.Fatalf("after SIGTERM: %v", err)
		}
		c.t.Logf("stopped in %v (grace period %v)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		c.t.Fatalf("still running %v after SIGTERM: the kubelet would kill it", grace)
	}
}

// TestChartProbesServed runs consentryd (on its local default, a managed
// ClickHouse) and probes it as the chart's pod spec says the kubelet
// does: the startup and liveness probes' path answers 200 once it serves,
// the readiness probe's once it accepts ingest. Then it stops it as the
// kubelet does, with SIGTERM, and checks it exits cleanly within the
// chart's grace period.
func TestChartProbesServed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse")
	}
	m := render(t, valueSets["least"])
	pod := m.container(t)
	grace := time.Duration(*m.statefulSet.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second

	c := managedCollector(t, t.TempDir())
	for name, probe := range map[string]string{
		"startup":   pod.StartupProbe.HTTPGet.Path,
		"liveness":  pod.LivenessProbe.HTTPGet.Path,
		"readiness": pod.ReadinessProbe.HTTPGet.Path,
	} {
		if !strings.HasPrefix(probe, "/") {
			t.Fatalf("%s probe path %q", name, probe)
		}
		c.waitFor(probe)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get("http://" + c.admin + "/nonexistent-probe"); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("the admin port answers 200 to any path (%v, %v): probing it proves nothing", resp, err)
	}
	c.stop(grace)
}
