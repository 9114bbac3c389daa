package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/chserver"
)

func noEnv(string) (string, bool) { return "", false }

// migratedClient opens a Client on database of srv, as srv's user, with
// the schema in place; it is closed when the test ends.
func migratedClient(t *testing.T, srv *chserver.Server, database string) *clickhouse.Client {
	t.Helper()
	ctx := context.Background()
	cl, err := clickhouse.Open(ctx, clickhouse.Config{Addr: srv.Addr(), Database: database, Username: srv.User(), Password: srv.Password()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if _, err := cl.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

// runAgainst returns a function that runs consentry with args against
// database on srv, as srv's user with its password in a file, and returns
// what it printed.
func runAgainst(t *testing.T, srv *chserver.Server, database string) func(args ...string) (string, error) {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(srv.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--clickhouse-addr", srv.Addr(), "--clickhouse-database", database,
			"--clickhouse-user", srv.User(), "--clickhouse-password-file", pwFile), &out, &out, noEnv)
		return out.String(), err
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out, noEnv); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"migrate", "token", "demo"} {
		if !strings.Contains(out.String(), c) {
			t.Errorf("help lacks %q", c)
		}
	}
	for _, c := range []string{"migrate", "token", "demo"} {
		var buf bytes.Buffer
		err := run(context.Background(), []string{c, "--help"}, &buf, &buf, noEnv)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(buf.String(), "CONSENTRY_") {
			t.Errorf("%s --help: %v\n%s", c, err, buf.String())
		}
	}
	// Commands with subcommands print their usage without one, or asked.
	for _, args := range [][]string{{"apps"}, {"apps", "--help"}, {"mappings", "help"}} {
		var buf bytes.Buffer
		err := run(context.Background(), args, &buf, &buf, noEnv)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(buf.String(), "Usage: consentry "+args[0]) {
			t.Errorf("%q: %v\n%s", args, err, buf.String())
		}
	}
	if err := run(context.Background(), []string{"nope"}, &out, &out, noEnv); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	priv, err := consent.LoadOrCreatePrivateKeyFile(filepath.Join(dir, "consent-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--data-dir", dir, "--app-id", "com.example.x", "--scopes", "analytics"}, &out, &out, noEnv); err != nil {
		t.Fatal(err)
	}
	ring, _ := consent.NewKeyRing(consent.KeyRingConfig{SigningKey: priv})
	c, err := ring.Verify(strings.TrimSpace(out.String()), time.Now())
	if err != nil || c.AppID != "com.example.x" || len(c.Scopes) != 1 {
		t.Fatalf("token: %+v %v", c, err)
	}
}
