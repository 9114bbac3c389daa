package collector

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/consentrydtest"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/internal/grpcerr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// traffic sends batches from several clients until stop is closed, and
// records the ids of every event the collector acknowledged, and the
// refusals by code.
type traffic struct {
	mu       sync.Mutex
	acked    map[string]bool
	refusals map[codes.Code]int
	lastErr  error
	delays   []time.Duration
	wg       sync.WaitGroup
	stop     chan struct{}
}

// startTraffic starts clients goroutines sending batches of n events to
// addr with token, each pausing pause between batches, until halt. stored
// is the collector's StoredEventID (see acceptedIDs).
func startTraffic(t *testing.T, stored storedEventID, addr func() string, token string, clients, n int, pause time.Duration) *traffic {
	t.Helper()
	tr := &traffic{acked: make(map[string]bool), refusals: make(map[codes.Code]int), stop: make(chan struct{})}
	for i := range clients {
		s := sender{
			addr:   addr,
			gen:    eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: uint64(100 + i)}),
			events: n,
			redial: 50 * time.Millisecond,
			outcome: func(req *consentryv1.IngestRequest, resp *consentryv1.IngestResponse, err error) time.Duration {
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if err != nil {
					tr.refusals[status.Code(err)]++
					tr.lastErr = err
					if _, _, _, delay := grpcerr.Details(err); delay > 0 {
						tr.delays = append(tr.delays, delay)
					}
					return pause + 100*time.Millisecond // and back off a little
				}
				for _, id := range acceptedIDs(stored, req, resp) {
					tr.acked[id] = true
				}
				return pause
			},
		}
		tr.wg.Go(func() { s.run(tr.stop) })
	}
	return tr
}

// sender sends batches from one generator until stopped, over a
// connection it dials again after a failed send, as an SDK would after an
// outage.
type sender struct {
	// addr returns the collector's gRPC address, read at every dial.
	addr func() string
	gen  *eventgen.Generator
	// events is the number of events per batch.
	events int
	// redial is how long to wait after a failed dial.
	redial time.Duration
	// outcome records what a send got and returns how long to wait
	// before the next.
	outcome func(req *consentryv1.IngestRequest, resp *consentryv1.IngestResponse, err error) time.Duration
}

// run sends until stop is closed.
func (s sender) run(stop <-chan struct{}) {
	var conn *grpc.ClientConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if conn == nil {
			c, err := grpc.NewClient(s.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				time.Sleep(s.redial)
				continue
			}
			conn = c
		}
		req := s.gen.Batch(s.events, time.Now())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := consentryv1.NewIngestServiceClient(conn).Ingest(ctx, req)
		cancel()
		pause := s.outcome(req, resp, err)
		if err != nil {
			conn.Close()
			conn = nil
		}
		time.Sleep(pause)
	}
}

// storedEventID is App.StoredEventID: the event_id the collector stores
// for an event id an app sent.
type storedEventID func(appID string, id []byte) [16]byte

// storedEventIDOf returns the storedEventID of a consentryd whose data
// folder is dir, from the consent secret it creates there at start.
func storedEventIDOf(t *testing.T, dir string) storedEventID {
	t.Helper()
	for range 200 {
		if b, err := os.ReadFile(filepath.Join(dir, "consent-secret")); err == nil && len(b) > 0 {
			key := anonymizer.EventIDKey([]byte(strings.TrimRight(string(b), "\r\n")))
			return func(appID string, id []byte) [16]byte { return anonymizer.StoredEventID(key, appID, id) }
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no consent secret in %s", dir)
	return nil
}

// acceptedIDs returns the ids the events of req that resp accepted are
// stored with (stored, the collector's StoredEventID): all but the
// dropped ones (none if more were dropped than the response lists).
func acceptedIDs(stored storedEventID, req *consentryv1.IngestRequest, resp *consentryv1.IngestResponse) []string {
	if int(resp.GetDropped()) > len(resp.GetEventDrops()) {
		return nil
	}
	dropped := make(map[uint32]bool)
	for _, d := range resp.GetEventDrops() {
		dropped[d.GetIndex()] = true
	}
	var ids []string
	for i, e := range req.GetEvents() {
		if !dropped[uint32(i)] {
			ids = append(ids, uuid.UUID(stored(req.GetDevice().GetAppId(), e.GetEventId())).String())
		}
	}
	return ids
}

// ingestAcked sends req through h and marks in acked the stored ids of
// the events it accepted.
func (h *harness) ingestAcked(ctx context.Context, req *consentryv1.IngestRequest, acked map[string]bool) error {
	resp, err := h.client.Ingest(ctx, req)
	if err != nil {
		return err
	}
	for _, id := range acceptedIDs(h.app.StoredEventID, req, resp) {
		acked[id] = true
	}
	return nil
}

// halt stops the clients and returns the acknowledged event ids.
func (tr *traffic) halt() map[string]bool {
	close(tr.stop)
	tr.wg.Wait()
	return tr.acked
}

// ackedCount returns how many events were acknowledged so far.
func (tr *traffic) ackedCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.acked)
}

