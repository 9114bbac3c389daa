//go:build abuse

package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/consentrydtest"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/every"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The abuse suite (make abuse): every attack of internal/abuse against
// the real consentryd binary with its managed ClickHouse, on loopback,
// each for -abuse.duration while a well-behaved gRPC client and a
// well-behaved HTTP client keep sending. It prints, per attack, the
// collector's peak RSS against the bound its flags state, the clients'
// p99 acknowledgement latency and refusals, and health; it fails if the
// peak RSS passes the bound.
var (
	duration = flag.Duration("abuse.duration", 12*time.Second, "how long each attack runs")
	only     = flag.String("abuse.only", "", "run only the attacks whose name contains this")
)

const app = "com.example.notes"

// procStatus reads a field (in kB) of /proc/pid/status, in bytes.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// window is what the well-behaved clients and the probes saw while one
// attack (or none) ran.
type window struct {
	mu                 sync.Mutex
	grpcTook, httpTook []time.Duration
	grpcRef, httpRef   map[string]int
	healthChecks       int
	notServing         map[string]int
}

func newWindow() *window {
	return &window{grpcRef: map[string]int{}, httpRef: map[string]int{}, notServing: map[string]int{}}
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

func refusals(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func TestAbuse(t *testing.T) {
	dir := t.TempDir()
	// The data dir (spool, managed ClickHouse) on tmpfs where there is
	// one: fsyncs on a shared disk would measure the disk, not the edge.
	data := filepath.Join(dir, "data")
	if d, err := os.MkdirTemp("/dev/shm", "consentry-abuse-"); err == nil {
		data = d
		t.Cleanup(func() { os.RemoveAll(d) })
	}
	bin, err := consentrydtest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	target := Target{GRPC: consentrydtest.FreeAddr(t), HTTP: consentrydtest.FreeAddr(t)}
	admin := consentrydtest.FreeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--data-dir", data, "--grpc-addr", target.GRPC, "--http-addr", target.HTTP, "--admin-addr", admin,
		"--log-level", "warn", "--log-format", "console")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	proc := consentrydtest.Start(t, cmd)
	t.Cleanup(func() {
		_ = proc.Stop(time.Minute)
		if t.Failed() {
			t.Logf("consentryd's log:\n%s", logs.Bytes())
		}
	})
	pid := proc.PID()
	ready := func() (bool, string) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false, "admin port down"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, strings.TrimSpace(strings.TrimPrefix(string(b), "not ready\n"))
	}
	proc.WaitReady(t, admin, 3*time.Minute, logs.Bytes)
	priv, err := consent.ReadPrivateKeyFile(filepath.Join(data, "consent-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	token := consenttest.New(t, priv).Token(t, consent.Claims{AppID: app, Scopes: consentryv1.Scopes(), IssuedAt: time.Now(), ExpiresAt: time.Now().Add(24 * time.Hour)})

	// The well-behaved clients and the health probes record into the
	// current window.
	var cur struct {
		sync.Mutex
		w *window
	}
	current := func() *window {
		cur.Lock()
		defer cur.Unlock()
		return cur.w
	}
	cur.w = newWindow()
	ctx, stopClients := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	conn, err := grpc.NewClient(target.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	clients.Go(func() {
		gen := eventgen.New(eventgen.Config{AppID: app, Token: token, Seed: 1})
		ic := consentryv1.NewIngestServiceClient(conn)
		every.Tick(ctx, 50*time.Millisecond, false, func(context.Context) {
			req := gen.Batch(100, time.Now())
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := ic.Ingest(ctx, req)
			cancel()
			w := current()
			w.mu.Lock()
			if err != nil {
				w.grpcRef[status.Code(err).String()]++
			} else {
				w.grpcTook = append(w.grpcTook, time.Since(start))
			}
			w.mu.Unlock()
		})
	})
	clients.Go(func() {
		gen := eventgen.New(eventgen.Config{AppID: app, Token: token, Seed: 2})
		hc := &http.Client{Timeout: 10 * time.Second}
		every.Tick(ctx, 50*time.Millisecond, false, func(context.Context) {
			js, _ := protojson.Marshal(gen.Batch(100, time.Now()))
			body := Gzip(js)
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, "http://"+target.HTTP+PathIngest, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", "gzip")
			st := httpStatus(hc.Do(req))
			w := current()
			w.mu.Lock()
			if st != "200" {
				w.httpRef[st]++
			} else {
				w.httpTook = append(w.httpTook, time.Since(start))
			}
			w.mu.Unlock()
		})
	})
	clients.Go(func() {
		hc := healthpb.NewHealthClient(conn)
		every.Tick(ctx, 250*time.Millisecond, false, func(context.Context) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "consentry.v1.IngestService"})
			cancel()
			ok, why := ready()
			w := current()
			w.mu.Lock()
			w.healthChecks++
			if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				w.notServing["gRPC health"]++
			}
			if !ok {
				w.notServing["readyz: "+why]++
			}
			w.mu.Unlock()
		})
	})
	defer func() {
		stopClients()
		clients.Wait()
	}()

	attacks := suite()
	edge := limits.DefaultEdgeConfig()
	type row struct {
		name, outcomes           string
		peakRSS                  uint64
		grpcP99, httpP99         time.Duration
		grpcN, httpN             int
		grpcRef, httpRef, health string
	}
	var rows []row
	// attack runs attack i in a child process.
	attack := func(i int) func(ctx context.Context, o *Outcomes) {
		return func(ctx context.Context, o *Outcomes) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAbuseAttacker$", "-abuse.duration="+duration.String())
			cmd.Env = append(os.Environ(), fmt.Sprint("CONSENTRY_ABUSE_ATTACK=", i), "CONSENTRY_ABUSE_GRPC="+target.GRPC, "CONSENTRY_ABUSE_HTTP="+target.HTTP)
			out, err := cmd.CombinedOutput()
			_, js, ok := bytes.Cut(out, []byte("\nOUTCOMES "))
			if err != nil || !ok {
				t.Errorf("attacker %d: %v\n%s", i, err, out)
				return
			}
			js, _, _ = bytes.Cut(js, []byte("\n"))
			var counts map[string]int
			if err := json.Unmarshal(js, &counts); err != nil {
				t.Errorf("attacker %d: %v", i, err)
			}
			for k, n := range counts {
				for range n {
					o.Add(k)
				}
			}
		}
	}
	measure := func(name string, run func(ctx context.Context, o *Outcomes)) row {
		w := newWindow()
		cur.Lock()
		cur.w = w
		cur.Unlock()
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
		var o Outcomes
		ctx, cancel := context.WithTimeout(context.Background(), *duration)
		var peak uint64
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for ctx.Err() == nil {
				peak = max(peak, procStatus(pid, "VmRSS"))
				time.Sleep(20 * time.Millisecond)
			}
		}()
		run(ctx, &o)
		<-ctx.Done()
		cancel()
		<-sampled
		peak = max(peak, procStatus(pid, "VmHWM"))
		cur.Lock()
		cur.w = newWindow() // the cooldown is nobody's
		cur.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		health := "SERVING throughout"
		if len(w.notServing) > 0 {
			health = fmt.Sprintf("of %d probes not ready: %s", w.healthChecks, refusals(w.notServing))
		}
		outcomes := o.String()
		if parts := strings.Split(outcomes, ", "); len(parts) > 4 {
			outcomes = strings.Join(parts[:4], ", ") + ", ..."
		}
		return row{name: name, outcomes: outcomes, peakRSS: peak, grpcP99: p99(w.grpcTook), httpP99: p99(w.httpTook),
			grpcN: len(w.grpcTook), httpN: len(w.httpTook), grpcRef: refusals(w.grpcRef), httpRef: refusals(w.httpRef), health: health}
	}

	base := measure("none (baseline)", func(context.Context, *Outcomes) {})
	rows = append(rows, base)
	bound := base.peakRSS + uint64(edge.MemoryBound())
	for i, a := range attacks {
		if *only != "" && !strings.Contains(a.Name, *only) {
			continue
		}
		t.Logf("%s: %s", time.Now().Format("15:04:05"), a.Name)
		rows = append(rows, measure(a.Name, attack(i)))
		time.Sleep(6 * time.Second) // connections the attack left are cut (header timeout) or closed
	}

	var out strings.Builder
	fmt.Fprintf(&out, "\nconsentryd with default flags; memory bound = baseline peak RSS %d MiB + %d MiB (--max-inflight-bytes %d MiB, --max-receiving-bytes %d MiB, --max-connections %d); each attack %v\n\n",
		base.peakRSS>>20, edge.MemoryBound()>>20, edge.MaxInflightBytes>>20, edge.MaxReceivingBytes>>20, edge.MaxConnections, *duration)
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\tpeak RSS\tgRPC client p99 (n, refused)\tHTTP client p99 (n, refused)\thealth\tattack got")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d MiB of %d\t%v (%d, %s)\t%v (%d, %s)\t%s\t%s\n", r.name, r.peakRSS>>20, bound>>20,
			r.grpcP99.Round(time.Millisecond), r.grpcN, r.grpcRef, r.httpP99.Round(time.Millisecond), r.httpN, r.httpRef, r.health, r.outcomes)
	}
	tw.Flush()
	fmt.Print(out.String())
	for _, r := range rows {
		if r.peakRSS > bound {
			t.Errorf("%s: peak RSS %d MiB over the bound of %d MiB", r.name, r.peakRSS>>20, bound>>20)
		}
	}
	if m := scrape(admin); m != "" {
		t.Logf("edge metrics at the end:\n%s", m)
	}
}

