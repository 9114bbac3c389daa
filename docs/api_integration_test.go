package docs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consentry/consentry/collector/collectortest"
	"github.com/consentry/consentry/docs"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// shared is the ClickHouse server of the API guide's test; nil under
// -short.
var shared *chserver.Server

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(chtest.SharedM{M: m, Shared: &shared})
}

// TestAPIExamples runs the API guide's examples, in order, as printed,
// against a real collector, and checks that each prints the answer the
// guide shows: the same fields, the same values but for those the guide
// marks "…". Then it checks what the batches stored.
func TestAPIExamples(t *testing.T) {
	chtest.Require(t, shared)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl missing: scripts/deps.sh --with-test-deps installs it")
	}
	bin, err := filepath.Abs("../.bin")
	if err != nil {
		t.Fatal(err)
	}
	path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
	if _, err := exec.LookPath(filepath.Join(bin, "grpcurl")); err != nil {
		t.Fatal("grpcurl missing: scripts/deps.sh --with-test-deps installs it into .bin")
	}
	examples := docs.APIExamples()
	if len(examples) < 9 {
		t.Fatalf("%d examples in docs/api.md, want at least 9", len(examples))
	}
	const appID, appKey = "com.example.apidocs", "ck_api-docs-0123456789abcdefghijklmnopqrst"
	c := collectortest.Start(t, shared)
	c.AddApp(t, appID, appKey)
	token := c.Token(t, appID, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports)
	env := append(os.Environ(), "PATH="+path, "COLLECTOR=http://"+c.HTTPAddr(), "GRPC="+c.Addr(),
		"APP_ID="+appID, "APP_KEY="+appKey, "TOKEN="+token)
	for i, ex := range examples {
		if strings.Contains(ex.Shell, "/v1/consent/revoke") {
			// Batches received up to a second (the revocation times'
			// rounding) plus the allowed skew before a revocation are
			// dropped with it, as the guide says: let the batches above
			// be stored.
			time.Sleep(1500 * time.Millisecond)
		}
		cmd := exec.Command(sh, "-c", "set -eu\n"+ex.Shell)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("example %d: %v\n%s", i+1, err, ex.Shell)
		}
		var got, want any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("example %d printed no JSON (%v): %s", i+1, err, out)
		}
		if err := json.Unmarshal([]byte(ex.Answer), &want); err != nil {
			t.Fatalf("example %d: the guide's answer is no JSON: %v", i+1, err)
		}
		if diff := match(want, got, "answer"); diff != "" {
			t.Errorf("example %d: %s\nprinted: %s\nthe guide: %s", i+1, diff, out, ex.Answer)
		}
	}
	where := "app_id = '" + appID + "' AND sdk_version = 'my-sdk/1.0.0'"
	for _, q := range []struct{ table, where string }{
		{"gestures", "screen = 'settings.privacy' AND country = '' AND device_model = 'Pixel 8'"},
		{"crashes", "position(message, '[email]') > 0 AND position(message, 'alice') = 0 AND has(frame_function, 'NoteEditor.save')"},
	} {
		if n := c.Count(t, q.table, where+" AND "+q.where); n != 1 {
			t.Errorf("%s WHERE %s: %d rows, want 1", q.table, q.where, n)
		}
	}
	if n := c.Count(t, "custom_events", "app_id = '"+appID+"' AND name = 'export_pdf'"); n != 1 {
		t.Errorf("%d export_pdf rows, want 1", n)
	}
	if n := c.Count(t, "diagnostics", where+" AND kind = 'app_start' AND duration_ms = 830"); n != 1 {
		t.Errorf("%d rows of the batch sent over gRPC, want 1", n)
	}
}

// match compares the answer the guide shows with the one printed: objects
// with the same keys, arrays of the same length, equal values, where a
// string "…" in the guide matches any value.
func match(want, got any, path string) string {
	if s, ok := want.(string); ok && s == "…" {
		return ""
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %v, want an object", path, got)
		}
		var keys []string
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			return fmt.Sprintf("%s: fields %s the guide does not show", path, strings.Join(keys, ", "))
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s: missing", path, k)
			}
			if d := match(wv, gv, path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
		for i := range w {
			if d := match(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: %v, want %v", path, got, want)
	}
	return ""
}
