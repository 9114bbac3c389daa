package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "systemd/consentryd.service"

// unitRoot makes a root directory for systemd-analyze --root: the host's
// system units (for the targets the unit orders itself after), the unit
// as unit, and consentryd where the unit's ExecStart expects it.
func unitRoot(t *testing.T, unit string) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"usr/lib/systemd", "usr/local/bin", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	command(t, "", nil, false, "cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/"))
	command(t, "", nil, false, "cp", consentryd, filepath.Join(root, "usr/local/bin/consentryd"))
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/consentryd.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, which
// must print nothing: systemd ignores a setting it cannot parse with only
// a warning, and a sandboxing setting ignored is a promise not kept.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := requireCommand(t, "systemd-analyze", "systemd")
	verify := func(unit string) string {
		root := unitRoot(t, unit)
		out, _ := command(t, "", nil, true, analyze, "verify", "--root="+root, filepath.Join(root, "etc/systemd/system/consentryd.service"))
		return out
	}
	if out := verify(readUnit(t)); out != "" {
		t.Errorf("systemd-analyze verify %s:\n%s", unitFile, out)
	}
	// The check itself: a misspelt value must show.
	if out := verify(strings.Replace(readUnit(t), "KillMode=mixed", "KillMode=mixd", 1)); !strings.Contains(out, "mixd") {
		t.Errorf("systemd-analyze verify of a unit with KillMode=mixd printed:\n%s", out)
	}
}

// TestSystemdUnitExposure checks the sandbox with systemd-analyze
// security: its exposure score (0 to 10, lower is safer; systemd calls
// below 2 "OK") must stay at most maxExposure.
func TestSystemdUnitExposure(t *testing.T) {
	const maxExposure = 1.5
	analyze := requireCommand(t, "systemd-analyze", "systemd")
	root := unitRoot(t, readUnit(t))
	out, _ := command(t, "", nil, false, analyze, "security", "--offline=true", "--root="+root, "consentryd.service")
	m := regexp.MustCompile(`Overall exposure level for consentryd.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	got, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", got)
	if got > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", got, maxExposure, out)
	}
}

// unitSettings returns the unit's [Service] settings, key by key in
// order of appearance.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readUnit(t)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q", unitFile, line)
			}
			settings[k] = append(settings[k], v)
		}
	}
	return settings
}

// TestSystemdUnitConfiguresConsentryd runs what the unit runs, with the
// unit's environment and the example settings file uncommented, through
// consentryd --check-config; and checks that systemd waits for a graceful
// shutdown longer than consentryd takes.
func TestSystemdUnitConfiguresConsentryd(t *testing.T) {
	s := unitSettings(t)
	state := t.TempDir()
	env := []string{}
	for _, e := range s["Environment"] {
		env = append(env, strings.ReplaceAll(e, "%S", state))
	}
	if len(s["ExecStart"]) != 1 || s["ExecStart"][0] != "/usr/local/bin/consentryd" {
		t.Fatalf("ExecStart = %q", s["ExecStart"])
	}
	if got := s["ExecStartPre"]; len(got) != 1 || got[0] != "/usr/local/bin/consentryd --check-config" {
		t.Errorf("ExecStartPre = %q, want the check", got)
	}
	if out, ok := checkConfig(t, env); !ok {
		t.Errorf("the unit's settings:\n%s", out)
	}
	// The example settings, each line uncommented, files it names
	// replaced by ones that exist.
	b, err := os.ReadFile("systemd/consentryd.env.example")
	if err != nil {
		t.Fatal(err)
	}
	example, files := append([]string(nil), env...), writeSecretFiles(t)
	for line := range strings.SplitSeq(string(b), "\n") {
		kv, ok := strings.CutPrefix(line, "#CONSENTRY_")
		if !ok {
			continue
		}
		kv = "CONSENTRY_" + kv
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(v, "/") {
			if files[k] == "" {
				t.Fatalf("no example file for %s", k)
			}
			kv = k + "=" + files[k]
		}
		example = append(example, kv)
	}
	if len(example) < len(env)+10 {
		t.Fatalf("%d example settings", len(example)-len(env))
	}
	if out, ok := checkConfig(t, example); !ok {
		t.Errorf("the example settings:\n%s", out)
	}
	// The check fails, as the unit's start would, on a misspelt setting.
	if out, ok := checkConfig(t, append(env, "CONSENTRY_GENERALISE_K=5")); ok || !strings.Contains(out, "CONSENTRY_GENERALISE_K") {
		t.Errorf("a misspelt setting passed the check:\n%s", out)
	}

	stop, err := time.ParseDuration(s["TimeoutStopSec"][0])
	if err != nil {
		t.Fatal(err)
	}
	shutdown, err := time.ParseDuration(flagDefault(t, "shutdown-timeout"))
	if err != nil {
		t.Fatal(err)
	}
	if stop <= shutdown+10*time.Second {
		t.Errorf("TimeoutStopSec=%v: systemd kills consentryd before its %v graceful shutdown ends", stop, shutdown)
	}
}
