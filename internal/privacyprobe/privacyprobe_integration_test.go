package privacyprobe_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/consent/consenttest"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/consentrydtest"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/internal/privacyprobe"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The adversarial privacy test. Its short form runs in make test; the long
// form (make privacy) passes -privacy.long. See docs/privacy.md, "The
// adversarial privacy test".
var (
	flagSeeds  = flag.String("privacy.seeds", "", "comma-separated seeds of the probes to run (default 1; with -privacy.long 1,2,3 and a random one)")
	flagPlants = flag.Int("privacy.plants", 0, "identifiers each probe plants (default 300; with -privacy.long 3000)")
	flagLong   = flag.Bool("privacy.long", false, "the long form: several seeds, more plants, and known gaps fail too")
	flagOut    = flag.String("privacy.out", "", "`dir` to write each probe's report (report-seed-N.txt) and findings (findings-seed-N.jsonl) to")
)

// probeRun is one probe against one collector.
type probeRun struct {
	seed     uint64
	plants   int
	kinds    []privacyprobe.Kind
	contexts []string
	// scrubDisable is passed to --scrub-disable.
	scrubDisable string
}

// TestAdversarialPrivacy plants identifiers in every string field, header
// and connection of ingest batches, sends them to the real consentryd
// over gRPC and HTTP (JSON and protobuf) while ClickHouse is unreachable,
// snapshots the spool, lets the spool ship, and looks for every planted
// value in every column of every table of every database, ClickHouse's
// query and thread logs, its server log files and data files, the
// collector's log and the spool. It fails on any finding that is not a
// known gap (privacyprobe.KnownGaps), and, with -privacy.long, on those
// too.
func TestAdversarialPrivacy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and consentryd; skipped with -short")
	}
	seeds, plants := probeSeeds(t)
	e := sharedEnv(t)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := e.run(t, probeRun{seed: seed, plants: plants})
			r.Reproduce = fmt.Sprintf("go test ./internal/privacyprobe -run 'TestAdversarialPrivacy/seed=%d$' -v -args -privacy.seeds=%d -privacy.plants=%d",
				seed, seed, plants)
			var out bytes.Buffer
			r.WriteTo(&out)
			t.Log("\n" + out.String())
			writeOut(t, r, out.Bytes())
			checkAccepted(t, r)
			fresh, known, _ := r.Classify()
			if len(fresh) > 0 {
				t.Errorf("%d new findings: planted identifiers found where they must not be (see the report above; reproduce: %s)", len(fresh), r.Reproduce)
			}
			if *flagLong && len(known) > 0 {
				t.Errorf("%d findings of known gaps still open (privacyprobe.KnownGaps)", len(known))
			}
		})
	}
}

// TestAdversarialPrivacyCatchesDisabledDetector runs a small probe of
// e-mail addresses against a collector started with --scrub-disable
// email: the probe must find them in ClickHouse. If it did not, the scan
// would not be reading what the collector stores.
func TestAdversarialPrivacyCatchesDisabledDetector(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and consentryd; skipped with -short")
	}
	e := sharedEnv(t)
	r := e.run(t, probeRun{seed: 99, plants: 60, kinds: []privacyprobe.Kind{privacyprobe.Email},
		contexts: []string{"plain", "in a sentence"}, scrubDisable: "email"})
	found := map[int]bool{}
	for _, f := range r.Finds {
		if f.Plant.Kind == privacyprobe.Email && strings.HasPrefix(f.Place, "clickhouse consentry_probe_") {
			found[f.Plant.ID] = true
		}
	}
	var planted int
	for _, p := range r.Accepted() {
		if p.Kind == privacyprobe.Email && p.Context != privacyprobe.ContextHeader && p.Context != privacyprobe.ContextBytes &&
			p.Field != "device.locale" && !strings.HasPrefix(p.Field, "device.location.") && p.Field != "events[crash].fingerprint" {
			planted++
		}
	}
	t.Logf("with --scrub-disable email: %d of %d e-mail plants in stored text found in ClickHouse", len(found), planted)
	if planted < 20 || len(found) < planted*95/100 {
		var out bytes.Buffer
		r.WriteTo(&out)
		t.Errorf("with --scrub-disable email only %d of %d e-mail plants were found in ClickHouse:\n%s", len(found), planted, out.String())
	}
}