// storedIDs returns how often each event id is stored in db's event
// tables: with FINAL (as analysts count, merging repeated rows) and raw.
func storedIDs(t *testing.T, ch driver.Conn, db string) (final, raw map[string]int) {
	t.Helper()
	final, raw = make(map[string]int), make(map[string]int)
	eachStoredID(t, ch, db, "FINAL", func(id string) { final[id]++ })
	eachStoredID(t, ch, db, "", func(id string) { raw[id]++ })
	return final, raw
}

// eachStoredID streams the event ids, as text, of the rows of db's event
// tables, read with modifier ("FINAL" or ""), to fn.
func eachStoredID(t *testing.T, ch driver.Conn, db, modifier string, fn func(id string)) {
	t.Helper()
	for _, table := range clickhouse.EventTables() {
		for _, id := range chtest.QueryStrings(context.Background(), t, ch, fmt.Sprintf("SELECT toString(event_id) FROM %s.%s %s", db, table, modifier)) {
			fn(id)
		}
	}
}

// requireAckedOnce fails t unless every acknowledged event is stored, once
// as analysts count (FINAL), and logs how many repeated rows merged away.
func requireAckedOnce(t *testing.T, ch driver.Conn, db string, acked map[string]bool) {
	t.Helper()
	final, raw := storedIDs(t, ch, db)
	missing, twice := 0, 0
	for id := range acked {
		switch final[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	rawRows := 0
	for _, n := range raw {
		rawRows += n
	}
	t.Logf("%d events acknowledged; %d stored (%d rows before merging repeats)", len(acked), len(final), rawRows)
	if missing > 0 || twice > 0 {
		t.Fatalf("of %d acknowledged events, %d are not stored and %d are stored more than once", len(acked), missing, twice)
	}
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestClickHouseKilledIntegration kills ClickHouse with SIGKILL in the
// middle of traffic and starts it again: the collector keeps acknowledging
// into its spool while ClickHouse is away, and every acknowledged event is
// stored once it is back.
func TestClickHouseKilledIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: needs ClickHouse")
	}
	// Not supervised (MaxFailures 1): the test restarts it itself; the
	// same password on both starts.
	cfg := chserver.Config{DataDir: t.TempDir(), TCPPort: freePort(t), HTTPPort: freePort(t), Password: "fault-test-password",
		MaxFailures: 1, Logger: zaptest.NewLogger(t)}
	start := func() *chserver.Server {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv, err := chserver.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	h := newHarness(t, srv, func(c *Config) {
		c.Spool.RetryMax = 500 * time.Millisecond
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 4, 50, 20*time.Millisecond)

	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(-srv.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.Wait()
	before := tr.ackedCount()
	time.Sleep(2 * time.Second)
	during := tr.ackedCount() - before
	srv = start()
	t.Cleanup(func() { srv.Stop(context.Background()) })
	h.ch = chtest.Conn(t, srv)
	time.Sleep(1500 * time.Millisecond)
	acked := tr.halt()
	if during == 0 {
		t.Errorf("no event was acknowledged while ClickHouse was down (refusals %v, last %v)", tr.refusals, tr.lastErr)
	}
	t.Logf("acknowledged %d events while ClickHouse was down; refusals %v", during, tr.refusals)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.app.Spool().WaitShipped(ctx); err != nil {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatalf("%v; spool %+v", err, h.app.Spool().Stats())
	}
	requireAckedOnce(t, chtest.Conn(t, srv), h.db, acked)
	h.shutdown() // before the server stops
}

// tokenFromKeyFile signs a consent token for testApp, valid for ttl, with
// the signing key of the collector whose data directory is data. A
// collector makes its key at start, once its migrations ran, which
// through a fault proxy's latency takes seconds (about 10 s for twelve
// migrations): it waits up to a minute for the key.
func tokenFromKeyFile(t testing.TB, data string, ttl time.Duration) string {
	t.Helper()
	key := filepath.Join(data, "consent-signing-key.pem")
	for range 1200 {
		if _, err := os.Stat(key); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	priv, err := consent.ReadPrivateKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	return consenttest.New(t, priv).Token(t, consent.Claims{AppID: testApp,
		Scopes:   []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports},
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(ttl)})
}

// consentrydProc is the consentryd binary run as a test's collector, on a
// data directory of its own, storing into a database of its own on srv
// through proxy, with k-anonymity off (the tests count the event tables;
// k-anonymity would hold one consent's rows back). The test's cleanup
// stops it if it still runs.
type consentrydProc struct {
	t     testing.TB
	bin   string
	srv   *chserver.Server
	proxy *faultproxy.Proxy
	data  string // its data directory
	db    string // its database
	addr  string // its gRPC address, the same across restarts
	cmd   *exec.Cmd
}

// startConsentryd builds consentryd and starts it.
func startConsentryd(t *testing.T, srv *chserver.Server, proxy *faultproxy.Proxy) *consentrydProc {
	t.Helper()
	dir := t.TempDir()
	bin, err := consentrydtest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &consentrydProc{t: t, bin: bin, srv: srv, proxy: proxy, data: filepath.Join(dir, "data"),
		db: fmt.Sprintf("consentry_test_%d", dbSeq.Add(1)), addr: consentrydtest.FreeAddr(t)}
	p.start()
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		}
	})
	return p
}

// start starts the process again on the same data, database and address.
func (p *consentrydProc) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "--data-dir", p.data, "--clickhouse-addr", p.proxy.Addr(), "--clickhouse-database", p.db,
		"--clickhouse-user", p.srv.User(), "--grpc-addr", p.addr, "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn",
		"--generalize-k", "1")
	cmd.Env = append(os.Environ(), "CONSENTRY_CLICKHOUSE_PASSWORD="+p.srv.Password())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
}