// suite returns the attacks, in the order they run.
func suite() []Attack {
	batch := func(tok string) []byte {
		b, _ := proto.Marshal(eventgen.New(eventgen.Config{AppID: app, Token: tok, Seed: 3}).Batch(10, time.Now()))
		return b
	}
	bomb := EmptyEvents(2_000_000)
	bombGz := Gzip(bomb)
	bombJSONGz := Gzip(EmptyEventsJSON(1_333_000))
	return []Attack{
		GRPCFlood("decode bomb over gRPC: 64 senders of 2M empty events (4 MB)", 64, IngestMethod, func() []byte { return Frame(bomb, false) }, false),
		GRPCFlood("decode bomb over gRPC gzip: 64 senders, 4 KB on the wire", 64, IngestMethod, func() []byte { return Frame(bombGz, true) }, true),
		HTTPFlood("decode bomb over HTTP gzip protobuf: 64 senders, 4 KB on the wire", 64, PathIngest, "application/x-protobuf", "gzip", func() []byte { return bombGz }),
		HTTPFlood("decode bomb over HTTP gzip JSON: 64 senders, 4 KB on the wire", 64, PathIngest, "application/json", "gzip", func() []byte { return bombJSONGz }),
		SlowHeaders(300, time.Second),
		SlowBodies(300, 2*time.Second),
		IdleConnections(1000),
		Oversized(16),
		DeeplyNested(16),
		RandomBytes(8),
		KeyGuessing(16, app, batch),
	}
}