// checkAccepted fails t when the collector dropped many plants, or every
// plant of a string field: plants in dropped events prove nothing, so the
// probe must be changed to plant what the collector accepts.
func checkAccepted(t *testing.T, r *privacyprobe.Report) {
	t.Helper()
	accepted := r.Accepted()
	if n := len(r.Probe.Plants); len(accepted) < n*9/10 {
		t.Errorf("the collector accepted only %d of %d plants (see \"planted but not accepted\" in the report)", len(accepted), n)
	}
	byField := map[string]int{}
	for _, p := range accepted {
		byField[p.Field]++
	}
	fields, _ := privacyprobe.StringFields()
	for _, f := range fields {
		if byField[f] == 0 {
			t.Errorf("no plant in string field %s was accepted: the field is not tested", f)
		}
	}
}

// writeOut writes the report and the findings to -privacy.out, if set.
func writeOut(t *testing.T, r *privacyprobe.Report, report []byte) {
	t.Helper()
	if *flagOut == "" {
		return
	}
	if err := os.MkdirAll(*flagOut, 0o750); err != nil {
		t.Fatal(err)
	}
	seed := r.Probe.Seed
	if err := os.WriteFile(filepath.Join(*flagOut, fmt.Sprintf("report-seed-%d.txt", seed)), report, 0o640); err != nil {
		t.Fatal(err)
	}
	var findings bytes.Buffer
	if err := r.WriteFindings(&findings); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*flagOut, fmt.Sprintf("findings-seed-%d.jsonl", seed)), findings.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
}

// probeSeeds returns the seeds and plants per seed the flags ask for.
func probeSeeds(t *testing.T) ([]uint64, int) {
	plants := *flagPlants
	if plants == 0 {
		plants = 300
		if *flagLong {
			plants = 3000
		}
	}
	spec := *flagSeeds
	if spec == "" {
		spec = "1"
		if *flagLong {
			spec = "1,2,3," + strconv.FormatUint(rand.Uint64()%1_000_000, 10)
		}
	}
	var seeds []uint64
	for s := range strings.SplitSeq(spec, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("-privacy.seeds: %q: %v", s, err)
		}
		seeds = append(seeds, v)
	}
	return seeds, plants
}

// env is a ClickHouse server with its query, thread and text logs on and
// its server log at trace level, and the consentryd binary.
type env struct {
	bin    string
	srv    *chserver.Server
	client *http.Client
}

// clickhouseConfig turns on every log ClickHouse can keep of what it is
// sent, so the probe can look in them: the query and thread logs, the
// part log, the text log (newer servers) and the server log at trace
// level, which quotes every query. config.d and users.d are merged into
// the configuration chserver writes.
const (
	clickhouseConfig = `<yandex>
  <logger><level>trace</level></logger>
  <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></query_log>
  <query_thread_log><database>system</database><table>query_thread_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></query_thread_log>
  <part_log><database>system</database><table>part_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></part_log>
  <text_log><database>system</database><table>text_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds><level>trace</level></text_log>
</yandex>
`
	clickhouseUsers = `<yandex><profiles><default><log_queries>1</log_queries><log_query_threads>1</log_query_threads></default></profiles></yandex>
`
)

// The env the tests share, started by the first that needs it and
// stopped by TestMain.
var (
	envOnce  sync.Once
	envErr   error
	theEnv   *env
	envClean []func()
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for i := len(envClean) - 1; i >= 0; i-- {
		envClean[i]()
	}
	os.Exit(code)
}

// sharedEnv returns the env, starting it on first use.
func sharedEnv(t *testing.T) *env {
	t.Helper()
	envOnce.Do(func() { theEnv, envErr = startEnv() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return theEnv
}

// startEnv builds consentryd and starts ClickHouse in a temporary folder;
// envClean stops and removes them.
func startEnv() (*env, error) {
	if _, _, err := chserver.Available(""); err != nil {
		return nil, fmt.Errorf("clickhouse-server not found: run scripts/deps.sh (%w)", err)
	}
	dir, err := os.MkdirTemp("", "privacyprobe-")
	if err != nil {
		return nil, err
	}
	envClean = append(envClean, func() { os.RemoveAll(dir) })
	bin, err := consentrydtest.Build(dir)
	if err != nil {
		return nil, err
	}
	chDir := filepath.Join(dir, "clickhouse")
	for name, text := range map[string]string{"config.d": clickhouseConfig, "users.d": clickhouseUsers} {
		if err := os.MkdirAll(filepath.Join(chDir, name), 0o750); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(chDir, name, "privacyprobe.xml"), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Config{DataDir: chDir})
	if err != nil {
		return nil, err
	}
	envClean = append(envClean, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "privacyprobe:", err)
		}
	})
	return &env{bin: bin, srv: srv, client: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// query runs sql on ClickHouse's HTTP interface and returns the body.
func (e *env) query(sql string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+e.srv.HTTPAddr()+"/?max_execution_time=120", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth(e.srv.User(), e.srv.Password())
	resp, err := e.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		first, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return "", fmt.Errorf("%s: %s", resp.Status, first)
	}
	return string(body), nil
}

