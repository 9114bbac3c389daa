package chserver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

const (
	analyst   = "analyst"
	analystPW = "analyst-pw"
)

// analystServer starts a server whose read-only user is analyst with
// limits, holding consentry.t (100,000 rows) and a private table.
func analystServer(t *testing.T, limits chserver.Limits) *chserver.Server {
	t.Helper()
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), ReadOnlyUser: analyst, ReadOnlyPassword: analystPW,
		ReadOnlyDatabases: []string{"consentry"}, ReadOnlyLimits: limits})
	admin := open(t, srv, srv.User(), srv.Password())
	for _, q := range []string{
		"CREATE DATABASE consentry",
		"CREATE TABLE consentry.t (n UInt64) ENGINE = MergeTree ORDER BY n",
		"INSERT INTO consentry.t SELECT number FROM system.numbers LIMIT 100000",
		"CREATE DATABASE consentry_private",
		"CREATE TABLE consentry_private.s (x String) ENGINE = MergeTree ORDER BY x",
	} {
		if err := admin.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return srv
}

// asAnalyst runs query over HTTP as the analyst, as a BI tool or curl
// does: POST, basic authorization, settings (if any) in the URL. It
// returns the status and body.
func asAnalyst(t *testing.T, srv *chserver.Server, query string, params url.Values) (int, string) {
	t.Helper()
	u := "http://" + srv.HTTPAddr() + "/?" + params.Encode()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(query))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(analyst, analystPW)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

var codeRE = regexp.MustCompile(`Code: (\d+)`)

// wantCode fails unless the request failed with ClickHouse error code
// code.
func wantCode(t *testing.T, what string, status int, body string, code int) {
	t.Helper()
	m := codeRE.FindStringSubmatch(body)
	if status == http.StatusOK || m == nil || m[1] != fmt.Sprint(code) {
		if len(body) > 300 {
			body = body[:300]
		}
		t.Errorf("%s: %d %q, want error code %d", what, status, body, code)
	}
}

// TestAnalystLimits (issue 13, item 6): every per-query limit of the
// analyst's profile stops a query that exceeds it, with its error code,
// while queries within the limits run.
func TestAnalystLimits(t *testing.T) {
	srv := analystServer(t, chserver.Limits{MaxExecutionTime: time.Second, MaxMemoryUsage: 100_000_000,
		MaxRowsToRead: 150_000, MaxResultRows: 1000})
	for _, tc := range []struct {
		name, query string
		code        int
	}{
		{"time", "SELECT sleep(3)", 159},
		{"memory", "SELECT length(range(50000000))", 241},
		{"rows read", "SELECT count() FROM (SELECT n FROM consentry.t UNION ALL SELECT n FROM consentry.t)", 158},
		{"result rows", "SELECT n FROM consentry.t LIMIT 5000", 396},
	} {
		st, body := asAnalyst(t, srv, tc.query, nil)
		wantCode(t, tc.name, st, body, tc.code)
	}
	if st, body := asAnalyst(t, srv, "SELECT count() FROM consentry.t", nil); st != http.StatusOK || body != "100000" {
		t.Errorf("a query within the limits: %d %q", st, body)
	}
	if st, body := asAnalyst(t, srv, "SELECT n FROM consentry.t LIMIT 1000", nil); st != http.StatusOK || strings.Count(body, "\n") != 999 {
		t.Errorf("a result of exactly the limit: %d", st)
	}
}

// TestAnalystQuota: the hourly quota refuses the query after the
// QueriesPerHour-th.
func TestAnalystQuota(t *testing.T) {
	const perHour = 5
	srv := analystServer(t, chserver.Limits{QueriesPerHour: perHour})
	for i := 1; i <= perHour; i++ {
		if st, body := asAnalyst(t, srv, "SELECT 1", nil); st != http.StatusOK {
			t.Fatalf("query %d of %d in the hour: %d %q", i, perHour, st, body)
		}
	}
	st, body := asAnalyst(t, srv, "SELECT 1", nil)
	wantCode(t, fmt.Sprintf("query %d in the hour", perHour+1), st, body, 201)
	// The collector's user has no such quota.
	if err := open(t, srv, srv.User(), srv.Password()).Exec(context.Background(), "SELECT 1"); err != nil {
		t.Errorf("the collector after the analyst's quota ran out: %v", err)
	}
}

