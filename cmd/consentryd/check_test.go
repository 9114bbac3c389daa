package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/consentry/consentry/consent"
)

func TestCheckConfig(t *testing.T) {
	// A port held here: a check that bound the collector's listeners
	// would fail on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	write := func(t *testing.T, dir, name, content string, mode os.FileMode) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	secret := strings.Repeat("s", 40)
	tests := []struct {
		name string
		// setup returns the arguments and variables, given a fresh
		// data dir that does not exist yet and a folder for files.
		setup func(t *testing.T, dataDir, files string) ([]string, map[string]string)
		want  string // "" for OK, else a part of the problem's line
	}{
		{"external ClickHouse, nothing on disk yet", func(t *testing.T, dataDir, _ string) ([]string, map[string]string) {
			return []string{"--grpc-addr", ln.Addr().String(), "--clickhouse-addr", "ch:9000"}, map[string]string{"CONSENTRY_DATA_DIR": dataDir}
		}, ""},
		{"secrets given as files, readable by the owner and group only", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir,
				"--consent-secret-file", write(t, files, "secret", secret+"\n", 0o440),
				"--clickhouse-password-file", write(t, files, "pw", "x\n", 0o400)}, nil
		}, ""},
		{"a misspelt variable", func(t *testing.T, dataDir, _ string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000"}, map[string]string{"CONSENTRY_DATA_DIR": dataDir, "CONSENTRY_SPOOL_MAX_BYTE": "1000"}
		}, "CONSENTRY_SPOOL_MAX_BYTE names no flag"},
		{"a bad value", func(t *testing.T, dataDir, _ string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--max-batch-events", "-1"}, nil
		}, "collector config"},
		{"a consent secret every user may read", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-secret-file", write(t, files, "secret", secret, 0o644)}, nil
		}, "readable by every user"},
		{"a short consent secret in the environment", func(t *testing.T, dataDir, _ string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir}, map[string]string{"CONSENTRY_CONSENT_SECRET": "short"}
		}, "consent secret (environment): 5 bytes"},
		{"a signing key that is no key", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-signing-key-file", write(t, files, "key.pem", "not a key", 0o600)}, nil
		}, "consent signing key"},
		{"alert rules that are missing", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--alert-rules", filepath.Join(files, "rules.json")}, nil
		}, "alert rules"},
		{"a verify key that is missing", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-verify-key-files", filepath.Join(files, "old.pem")}, nil
		}, "consent verify key"},
		{"a ClickHouse password file every user may read", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--clickhouse-password-file", write(t, files, "pw", "x\n", 0o644)}, nil
		}, "ClickHouse password"},
		{"an unreadable ClickHouse password file", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--clickhouse-password-file", filepath.Join(files, "pw")}, nil
		}, "pw"},
		{"adopting the consent secret it has", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-secret-file", write(t, files, "secret", secret+"\n", 0o600),
				"--consent-secret-adopt", strings.ToUpper(consent.SecretFingerprint([]byte(secret))[:16])}, nil
		}, ""},
		{"adopting another consent secret", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-secret-file", write(t, files, "secret", secret+"\n", 0o600),
				"--consent-secret-adopt", "0123456789abcdef"}, nil
		}, "the consent secret has the fingerprint " + consent.SecretFingerprint([]byte(secret))[:16]},
		{"adopting something that is no fingerprint", func(t *testing.T, dataDir, _ string) ([]string, map[string]string) {
			return []string{"--clickhouse-addr", "ch:9000", "--data-dir", dataDir, "--consent-secret-adopt", "yes"}, nil
		}, "16 hex digits"},
		{"an empty password of the managed ClickHouse", func(t *testing.T, dataDir, files string) ([]string, map[string]string) {
			return []string{"--data-dir", dataDir, "--collector-password-file", write(t, files, "collector", "\n", 0o600)}, nil
		}, "collector password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args, vars := tt.setup(t, dataDir, t.TempDir())
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"--check-config"}, args...), &out, environ(vars), nil)
			switch {
			case tt.want == "" && (err != nil || !strings.Contains(out.String(), "configuration OK")):
				t.Fatalf("err = %v, output:\n%s", err, &out)
			case tt.want != "" && err == nil:
				t.Fatalf("no error; output:\n%s", &out)
			case tt.want != "" && !strings.Contains(out.String(), tt.want):
				t.Fatalf("output lacks %q:\n%s", tt.want, &out)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("the check created %s (stat: %v)", dataDir, err)
			}
		})
	}
}

// TestToolVariablesListed checks that every CONSENTRY_* variable the
// repository's scripts, Makefile and Go code read is a flag's, a
// secret's, or one of toolVariable's: else consentryd, started by those
// scripts or tests, would warn about it.
func TestToolVariablesListed(t *testing.T) {
	o := mustParseFlags(t, nil, nil)
	named := regexp.MustCompile(`CONSENTRY_[A-Z0-9_]*[A-Z0-9]`)
	read := regexp.MustCompile(`(?:Getenv|LookupEnv|Env\s*=)\(?\s*"(CONSENTRY_[A-Z0-9_]+)"`)
	found := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".cache" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		var names []string
		switch {
		case d.IsDir():
			return nil
		case strings.HasSuffix(path, ".sh") || d.Name() == "Makefile":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			names = named.FindAllString(string(b), -1)
		case strings.HasSuffix(path, ".go"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range read.FindAllStringSubmatch(string(b), -1) {
				names = append(names, m[1])
			}
		}
		for _, n := range names {
			found++
			if !o.variables[n] && !toolVariable(n) {
				t.Errorf("%s reads %s, which is neither a flag's variable nor in toolVariable", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Fatalf("found %d variables: the patterns no longer match", found)
	}
}

func TestUnknownVariables(t *testing.T) {
	o := mustParseFlags(t, nil, nil)
	got := o.unknownVariables([]string{"CONSENTRY_GRPC_ADDR=:1", "CONSENTRY_CONSENT_SECRET=x", "CONSENTRY_CLICKHOUSE_PASSWORD=y",
		"CONSENTRY_GRPC_ADR=:1", "HOME=/root", "CONSENTRY_GRPC_ADR=:2", "CONSENTRYX=1",
		// What Kubernetes sets for a Service named consentry-admin.
		"CONSENTRY_ADMIN_SERVICE_HOST=10.0.0.1", "CONSENTRY_ADMIN_SERVICE_PORT=4792", "CONSENTRY_ADMIN_SERVICE_PORT_ADMIN=4792",
		"CONSENTRY_ADMIN_PORT=tcp://10.0.0.1:4792", "CONSENTRY_ADMIN_PORT_4792_TCP=tcp://10.0.0.1:4792",
		"CONSENTRY_ADMIN_PORT_4792_TCP_PROTO=tcp", "CONSENTRY_ADMIN_PORT_4792_TCP_PORT=4792", "CONSENTRY_ADMIN_PORT_4792_TCP_ADDR=10.0.0.1",
		// Variables of the repository's scripts and tests.
		"CONSENTRY_CHDB_LIB=/x/libchdb.so", "CONSENTRY_CLUSTER_DIR=x", "CONSENTRY_DEMO_EXIT=1",
		// A misspelt port flag is no service link.
		"CONSENTRY_CLICKHOUSE_NATVE_PORT=4793"})
	want := []string{"CONSENTRY_CLICKHOUSE_NATVE_PORT", "CONSENTRY_GRPC_ADR"}
	if !slices.Equal(got, want) {
		t.Errorf("unknown = %q, want %q", got, want)
	}
}