// run runs one probe against a fresh consentryd.
func (e *env) run(t *testing.T, pr probeRun) *privacyprobe.Report {
	t.Helper()
	dir := t.TempDir()
	db := fmt.Sprintf("consentry_probe_%d", pr.seed)

	// A consent token with every scope, from a key the collector is given.
	keyFile := filepath.Join(dir, "consent-signing-key.pem")
	priv, err := consent.LoadOrCreatePrivateKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	token, cid := (&signer{consenttest.New(t, priv)}).token(t, 2*time.Hour)
	probe, err := privacyprobe.New(privacyprobe.Config{Seed: pr.seed, Plants: pr.plants, Kinds: pr.kinds, Contexts: pr.contexts, AppID: probeApp, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	probe.AddSecret(privacyprobe.ConsentToken, "consent_token", token, cid)
	sc := privacyprobe.NewScanner(probe)

	// ClickHouse behind a proxy, so it can be taken away.
	proxy := faultproxy.StartForTest(t, e.srv.Addr())
	col := e.startCollector(t, dir, db, proxy.Addr(), keyFile, pr.scrubDisable)

	// What is there before anything is planted collides with no finding.
	var unscanned []string
	unscanned = append(unscanned, e.scanClickHouse(t, sc, true, db)...)
	e.scanServerFiles(t, sc, true, db)

	// Send the batches while ClickHouse is unreachable: they wait in the
	// spool, which is read before it ships them. An outage lasts at most
	// outageFor, well within the collector's revocation bound, then
	// ClickHouse comes back until the spool has shipped.
	const outageFor = 10 * time.Second
	var accepted int
	for next := 0; next < len(probe.Batches); {
		proxy.Refuse(true)
		proxy.Cut()
		start := time.Now()
		for ; next < len(probe.Batches) && time.Since(start) < outageFor; next++ {
			b := probe.Batches[next]
			resp, text, err := col.send(b)
			sc.Scan("ingest response", fmt.Sprintf("batch %d", b.Index), text)
			if err := probe.Record(b, resp, err); err != nil {
				t.Fatal(err)
			}
			if err != nil {
				t.Errorf("batch %d (%s) refused: %v", b.Index, b.Transport, err)
				continue
			}
			accepted += int(resp.GetAccepted())
		}
		if accepted == 0 {
			t.Fatal("the collector accepted no event")
		}
		if spooled, ok := scanDir(t, sc, col.spoolDir, "spool (ClickHouse down)", false, probeApp); spooled < 1024 || !ok {
			t.Fatalf("the spool holds %d bytes without the app id while ClickHouse is down: nothing was spooled", spooled)
		}
		if n := e.stored(t, db); n == accepted {
			t.Fatalf("all %d accepted rows stored while ClickHouse was unreachable", n)
		}
		proxy.Refuse(false)
		deadline := time.Now().Add(2 * time.Minute)
		for e.stored(t, db) < accepted {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d accepted events stored after 2 minutes", e.stored(t, db), accepted)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The collector stops, flushing its rejects.
	col.stop(t)
	scanDir(t, sc, col.spoolDir, "spool (shipped)", false, "")

	if _, err := e.query("SYSTEM FLUSH LOGS"); err != nil {
		time.Sleep(time.Second) // flush_interval_milliseconds is 500
	}
	unscanned = append(unscanned, e.scanClickHouse(t, sc, false, db)...)
	e.scanServerFiles(t, sc, false, db)
	logText, err := os.ReadFile(col.logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logText, []byte(`"batch ingested"`)) {
		t.Fatalf("the collector's log has no \"batch ingested\" line: it is not logging at debug level\n%s", logText)
	}
	sc.ScanLines("collector log", string(logText))

	r := privacyprobe.NewReport(probe, sc, privacyprobe.KnownGaps)
	r.Unscanned = unscanned
	return r
}

// collector is a running consentryd.
type collector struct {
	proc                      *consentrydtest.Process
	grpcAddr, httpAddr, admin string
	spoolDir, logFile         string
}

// startCollector starts consentryd logging at debug level, with
// generalization off (--generalize-k 1: the scrubber alone must hold) and
// a revocation bound that outlasts a ClickHouse outage of the probe.
func (e *env) startCollector(t *testing.T, dir, db, chAddr, keyFile, scrubDisable string) *collector {
	t.Helper()
	c := &collector{grpcAddr: consentrydtest.FreeAddr(t), httpAddr: consentrydtest.FreeAddr(t), admin: consentrydtest.FreeAddr(t),
		spoolDir: filepath.Join(dir, "spool"), logFile: filepath.Join(dir, "consentryd.log")}
	args := []string{"--data-dir", filepath.Join(dir, "data"), "--clickhouse-addr", chAddr, "--clickhouse-database", db,
		"--clickhouse-user", e.srv.User(),
		"--consent-signing-key-file", keyFile, "--spool-dir", c.spoolDir,
		"--grpc-addr", c.grpcAddr, "--http-addr", c.httpAddr, "--admin-addr", c.admin,
		"--log-level", "debug", "--log-format", "json", "--generalize-k", "1", "--revocation-refresh", "1s", "--revocation-bound", "30s"}
	if scrubDisable != "" {
		args = append(args, "--scrub-disable", scrubDisable)
	}
	logf, err := os.Create(c.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "CONSENTRY_CLICKHOUSE_PASSWORD="+e.srv.Password())
	cmd.Stdout, cmd.Stderr = logf, logf
	c.proc = consentrydtest.Start(t, cmd)
	c.proc.WaitReady(t, c.admin, time.Minute, func() []byte {
		out, _ := os.ReadFile(c.logFile)
		return out
	})
	return c
}

// stop stops the collector with SIGTERM, as an orchestrator would.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	if err := c.proc.Stop(time.Minute); err != nil {
		t.Errorf("consentryd: %v", err)
	}
}

// dialer connects from b's loopback source address.
func dialer(b *privacyprobe.Batch) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: b.Source.AsSlice()}, Timeout: 10 * time.Second}
}

