package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Kind is what happened to a crash group that an alert reports.
type Kind string

// The kinds of alerts, one per flag of package triage.
const (
	// KindNew: the group first crashed within triage's NewWithin.
	KindNew Kind = "new"
	// KindRegressed: the group was resolved and crashed in the fixed
	// version or a later one.
	KindRegressed Kind = "regressed"
	// KindEscalating: the group crashes today at a rate well above its
	// baseline (triage's EscalateFactor and EscalateMin).
	KindEscalating Kind = "escalating"
)

// kinds are every Kind, in the order alerts are built.
var kinds = []Kind{KindNew, KindRegressed, KindEscalating}

// Format is the body a webhook receives.
type Format string

// Webhook formats.
const (
	// FormatSlack is a Slack incoming-webhook message: text and blocks.
	FormatSlack Format = "slack"
	// FormatJSON is the alert as JSON, signed with HMAC-SHA-256 (see
	// Sign and Verify).
	FormatJSON Format = "json"
)

// minSecret is the shortest signing secret a JSON webhook may have.
const minSecret = 16

// Rules is the alert rules file: named webhooks, and for each app the
// rules that send its alerts to them. It is JSON (see docs/dashboard.md).
type Rules struct {
	// DashboardURL is the dashboard's external base URL, e.g.
	// https://crashes.example.com; alerts link to the group's page under
	// it. Empty: alerts carry no link.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Webhooks are the receivers, by name. Their URLs and secrets are
	// secrets: keep the file readable by the collector only.
	Webhooks map[string]Webhook `json:"webhooks"`
	// Apps are the rules of each app, by app id. An app without rules
	// sends no alerts.
	Apps map[string][]Rule `json:"apps"`
}

// Webhook is one receiver of alerts.
type Webhook struct {
	// URL is where alerts are POSTed: http or https.
	URL string `json:"url"`
	// Format is FormatSlack or FormatJSON; default FormatJSON.
	Format Format `json:"format,omitempty"`
	// Secret signs FormatJSON bodies; required for them, at least 16
	// bytes.
	Secret string `json:"secret,omitempty"`
}

// Rule sends an app's alerts of some kinds to one webhook.
type Rule struct {
	// Events are the kinds sent; default every kind.
	Events []Kind `json:"events,omitempty"`
	// Webhook names the receiver, a key of Rules.Webhooks.
	Webhook string `json:"webhook"`
	// MinCrashes and MinSessions are the fewest crashes and distinct
	// sessions the group must have today (UTC) for an alert.
	MinCrashes  uint64 `json:"min_crashes,omitempty"`
	MinSessions uint64 `json:"min_sessions,omitempty"`
	// QuietHours, "HH:MM-HH:MM" in UTC (e.g. "22:00-07:00"), holds the
	// rule's alerts back during that time; they are sent after it if the
	// group still has the flag then.
	QuietHours string `json:"quiet_hours,omitempty"`

	quiet quietHours
}

// quietHours is a daily UTC time range; start == end is none.
type quietHours struct {
	start, end time.Duration
}

// contains reports whether t's UTC time of day is in q.
func (q quietHours) contains(t time.Time) bool {
	if q.start == q.end {
		return false
	}
	t = t.UTC()
	d := time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	if q.start < q.end {
		return d >= q.start && d < q.end
	}
	return d >= q.start || d < q.end
}

// parseQuietHours parses "HH:MM-HH:MM".
func parseQuietHours(s string) (quietHours, error) {
	if s == "" {
		return quietHours{}, nil
	}
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return quietHours{}, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM", s)
	}
	parse := func(v string) (time.Duration, error) {
		t, err := time.Parse("15:04", strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("quiet hours %q: want HH:MM-HH:MM", s)
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
	}
	start, err := parse(from)
	if err != nil {
		return quietHours{}, err
	}
	end, err := parse(to)
	if err != nil {
		return quietHours{}, err
	}
	return quietHours{start, end}, nil
}

// sends reports whether r sends alerts of kind k.
func (r *Rule) sends(k Kind) bool { return len(r.Events) == 0 || slices.Contains(r.Events, k) }

// ErrInvalidRules wraps the errors of a rules file that cannot be used.
var ErrInvalidRules = errors.New("invalid alert rules")

// LoadRules reads and validates the rules file at path.
func LoadRules(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alerts: read rules: %w", err)
	}
	r, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("alerts: %s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses and validates a rules file. Unknown fields are
// errors, so a misspelt setting is not silently ignored. Errors never
// quote a webhook's URL or secret.
func ParseRules(data []byte) (*Rules, error) {
	var r Rules
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRules, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the rules object", ErrInvalidRules)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// validate checks r and fills in defaults and parsed fields.
func (r *Rules) validate() error {
	var errs []error
	if r.DashboardURL != "" {
		if u, err := url.Parse(r.DashboardURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("dashboard_url: not an http or https URL"))
		}
		r.DashboardURL = strings.TrimSuffix(r.DashboardURL, "/")
	}
	for name, w := range r.Webhooks {
		// The URL may hold a token (Slack's do): say what is wrong, not
		// what it is.
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook %q: url is not an http or https URL", name))
		}
		switch w.Format {
		case "":
			w.Format = FormatJSON
		case FormatSlack, FormatJSON:
		default:
			errs = append(errs, fmt.Errorf("webhook %q: format %q is not slack or json", name, w.Format))
		}
		if w.Format == FormatJSON && len(w.Secret) < minSecret {
			errs = append(errs, fmt.Errorf("webhook %q: a json webhook needs a secret of at least %d bytes", name, minSecret))
		}
		r.Webhooks[name] = w
	}
	for app, rules := range r.Apps {
		if app == "" {
			errs = append(errs, errors.New("apps: empty app id"))
		}
		for i := range rules {
			rule := &rules[i]
			if _, ok := r.Webhooks[rule.Webhook]; !ok {
				errs = append(errs, fmt.Errorf("app %q rule %d: no webhook named %q", app, i+1, rule.Webhook))
			}
			for _, k := range rule.Events {
				if !slices.Contains(kinds, k) {
					errs = append(errs, fmt.Errorf("app %q rule %d: event %q is not new, regressed or escalating", app, i+1, k))
				}
			}
			q, err := parseQuietHours(rule.QuietHours)
			if err != nil {
				errs = append(errs, fmt.Errorf("app %q rule %d: %w", app, i+1, err))
			}
			rule.quiet = q
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidRules, errors.Join(errs...))
	}
	return nil
}

// appIDs returns the apps with rules, in order.
func (r *Rules) appIDs() []string {
	var ids []string
	for app, rules := range r.Apps {
		if len(rules) > 0 {
			ids = append(ids, app)
		}
	}
	slices.Sort(ids)
	return ids
}
