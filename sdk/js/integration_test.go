// Package js_test runs the JavaScript SDK's tests from go test, so `make
// test` runs them: its unit tests (Node.js's test runner over a fake
// collector), and its integration suite (test/integration.ts) against a
// real collector over a real ClickHouse, whose stored rows are then
// checked here, and the SDK in a page of headless Chromium. It also keeps the SDK's copy of the wire rules
// (src/wire.ts) equal to the Go one (proto/consentry/v1/wire.go).
package js_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/collector/collectortest"
	"github.com/consentry/consentry/internal/browser"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// shared is the ClickHouse server of the integration test; nil under
// -short.
var shared *chserver.Server

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(chtest.SharedM{M: m, Shared: &shared})
}

var (
	buildOnce sync.Once
	buildErr  error
)

// build installs the SDK's pinned npm packages if they are missing and
// compiles it (tsc) into dist/.
func build(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node missing: scripts/deps.sh --with-test-deps installs it (Debian's nodejs and npm)")
	}
	buildOnce.Do(func() {
		if _, err := os.Stat("node_modules/.bin/tsc"); err != nil {
			if buildErr = run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"); buildErr != nil {
				return
			}
		}
		buildErr = run("node_modules/.bin/tsc", "-p", ".")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// nodeTest runs Node.js's test runner over files, with env added.
func nodeTest(t *testing.T, env []string, files ...string) {
	t.Helper()
	cmd := exec.Command("node", append([]string{"--test", "--test-reporter=spec"}, files...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	if testing.Verbose() {
		t.Logf("%s", out)
	}
}

// TestUnit runs the SDK's unit tests (test/*.test.ts).
func TestUnit(t *testing.T) {
	build(t)
	files, err := filepath.Glob("dist/test/*.test.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no compiled unit tests in dist/test (%v)", err)
	}
	nodeTest(t, nil, files...)
}

// TestAgainstCollector runs test/integration.ts against a real collector
// and checks what it stored: every kind of event, scrubbed, with the
// location coarsened, and nothing recorded after a revocation.
func TestAgainstCollector(t *testing.T) {
	chtest.Require(t, shared)
	build(t)
	const appID, appKey = "com.example.jsnotes", "ck_js-key-0123456789abcdefghijklmnopqrstuv"
	c := collectortest.Start(t, shared)
	c.AddApp(t, appID, appKey)
	nodeTest(t, []string{
		"JS_SDK_ENDPOINT=http://" + c.HTTPAddr(),
		"JS_SDK_APP_ID=" + appID,
		"JS_SDK_APP_KEY=" + appKey,
	}, "dist/test/integration.js")

	js := "sdk_version LIKE 'consentry-js/%' AND app_id = '" + appID + "'"
	for _, tc := range []struct {
		table, where string
		want         uint64
	}{
		{"sessions", "phase = 'start' AND country = 'AT' AND region = 'AT-9' AND locale = 'de-AT' AND device_model = 'Pixel 8' AND os_name = 'android'", 1},
		{"sessions", "phase = 'end' AND country = 'AT' AND region = 'AT-9'", 1},
		{"gestures", "screen = 'settings.privacy' AND gesture_type = 'tap' AND gesture_count = 2", 1},
		{"diagnostics", "kind = 'app_start' AND duration_ms = 830 AND start_type = 'cold'", 1},
		{"crashes", "exception_type = 'Error' AND handled = 1 AND position(message, '[email]') > 0 AND position(message, 'alice') = 0 AND position(message, '203.0.113.7') = 0", 1},
		{"crashes", "has(frame_file, 'integration.js') AND has(breadcrumb_names, 'settings.privacy')", 1},
		{"custom_events", "name = 'export_pdf' AND has(number_values, 12) AND has(number_values, 0.5) AND has(bool_values, 1) AND has(bool_keys, 'pdfa')", 1},
		{"custom_events", "name = 'export_pdf' AND arrayExists(v -> position(v, 'alice') > 0, string_values)", 0},
		{"custom_events", "name = 'padded'", 50},
		{"custom_events", "name = 'json_encoded'", 1},
		{"custom_events", "name = 'before_toggle'", 1},
		{"custom_events", "name = 'before_revoke'", 1},
		{"custom_events", "name IN ('after_toggle', 'after_revoke')", 0},
	} {
		if n := c.Count(t, tc.table, js+" AND "+tc.where); n != tc.want {
			t.Errorf("%s WHERE %s: %d rows, want %d", tc.table, tc.where, n, tc.want)
		}
	}
}

// TestInBrowser runs the SDK in a page of headless Chromium
// (test/browser.html) from an origin the collector allows, with the
// page's localStorage as its storage: consent, an event, an uncaught
// error, the revocation, over CORS. From an origin it does not allow, the
// browser keeps the page from even asking for consent.
func TestInBrowser(t *testing.T) {
	chtest.Require(t, shared)
	build(t)
	files := http.FileServer(http.Dir("."))
	page := httptest.NewServer(files)
	defer page.Close()
	other := httptest.NewServer(files)
	defer other.Close()
	const appID, appKey = "com.example.webnotes", "ck_web-key-0123456789abcdefghijklmnopqrstuv"
	c := collectortest.Start(t, shared, func(cfg *collector.Config) { cfg.CORSOrigins = []string{page.URL} })
	c.AddApp(t, appID, appKey)
	query := url.Values{"endpoint": {"http://" + c.HTTPAddr()}, "app": {appID}, "key": {appKey}}.Encode()

	b := browser.Start(t)
	b.Navigate(page.URL + "/test/browser.html?" + query)
	b.WaitVisible("#done")
	var got struct {
		Accepted           int
		QueuedAfterCapture int
		PlaintextInStorage bool
		Delivered          bool
		Error              *struct{ Kind, Message string }
	}
	if err := json.Unmarshal([]byte(b.Text("#done")), &got); err != nil {
		t.Fatalf("page result %q: %v", b.Text("#done"), err)
	}
	if got.Error != nil || got.Accepted != 2 || got.QueuedAfterCapture != 2 || got.PlaintextInStorage || !got.Delivered {
		t.Errorf("in the page: %+v (error %+v), want 2 events queued and accepted, nothing readable in localStorage, the revocation delivered", got, got.Error)
	}
	js := "sdk_version LIKE 'consentry-js/%' AND app_id = '" + appID + "'"
	if n := c.Count(t, "custom_events", js+" AND name = 'web_event' AND has(string_keys, 'note')"); n != 1 {
		t.Errorf("%d web_event rows, want 1", n)
	}
	if n := c.Count(t, "crashes", js+" AND exception_type = 'TypeError' AND handled = 0 AND has(frame_file, 'browser.js')"); n != 1 {
		t.Errorf("%d rows of the page's uncaught TypeError, want 1", n)
	}

	// The page's own data fills localStorage to Chromium's real quota:
	// records make room, and a revocation on the full storage holds.
	b.Navigate(page.URL + "/test/browser.html?scenario=full&" + query)
	b.WaitVisible("#done")
	var full struct {
		Accepted, FilledChars, RecordFailures, Evicted    int
		Delivered                                         bool
		StateAfterRevoke, StateAfterRestart, FirstFailure string
		Error                                             *struct{ Kind, Message string }
	}
	if err := json.Unmarshal([]byte(b.Text("#done")), &full); err != nil {
		t.Fatalf("page result %q: %v", b.Text("#done"), err)
	}
	t.Logf("full localStorage: %+v", full)
	if full.Error != nil || full.FilledChars == 0 || full.RecordFailures != 0 || full.Evicted == 0 || full.Accepted+full.Evicted != 400 ||
		full.StateAfterRevoke != "revoked" || full.StateAfterRestart == "granted" {
		t.Errorf("on a full localStorage: %+v (error %+v), want every record made room for (evictions, none failed), "+
			"every event sent or evicted, the consent revoked and not back after a restart", full, full.Error)
	}
	if n := c.Count(t, "custom_events", js+" AND name = 'full_storage'"); n != uint64(full.Accepted) {
		t.Errorf("%d full_storage rows, want the %d accepted", n, full.Accepted)
	}

	b.Navigate(other.URL + "/test/browser.html?" + query)
	b.WaitVisible("#done")
	if txt := b.Text("#done"); !strings.Contains(txt, `"kind":"unavailable"`) {
		t.Errorf("from an origin the collector does not allow: %s, want the grant to fail (CORS)", txt)
	}
}

// TestPackage packs the SDK as npm would publish it, installs the
// tarball into a new project and uses it from there: its exports resolve,
// its type declarations compile under strict settings (without
// skipLibCheck), and it runs.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("installs from the npm cache or registry; skipped with -short")
	}
	build(t)
	dir := t.TempDir()
	out, err := exec.Command("npm", "pack", "--pack-destination", dir, "--json", "--loglevel=error").Output()
	if err != nil {
		t.Fatalf("npm pack: %v", err)
	}
	var packed []struct {
		Filename string
		Files    []struct{ Path string }
	}
	if err := json.Unmarshal(out, &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v: %s", err, out)
	}
	files := map[string]bool{}
	for _, f := range packed[0].Files {
		files[f.Path] = true
		if strings.HasPrefix(f.Path, "dist/test/") || strings.HasPrefix(f.Path, "test/") || strings.HasSuffix(f.Path, "_test.go") {
			t.Errorf("the package holds a test file: %s", f.Path)
		}
	}
	for _, want := range []string{"package.json", "README.md", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/gen/consentry/v1/ingest_pb.js", "src/client.ts"} {
		if !files[want] {
			t.Errorf("the package lacks %s", want)
		}
	}

	app := filepath.Join(dir, "app")
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(app, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"name": "app", "private": true, "type": "module"}`)
	write("tsconfig.json", `{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
  "lib": ["ES2022", "DOM"], "types": [], "strict": true, "skipLibCheck": false, "outDir": "out"}, "files": ["main.ts"]}`)
	write("main.ts", `import { Consentry, ConsentryError, LIMITS, MemoryStorage, type Config } from "@consentry/sdk";

const config: Config = {
  endpoint: "https://collector.example.com",
  appId: "com.example.notes",
  appKey: "ck_example",
  consentTextVersion: "2026-11",
  storage: new MemoryStorage(),
};
const c = await Consentry.open(config);
await c.recordCustom("before_consent"); // nothing: no consent yet
const state: "none" | "granted" | "revoked" | "expired" = c.consent().state;
await c.close();
try {
  await Consentry.open({ ...config, appId: "" });
} catch (err) {
  if (err instanceof ConsentryError) {
    console.log(state, c.stats().queued, LIMITS.maxBatchEvents, err.kind);
  }
}
`)
	install := exec.Command("npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", filepath.Join(dir, packed[0].Filename))
	install.Dir = app
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install the package: %v\n%s", err, out)
	}
	tsc, err := filepath.Abs("node_modules/.bin/tsc")
	if err != nil {
		t.Fatal(err)
	}
	compile := exec.Command(tsc, "-p", ".")
	compile.Dir = app
	if out, err := compile.CombinedOutput(); err != nil {
		t.Fatalf("an app's TypeScript against the package: %v\n%s", err, out)
	}
	runApp := exec.Command("node", "out/main.js")
	runApp.Dir = app
	got, err := runApp.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "none 0 1000 invalid_config" {
		t.Errorf("the app printed %q (%v), want \"none 0 1000 invalid_config\"", got, err)
	}
}

// TestWireRules checks the SDK's copy of the wire rules against the Go
// one: the limits, the scopes, and the app id and consent text version
// rules over the same inputs.
func TestWireRules(t *testing.T) {
	build(t)
	ids := []string{"com.example.notes", "a", "A_b-c.d", "-a", ".a", "", strings.Repeat("a", 128), strings.Repeat("a", 129), "a b", "a/b", "ä", "a\x00"}
	versions := []string{"2026-11", "v2 (de)", "", strings.Repeat("x", 64), strings.Repeat("x", 65), "a\nb", "a\tb", "ü", "a\u00a0b", "a\u200bb", "😀"}
	in, err := json.Marshal(map[string][]string{"ids": ids, "versions": versions})
	if err != nil {
		t.Fatal(err)
	}
	script := `
import("./dist/src/wire.js").then((w) => {
  const input = JSON.parse(process.argv[1]);
  console.log(JSON.stringify({
    limits: w.LIMITS, maxAppIdLen: w.MAX_APP_ID_LEN, maxConsentTextVersionLen: w.MAX_CONSENT_TEXT_VERSION_LEN,
    scopes: w.SCOPES, ids: input.ids.map(w.validAppId), versions: input.versions.map(w.validConsentTextVersion),
  }));
});`
	out, err := exec.Command("node", "--input-type=module", "-e", script, string(in)).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got struct {
		Limits                   map[string]int64
		MaxAppIDLen              int `json:"maxAppIdLen"`
		MaxConsentTextVersionLen int
		Scopes                   []string
		IDs                      []bool `json:"ids"`
		Versions                 []bool
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]int64{
		"maxBatchEvents":     consentryv1.DefaultMaxBatchEvents,
		"maxMessageBytes":    consentryv1.DefaultMaxMessageBytes,
		"maxNameBytes":       consentryv1.DefaultMaxNameBytes,
		"maxTextBytes":       consentryv1.DefaultMaxTextBytes,
		"maxFrames":          consentryv1.DefaultMaxFrames,
		"maxAttributes":      consentryv1.DefaultMaxAttributes,
		"maxBreadcrumbs":     consentryv1.DefaultMaxBreadcrumbs,
		"maxBreadcrumbBytes": consentryv1.DefaultMaxBreadcrumbBytes,
		"maxEventAgeMs":      consentryv1.DefaultMaxEventAge.Milliseconds(),
	}
	if fmt.Sprint(got.Limits) != fmt.Sprint(want) {
		t.Errorf("LIMITS = %v, want %v", got.Limits, want)
	}
	if got.MaxAppIDLen != consentryv1.MaxAppIDLen || got.MaxConsentTextVersionLen != consentryv1.MaxConsentTextVersionLen {
		t.Errorf("MAX_APP_ID_LEN, MAX_CONSENT_TEXT_VERSION_LEN = %d, %d", got.MaxAppIDLen, got.MaxConsentTextVersionLen)
	}
	var scopes []string
	for _, s := range consentryv1.Scopes() {
		scopes = append(scopes, string(s))
	}
	if fmt.Sprint(got.Scopes) != fmt.Sprint(scopes) {
		t.Errorf("SCOPES = %v, want %v", got.Scopes, scopes)
	}
	for i, id := range ids {
		if i < len(got.IDs) && got.IDs[i] != consentryv1.ValidAppID(id) {
			t.Errorf("validAppId(%q) = %v, Go says %v", id, got.IDs[i], !got.IDs[i])
		}
	}
	for i, v := range versions {
		if i < len(got.Versions) && got.Versions[i] != consentryv1.ValidConsentTextVersion(v) {
			t.Errorf("validConsentTextVersion(%q) = %v, Go says %v", v, got.Versions[i], !got.Versions[i])
		}
	}
	if len(got.IDs) != len(ids) || len(got.Versions) != len(versions) {
		t.Errorf("node answered %d ids and %d versions, want %d and %d", len(got.IDs), len(got.Versions), len(ids), len(versions))
	}
}
