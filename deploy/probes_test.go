package deploy

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
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
	requireCommand(t, "clickhouse-server", "clickhouse-server")
	m := render(t, valueSets["least"])
	c := m.container(t)
	grace := time.Duration(*m.statefulSet.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second

	admin := freeAddr(t)
	cmd := exec.Command(consentryd)
	cmd.Env = []string{
		"CONSENTRY_DATA_DIR=" + t.TempDir(),
		"CONSENTRY_GRPC_ADDR=" + freeAddr(t),
		"CONSENTRY_HTTP_ADDR=" + freeAddr(t),
		"CONSENTRY_ADMIN_ADDR=" + admin,
		"CONSENTRY_CLICKHOUSE_NATIVE_PORT=0",
		"CONSENTRY_CLICKHOUSE_HTTP_PORT=0",
		"CONSENTRY_LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH"),
	}
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("consentryd's log:\n%s", &log)
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	waitFor := func(path string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			resp, err := client.Get("http://" + admin + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			select {
			case err := <-exited:
				t.Fatalf("consentryd exited (%v) before %s answered 200", err, path)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no 200 within 2 minutes (last: %v, %v)", path, resp, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for name, probe := range map[string]string{
		"startup":   c.StartupProbe.HTTPGet.Path,
		"liveness":  c.LivenessProbe.HTTPGet.Path,
		"readiness": c.ReadinessProbe.HTTPGet.Path,
	} {
		if !strings.HasPrefix(probe, "/") {
			t.Fatalf("%s probe path %q", name, probe)
		}
		waitFor(probe)
	}
	if resp, err := client.Get("http://" + admin + "/nonexistent-probe"); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("the admin port answers 200 to any path (%v, %v): probing it proves nothing", resp, err)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v", err)
		}
		t.Logf("stopped in %v (grace period %v)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Fatalf("still running %v after SIGTERM: the kubelet would kill it", grace)
	}
}
