package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.Received(1)
	m.Accepted(1, map[string]int{"x": 1})
	m.Rejected("x", 1)
	m.Ingested(time.Second, true)
	m.Inserted(1, time.Second, nil)
	m.Gauge("g", "help", func() float64 { return 1 })
	m.Counter("c", "help", func() float64 { return 1 })
}

func TestHandler(t *testing.T) {
	m := New()
	m.Received(5)
	m.Accepted(3, map[string]int{"consent_missing": 2})
	m.Rejected("overloaded", 7)
	m.Inserted(3, 20*time.Millisecond, errors.New("down"))
	m.Gauge("spool_bytes", "Bytes.", func() float64 { return 42 })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"consentry_events_received_total 5",
		"consentry_events_accepted_total 3",
		`consentry_events_dropped_total{reason="consent_missing"} 2`,
		`consentry_events_rejected_total{reason="overloaded"} 7`,
		"consentry_clickhouse_insert_errors_total 1",
		"consentry_clickhouse_insert_rows_sum 3",
		"consentry_spool_bytes 42",
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
