package collector

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// scrape fetches the admin port's /metrics and returns each sample line's
// value by its name and labels.
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	return parseMetrics(scrapeMetrics(t, h))
}

// parseMetrics returns the value of each consentry_ sample line of a
// /metrics text by its name and labels.
func parseMetrics(text string) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range regexp.MustCompile(`(?m)^(consentry_[^ ]+) ([^ \n]+)$`).FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			out[m[1]] = v
		}
	}
	return out
}

// TestMetricsIntegration sends a stored batch, a batch without consent and
// a refused batch, then checks the admin port's metrics count them.
func TestMetricsIntegration(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.Limits.MaxEvents = 50 })
	ctx := context.Background()
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation), Seed: 3})

	if _, err := h.client.Ingest(ctx, gen.Batch(20, time.Now())); err != nil {
		t.Fatal(err)
	}
	noConsent := gen.Batch(10, time.Now())
	noConsent.ConsentToken = ""
	if _, err := h.client.Ingest(ctx, noConsent); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Ingest(ctx, gen.Batch(60, time.Now())); err == nil {
		t.Fatal("a batch over the limit was accepted")
	}

	h.shipped(t)
	m := scrape(t, h)
	for name, want := range map[string]float64{
		"consentry_events_received_total":                            90,
		"consentry_events_accepted_total":                            20,
		`consentry_events_dropped_total{reason="consent_missing"}`:   10,
		`consentry_events_rejected_total{reason="batch_too_large"}`:  60,
		`consentry_ingest_duration_seconds_count{outcome="ok"}`:      2,
		`consentry_ingest_duration_seconds_count{outcome="refused"}`: 1,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if m["consentry_clickhouse_insert_duration_seconds_count"] < 1 || m["consentry_clickhouse_insert_rows_sum"] < 20 {
		t.Errorf("insert metrics: %v inserts, %v rows", m["consentry_clickhouse_insert_duration_seconds_count"], m["consentry_clickhouse_insert_rows_sum"])
	}
	if n := m["consentry_spool_sync_duration_seconds_count"]; n < 1 || n != m["consentry_spool_fsyncs_total"] || m["consentry_spool_sync_errors_total"] != 0 {
		t.Errorf("spool syncs: %v observed, %v counted, %v failed", n, m["consentry_spool_fsyncs_total"], m["consentry_spool_sync_errors_total"])
	}
	if age, ok := m["consentry_revocations_refresh_age_seconds"]; !ok || age < 0 || age > 10 {
		t.Errorf("revocation refresh age %v (present %v)", age, ok)
	}
	// The bounds alert rules compare with (deploy/helm/consentry/files).
	if got, want := m["consentry_revocation_bound_seconds"], h.app.consent.revs.Bound().Seconds(); got != want || want <= 0 {
		t.Errorf("revocation bound %v s exported, want %v", got, want)
	}
	if got, want := m["consentry_spool_max_bytes"], float64(h.app.sink.spoolMax); got != want || want <= 0 {
		t.Errorf("spool max bytes %v exported, want %v", got, want)
	}
	// Every metric the alerting rules and the Grafana dashboard name is
	// exported (histograms by their series), but those only a managed
	// ClickHouse has.
	exported := map[string]bool{}
	for series := range m {
		name, _, _ := strings.Cut(series, "{")
		exported[name] = true
	}
	for _, file := range []string{"prometheus-rules.yaml", "grafana-dashboard.json"} {
		text, err := os.ReadFile("../deploy/helm/consentry/files/" + file)
		if err != nil {
			t.Fatal(err)
		}
		named := regexp.MustCompile(`consentry_[a-z_]*[a-z]`).FindAllString(string(text), -1)
		if len(named) < 15 {
			t.Fatalf("%s names %d metrics", file, len(named))
		}
		for _, name := range named {
			histogram := exported[name+"_count"]
			if !exported[name] && !histogram && !(name == "consentry_clickhouse_restarts_total" && h.app.cfg.ClickHouse.Addr != "") {
				t.Errorf("%s names %s, which the collector does not export", file, name)
			}
		}
	}
	// The spool is the sink: its gauges are exported, the writer's (which
	// is not built) are not.
	if _, ok := m["consentry_spool_bytes"]; !ok {
		t.Error("no spool_bytes")
	}
	if _, ok := m["consentry_writer_pending_rows"]; ok {
		t.Error("writer_pending_rows exported with the spool on: there is no writer")
	}
	if _, ok := m["go_goroutines"]; ok {
		t.Error("the pattern should only match consentry_ metrics")
	}
	// pprof is off by default; the dashboard answers the rest.
	resp, err := http.Get("http://" + h.app.AdminAddr() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Error("pprof is served without --pprof")
	}
}