// TestAnalystCannotLiftLimits: no route lifts or changes a limit: SET,
// a SETTINGS clause, settings in the HTTP URL or in the native protocol,
// readonly itself, or a table function calling the server back as the
// collector (even with its password); and the limit still holds after.
func TestAnalystCannotLiftLimits(t *testing.T) {
	srv := analystServer(t, chserver.Limits{MaxExecutionTime: time.Second, MaxRowsToRead: 1_000_000_000_000})
	if srv.SettingsConstraints() {
		t.Skip("a server with settings constraints; this test is for 18.16's readonly=1")
	}
	const endless = "SELECT count() FROM system.numbers"
	for _, tc := range []struct {
		name, query string
		params      url.Values
		code        int
	}{
		{"SETTINGS clause", endless + " SETTINGS max_execution_time = 0", nil, 164},
		{"SETTINGS clause, readonly", endless + " SETTINGS readonly = 0", nil, 164},
		{"URL max_execution_time=0", endless, url.Values{"max_execution_time": {"0"}}, 164},
		{"URL max_execution_time=5", "SELECT 1", url.Values{"max_execution_time": {"5"}}, 164},
		{"URL timeout_overflow_mode=break", endless, url.Values{"timeout_overflow_mode": {"break"}}, 164},
		{"URL readonly=0", endless, url.Values{"readonly": {"0"}}, 164},
		{"URL readonly=2", endless, url.Values{"readonly": {"2"}}, 164},
		{"URL max_memory_usage=0", "SELECT 1", url.Values{"max_memory_usage": {"0"}}, 164},
		{"URL max_result_rows=0", "SELECT 1", url.Values{"max_result_rows": {"0"}}, 164},
		{"URL max_rows_to_read=0", "SELECT 1", url.Values{"max_rows_to_read": {"0"}}, 164},
		{"URL quota_key", "SELECT 1", url.Values{"quota_key": {"other"}}, 200},
		{"url() as the collector", fmt.Sprintf("SELECT * FROM url('http://%s/?user=%s&password=%s&query=SELECT+1', TSV, 'x String')",
			srv.HTTPAddr(), srv.User(), url.QueryEscape(srv.Password())), nil, 164},
		{"remote() as the collector", fmt.Sprintf("SELECT * FROM remote('%s', system.one, '%s', '%s')",
			srv.Addr(), srv.User(), srv.Password()), nil, 164},
	} {
		st, body := asAnalyst(t, srv, tc.query, tc.params)
		wantCode(t, tc.name, st, body, tc.code)
		if strings.Contains(body, srv.Password()) {
			t.Errorf("%s: the answer quotes the collector's password", tc.name)
		}
	}

	// The native protocol: SET on a session, and settings with a query
	// (which clickhouse-go does not even send to a server as old as
	// 18.16; either way the limit holds).
	conn := analystConn(t, srv)
	ctx := context.Background()
	if err := conn.Exec(ctx, "SET max_execution_time = 0"); !isCode(err, 164) {
		t.Errorf("SET max_execution_time = 0: %v", err)
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": 0}))
	if err := conn.Exec(qctx, endless); !isCode(err, 164) && !isCode(err, 159) {
		t.Errorf("native protocol setting max_execution_time = 0: %v, want it refused or the limit to hold", err)
	}

	// Still limited.
	st, body := asAnalyst(t, srv, endless, nil)
	wantCode(t, "after the attempts", st, body, 159)
	if err := conn.Exec(ctx, endless); !isCode(err, 159) {
		t.Errorf("after the attempts, native protocol: %v", err)
	}
}

// analystConn opens a native connection as the analyst to consentry.
func analystConn(t *testing.T, srv *chserver.Server) clickhouseConn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr()},
		Auth:        clickhouse.Auth{Database: "consentry", Username: analyst, Password: analystPW},
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clickhouseConn is the part of a native connection the tests use.
type clickhouseConn interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// isCode reports whether err is a ClickHouse exception with code.
func isCode(err error, code int32) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == code
}

