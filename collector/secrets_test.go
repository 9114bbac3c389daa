package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