// waitServing waits until the process serves. A start on a busy
// machine, through a slow proxy, takes seconds.
func (p *consentrydProc) waitServing() {
	p.t.Helper()
	consentrydtest.WaitServing(p.t, p.addr, 2*time.Minute, nil)
}

// kill kills the process with SIGKILL and waits for it.
func (p *consentrydProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Wait()
}

// stop stops the process gracefully (SIGTERM: the spool ships what it
// can first) and fails the test unless it exits cleanly.
func (p *consentrydProc) stop() {
	p.t.Helper()
	cmd := p.cmd
	p.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		p.t.Fatalf("consentryd exit: %v", err)
	}
}

// TestCollectorKilledIntegration kills consentryd with SIGKILL in the
// middle of traffic and starts it again on the same data directory: its
// spool is replayed, and every event it acknowledged is stored once.
// ClickHouse answers slowly (through a proxy adding latency), so the spool
// holds a backlog when the process dies.
func TestCollectorKilledIntegration(t *testing.T) {
	srv, proxy := proxied(t)
	proxy.SetLatency(50 * time.Millisecond)
	p := startConsentryd(t, srv, proxy)
	token := tokenFromKeyFile(t, p.data, time.Hour)

	tr := startTraffic(t, storedEventIDOf(t, p.data), func() string { return p.addr }, token, 4, 50, 0)
	// Kill it once it has acknowledged some.
	for tr.ackedCount() < 2000 {
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	atKill := tr.ackedCount()
	time.Sleep(300 * time.Millisecond)
	p.start()
	// Traffic resumes once the new process serves.
	deadline := time.Now().Add(30 * time.Second)
	for tr.ackedCount() < atKill+2000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	acked := tr.halt()
	if len(acked) < atKill+2000 {
		t.Fatalf("the restarted collector acknowledged %d events, want 2000 (refusals %v, last %v)", len(acked)-atKill, tr.refusals, tr.lastErr)
	}
	// Stop it gracefully: the spool ships everything before it exits.
	proxy.SetLatency(0)
	p.stop()
	requireAckedOnce(t, chtest.Conn(t, srv), p.db, acked)
}

// TestSlowClickHouseIntegration puts a hung ClickHouse behind a TCP proxy:
// the collector acknowledges into its spool until the spool is full, then
// refuses with RESOURCE_EXHAUSTED and a retry delay; its heap stays under
// a bound meanwhile; once ClickHouse answers again every acknowledged
// event is stored once.
func TestSlowClickHouseIntegration(t *testing.T) {
	const spoolCap = 4 << 20
	h, proxy := newProxiedHarness(t, func(c *Config) {
		c.ClickHouse.ReadTimeout = 2 * time.Second
		c.Spool.MaxBytes = spoolCap
		c.Spool.RetryMax = 500 * time.Millisecond
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)

	proxy.SetLatency(300 * time.Millisecond)
	proxy.Stall()
	proxy.Cut()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 8, 200, 0)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tr.mu.Lock()
		full := tr.refusals[codes.ResourceExhausted]
		tr.mu.Unlock()
		if full >= 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := h.app.Spool().Stats()
	tr.mu.Lock()
	full, delays, lastErr := tr.refusals[codes.ResourceExhausted], slices.Clone(tr.delays), tr.lastErr
	tr.mu.Unlock()
	if full == 0 {
		t.Fatalf("no RESOURCE_EXHAUSTED with ClickHouse hung and the spool at %d of %d bytes (last %v)", st.Bytes, spoolCap, lastErr)
	}
	if !slices.Contains(delays, spool.FullRetryDelay) {
		t.Errorf("retry delays %v, want %v for a full spool", delays, spool.FullRetryDelay)
	}
	if st.Bytes > spoolCap {
		t.Errorf("spool holds %d bytes, over its cap of %d", st.Bytes, spoolCap)
	}
	close(stopSampling)
	sampler.Wait()
	// The bound: the spool's cap is on disk; in memory the collector holds
	// the requests in flight (8 × 200 events) and ClickHouse's client
	// buffers. 256 MiB leaves room for the race detector's overhead.
	const heapBound = 256 << 20
	t.Logf("spool %d bytes, %d batches refused, peak heap in use %.1f MiB", st.Bytes, full, float64(peak.Load())/(1<<20))
	if peak.Load() > heapBound {
		t.Errorf("peak heap in use %d bytes, over the bound of %d", peak.Load(), heapBound)
	}

	proxy.Resume()
	proxy.SetLatency(0)
	acked := tr.halt()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.app.Spool().WaitShipped(ctx); err != nil {
		t.Fatal(err)
	}
	requireAckedOnce(t, h.ch, h.db, acked)
	h.shutdown() // while the proxy is up
}

// TestGaveUpRequestKeepsItsRowsIntegration plays a ClickHouse that hangs
// and then refuses connections, without a spool: two requests share one
// insert group, the first gives up (its deadline passes) while the insert
// hangs, more requests come and give up too, and the group is inserted
// once ClickHouse answers again. The rows of the request that gave up are
// stored as it sent them: the writer still held them after its Write
// returned an error, so its batch, whose arena holds the crashes' stack
// frames, was not cleared and reused (see pipeline.Sink).
func TestGaveUpRequestKeepsItsRowsIntegration(t *testing.T) {
	h, proxy := newProxiedHarness(t, func(c *Config) {
		c.NoSpool = true
		// Room for the second request to join the first one's group on
		// a busy machine.
		c.Writer.FlushInterval = time.Second
		c.Writer.RetryBackoff = 50 * time.Millisecond
		c.Writer.MaxRetryBackoff = 200 * time.Millisecond
		c.Writer.MaxRetries = 200
	})
	token := h.token(t, testApp, time.Hour)
	device := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
		OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", DeviceModel: "Pixel 8", Locale: "de-AT"}
	age := int64(1000)
	var seq byte
	// crashes returns a request of n crashes named after who, each with
	// three frames named after who and the crash.
	crashes := func(who string, n int) *consentryv1.IngestRequest {
		req := &consentryv1.IngestRequest{ConsentToken: token, SentAtUnixMs: time.Now().UnixMilli(), Device: device}
		for i := range n {
			seq++
			id := make([]byte, 16)
			id[0], id[6], id[15] = seq, 0x40, 1
			var frames []*consentryv1.StackFrame
			for f := range 3 {
				frames = append(frames, &consentryv1.StackFrame{Module: "com.example.notes", Function: fmt.Sprintf("%sView%d.step%d", who, i, f), InApp: true})
			}
			req.Events = append(req.Events, &consentryv1.Event{EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "java.lang.IllegalStateException", Message: fmt.Sprintf("%s %d", who, i), Thread: "main",
				AppState: consentryv1.AppState_APP_STATE_FOREGROUND, Frames: frames}}})
		}
		return req
	}
	ingest := func(req *consentryv1.IngestRequest, timeout time.Duration) (*consentryv1.IngestResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return h.client.Ingest(ctx, req)
	}
	gaveUp, kept := crashes("Alpha", 4), crashes("Beta", 4)

	proxy.Stall()
	bDone := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // into the group the first request opened
		resp, err := ingest(kept, time.Minute)
		if err == nil && resp.GetAccepted() != 4 {
			err = fmt.Errorf("response %v, want 4 accepted", resp)
		}
		bDone <- err
	}()
	if _, err := ingest(gaveUp, 2*time.Second); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("request sent while ClickHouse hangs: %v, want DeadlineExceeded", err)
	}
	time.Sleep(500 * time.Millisecond) // the server's handler returns too
	// The hung insert fails; its retries are refused until ClickHouse is
	// back, while later requests run through the service and give up.
	proxy.Refuse(true)
	proxy.Cut()
	proxy.Resume()
	for range 5 {
		if _, err := ingest(crashes("Gamma", 4), 300*time.Millisecond); err == nil {
			t.Fatal("a request was stored while ClickHouse refused connections")
		}
	}
	proxy.Refuse(false)
	if err := <-bDone; err != nil {
		t.Fatalf("request waiting out the fault: %v", err)
	}

	stored := map[string][]string{}
	rows, err := h.ch.Query(context.Background(), fmt.Sprintf("SELECT message, frame_function FROM %s.crashes", h.db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var msg string
		var fns []string
		if err := rows.Scan(&msg, &fns); err != nil {
			t.Fatal(err)
		}
		stored[msg] = fns
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []*consentryv1.IngestRequest{gaveUp, kept} {
		for _, ev := range req.GetEvents() {
			c := ev.GetCrash()
			var want []string
			for _, f := range c.GetFrames() {
				want = append(want, f.GetFunction())
			}
			got, ok := stored[c.GetMessage()]
			if !ok {
				t.Errorf("crash %q not stored; stored %v", c.GetMessage(), stored)
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("crash %q stored with frames %q, want %q", c.GetMessage(), got, want)
			}
			delete(stored, c.GetMessage())
		}
	}
	for msg, fns := range stored {
		if !strings.HasPrefix(msg, "Gamma ") || len(fns) == 0 || !strings.HasPrefix(fns[0], "GammaView") {
			t.Errorf("stored crash %q with frames %q, sent by no request", msg, fns)
		}
	}
}

// TestCorruptSpoolSegmentIntegration damages a spool segment while the
// collector is down: on start the bad record is detected, counted and
// skipped, the collector does not crash, and the other records are
// shipped.
func TestCorruptSpoolSegmentIntegration(t *testing.T) {
	srv, proxy := proxied(t)
	dataDir, mutate := restartable(t, proxy, func(c *Config) {
		c.Spool.SegmentBytes = 64 << 10 // several segments
	})
	h := newHarness(t, srv, mutate)
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 9})
	proxy.Stall()
	proxy.Cut()
	acked := 0
	for range 40 {
		resp, err := h.client.Ingest(context.Background(), gen.Batch(50, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		acked += int(resp.GetAccepted())
	}
	// Stop while ClickHouse hangs: the records stay in the spool.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	h.stopped = true
	h.app.Shutdown(ctx) // fails: the spool could not ship
	cancel()
	segs, _ := filepath.Glob(filepath.Join(dataDir, "spool", "*.seg"))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A byte in the middle of a record of the first segment.
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, 20_000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	proxy.Resume()
	h2 := newHarness(t, srv, mutate)
	st := h2.app.Spool().Stats()
	if st.CorruptRecords == 0 {
		t.Fatalf("the damaged record was not detected: %+v", st)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h2.app.Spool().WaitShipped(ctx); err != nil {
		t.Fatal(err)
	}
	stored := h2.total(t)
	m := scrape(t, h2)
	t.Logf("%d events acknowledged, %d stored after skipping %d corrupt records (%d bytes); metric %v",
		acked, stored, st.CorruptRecords, st.CorruptBytes, m["consentry_spool_corrupt_records_total"])
	if stored == 0 || stored >= uint64(acked) {
		t.Errorf("%d of %d events stored: want the ones outside the damaged segment", stored, acked)
	}
	if m["consentry_spool_corrupt_records_total"] < 1 {
		t.Error("corrupt records are not in the metrics")
	}
	h2.shutdown() // while the proxy is up
}

// TestFloodOfLargeBatchesIntegration floods a collector whose ClickHouse
// hangs (no spool: requests wait for the insert) with 32 clients sending
// the largest batches: beyond the in-flight byte budget they are refused
// at once with RESOURCE_EXHAUSTED before they are decoded, and the heap
// stays bounded.
func TestFloodOfLargeBatchesIntegration(t *testing.T) {
	h, proxy := newProxiedHarness(t, func(c *Config) {
		c.ClickHouse.ReadTimeout = 2 * time.Second
		c.NoSpool = true
		c.Edge.MaxInflightBytes = 16 << 20 // about 8 of these requests
		c.Limits.MaxDeadline = 3 * time.Second
	})
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	proxy.Stall()
	proxy.Cut()
	var peak atomic.Uint64
	var ms runtime.MemStats
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 32, 1000, 0)
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		runtime.ReadMemStats(&ms)
		peak.Store(max(peak.Load(), ms.HeapInuse))
		time.Sleep(50 * time.Millisecond)
	}
	proxy.Resume()
	tr.halt()
	m := scrape(t, h)
	refusedEarly := m["consentry_ingest_requests_refused_inflight_total"]
	t.Logf("%v requests refused before reading, refusals by code %v, peak heap in use %.1f MiB",
		refusedEarly, tr.refusals, float64(peak.Load())/(1<<20))
	if refusedEarly == 0 || tr.refusals[codes.ResourceExhausted] == 0 {
		t.Errorf("no request refused for the in-flight bound (metric %v, codes %v)", refusedEarly, tr.refusals)
	}
	// 8 requests of about 0.2 MB, decoded and anonymized, plus the
	// writer's pending rows and the race detector's overhead.
	const heapBound = 256 << 20
	if peak.Load() > heapBound {
		t.Errorf("peak heap in use %d bytes, over the bound of %d", peak.Load(), heapBound)
	}
	h.shutdown()
}

