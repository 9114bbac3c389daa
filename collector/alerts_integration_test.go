package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/dashboard/alerts"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestAlertsEndToEnd runs a collector with --alert-rules: a crash of a
// group never seen before reaches a signed JSON webhook as one "new"
// alert, and the alert metrics count it.
func TestAlertsEndToEnd(t *testing.T) {
	const secret = "end-to-end-alert-secret"
	var (
		mu  sync.Mutex
		got []alerts.Alert
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alerts.Verify([]byte(secret), r.Header.Get(alerts.HeaderTimestamp), r.Header.Get(alerts.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		var a alerts.Alert
		if err := json.Unmarshal(body, &a); err != nil {
			t.Errorf("alert %s: %v", body, err)
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer recv.Close()
	rules := filepath.Join(t.TempDir(), "alerts.json")
	if err := os.WriteFile(rules, fmt.Appendf(nil, `{"webhooks": {"oncall": {"url": %q, "secret": %q}}, "apps": {%q: [{"webhook": "oncall", "events": ["new"]}]}}`,
		recv.URL, secret, testApp), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, server(t), func(c *Config) {
		c.AlertRulesFile = rules
		c.AlertInterval = 200 * time.Millisecond
	})
	device := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
		OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", DeviceModel: "Pixel 8", Locale: "de-AT"}
	age := int64(1000)
	id := make([]byte, 16)
	id[0], id[6], id[15] = 7, 0x40, 1
	_, err := h.client.Ingest(context.Background(), &consentryv1.IngestRequest{
		ConsentToken: h.token(t, testApp, time.Hour), SentAtUnixMs: time.Now().UnixMilli(), Device: device,
		Events: []*consentryv1.Event{{EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
			ExceptionType: "java.lang.IllegalStateException", Message: "editor closed", Thread: "main",
			Frames: []*consentryv1.StackFrame{{Module: "com.example.notes", Function: "NoteEditor.save", InApp: true}}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.shipped(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Checks go on: the alert stays sent once.
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Kind != alerts.KindNew || got[0].ExceptionType != "java.lang.IllegalStateException" || got[0].Crashes != 1 {
		t.Fatalf("webhook got %+v, want one new alert", got)
	}
	body := scrapeMetrics(t, h)
	if !strings.Contains(body, "consentry_alerts_sent_total 1") {
		t.Errorf("metrics lack alerts_sent_total 1:\n%s", body)
	}
}

// scrapeMetrics returns the admin port's /metrics.
func scrapeMetrics(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get("http://" + h.app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	return string(b)
}
