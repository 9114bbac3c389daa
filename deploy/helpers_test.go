package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// consentryd and consentryCLI are the paths of the binaries TestMain
// builds (statically, as the image has them).
var consentryd, consentryCLI string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consentry-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	consentryd, consentryCLI = filepath.Join(dir, "consentryd"), filepath.Join(dir, "consentry")
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/consentryd", "./cmd/consentry")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build consentryd and consentry: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// command runs name with args in dir and returns its combined output;
// it fails t if the command cannot run or fails, unless allowFail.
func command(t *testing.T, dir string, env []string, allowFail bool, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && !allowFail {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, &out)
	}
	return out.String(), err
}

// requireCommand skips nothing: a missing tool fails the test, with what
// installs it (scripts/deps.sh --with-test-deps does).
func requireCommand(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s (scripts/deps.sh --with-test-deps does)", name, pkg)
	}
	return path
}

// checkConfig runs consentryd --check-config with args and exactly the
// environment env, and returns its output and whether it passed.
func checkConfig(t *testing.T, env []string, args ...string) (string, bool) {
	t.Helper()
	out, err := command(t, t.TempDir(), env, true, consentryd, append([]string{"--check-config"}, args...)...)
	return out, err == nil
}

// knownVariables returns the CONSENTRY_* variables consentryd reads: the
// flags' variables its --help names, and its secrets'.
func knownVariables(t *testing.T) []string {
	t.Helper()
	out, _ := command(t, t.TempDir(), []string{}, false, consentryd, "--help")
	names := regexp.MustCompile(`\(env (CONSENTRY_[A-Z0-9_]+)\)`).FindAllStringSubmatch(out, -1)
	known := []string{"CONSENTRY_CLICKHOUSE_PASSWORD", "CONSENTRY_CONSENT_SECRET"}
	for _, n := range names {
		known = append(known, n[1])
	}
	if len(known) < 40 {
		t.Fatalf("consentryd --help names %d variables; its output changed?\n%s", len(known), out)
	}
	return known
}

// TestVariablesNamedInDeployFiles checks that every CONSENTRY_* variable
// the deployment files and their README name is one consentryd reads.
func TestVariablesNamedInDeployFiles(t *testing.T) {
	known := knownVariables(t)
	named := regexp.MustCompile(`CONSENTRY_[A-Z0-9_]*[A-Z0-9]`)
	var files int
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") || strings.HasPrefix(path, "go.") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, name := range named.FindAllString(string(b), -1) {
			if !slices.Contains(known, name) {
				t.Errorf("%s names %s, which consentryd does not read", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("read %d files", files)
	}
}
