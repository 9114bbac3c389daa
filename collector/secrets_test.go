package collector

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/tmpfs"
)

// TestSecretFiles: the consent secret and the analyst password are
// created once, owner-only, and read back the same; a short secret or an
// empty password file is refused, and line endings are not part of them.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ConsentSecretFile: filepath.Join(dir, "new", "consent-secret")}
	s1, err := loadSecret(cfg)
	if err != nil || len(s1) != 64 {
		t.Fatalf("created secret %q, %v; want 64 hex digits", s1, err)
	}
	if fi, err := os.Stat(cfg.ConsentSecretFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, %v", fi.Mode(), err)
	}
	if s2, err := loadSecret(cfg); err != nil || string(s2) != string(s1) {
		t.Fatalf("reloaded secret %q, %v; want %q", s2, err, s1)
	}
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("s", 40)
	if s, err := loadSecret(Config{ConsentSecretFile: write("crlf", long+"\r\n")}); err != nil || string(s) != long {
		t.Errorf("secret with CRLF = %q, %v", s, err)
	}
	if _, err := loadSecret(Config{ConsentSecretFile: write("short", "short\n")}); err == nil {
		t.Error("a short secret was accepted")
	}

	pw, err := loadAnalystPassword(filepath.Join(dir, "pw"))
	if err != nil || len(pw) < 20 {
		t.Fatalf("created password %q, %v", pw, err)
	}
	if again, err := loadAnalystPassword(filepath.Join(dir, "pw")); err != nil || again != pw {
		t.Fatalf("reloaded password %q, %v; want %q", again, err, pw)
	}
	if p, err := loadAnalystPassword(write("spaced", "  secret-pass \n")); err != nil || p != "secret-pass" {
		t.Errorf("password with spaces = %q, %v", p, err)
	}
	if _, err := loadAnalystPassword(write("empty", " \n")); err == nil {
		t.Error("an empty password file was accepted")
	}
}

// TestNewRefusesSecretsEveryUserReads: New refuses to start, before it
// touches ClickHouse, when a secret file it would use is readable by every
// user of the machine (invariant 7), and names the file; a file readable
// by its owner and group passes on to the next step.
func TestNewRefusesSecretsEveryUserReads(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	secret := strings.Repeat("s", 40)
	tests := []struct {
		name    string
		cfg     func(c *Config)
		refused string // the file's name in the error, or "" when not refused
	}{
		{"consent secret 0644", func(c *Config) { c.ConsentSecretFile = file("secret-644", 0o644, secret) }, "secret-644"},
		{"dashboard users 0604", func(c *Config) { c.DashboardCredentialsFile = file("dash-604", 0o604, "admin:a long password\n") }, "dash-604"},
		{"signing key 0444", func(c *Config) { c.ConsentSigningKeyFile = file("key-444", 0o444, "x") }, "key-444"},
		{"managed collector password 0644", func(c *Config) {
			c.ClickHouse.Addr = ""
			c.CollectorPasswordFile = file("pw-644", 0o644, "pw\n")
		}, "pw-644"},
		{"consent secret 0640", func(c *Config) { c.ConsentSecretFile = file("secret-640", 0o640, secret) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				DataDir: filepath.Join(dir, tt.name), ClickHouseStartTimeout: 100 * time.Millisecond,
				GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			}
			cfg.ClickHouse.Addr = "127.0.0.1:1" // nothing listens: a start that got that far fails there
			tt.cfg(&cfg)
			app, err := New(t.Context(), cfg)
			if app != nil {
				_ = app.Shutdown(t.Context())
			}
			refused := err != nil && strings.Contains(err.Error(), "readable by every user")
			switch {
			case tt.refused != "" && (!refused || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("err = %v, want %s refused", err, tt.refused)
			case tt.refused == "" && refused:
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// TestSecretFilesOnFullDisk: creating a secret file on a full disk fails
// and leaves nothing behind, so the next start, once there is room,
// creates it; an empty or cut file would stop every later start (the
// consent secret "too short", a password file "empty") until an operator
// deleted it.
func TestSecretFilesOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 256<<10)
	filler := tmpfs.Fill(t, dir, "filler", 0)
	cfg := Config{ConsentSecretFile: filepath.Join(dir, "consent-secret")}
	pwFile := filepath.Join(dir, "pw")
	if _, err := loadSecret(cfg); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("consent secret on a full disk: %v, want ENOSPC", err)
	}
	if _, err := loadAnalystPassword(pwFile); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("password on a full disk: %v, want ENOSPC", err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
		t.Errorf("files left on the full disk: %v", names)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if s, err := loadSecret(cfg); err != nil || len(s) != 64 {
		t.Fatalf("consent secret once there is room: %q, %v", s, err)
	}
	if pw, err := loadAnalystPassword(pwFile); err != nil || pw == "" {
		t.Fatalf("password once there is room: %q, %v", pw, err)
	}
}
