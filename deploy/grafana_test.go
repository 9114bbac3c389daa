package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/consentry/consentry/deploy/grafana"
)

// dashboardFile holds the collectors' Grafana dashboard, as
// grafana.Dashboard builds it: for Grafana's provisioning, and the
// chart's ConfigMap.
const dashboardFile = "helm/consentry/files/grafana-dashboard.json"

var update = flag.Bool("update", false, "rewrite "+dashboardFile+" from grafana.Dashboard")

// TestGrafanaDashboard checks the committed dashboard is what
// grafana.Dashboard builds, that every panel queries the chosen data
// source and replicas, and that every query parses as PromQL (promtool,
// through a rules file of one recording rule per query). The collector's
// own test (collector/metrics_integration_test.go) checks that it exports
// every metric the dashboard names.
func TestGrafanaDashboard(t *testing.T) {
	d, err := grafana.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	built, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	built = append(built, '\n')
	if *update {
		if err := os.WriteFile(dashboardFile, built, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, built) {
		t.Fatalf("%s is not what grafana.Dashboard builds: go test -run TestGrafanaDashboard -update .", dashboardFile)
	}

	var dash struct {
		UID    string
		Panels []struct {
			Type, Title string
			Datasource  *struct{ UID string }
			Targets     []struct{ Expr string }
		}
		Templating struct{ List []struct{ Name string } }
	}
	if err := json.Unmarshal(committed, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID != grafana.UID {
		t.Errorf("uid %q", dash.UID)
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	if strings.Join(vars, ",") != "datasource,instance" {
		t.Errorf("variables %v, want datasource and instance", vars)
	}
	var rules []map[string]string // one recording rule per query
	titles := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if titles[p.Title] {
			t.Errorf("two panels titled %q", p.Title)
		}
		titles[p.Title] = true
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not query the chosen data source", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !strings.Contains(q.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %s does not select the chosen replicas", p.Title, q.Expr)
			}
			expr := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(q.Expr)
			rules = append(rules, map[string]string{"record": fmt.Sprintf("consentry:dashboard_query_%d", len(rules)), "expr": expr})
		}
	}
	if len(rules) < 20 {
		t.Errorf("%d queries, want at least 20", len(rules))
	}
	named := regexp.MustCompile(`consentry_[a-z_]*[a-z]`).FindAllString(string(committed), -1)
	if len(named) < 20 {
		t.Errorf("the dashboard names %d metrics", len(named))
	}
	promtool := requireCommand(t, "promtool", "prometheus")
	file := filepath.Join(t.TempDir(), "queries.yaml")
	text, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	command(t, ".", nil, false, promtool, "check", "rules", file)
}
