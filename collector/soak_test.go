//go:build soak

package collector

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/consentrydtest"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/tmpfs"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The soak test (make soak) drives the real consentryd binary with an
// event-id-recording client for -soak.duration while a chaos schedule
// SIGKILLs the collector, SIGKILLs and SIGSTOPs ClickHouse, fills and
// frees the spool's volume and flips a bit in a closed spool segment;
// then it checks what was acknowledged against what ClickHouse stored.
var (
	soakDuration = flag.Duration("soak.duration", 10*time.Minute, "how long the soak runs")
	soakOutage   = flag.Duration("soak.outage", 30*time.Second, "how long each ClickHouse outage lasts")
	soakClients  = flag.Int("soak.clients", 4, "concurrent clients")
	soakVolume   = flag.Int("soak.volume-mib", 512, "size of the tmpfs holding the spool, in MiB (big enough to ride out an outage)")
)

// soakClient sends batches from several goroutines and records, per
// event id, what the collector acknowledged, and, per second, whether any
// request was accepted.
type soakClient struct {
	addr  string
	token string

	mu        sync.Mutex
	acked     [][16]byte // every id is new: the client never resends
	refusals  map[string]int
	okSeconds map[int64]bool // Unix seconds with at least one acknowledgement
	anySecond map[int64]bool // Unix seconds with at least one answer
	// state holds, per Unix second, what the collector's /readyz said
	// (sampled twice a second): "ready", "full" (the spool is truly
	// full: "spool" is the reason), "not ready" (another reason) or
	// "down" (no answer: the collector is not running).
	state map[int64]string
	sent  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func (c *soakClient) run(clients int) {
	for i := range clients {
		s := sender{
			addr:    func() string { return c.addr },
			gen:     eventgen.New(eventgen.Config{AppID: testApp, Token: c.token, Seed: uint64(7000 + i)}),
			events:  100,
			redial:  100 * time.Millisecond,
			outcome: c.record,
		}
		c.wg.Go(func() { s.run(c.stop) })
	}
}

// record counts what a send got and returns how long to wait before the
// next: nothing after an acknowledgement, a little after a refusal.
func (c *soakClient) record(req *consentryv1.IngestRequest, resp *consentryv1.IngestResponse, err error) time.Duration {
	c.sent.Add(int64(len(req.GetEvents())))
	now := time.Now().Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.anySecond[now] = true
	if err != nil {
		st := status.Convert(err)
		key := st.Code().String()
		for _, d := range st.Details() {
			if r, ok := d.(interface{ GetReason() string }); ok && r.GetReason() != "" {
				key += "/" + r.GetReason()
			}
		}
		c.refusals[key]++
		if st.Code() != codes.Unavailable {
			return 200 * time.Millisecond
		}
		return 50 * time.Millisecond
	}
	c.okSeconds[now] = true
	dropped := map[uint32]bool{}
	for _, d := range resp.GetEventDrops() {
		dropped[d.GetIndex()] = true
	}
	for j, e := range req.GetEvents() {
		if !dropped[uint32(j)] {
			c.acked = append(c.acked, [16]byte(e.GetEventId()))
		}
	}
	return 0
}

// sampleReadiness records what admin's /readyz says twice a second until
// stop is closed.
func (c *soakClient) sampleReadiness(admin string) {
	for {
		st := "down"
		if resp, err := http.Get("http://" + admin + PathReadyz); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				st = "ready"
			case strings.Contains(string(body), "spool"):
				st = "full"
			default:
				st = "not ready: " + strings.TrimSpace(strings.TrimPrefix(string(body), "not ready"))
			}
		}
		now := time.Now().Unix()
		c.mu.Lock()
		if old, ok := c.state[now]; !ok || old == "ready" {
			c.state[now] = st // a second that was not ready at all counts as not ready
		}
		c.mu.Unlock()
		select {
		case <-c.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// refusedSeconds counts, by the collector's state, the seconds in which
// requests were answered but none acknowledged.
func (c *soakClient) refusedSeconds() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for s := range c.anySecond {
		if !c.okSeconds[s] {
			st := c.state[s]
			if st == "" {
				st = "unknown"
			}
			out[st]++
		}
	}
	return out
}

// longestRefused returns the longest run of seconds in which requests
// were answered but none acknowledged.
func (c *soakClient) longestRefused() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var secs []int64
	for s := range c.anySecond {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	longest, run := 0, 0
	var prev int64
	for _, s := range secs {
		if c.okSeconds[s] {
			run = 0
		} else {
			if s == prev+1 {
				run++
			} else {
				run = 1
			}
			longest = max(longest, run)
		}
		prev = s
	}
	return time.Duration(longest) * time.Second
}

// soakCollector runs consentryd as a child process.
type soakCollector struct {
	t     *testing.T
	bin   string
	args  []string
	env   []string
	admin string
	cmd   *exec.Cmd
	// corruptEvents and corruptRecords add up what each run of the
	// collector counted before it was stopped.
	corruptEvents, corruptRecords float64
}

func (c *soakCollector) start() {
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = cmd
	// A collector waits for a ClickHouse that does not answer for up to
	// --clickhouse-start-timeout (2 minutes) before it gives up.
	for range 1500 {
		if resp, err := http.Get("http://" + c.admin + PathLivez); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("consentryd did not come up")
}

// metrics scrapes the collector's consentry_ metrics.
func (c *soakCollector) metrics() map[string]float64 {
	m := map[string]float64{}
	resp, err := http.Get("http://" + c.admin + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "consentry_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			m[name] = f
		}
	}
	return m
}

// noteCorruption adds what the running collector counted as lost to
// corruption.
func (c *soakCollector) noteCorruption() {
	m := c.metrics()
	c.corruptEvents += m["consentry_spool_corrupt_events_total"]
	c.corruptRecords += m["consentry_spool_corrupt_records_total"]
}

func (c *soakCollector) kill() {
	c.noteCorruption()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

func (c *soakCollector) terminate() {
	c.noteCorruption()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
}

// TestSoak is the soak with chaos; see docs/operations.md ("Soak test").
func TestSoak(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the soak mounts a tmpfs for the spool: run as root")
	}
	dir := t.TempDir()
	// ClickHouse, on fixed ports so it comes back where the collector
	// looks for it.
	// Not supervised (MaxFailures 1): the chaos schedule decides how long
	// ClickHouse stays dead.
	chCfg := chserver.Config{DataDir: filepath.Join(dir, "clickhouse"), TCPPort: freePort(t), HTTPPort: freePort(t),
		MaxFailures: 1, Password: "soak-test-password", Logger: zaptest.NewLogger(t)}
	var srv *chserver.Server
	startCH := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := chserver.Start(ctx, chCfg)
		if err != nil {
			t.Fatal(err)
		}
		srv = s
	}
	startCH()
	t.Cleanup(func() { srv.Stop(context.Background()) })

	// The spool on a small volume of its own.
	spoolDir := tmpfs.Mount(t, int64(*soakVolume)<<20)

	bin, err := consentrydtest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	grpcAddr := consentrydtest.FreeAddr(t)
	admin := consentrydtest.FreeAddr(t)
	const db = "consentry_soak"
	col := &soakCollector{t: t, bin: bin, admin: admin, env: []string{"CONSENTRY_CLICKHOUSE_PASSWORD=" + srv.Password()}, args: []string{
		"--data-dir", data, "--clickhouse-addr", srv.Addr(), "--clickhouse-database", db, "--clickhouse-user", srv.User(),
		"--generalize-k", "1", // the soak counts the event tables; k-anonymity would hold rows back
		"--spool-dir", spoolDir, "--spool-max-bytes", strconv.Itoa(4 * *soakVolume << 20),
		"--grpc-addr", grpcAddr, "--http-addr", "127.0.0.1:0", "--admin-addr", admin, "--log-level", "warn",
		// The soak counts what reaches the event tables: k-anonymity,
		// which holds rows of rare devices back for an hour, has its own
		// tests.
		"--generalize-k", "1",
	}}
	col.start()
	t.Cleanup(func() {
		if col.cmd.ProcessState == nil {
			col.terminate()
		}
	})

	token := tokenFromKeyFile(t, data, 24*time.Hour)
	client := &soakClient{addr: grpcAddr, token: token, refusals: map[string]int{},
		okSeconds: map[int64]bool{}, anySecond: map[int64]bool{}, state: map[int64]string{}, stop: make(chan struct{})}
	client.run(*soakClients)
	client.wg.Go(func() { client.sampleReadiness(admin) })

	// The chaos schedule: one round of every fault, repeated until the
	// duration is up.
	rnd := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Add(*soakDuration)
	sleep := func(d time.Duration) bool {
		if time.Now().Add(d).After(end) {
			time.Sleep(time.Until(end))
			return false
		}
		time.Sleep(d)
		return true
	}
	logf := func(format string, args ...any) {
		t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	faults := []struct {
		name string
		run  func()
	}{
		{"SIGKILL consentryd", func() {
			col.kill()
			time.Sleep(time.Second)
			col.start()
		}},
		{"SIGKILL ClickHouse", func() {
			_ = syscall.Kill(-srv.PID(), syscall.SIGKILL)
			<-srv.Wait()
			time.Sleep(*soakOutage)
			startCH()
		}},
		{"SIGSTOP ClickHouse", func() {
			_ = syscall.Kill(-srv.PID(), syscall.SIGSTOP)
			time.Sleep(*soakOutage)
			_ = syscall.Kill(-srv.PID(), syscall.SIGCONT)
		}},
		{"fill the spool volume", func() {
			filler := filepath.Join(spoolDir, "filler")
			f, err := os.Create(filler)
			if err != nil {
				logf("filler: %v", err)
				return
			}
			buf := make([]byte, 1<<20)
			for {
				if _, err := f.Write(buf); err != nil {
					break
				}
			}
			f.Close()
			time.Sleep(20 * time.Second)
			os.Remove(filler)
		}},
		{"flip a bit in a closed segment", func() {
			// Hold ClickHouse so segments stay unshipped, let a few
			// close, stop the collector, damage one, let ClickHouse go
			// on and start the collector again: a starting collector
			// needs ClickHouse (it waits --clickhouse-start-timeout).
			_ = syscall.Kill(-srv.PID(), syscall.SIGSTOP)
			cont := sync.OnceFunc(func() { _ = syscall.Kill(-srv.PID(), syscall.SIGCONT) })
			defer cont()
			var segs []string
			for range 300 {
				segs, _ = filepath.Glob(filepath.Join(spoolDir, "*.seg"))
				if len(segs) >= 3 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			col.kill()
			if len(segs) >= 2 {
				sort.Strings(segs)
				seg := segs[len(segs)-2] // closed, not yet shipped
				if fi, err := os.Stat(seg); err == nil && fi.Size() > 4096 {
					f, err := os.OpenFile(seg, os.O_RDWR, 0)
					if err == nil {
						off := 64 + rnd.Int64N(fi.Size()-128)
						b := make([]byte, 1)
						f.ReadAt(b, off)
						b[0] ^= 1 << rnd.IntN(8)
						f.WriteAt(b, off)
						f.Close()
						logf("flipped a bit of %s at %d", filepath.Base(seg), off)
					}
				}
			}
			cont()
			col.start()
		}},
	}
	for i := 0; ; i++ {
		if !sleep(time.Duration(10+rnd.IntN(20)) * time.Second) {
			break
		}
		f := faults[i%len(faults)]
		logf("fault: %s", f.name)
		f.run()
	}
	close(client.stop)
	client.wg.Wait()
	logf("traffic stopped; waiting for the spool to drain")
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if m := col.metrics(); m["consentry_spool_pending_records"] == 0 && m["consentry_spool_bytes"] == 0 {
			break
		}
	}
	col.terminate()

	// A connection of its own: reading tens of millions of rows under
	// FINAL from a loaded server stalls longer than chtest's timeouts.
	ch, err := chgo.Open(&chgo.Options{Addr: []string{srv.Addr()}, Auth: chgo.Auth{Database: "default", Username: srv.User(), Password: srv.Password()},
		DialTimeout: time.Minute, ReadTimeout: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	// Tens of millions of ids: compared in sorted order, streamed from
	// ClickHouse, so the soak's memory stays a sorted slice of the
	// acknowledged ids (16 bytes each) rather than maps of them.
	stored := storedEventIDOf(t, data)
	ackedIDs := make([][16]byte, 0, len(client.acked))
	for _, sent := range client.acked {
		ackedIDs = append(ackedIDs, stored(testApp, sent[:]))
	}
	nAcked := len(client.acked)
	client.acked = nil
	slices.SortFunc(ackedIDs, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	distinct, lost, dup := compareStored(t, ch, db, ackedIDs)
	rawRows := 0
	for _, table := range clickhouse.EventTables() {
		var n uint64
		if err := ch.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s", db, table)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		rawRows += int(n)
	}
	overSessions, overCrashes, _ := aggregateOvercount(t, ch, db)
	over := map[string]int64{"sessions_daily": overSessions, "crash_groups_daily": overCrashes}
	longest := client.longestRefused()
	refused := client.refusedSeconds()
	t.Logf("SOAK %v: sent %d, acked %d, stored %d (rows under FINAL; %d before merging), lost %d (corrupt events counted by the collector: %.0f in %.0f records), duplicated after FINAL %d, aggregate overcount %v, longest stretch of refused ingest %v, seconds refused by the collector's state %v, refusals %v",
		*soakDuration, client.sent.Load(), nAcked, distinct, rawRows, lost, col.corruptEvents, col.corruptRecords, dup, over, longest, refused, client.refusals)
	// Refused while the collector said it was ready: the spool had room
	// and yet it refused. A second where readiness turned counts on both
	// sides, so allow a few.
	if n := refused["ready"]; n > 3 {
		t.Errorf("ingest refused for %d seconds while the collector was ready (its spool had room)", n)
	}
	if float64(lost) != col.corruptEvents {
		t.Errorf("lost %d acknowledged events; the collector counted %.0f lost to corruption", lost, col.corruptEvents)
	}
	if dup > 0 {
		t.Errorf("%d events stored more than once under FINAL", dup)
	}
	for table, n := range over {
		if n != 0 {
			t.Errorf("aggregate %s overcounts by %d", table, n)
		}
	}
}

// compareStored streams the event ids stored in db's event tables
// (FINAL, as analysts count) and looks each up in acked, the sorted
// stored ids of the acknowledged events, marking it seen: it returns how
// many rows are stored, how many acknowledged ids are not, and how many
// are stored more than once. Nothing is grouped or sorted on the server,
// whose memory limit tens of millions of ids would pass.
func compareStored(t *testing.T, ch driver.Conn, db string, acked [][16]byte) (stored, lost, dup int) {
	t.Helper()
	seen := make([]bool, len(acked))
	eachStoredID(t, ch, db, "FINAL", func(text string) {
		id, err := uuid.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		stored++
		i, found := slices.BinarySearchFunc(acked, [16]byte(id), func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		switch {
		case !found:
		case seen[i]:
			dup++
		default:
			seen[i] = true
		}
	})
	for _, s := range seen {
		if !s {
			lost++
		}
	}
	return stored, lost, dup
}
