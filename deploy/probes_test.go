package deploy

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/consentrydtest"
)

// collector is a consentryd process a test started, with the addresses
// it serves on.
type collector struct {
	proc        *consentrydtest.Process
	grpc, admin string
	logFile     string
}

// startCollector starts cmd, a consentryd (or what runs one) that logs
// JSON at level info and listens on port 0 (a port picked beforehand can
// be taken by its managed ClickHouse before it binds it), its output in a
// file, and waits until it logs the addresses it serves on. It is killed
// when t ends, and its log shown if t failed.
func startCollector(t *testing.T, cmd *exec.Cmd) *collector {
	t.Helper()
	c := &collector{logFile: filepath.Join(t.TempDir(), "consentryd.log")}
	f, err := os.Create(c.logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stdout, cmd.Stderr = f, f
	c.proc = consentrydtest.Start(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consentryd's log:\n%s", c.logs())
		}
	})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		for line := range strings.SplitSeq(string(c.logs()), "\n") {
			var serving struct {
				Msg       string `json:"msg"`
				GRPCAddr  string `json:"grpc_addr"`
				AdminAddr string `json:"admin_addr"`
			}
			if json.Unmarshal([]byte(line), &serving) == nil && serving.Msg == "collector serving" {
				c.grpc, c.admin = serving.GRPCAddr, serving.AdminAddr
				return c
			}
		}
		if !c.proc.Running() {
			t.Fatalf("consentryd exited before it served:\n%s", c.logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("consentryd does not serve after 2 minutes:\n%s", c.logs())
		}
	}
}

// logs returns what the collector has written so far.
func (c *collector) logs() []byte {
	b, _ := os.ReadFile(c.logFile)
	return b
}

// managedCollector starts consentryd on its local default, a managed
// ClickHouse, in dataDir, on loopback.
func managedCollector(t *testing.T, dataDir string) *collector {
	t.Helper()
	requireCommand(t, "clickhouse-server", "clickhouse-server")
	cmd := exec.Command(consentryd)
	cmd.Env = []string{
		"CONSENTRY_DATA_DIR=" + dataDir,
		"CONSENTRY_GRPC_ADDR=127.0.0.1:0",
		"CONSENTRY_HTTP_ADDR=127.0.0.1:0",
		"CONSENTRY_ADMIN_ADDR=127.0.0.1:0",
		"CONSENTRY_CLICKHOUSE_NATIVE_PORT=0",
		"CONSENTRY_CLICKHOUSE_HTTP_PORT=0",
		"CONSENTRY_LOG_FORMAT=json",
		"PATH=" + os.Getenv("PATH"),
	}
	return startCollector(t, cmd)
}

// waitFor waits up to 2 minutes until GET path on the admin port answers
// 200, and fails t if the collector exits first.
func (c *collector) waitFor(t *testing.T, path string) {
	t.Helper()
	c.proc.WaitPath(t, c.admin, path, 2*time.Minute, c.logs)
}

// stop sends SIGTERM, as the kubelet and systemd do, and fails t unless
// the collector exits cleanly within grace.
func (c *collector) stop(t *testing.T, grace time.Duration) {
	t.Helper()
	start := time.Now()
	if err := c.proc.Stop(grace); err != nil {
		t.Fatalf("after SIGTERM: %v (the kubelet kills it after %v)", err, grace)
	}
	t.Logf("stopped in %v (grace period %v)", time.Since(start).Round(time.Millisecond), grace)
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
		c.waitFor(t, probe)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get("http://" + c.admin + "/nonexistent-probe"); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("the admin port answers 200 to any path (%v, %v): probing it proves nothing", resp, err)
	}
	c.stop(t, grace)
}
