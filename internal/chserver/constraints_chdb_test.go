package chserver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chdb"
	"github.com/consentry/consentry/internal/chdb/chdbtest"
)

// TestModernUsersOnChDB loads the users.xml modern servers get into
// ClickHouse 26.x (chDB, in process) and runs the analyst's routes under
// it: the profile with its limits and constraints, the quota and the
// database restriction parse there, the limits and restrictions hold, and
// the constraints' bounds admit what BI tools send and refuse lifting a
// limit (chDB's clickhouse-local does not enforce quotas, so the quota is
// tested on 18.16 only).
//
// chDB runs every query as the user "default", so the analyst is rendered
// under that name (with an empty password, from anywhere). chDB 26.7's
// clickhouse-local does not read access_control_improvements from
// config.xml, so settings_constraints_replace_previous is off there, and
// with it off ClickHouse refuses to load changeable_in_readonly: the
// markers are taken out, which leaves the analyst on readonly=1 with the
// constraints' bounds. What changeable_in_readonly and
// select_from_system_db_requires_grant do on a server is from the
// ClickHouse documentation, not from this test.
func TestModernUsersOnChDB(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := context.Background()

	// The tables, as the collector (chDB's unrestricted default user).
	db := chdbtest.Open(t, chdb.Config{Path: data})
	for _, q := range []string{
		"CREATE DATABASE consentry",
		"CREATE TABLE consentry.t (n UInt64) ENGINE = MergeTree ORDER BY n",
		"INSERT INTO consentry.t SELECT number FROM numbers(100000)",
		"CREATE DATABASE consentry_private",
		"CREATE TABLE consentry_private.session_salts (salt String) ENGINE = MergeTree ORDER BY salt",
		"INSERT INTO consentry_private.session_salts VALUES ('s3cr3t')",
	} {
		if err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// users.xml as a modern server gets it, the analyst named default.
	p := configParams{
		User: "collector", PasswordHash: sha256Hex("pw"), Loopback: loopback,
		ReadOnlyUser: "default", ReadOnlyPasswordHash: sha256Hex(""),
		ReadOnlyDatabases: []string{"consentry"}, ReadOnlyNetworks: []string{"::/0"},
		Limits: Limits{MaxExecutionTime: 2 * time.Second, MaxRowsToRead: 150_000, MaxResultRows: 1000, QueriesPerHour: 40},
		Modern: true,
	}
	p.Limits.setDefaults()
	var users bytes.Buffer
	if err := templates.ExecuteTemplate(&users, "users.xml", p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(users.String(), "<changeable_in_readonly/>") || !strings.Contains(users.String(), "<constraints>") {
		t.Fatal("the modern users.xml has no constraints")
	}
	xml := strings.ReplaceAll(users.String(), "<changeable_in_readonly/>", "")
	usersFile := filepath.Join(dir, "users.xml")
	configFile := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(usersFile, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configFile, []byte("<clickhouse><users_config>"+usersFile+"</users_config></clickhouse>"), 0o600); err != nil {
		t.Fatal(err)
	}
	db = chdbtest.Open(t, chdb.Config{Path: data, ConfigFile: configFile}) // fails t if chDB does not take the modern users.xml
	query := func(q string) (string, error) { return db.Query(ctx, q, "TSV") }

	if out, err := query("SELECT getSetting('readonly'), getSetting('max_execution_time'), getSetting('max_result_rows'), getSetting('result_overflow_mode')"); err != nil ||
		out != "1\t2\t1000\tthrow\n" {
		t.Fatalf("the analyst's settings: %q, %v", out, err)
	}
	if out, err := query("SELECT count() FROM consentry.t"); err != nil || out != "100000\n" {
		t.Errorf("a query within the limits: %q, %v", out, err)
	}
	code := regexp.MustCompile(`Code: (\d+)`)
	for _, tc := range []struct{ name, query, code string }{
		{"time", "SELECT sleep(3)", "159"},
		{"rows read", "SELECT count() FROM (SELECT n FROM consentry.t UNION ALL SELECT n FROM consentry.t)", "158"},
		{"result rows", "SELECT n FROM consentry.t LIMIT 5000", "396"},
		{"private database", "SELECT * FROM consentry_private.session_salts", "497"},
		{"SET max_execution_time = 0", "SET max_execution_time = 0", "164"},
		{"SETTINGS readonly = 0", "SELECT 1 SETTINGS readonly = 0", "164"},
		{"SETTINGS max_result_rows = 0", "SELECT 1 SETTINGS max_result_rows = 0", "164"},
		// 26.x checks the source grants (READ ON URL, ...) first.
		{"url()", "SELECT * FROM url('http://127.0.0.1:1/', TSV, 'x String')", "164|497"},
		{"remote()", "SELECT * FROM remote('127.0.0.1:1', consentry_private.session_salts, 'collector', 'pw')", "164|497"},
		{"file()", "SELECT * FROM file('/etc/passwd', TSV, 'x String')", "164|497"},
		{"CREATE TABLE", "CREATE TABLE consentry.x (n UInt8) ENGINE = Memory", "164"},
	} {
		out, err := query(tc.query)
		m := code.FindStringSubmatch(errString(err))
		if err == nil || m == nil || !slices.Contains(strings.Split(tc.code, "|"), m[1]) {
			t.Errorf("%s: %q, %v; want code %s", tc.name, out, err, tc.code)
		}
		if strings.Contains(out+errString(err), "s3cr3t") {
			t.Errorf("%s: the salt came out", tc.name)
		}
	}

	// The constraints' bounds, with the profile at readonly=2 so chDB
	// lets settings change at all (a server lets changeable_in_readonly
	// ones change at readonly=1): within the limits a BI tool's settings
	// are taken, 0 ("unlimited") and more than the limit are not.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	xml = strings.Replace(xml, "<readonly>1</readonly>", "<readonly>2</readonly>", 1)
	if err := os.WriteFile(usersFile, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	db = chdbtest.Open(t, chdb.Config{Path: data, ConfigFile: configFile})
	for _, tc := range []struct {
		setting string
		ok      bool
	}{
		{"max_execution_time = 1", true},
		{"max_execution_time = 2", true},
		{"max_execution_time = 0", false},
		{"max_execution_time = 3", false},
		{"max_result_rows = 1000", true},
		{"max_result_rows = 0", false},
		{"max_result_rows = 1001", false},
		{"max_result_bytes = 0", false},
		{"result_overflow_mode = 'break'", true},
		{"output_format_json_quote_64bit_integers = 0", true},
		{"session_timezone = 'Europe/Vienna'", true},
	} {
		_, err := db.Query(ctx, "SELECT 1 SETTINGS "+tc.setting, "TSV")
		if tc.ok && err != nil || !tc.ok && (err == nil || !strings.Contains(err.Error(), "Code: 452")) {
			t.Errorf("SETTINGS %s: %v; want ok %v (or code 452 SETTING_CONSTRAINT_VIOLATION)", tc.setting, err, tc.ok)
		}
	}

}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
