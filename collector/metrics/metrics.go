// Package metrics holds the collector's Prometheus metrics and serves them
// in the Prometheus text format on the admin port (/metrics).
//
// Labels never hold payloads, tokens or identifiers: only reasons, outcomes
// and table names, from small fixed sets. App ids are not labels, so a
// flood of invented app ids cannot grow the series.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric.
const Namespace = "consentry"

// Metrics are the collector's metrics. The zero value is not usable; a nil
// *Metrics is, and records nothing, so packages can take one optionally.
type Metrics struct {
	reg *prometheus.Registry

	received       prometheus.Counter
	accepted       prometheus.Counter
	dropped        *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	ingestDuration *prometheus.HistogramVec
	insertDuration prometheus.Histogram
	insertRows     prometheus.Histogram
	insertErrors   prometheus.Counter
	spoolSync      prometheus.Histogram
	spoolSyncFails prometheus.Counter
}

// New returns metrics registered in a registry of their own, with the Go
// runtime's and the process's metrics (memory, file descriptors, CPU).
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.received = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "events_received_total",
		Help: "Events received in ingest requests, before any check."})
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "events_accepted_total",
		Help: "Events accepted: durable (spooled, or stored in ClickHouse without a spool) when the request was acknowledged."})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_dropped_total",
		Help: "Events dropped one by one from acknowledged requests, by reason (consent_missing, consent_scope, too_old, ...); the client is told and does not resend them."}, []string{"reason"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_rejected_total",
		Help: "Events of requests refused as a whole, by reason (overloaded, spool_full, rate_limited, storage_unavailable, batch_too_large, ...); retryable ones are resent by the SDK."}, []string{"reason"})
	m.ingestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "ingest_duration_seconds",
		Help:    "Time from receiving an ingest request to its answer, by outcome (ok or refused): the acknowledgement latency.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"outcome"})
	m.insertDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "clickhouse_insert_duration_seconds",
		Help: "Time one insert of rows into ClickHouse took (all its tables), successful or not.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
	m.insertRows = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "clickhouse_insert_rows",
		Help: "Rows per insert into ClickHouse: larger inserts are cheaper per row.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)})
	m.insertErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "clickhouse_insert_errors_total",
		Help: "Inserts into ClickHouse that failed (each retry counts)."})
	m.spoolSync = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "spool_sync_duration_seconds",
		Help: "Time one fsync of the spool took; every request acknowledged with it waited for it (a slow disk, or one shared with ClickHouse's writes, shows here first).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15)})
	m.spoolSyncFails = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "spool_sync_errors_total",
		Help: "Fsyncs of the spool that failed: the requests they covered were refused."})
	for _, c := range []prometheus.Collector{m.received, m.accepted, m.dropped, m.rejected, m.ingestDuration, m.insertDuration, m.insertRows, m.insertErrors, m.spoolSync, m.spoolSyncFails} {
		f(c)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Received counts n events received.
func (m *Metrics) Received(n int) {
	if m != nil {
		m.received.Add(float64(n))
	}
}

// Accepted counts n events accepted, and the drops of the same request by
// reason.
func (m *Metrics) Accepted(n int, drops map[string]int) {
	if m == nil {
		return
	}
	m.accepted.Add(float64(n))
	for reason, k := range drops {
		m.dropped.WithLabelValues(reason).Add(float64(k))
	}
}

// Rejected counts n events of a request refused for reason.
func (m *Metrics) Rejected(reason string, n int) {
	if m != nil {
		m.rejected.WithLabelValues(reason).Add(float64(n))
	}
}

// Ingested observes how long a request took to answer; ok is false when
// it was refused.
func (m *Metrics) Ingested(took time.Duration, ok bool) {
	if m == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "refused"
	}
	m.ingestDuration.WithLabelValues(outcome).Observe(took.Seconds())
}

// Inserted observes one insert into ClickHouse of rows rows.
func (m *Metrics) Inserted(rows int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.insertDuration.Observe(took.Seconds())
	m.insertRows.Observe(float64(rows))
	if err != nil {
		m.insertErrors.Inc()
	}
}

// Synced observes one fsync of the spool.
func (m *Metrics) Synced(took time.Duration, err error) {
	if m == nil {
		return
	}
	m.spoolSync.Observe(took.Seconds())
	if err != nil {
		m.spoolSyncFails.Inc()
	}
}

// Gauge registers a gauge whose value f returns at each scrape, e.g. the
// spool's size or the age of the last revocation refresh.
func (m *Metrics) Gauge(name, help string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
	}
}

// Counter registers a counter whose value f returns at each scrape, for
// totals another package keeps, e.g. corrupt spool records.
func (m *Metrics) Counter(name, help string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, f))
	}
}