// TestSpoolDiskFullIntegration fills the spool's disk: the file size limit
// of the process (RLIMIT_FSIZE, which makes writes past it fail as a full
// disk does) is set just above the segment's size. Batches that do not fit
// are refused cleanly with UNAVAILABLE and a retry delay, the spool is not
// corrupted, and once there is room again ingest resumes and every
// acknowledged event is stored once.
func TestSpoolDiskFullIntegration(t *testing.T) {
	srv := server(t)
	h := newHarness(t, srv, nil)
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 11})
	ctx := context.Background()
	acked := make(map[string]bool)
	send := func() error {
		return h.ingestAcked(ctx, gen.Batch(100, time.Now()), acked)
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(h.app.cfg.Spool.Dir, "*.seg"))
	fi, err := os.Stat(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	// Writes past the limit fail with EFBIG instead of killing the process.
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	full := old
	full.Cur = uint64(fi.Size()) + 64<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Skipf("cannot limit file sizes: %v", err)
	}
	refused := 0
	for range 40 {
		err := send()
		if err == nil {
			continue
		}
		refused++
		if code, _, _, delay := grpcerr.Details(err); code != codes.Unavailable || delay == 0 {
			t.Errorf("with the disk full: %v (retry after %v); want UNAVAILABLE with a retry delay", err, delay)
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if refused == 0 {
		t.Fatal("no batch was refused with the disk full")
	}
	for range 5 {
		if err := send(); err != nil {
			t.Fatalf("with room again: %v", err)
		}
	}
	h.shipped(t)
	st := h.app.Spool().Stats()
	t.Logf("%d batches refused with the disk full; spool %+v", refused, st)
	if len(acked) < 600 {
		t.Fatalf("%d events acknowledged, want the 6 batches before and after the full disk", len(acked))
	}
	if st.CorruptRecords != 0 {
		t.Errorf("the full disk corrupted %d records", st.CorruptRecords)
	}
	requireAckedOnce(t, h.ch, h.db, acked)
}
