package main

import (
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chserver"
)

// TestClickHousePortsAndAnalystLimits: the managed ClickHouse gets fixed
// ports by default (so a BI tool is configured once), 0 for free ones,
// and the analyst's limits from flags, validated.
func TestClickHousePortsAndAnalystLimits(t *testing.T) {
	o := mustParseFlags(t, nil, nil)
	c := o.cfg
	if c.ClickHouseNativePort != 4793 || c.ClickHouseHTTPPort != 4794 {
		t.Errorf("default ports %d, %d; want 4793, 4794", c.ClickHouseNativePort, c.ClickHouseHTTPPort)
	}
	if c.AnalystLimits.MaxExecutionTime != chserver.DefaultMaxExecutionTime || c.AnalystLimits.QueriesPerHour != chserver.DefaultQueriesPerHour {
		t.Errorf("default limits %+v", c.AnalystLimits)
	}
	o = mustParseFlags(t, []string{"--clickhouse-native-port", "0", "--clickhouse-http-port", "18123",
		"--analyst-max-query-time", "30s", "--analyst-max-query-memory", "1000000000", "--analyst-max-rows-to-read", "5000000",
		"--analyst-max-result-rows", "100000", "--analyst-queries-per-hour", "600"}, nil)
	c = o.cfg
	want := chserver.Limits{MaxExecutionTime: 30 * time.Second, MaxMemoryUsage: 1e9, MaxRowsToRead: 5e6, MaxResultRows: 1e5, QueriesPerHour: 600}
	if c.ClickHouseNativePort != 0 || c.ClickHouseHTTPPort != 18123 || c.AnalystLimits != want {
		t.Errorf("ports %d, %d, limits %+v", c.ClickHouseNativePort, c.ClickHouseHTTPPort, c.AnalystLimits)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, args := range [][]string{
		{"--analyst-max-query-time", "1500ms"},
		{"--analyst-max-query-memory", "-1"},
		{"--clickhouse-http-port", "70000"},
		{"--clickhouse-native-port", "4800", "--clickhouse-http-port", "4800"},
	} {
		o := mustParseFlags(t, args, nil)
		if err := o.cfg.Validate(); err == nil {
			t.Errorf("%q passed Validate", args)
		}
	}
}
