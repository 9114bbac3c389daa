package alerts

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseRules feeds arbitrary rules files: ParseRules never panics,
// never quotes a webhook URL or secret in its errors, and what it accepts
// is valid.
func FuzzParseRules(f *testing.F) {
	f.Add(`{"dashboard_url": "https://d", "webhooks": {"s": {"url": "https://hooks.example/T/secret-token", "format": "slack"}}, "apps": {"a": [{"webhook": "s", "events": ["new"], "min_crashes": 3, "quiet_hours": "22:00-07:00"}]}}`)
	f.Add(`{"webhooks": {"j": {"url": "http://h/secret-token", "secret": "secret-token-0123456789"}}, "apps": {"a": [{"webhook": "j"}]}}`)
	f.Add(`{"webhooks": {"j": {"url": "secret-token"}}, "apps": {"": [{"webhook": "x", "quiet_hours": "25:00-01:00"}]}}`)
	f.Fuzz(func(t *testing.T, data string) {
		r, err := ParseRules([]byte(data))
		if err != nil {
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("error quotes a URL or secret: %v", err)
			}
			return
		}
		for app, rules := range r.Apps {
			for _, rule := range rules {
				w, ok := r.Webhooks[rule.Webhook]
				if !ok || (w.Format != FormatSlack && w.Format != FormatJSON) {
					t.Fatalf("app %q: rule with webhook %q accepted: %+v", app, rule.Webhook, w)
				}
				rule.quiet.contains(time.Now())
			}
		}
	})
}
