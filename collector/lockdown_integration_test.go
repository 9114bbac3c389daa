package collector

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/internal/chtest"
)

// chClient runs queries against the managed ClickHouse as one identity,
// over the native protocol or HTTP.
type chClient struct {
	name string
	// query runs q and returns its result as text, or an error if the
	// server refused it.
	query func(q string) (string, error)
}

// nativeClient connects as user over the native protocol.
func nativeClient(t *testing.T, name, addr, user, password string) chClient {
	t.Helper()
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{addr},
		Auth:        ch.Auth{Username: user, Password: password},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return chClient{name: name, query: func(q string) (string, error) { return nativeText(conn, q) }}
}

// nativeText runs q on conn and returns its rows as text, one value per
// field, tab-separated.
func nativeText(conn driver.Conn, q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	types := rows.ColumnTypes()
	for rows.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(vals...); err != nil {
			return "", err
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%v\t", reflect.ValueOf(v).Elem().Interface())
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

// httpClient sends queries over the HTTP interface at addr, as user if
// not "", or with no credentials at all.
func httpClient(name, addr, user, password string) chClient {
	return chClient{name: name, query: func(q string) (string, error) {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(q))
		if err != nil {
			return "", err
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return string(body), nil
	}}
}

// TestManagedClickHouseLockedDown tries every route to the session salts
// an analyst or anyone without a password could take to the collector's
// managed ClickHouse (18.16 in CI), over both protocols: each is refused,
// and no salt appears in any system table they can read, in the server's
// logs, or in the collector's. The files that hold secrets are
// owner-only.
func TestManagedClickHouseLockedDown(t *testing.T) {
	h := newManagedHarness(t, nil)
	ctx := context.Background()
	dataDir := h.app.cfg.DataDir
	srv := h.app.storage.server
	_, tcpPort, _ := net.SplitHostPort(srv.Addr())
	_, httpPort, _ := net.SplitHostPort(srv.HTTPAddr())

	// The salts: the collector made today's at start; make tomorrow's too.
	if _, err := h.app.Client().DailySalt(ctx, time.Now().Add(24*time.Hour), make([]byte, clickhouse.SaltSize)); err != nil {
		t.Fatal(err)
	}
	saltsText, err := nativeText(h.ch, "SELECT salt FROM consentry_private.session_salts")
	if err != nil {
		t.Fatal(err)
	}
	salts := strings.Fields(saltsText)
	if len(salts) < 2 {
		t.Fatalf("found %d salts, want today's and tomorrow's", len(salts))
	}
	leaks := func(s string) bool {
		s = strings.ToLower(s)
		for _, salt := range salts {
			if strings.Contains(s, strings.ToLower(salt)) {
				return true
			}
		}
		return false
	}

	analystPassword, err := loadAnalystPassword(filepath.Join(dataDir, "clickhouse-analyst-password"))
	if err != nil {
		t.Fatal(err)
	}
	clients := []chClient{
		nativeClient(t, "analyst/native", srv.Addr(), AnalystUser, analystPassword),
		httpClient("analyst/http", srv.HTTPAddr(), AnalystUser, analystPassword),
		nativeClient(t, "default/native", srv.Addr(), "default", ""),
		httpClient("default/http", srv.HTTPAddr(), "", ""),
		httpClient("default/http-basic", srv.HTTPAddr(), "default", ""),
	}
	// The analyst can read its own database: the refusals below are not
	// a broken connection.
	if out, err := clients[0].query("SELECT count() FROM consentry.sessions"); err != nil {
		t.Fatalf("the analyst cannot read the analysts' database: %v %s", err, out)
	}
	if out, err := clients[1].query("SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("the analyst cannot query over HTTP: %v %s", err, out)
	}

	dataPath := filepath.Join(srv.DataDir(), "data")
	routes := []struct{ name, query string }{
		{"direct", "SELECT salt FROM consentry_private.session_salts"},
		{"final", "SELECT salt FROM consentry_private.session_salts FINAL"},
		{"in a subquery", "SELECT count() FROM consentry.sessions WHERE session_id IN (SELECT salt FROM consentry_private.session_salts)"},
		{"join", "SELECT s.salt FROM consentry.sessions AS e ALL LEFT JOIN consentry_private.session_salts AS s ON 1 = 1"},
		{"remote, loopback", "SELECT salt FROM remote('127.0.0.1:" + tcpPort + "', consentry_private.session_salts)"},
		{"remote, localhost", "SELECT salt FROM remote('localhost:" + tcpPort + "', consentry_private.session_salts)"},
		{"remote as default", "SELECT salt FROM remote('127.0.0.1:" + tcpPort + "', consentry_private.session_salts, 'default', '')"},
		{"remote as analyst", "SELECT salt FROM remote('localhost:" + tcpPort + "', consentry_private.session_salts, 'analyst', '" + analystPassword + "')"},
		{"remote as collector guessing", "SELECT salt FROM remote('localhost:" + tcpPort + "', consentry_private.session_salts, 'collector', '')"},
		{"remoteSecure", "SELECT salt FROM remoteSecure('localhost:" + tcpPort + "', consentry_private.session_salts)"},
		{"cluster", "SELECT salt FROM cluster('test_shard_localhost', consentry_private.session_salts)"},
		{"merge", "SELECT * FROM merge('consentry_private', '.*')"},
		{"file, relative", "SELECT * FROM file('../data/data/consentry_private/session_salts/*/salt.bin', 'RowBinary', 's String')"},
		{"file, absolute", "SELECT * FROM file('" + dataPath + "/data/consentry_private/session_salts/*/salt.bin', 'RowBinary', 's String')"},
		{"url to the HTTP port", "SELECT * FROM url('http://127.0.0.1:" + httpPort + "/?query=SELECT%20salt%20FROM%20consentry_private.session_salts', 'TSV', 's String')"},
		{"url as default", "SELECT * FROM url('http://127.0.0.1:" + httpPort + "/?user=default&query=SELECT%20salt%20FROM%20consentry_private.session_salts', 'TSV', 's String')"},
		{"dictGet", "SELECT dictGetString('session_salts', 'salt', toUInt64(1))"},
		{"dictionary()", "SELECT * FROM dictionary('session_salts')"},
		{"create table as", "CREATE TABLE consentry.leak ENGINE = Memory AS SELECT salt FROM consentry_private.session_salts"},
		{"create view", "CREATE VIEW consentry.leak AS SELECT salt FROM consentry_private.session_salts"},
		{"create dictionary", "CREATE DICTIONARY consentry.leak (day Date, salt String) PRIMARY KEY day SOURCE(CLICKHOUSE(DB 'consentry_private' TABLE 'session_salts')) LAYOUT(FLAT()) LIFETIME(0)"},
		{"attach", "ATTACH TABLE consentry.leak (day Date, salt String, created_at DateTime) ENGINE = MergeTree PARTITION BY day ORDER BY day"},
		{"insert select", "INSERT INTO consentry.crash_group_status (app_id, fingerprint, state, changed_by) SELECT 'x', salt, 'open', 'x' FROM consentry_private.session_salts"},
		{"rename", "RENAME TABLE consentry_private.session_salts TO consentry.session_salts"},
		{"set readonly", "SET readonly = 0"},
		{"settings readonly", "SELECT salt FROM consentry_private.session_salts SETTINGS readonly = 0"},
		{"describe", "DESCRIBE TABLE consentry_private.session_salts"},
		{"show create", "SHOW CREATE TABLE consentry_private.session_salts"},
		{"reload config", "SYSTEM RELOAD CONFIG"},
	}
	for _, c := range clients {
		for _, r := range routes {
			t.Run(c.name+"/"+r.name, func(t *testing.T) {
				out, err := c.query(r.query)
				if err == nil {
					t.Errorf("allowed: %s\nreturned %q", r.query, out)
				}
				if leaks(out) || (err != nil && leaks(err.Error())) {
					t.Errorf("a salt leaked through %s", r.query)
				}
			})
		}
	}

	// The analyst cannot kill the collector's queries.
	slow := make(chan error, 1)
	go func() {
		_, err := nativeText(h.ch, "SELECT sleep(2)")
		slow <- err
	}()
	time.Sleep(300 * time.Millisecond)
	for _, c := range clients[:2] {
		if out, err := c.query("KILL QUERY WHERE user = '" + CollectorUser + "' SYNC"); err == nil {
			t.Errorf("%s: KILL QUERY of the collector's query allowed: %q", c.name, out)
		}
	}
	if err := <-slow; err != nil {
		t.Errorf("the collector's query: %v", err)
	}

	// No readable system table shows a salt, or lists the private
	// database, while the collector reads and proposes salts.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	busy.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := h.app.Client().DailySalt(ctx, time.Now(), make([]byte, clickhouse.SaltSize)); err != nil {
				t.Errorf("DailySalt: %v", err)
				return
			}
		}
	})
	analyst := clients[1]
	tablesText, err := analyst.query("SELECT name FROM system.tables WHERE database = 'system' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	infinite := map[string]bool{"numbers": true, "numbers_mt": true, "zeros": true, "zeros_mt": true, "stack_trace": true}
	read := 0
	for round := range 3 {
		for _, table := range strings.Fields(tablesText) {
			if infinite[table] {
				continue
			}
			out, err := analyst.query("SELECT * FROM system." + table + " LIMIT 100000 FORMAT TSV")
			if err != nil {
				continue // refused: nothing to leak
			}
			read++
			if leaks(out) {
				t.Errorf("system.%s shows a salt to the analyst", table)
			}
			if round == 0 && table != "processes" && strings.Contains(out, "consentry_private") {
				t.Errorf("system.%s lists the private database to the analyst", table)
			}
		}
	}
	close(stop)
	busy.Wait()
	if read < 10 {
		t.Errorf("the analyst could read only %d system tables; the check is void", read)
	}

	// Logs: the server's (warning level, so query text only of failed
	// queries, such as the refused routes above) and the collector's.
	logs, err := filepath.Glob(filepath.Join(srv.DataDir(), "log", "*"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no server logs: %v", err)
	}
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if leaks(string(b)) {
			t.Errorf("%s holds a salt", f)
		}
	}
	for _, e := range h.logs.All() {
		if leaks(fmt.Sprint(e.Message, e.ContextMap())) {
			t.Errorf("the collector logged a salt: %s", e.Message)
		}
	}

	// The files that hold secrets are the collector's own.
	collectorPassword, err := LoadPassword(filepath.Join(dataDir, CollectorPasswordFileName), "collector password")
	if err != nil {
		t.Fatal(err)
	}
	chtest.CheckModes(t, map[string]os.FileMode{
		dataDir:                              0o700,
		filepath.Join(dataDir, "clickhouse"): 0o700,
		filepath.Join(dataDir, CollectorPasswordFileName):     0o600,
		filepath.Join(dataDir, "clickhouse-analyst-password"): 0o600,
		filepath.Join(dataDir, "clickhouse", "users.xml"):     0o600,
		filepath.Join(dataDir, "consent-signing-key.pem"):     0o600,
		filepath.Join(dataDir, "consent-secret"):              0o600,
	})
	for _, e := range h.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), collectorPassword) {
			t.Errorf("the collector logged its ClickHouse password: %s", e.Message)
		}
	}
}