// send sends b over its transport; text is the answer as received (the
// response body or the error), for the scanner.
func (c *collector) send(b *privacyprobe.Batch) (*consentryv1.IngestResponse, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.Transport == privacyprobe.GRPC {
		conn, err := grpc.NewClient("passthrough:///"+c.grpcAddr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUserAgent(b.UserAgent),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return dialer(b).DialContext(ctx, "tcp", addr)
			}))
		if err != nil {
			return nil, "", err
		}
		defer conn.Close()
		md := metadata.MD{}
		for _, h := range b.Headers {
			md.Append(h.Name, h.Value)
		}
		resp, err := consentryv1.NewIngestServiceClient(conn).Ingest(metadata.NewOutgoingContext(ctx, md), b.Request)
		if err != nil {
			return nil, err.Error(), err
		}
		return resp, protojson.Format(resp), nil
	}
	var body []byte
	var err error
	contentType := "application/json"
	if b.Transport == privacyprobe.HTTPJSON {
		body, err = protojson.Marshal(b.Request)
	} else {
		contentType = "application/x-protobuf"
		body, err = proto.Marshal(b.Request)
	}
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.httpAddr+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", b.UserAgent)
	for _, h := range b.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer(b).DialContext, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err.Error(), err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	text := resp.Header.Get("Retry-After") + string(out)
	if resp.StatusCode != http.StatusOK {
		return nil, text, fmt.Errorf("%s: %s", resp.Status, out)
	}
	r := &consentryv1.IngestResponse{}
	if contentType == "application/json" {
		err = protojson.Unmarshal(out, r)
	} else {
		err = proto.Unmarshal(out, r)
	}
	return r, text, err
}