// TestAbuseAttacker runs one attack of the suite ($CONSENTRY_ABUSE_ATTACK,
// its index) against $CONSENTRY_ABUSE_GRPC and $CONSENTRY_ABUSE_HTTP for
// -abuse.duration and prints what it got: TestAbuse runs each attack in a
// process of its own, so that the attacker's goroutines are not the
// well-behaved clients'.
func TestAbuseAttacker(t *testing.T) {
	i, err := strconv.Atoi(os.Getenv("CONSENTRY_ABUSE_ATTACK"))
	if err != nil {
		t.Skip("run by TestAbuse")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var o Outcomes
	suite()[i].Run(ctx, Target{GRPC: os.Getenv("CONSENTRY_ABUSE_GRPC"), HTTP: os.Getenv("CONSENTRY_ABUSE_HTTP")}, &o)
	b, _ := json.Marshal(o.counts)
	fmt.Printf("\nOUTCOMES %s\n", b)
}

// scrape returns the edge's metrics from the admin port.
func scrape(admin string) string {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var keep []string
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, p := range []string{"consentry_ingest_requests_refused", "consentry_ingest_receive_too_slow", "consentry_connections_", "consentry_events_rejected", "consentry_consent_grants", "process_resident_memory_bytes"} {
			if strings.HasPrefix(line, p) {
				keep = append(keep, line)
			}
		}
	}
	return strings.Join(keep, "\n")
}