// TestBIToolRequests: the requests BI tools make, as the analyst. Grafana's
// ClickHouse data source (clickhouse-go v2, configured exactly as the
// plugin configures it) works over the native port, with or without a
// query timeout: clickhouse-go sends no settings to a server as old as
// 18.16, and a newer one lets the analyst set max_execution_time within
// the limit. Over HTTP the plugin, and Metabase's driver, need a server
// newer than 18.16 (see docs/analysts.md). Plain HTTP clients (curl,
// HTTP/CSV data sources) work.
func TestBIToolRequests(t *testing.T) {
	srv := analystServer(t, chserver.Limits{})

	// Grafana's data source: the plugin's clickhouse.Options for the
	// native protocol (pkg/plugin/driver.go), its Ping under the dial
	// timeout, and a query under sqlds' query timeout.
	grafana := func(dialTimeout, queryTimeout time.Duration) error {
		db := clickhouse.OpenDB(&clickhouse.Options{
			Addr:        []string{srv.Addr()},
			Auth:        clickhouse.Auth{Database: "consentry", Username: analyst, Password: analystPW},
			ClientInfo:  clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{"grafana", "12.0.0"}, {"clickhouse-datasource", "4.0.0"}}},
			Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
			DialTimeout: dialTimeout,
			Protocol:    clickhouse.Native,
			ReadTimeout: queryTimeout,
			Settings:    clickhouse.Settings{},
		})
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		err := db.PingContext(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		qctx := context.Background()
		if queryTimeout > 0 {
			var cancel context.CancelFunc
			qctx, cancel = context.WithTimeout(qctx, queryTimeout)
			defer cancel()
		}
		var n uint64
		if err := db.QueryRowContext(qctx, "SELECT count() FROM consentry.t").Scan(&n); err != nil {
			return fmt.Errorf("query: %w", err)
		}
		if n != 100000 {
			return fmt.Errorf("query: %d rows, want 100000", n)
		}
		return nil
	}
	if err := grafana(time.Second, 0); err != nil {
		t.Errorf("Grafana, native port, dial timeout 1 s, no query timeout: %v", err)
	}
	if err := grafana(10*time.Second, time.Minute); err != nil {
		t.Errorf("Grafana, native port, its default timeouts (dial 10 s, query 60 s): %v", err)
	}

	if !srv.SettingsConstraints() {
		// What docs/analysts.md says 18.16 cannot serve: Grafana over HTTP
		// (clickhouse-go sends client_protocol_version, a setting to
		// 18.16, and calls displayName(), which 18.16 lacks), and
		// Metabase's JDBC driver (it reads RowBinaryWithNamesAndTypes).
		db := clickhouse.OpenDB(&clickhouse.Options{Addr: []string{srv.HTTPAddr()}, Protocol: clickhouse.HTTP,
			Auth:        clickhouse.Auth{Database: "consentry", Username: analyst, Password: analystPW},
			Compression: &clickhouse.Compression{Method: clickhouse.CompressionGZIP}, DialTimeout: time.Second})
		err := db.Ping()
		db.Close()
		if err == nil || !strings.Contains(err.Error(), "client_protocol_version") {
			t.Errorf("Grafana over HTTP on 18.16: %v, want the client_protocol_version refusal docs/analysts.md describes", err)
		}
		st, body := asAnalyst(t, srv, "SELECT 1 FORMAT RowBinaryWithNamesAndTypes", nil)
		wantCode(t, "Metabase's result format on 18.16", st, body, 73)
	}

	// curl: POST the query, basic authorization or the X-ClickHouse
	// headers, the database in the URL.
	if st, body := asAnalyst(t, srv, "SELECT count() FROM t", url.Values{"database": {"consentry"}}); st != http.StatusOK || body != "100000" {
		t.Errorf("curl with basic authorization: %d %q", st, body)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.HTTPAddr()+"/?database=consentry&default_format=CSVWithNames",
		strings.NewReader("SELECT count() AS n FROM t"))
	req.Header.Set("X-ClickHouse-User", analyst)
	req.Header.Set("X-ClickHouse-Key", analystPW)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "\"n\"\n100000\n" {
		t.Errorf("curl with X-ClickHouse headers: %d %q", resp.StatusCode, body)
	}

	// database/sql over the native protocol with no deadline at all, as a
	// generic SQL client does.
	db := sql.OpenDB(clickhouse.Connector(&clickhouse.Options{Addr: []string{srv.Addr()},
		Auth: clickhouse.Auth{Database: "consentry", Username: analyst, Password: analystPW}}))
	defer db.Close()
	var n uint64
	if err := db.QueryRow("SELECT count() FROM t").Scan(&n); err != nil || n != 100000 {
		t.Errorf("database/sql: %d, %v", n, err)
	}
}

// TestConstraintsFallBack: a server that does not take the settings
// constraints (18.16 here, forced to try them) still starts, with the
// analyst on readonly=1 without them.
func TestConstraintsFallBack(t *testing.T) {
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), ReadOnlyUser: analyst, ReadOnlyPassword: analystPW,
		Constraints: chserver.ConstraintsOn})
	v, err := srv.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "18.") {
		t.Skipf("server %s takes the constraints", v)
	}
	if srv.SettingsConstraints() {
		t.Error("SettingsConstraints on 18.16")
	}
	if st, body := asAnalyst(t, srv, "SELECT 1", nil); st != http.StatusOK || body != "1" {
		t.Errorf("analyst after the fallback: %d %q", st, body)
	}
}