// stored returns the rows in db's event tables.
func (e *env) stored(t *testing.T, db string) int {
	t.Helper()
	var sum int
	for _, tbl := range []string{"sessions", "gestures", "crashes", "custom_events", "diagnostics"} {
		out, err := e.query(fmt.Sprintf("SELECT count() FROM %s.%s", db, tbl))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}

// skipTables are system tables that hold no data but generate it without
// end, or that cannot be read whole.
var skipTables = map[string]bool{"system.numbers": true, "system.numbers_mt": true, "system.zeros": true, "system.zeros_mt": true,
	"system.zookeeper": true, "system.primes": true, "system.generate_series": true}

// scanClickHouse scans every column of every table of every database,
// system tables with data (query_log, query_thread_log, part_log,
// text_log, processes, ...) included; it returns the tables it could not
// read, with why. In a baseline scan, what it finds collides. Outside a
// baseline, system.query_log must mention db, the probe's database, or
// ClickHouse is not logging queries and the scan would prove nothing.
func (e *env) scanClickHouse(t *testing.T, sc *privacyprobe.Scanner, baseline bool, db string) (unscanned []string) {
	t.Helper()
	queryLogged := false
	list, err := e.query("SELECT database, name FROM system.tables ORDER BY database, name FORMAT TabSeparated")
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	if !baseline {
		for _, logTable := range []string{"system\tquery_log\n", "system\tquery_thread_log\n"} {
			if !strings.Contains(list, logTable) {
				t.Fatalf("ClickHouse keeps no %s: the probe's ClickHouse configuration did not apply", strings.TrimSpace(logTable))
			}
		}
	}
	for line := range strings.Lines(list) {
		tdb, name, ok := strings.Cut(strings.TrimRight(line, "\n"), "\t")
		if !ok || skipTables[tdb+"."+name] {
			continue
		}
		out, err := e.query(fmt.Sprintf("SELECT * FROM `%s`.`%s` LIMIT 500000 FORMAT TabSeparatedWithNames", tdb, name))
		if err != nil {
			if tdb != "system" {
				t.Errorf("read %s.%s: %v", tdb, name, err)
			}
			unscanned = append(unscanned, fmt.Sprintf("%s.%s: %v", tdb, name, err))
			continue
		}
		if tdb == "system" && name == "query_log" {
			queryLogged = strings.Contains(out, db)
		}
		tables++
		rows := strings.Split(out, "\n")
		cols := strings.Split(rows[0], "\t")
		for i, row := range rows[1:] {
			if row == "" {
				continue
			}
			for j, field := range strings.Split(row, "\t") {
				col := "?"
				if j < len(cols) {
					col = cols[j]
				}
				place := "clickhouse " + tdb + "." + name + "." + col
				if baseline {
					sc.Baseline(place, field)
				} else {
					sc.Scan(place, "row "+strconv.Itoa(i+1), field)
				}
			}
		}
	}
	if tables < 20 {
		t.Fatalf("only %d ClickHouse tables read", tables)
	}
	if !baseline && !queryLogged {
		t.Fatalf("system.query_log does not mention %s: ClickHouse is not logging queries", db)
	}
	return unscanned
}

// scanServerFiles scans ClickHouse's server log files and every file of
// its data directory (parts are compressed, but short values often are
// stored as they are, and metadata is text). The server log must quote
// the probe's database, as it logs every query at trace level.
func (e *env) scanServerFiles(t *testing.T, sc *privacyprobe.Scanner, baseline bool, db string) {
	t.Helper()
	root := e.srv.DataDir()
	if _, ok := scanDir(t, sc, filepath.Join(root, "log"), "clickhouse server log", baseline, db); !ok {
		t.Fatalf("ClickHouse's server log does not mention %s: it is not logging queries", db)
	}
	scanDir(t, sc, filepath.Join(root, "data"), "clickhouse data", baseline, "")
}

// scanDir scans every file under dir as place and returns the bytes read
// and whether control, a value known to be there, was among them: proof
// that the scan read what it should.
func scanDir(t *testing.T, sc *privacyprobe.Scanner, dir, place string, baseline bool, control string) (int64, bool) {
	t.Helper()
	var total int64
	seen := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking: a merged part, a shipped segment
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += int64(len(b))
		seen = seen || control != "" && bytes.Contains(b, []byte(control))
		rel, _ := filepath.Rel(dir, path)
		p := place + ": " + rel
		if baseline {
			sc.Baseline(p, string(b))
		} else {
			sc.Scan(p, "", string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return total, seen
}
