package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/consentry/consentry/internal/chtest"
)

// TestRefusesPasswordlessReaders: against a ClickHouse of its own (not
// the managed one, which has no such user), the collector refuses to
// start while a user logs in without a password and can read the private
// database (the daily salts: invariant 7), and names the user; a
// password-less user kept out of that database does not stop it.
func TestRefusesPasswordlessReaders(t *testing.T) {
	srv := chtest.Start(t)
	db := fmt.Sprintf("consentry_test_%d", dbSeq.Add(1))
	shared := t.TempDir() // one consent secret and signing key for the replicas
	start := func() (*harness, error) {
		return tryHarness(t, srv, func(c *Config) {
			c.ClickHouse.Database = db
			c.ConsentSecretFile = filepath.Join(shared, "consent-secret")
			c.ConsentSigningKeyFile = filepath.Join(shared, "consent-signing-key.pem")
		})
	}
	if _, err := start(); err != nil {
		t.Fatalf("a server without a password-less user: %v", err)
	}
	dir := filepath.Join(srv.DataDir(), "users.d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A fresh server's default user: no password, every database unless
	// allow_databases says otherwise.
	defaultUser := func(databases ...string) {
		t.Helper()
		var allow string
		if len(databases) > 0 {
			allow = "<allow_databases><database>" + strings.Join(databases, "</database><database>") + "</database></allow_databases>"
		}
		xml := `<?xml version="1.0"?><yandex><users><default><password></password>` +
			`<networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota>` + allow +
			`</default></users></yandex>`
		if err := os.WriteFile(filepath.Join(dir, "default.xml"), []byte(xml), 0o600); err != nil {
			t.Fatal(err)
		}
		// The server reloads its users within seconds: wait until the
		// user reads what it may and not what it may not.
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr()}, Auth: clickhouse.Auth{Username: "default"}})
			if err == nil {
				var dbs uint64
				err = conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = '"+db+"_private'").Scan(&dbs)
				conn.Close()
				if err == nil && (dbs == 1) == (len(databases) == 0) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not take the default user: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	defaultUser(db) // password-less, but only the analysts' database
	if _, err := start(); err != nil {
		t.Fatalf("a password-less user kept out of the private database: %v", err)
	}
	defaultUser() // password-less, every database
	_, err := start()
	if err == nil {
		t.Fatal("the collector started while a user without a password can read the private database")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{"default@" + srv.Addr(), "without a password", db + "_private", "REVOKE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
}
