package deploy

import "testing"

// rulesFile holds the alerting rules: for Prometheus's rule_files, and
// the chart's PrometheusRule.
const rulesFile = "helm/consentry/files/prometheus-rules.yaml"

// TestPrometheusRules checks the alerting rules with promtool: they parse,
// and each alert fires on the series that should fire it, with its
// labels and text, and stays quiet on healthy ones
// (testdata/prometheus-rules.test.yaml). The collector's own test
// (collector/metrics_integration_test.go) checks that it exports every
// metric the rules name.
func TestPrometheusRules(t *testing.T) {
	promtool := requireCommand(t, "promtool", "prometheus")
	command(t, ".", nil, false, promtool, "check", "rules", rulesFile)
	command(t, ".", nil, false, promtool, "test", "rules", "testdata/prometheus-rules.test.yaml")
}
