package collector

import (
	"context"
	"crypto/rand"
	"path/filepath"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/dashboard/alerts"
	"github.com/consentry/consentry/dashboard/triage"
)

// AlertHolderFileName is the file in the data dir that holds the id this
// replica's alert claims are recorded under: kept across restarts, so a
// restarted collector resumes its retries.
const AlertHolderFileName = "alerts-holder"

// alertParts are the crash alerts (package dashboard/alerts): a Notifier
// and its loop, only with Config.AlertRulesFile.
type alertParts struct {
	notifier *alerts.Notifier
	loops    loops
}

// startAlerts loads the alert rules and starts the Notifier's loop; nil
// without Config.AlertRulesFile.
func startAlerts(cfg Config, client *clickhouse.Client, m *metrics.Metrics) (*alertParts, error) {
	if cfg.AlertRulesFile == "" {
		return nil, nil
	}
	rules, err := alerts.LoadRules(cfg.AlertRulesFile)
	if err != nil {
		return nil, err
	}
	holder, err := readOrCreate(filepath.Join(cfg.DataDir, AlertHolderFileName), "alert holder id", rand.Text)
	if err != nil {
		return nil, err
	}
	store, err := triage.New(triage.Config{Backend: client, K: cfg.DashboardK})
	if err != nil {
		return nil, err
	}
	n, err := alerts.New(alerts.Config{
		Groups: store, Store: client, Rules: rules, Holder: holder,
		Interval: cfg.AlertInterval, Logger: cfg.Logger.Named("alerts"),
	})
	if err != nil {
		return nil, err
	}
	p := &alertParts{notifier: n, loops: loops{log: cfg.Logger}}
	m.Counter("alerts_sent_total", "Crash alerts webhooks took, since start.", func() float64 { return float64(n.Stats().Sent) })
	m.Counter("alerts_failed_attempts_total", "Crash alert deliveries that failed (each is retried until its last attempt), since start.",
		func() float64 { return float64(n.Stats().Failed) })
	m.Counter("alerts_dropped_total", "Crash alerts given up on (attempts exhausted, or webhook removed from the rules), since start.",
		func() float64 { return float64(n.Stats().Dropped) })
	p.loops.goLoop("alerts", n.Run)
	return p, nil
}

// close stops the Notifier's loop; an attempt in flight is cancelled and
// retried after the next start.
func (p *alertParts) close(context.Context) error {
	if p != nil {
		p.loops.stop()
	}
	return nil
}
