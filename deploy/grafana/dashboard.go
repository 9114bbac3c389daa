// Package grafana builds the Grafana dashboard for operating Consentry
// collectors from their Prometheus metrics: ingest, consent, the spool,
// storage and readiness, per replica. The dashboard is committed as
// JSON (helm/consentry/files/grafana-dashboard.json, which the chart
// can ship as a ConfigMap for Grafana's sidecar); the tests keep that
// file equal to what Dashboard builds (go test -run TestDashboardCurrent
// -update ./grafana rewrites it).
package grafana

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid: links and provisioning find it by it.
const UID = "consentry-collectors"

// sel selects the chosen replicas' series.
const sel = `instance=~"$instance"`

// query is one series of a panel: a PromQL expression and its legend.
type query struct {
	expr, legend string
}

// Dashboard returns the collectors' dashboard, in Grafana's classic
// dashboard model: the SDK marks it deprecated in favour of dashboardv2,
// but the classic JSON is what every Grafana in use, file provisioning
// and the dashboard sidecar load; v2 needs Grafana 12's new dashboard API.
func Dashboard() (dashboard.Dashboard, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	b := dashboard.NewDashboardBuilder("Consentry collectors").
		Uid(UID).
		Description("Ingest, consent, spool and storage of the Consentry collectors, per replica (docs/operations.md, Metrics and alerts).").
		Tags([]string{"consentry"}).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").
			Label("Replica").
			Datasource(ds).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(consentry_ready, instance)")}).
			Definition("label_values(consentry_ready, instance)").
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*"))

	b.WithRow(dashboard.NewRowBuilder("Overview"))
	b.WithPanel(statPanel(ds, "Replicas ready", "Replicas that take ingest now (/readyz). Fewer than deployed: see the ConsentryNotReady alert.",
		"none", query{`sum(consentry_ready{` + sel + `})`, "ready"}))
	b.WithPanel(statPanel(ds, "Events stored /s", "Events accepted (durable in the spool or ClickHouse), all chosen replicas.",
		"ops", query{`sum(rate(consentry_events_accepted_total{` + sel + `}[$__rate_interval]))`, "accepted"}))
	b.WithPanel(statPanel(ds, "Revocations' age / bound", "How old the oldest replica's view of revocations is, as a share of the documented bound (invariant 5); 1 or more and that replica refuses ingest.",
		"percentunit", query{`max(consentry_revocations_refresh_age_seconds{` + sel + `} / consentry_revocation_bound_seconds{` + sel + `})`, "age / bound"}))
	b.WithPanel(statPanel(ds, "Spool full", "The fullest spool, as a share of its --spool-max-bytes; ingest is refused as full at 1.",
		"percentunit", query{`max(consentry_spool_bytes{` + sel + `} / consentry_spool_max_bytes{` + sel + `})`, "used"}))

	b.WithRow(dashboard.NewRowBuilder("Ingest"))
	b.WithPanel(timePanel(ds, "Events", "Received, and accepted (durable); dropped events are in the next panel.", "ops",
		query{`sum by (instance) (rate(consentry_events_received_total{` + sel + `}[$__rate_interval]))`, "received {{instance}}"},
		query{`sum by (instance) (rate(consentry_events_accepted_total{` + sel + `}[$__rate_interval]))`, "accepted {{instance}}"}))
	b.WithPanel(timePanel(ds, "Events dropped, by reason", "Events not stored, by the reason the response names: consent (missing, invalid, expired, revoked, scope) and validation.", "ops",
		query{`sum by (reason) (rate(consentry_events_dropped_total{` + sel + `}[$__rate_interval]))`, "{{reason}}"}))
	b.WithPanel(timePanel(ds, "Events in refused requests, by reason", "Whole requests refused (the SDK keeps and resends them when a retry can help): overload, a full spool, storage away, limits.", "ops",
		query{`sum by (reason) (rate(consentry_events_rejected_total{` + sel + `}[$__rate_interval]))`, "{{reason}}"}))
	b.WithPanel(timePanel(ds, "Acknowledgement latency", "From a request's first byte to its answer, accepted requests: the SDK deletes a batch when it arrives.", "s",
		quantile(0.5, `consentry_ingest_duration_seconds_bucket{outcome="ok", `+sel+`}`),
		quantile(0.99, `consentry_ingest_duration_seconds_bucket{outcome="ok", `+sel+`}`)))

	b.WithRow(dashboard.NewRowBuilder("Consent"))
	b.WithPanel(timePanel(ds, "Revocations' age", "Each replica's time since it last loaded revocations, against the bound within which every replica enforces a revocation.", "s",
		query{`consentry_revocations_refresh_age_seconds{` + sel + `}`, "age {{instance}}"},
		query{`max(consentry_revocation_bound_seconds{` + sel + `})`, "bound"}))
	b.WithPanel(timePanel(ds, "Invalid consent tokens", "Share of received events with a malformed, forged or unknown-key token: an old SDK, or someone guessing.", "percentunit",
		query{`sum(rate(consentry_events_dropped_total{reason="consent_invalid", ` + sel + `}[$__rate_interval])) / sum(rate(consentry_events_received_total{` + sel + `}[$__rate_interval]))`, "invalid"}))
	b.WithPanel(timePanel(ds, "Grants throttled", "Grant requests refused after failed app keys from one client: keys being guessed.", "reqps",
		query{`sum by (instance) (rate(consentry_consent_grants_throttled_total{` + sel + `}[$__rate_interval]))`, "{{instance}}"}))

	b.WithRow(dashboard.NewRowBuilder("Spool"))
	b.WithPanel(timePanel(ds, "Spool", "Bytes waiting to be shipped, the cap, and the volume's free bytes.", "bytes",
		query{`consentry_spool_bytes{` + sel + `}`, "spooled {{instance}}"},
		query{`consentry_spool_max_bytes{` + sel + `}`, "max {{instance}}"},
		query{`consentry_spool_free_bytes{` + sel + `}`, "volume free {{instance}}"}))
	b.WithPanel(timePanel(ds, "Shipping lag", "Age of the oldest acknowledged batch not yet in ClickHouse.", "s",
		query{`consentry_spool_ship_lag_seconds{` + sel + `}`, "{{instance}}"}))
	b.WithPanel(timePanel(ds, "fsync", "Group commits' fsync latency (p99) and failures: acknowledgements wait for it.", "s",
		quantile(0.99, `consentry_spool_sync_duration_seconds_bucket{`+sel+`}`),
		query{`sum(rate(consentry_spool_sync_errors_total{` + sel + `}[$__rate_interval]))`, "failures /s"}))
	b.WithPanel(timePanel(ds, "Damaged records", "Spool records skipped as damaged (checksum), and their events: each one lost and counted.", "short",
		query{`sum(increase(consentry_spool_corrupt_records_total{` + sel + `}[$__rate_interval]))`, "records"},
		query{`sum(increase(consentry_spool_corrupt_events_total{` + sel + `}[$__rate_interval]))`, "events"}))

	b.WithRow(dashboard.NewRowBuilder("ClickHouse"))
	b.WithPanel(timePanel(ds, "Rows inserted", "Rows the shipper (or writer) inserted, and failed inserts (retried).", "rowsps",
		query{`sum(rate(consentry_clickhouse_insert_rows_sum{` + sel + `}[$__rate_interval]))`, "rows /s"},
		query{`sum(rate(consentry_clickhouse_insert_errors_total{` + sel + `}[$__rate_interval]))`, "failed inserts /s"}))
	b.WithPanel(timePanel(ds, "Insert latency", "One insert round, p50 and p99.", "s",
		quantile(0.5, `consentry_clickhouse_insert_duration_seconds_bucket{`+sel+`}`),
		quantile(0.99, `consentry_clickhouse_insert_duration_seconds_bucket{`+sel+`}`)))
	b.WithPanel(timePanel(ds, "ClickHouse up", "Whether each replica reaches ClickHouse (1), and restarts of a managed server.", "short",
		query{`consentry_clickhouse_up{` + sel + `}`, "up {{instance}}"},
		query{`increase(consentry_clickhouse_restarts_total{` + sel + `}[$__rate_interval])`, "restarts {{instance}}"}))
	b.WithPanel(timePanel(ds, "Out of erasure's reach", "Deletions (erasures) ClickHouse has not finished 10 minutes after they were made, damaged parts that hold them up, and detached parts, whose rows no erasure and no TTL reaches (alerts ConsentryErasureStalled and ConsentryDetachedParts; docs/operations.md). Every replica sees the same servers: the most any reports.", "short",
		query{`max(consentry_clickhouse_stalled_mutations{` + sel + `})`, "unfinished deletions"},
		query{`max(consentry_clickhouse_damaged_parts{` + sel + `})`, "damaged parts"},
		query{`max(consentry_clickhouse_detached_parts{` + sel + `})`, "detached parts"}))
	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("build the Grafana dashboard: %w", err)
	}
	return d, nil
}

// quantile is the q quantile of a histogram's buckets, over the chosen
// replicas.
func quantile(q float64, buckets string) query {
	return query{fmt.Sprintf(`histogram_quantile(%g, sum by (le) (rate(%s[$__rate_interval])))`, q, buckets), fmt.Sprintf("p%g", q*100)}
}

func timePanel(ds common.DataSourceRef, title, description, unit string, qs ...query) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(ds).Unit(unit).Min(0).Span(8).Height(8)
	for _, q := range qs {
		p.WithTarget(prometheus.NewDataqueryBuilder().Expr(q.expr).LegendFormat(q.legend))
	}
	return p
}

func statPanel(ds common.DataSourceRef, title, description, unit string, q query) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(ds).Unit(unit).Span(6).Height(4).
		WithTarget(prometheus.NewDataqueryBuilder().Expr(q.expr).LegendFormat(q.legend).Instant())
}
