// Package alerts tells webhooks when a crash group is new, regresses or
// escalates: per-app rules (a JSON file, see Rules) pick the webhooks, a
// Slack-compatible message or a JSON body signed with HMAC-SHA-256 (see
// Verify) carries what the dashboard's list shows, and failed deliveries
// are retried with exponential backoff up to a bound.
//
// Every collector replica may run a Notifier against the same ClickHouse:
// each alert is sent by one of them. A replica that finds a flagged group
// records a claim on the alert in the Store (the server stamps its time),
// waits Settle so that concurrent claims land, and sends only the alerts
// whose earliest claim is its own. The outcome of every attempt is
// recorded too, so a restart neither loses an alert (a claimed alert
// without an outcome, or a failed one, is retried by its holder) nor
// sends one again once it was delivered. Delivery is at least once: a
// replica that stops between a receiver's answer and the record of it
// sends the alert again after its restart, with the same HeaderID.
package alerts

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/every"
)

// Defaults for Config.
const (
	// DefaultInterval is how often the groups are checked.
	DefaultInterval = time.Minute
	// DefaultSettle is how long a replica waits between claiming alerts
	// and reading which claims won. ClickHouse stamps claims to the
	// second, so it must be at least two seconds.
	DefaultSettle = 2 * time.Second
	// DefaultMaxAttempts bounds the deliveries of one alert.
	DefaultMaxAttempts = 8
	// DefaultBackoff is the wait after the first failed attempt; it
	// doubles with each further one, up to DefaultMaxBackoff.
	DefaultBackoff    = 30 * time.Second
	DefaultMaxBackoff = time.Hour
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultGroupLimit is how many groups of an app are checked, most
	// affected first.
	DefaultGroupLimit = 500
)

// pendingWindow is how far back a holder looks for its alerts that still
// need an attempt: beyond the longest possible backoff schedule.
const pendingWindow = 7 * 24 * time.Hour

// GroupLister lists crash groups with their flags, a page at a time;
// *triage.Store is one.
type GroupLister interface {
	List(ctx context.Context, f triage.Filter, o triage.ListOptions) (*triage.GroupList, error)
}

// listGroups returns up to limit groups of f from l, most sessions first,
// reading as many pages as that takes.
func listGroups(ctx context.Context, l GroupLister, f triage.Filter, limit int) ([]triage.Group, error) {
	var out []triage.Group
	for page := 1; len(out) < limit; page++ {
		list, err := l.List(ctx, f, triage.ListOptions{Sort: triage.SortSessions, Page: page, PerPage: min(limit, triage.MaxPerPage)})
		if err != nil {
			return nil, err
		}
		out = append(out, list.Groups...)
		if page >= list.Pages || len(list.Groups) == 0 {
			break
		}
	}
	return out[:min(len(out), limit)], nil
}

// State is where a record of an alert's delivery stands.
type State string

// Delivery states, in the order an alert goes through them.
const (
	// StateClaimed: a replica claimed the alert; the earliest claim sends.
	StateClaimed State = "claimed"
	// StateFailed: an attempt failed; the next is due at NextAt.
	StateFailed State = "failed"
	// StateSent: the receiver took the alert.
	StateSent State = "sent"
	// StateDropped: the alert will not be sent (attempts exhausted, or
	// its webhook was removed from the rules).
	StateDropped State = "dropped"
)

// Record is one step of an alert's delivery, as the Store keeps it.
type Record struct {
	// Key names the alert: app, kind, group, episode and webhook.
	Key string
	// AppID is the alert's app.
	AppID string
	// Holder is the replica that wrote the record.
	Holder string
	// State and Attempt (1 for the first delivery; 0 for a claim) say
	// what happened; NextAt is when a failed alert is due again.
	State   State
	Attempt uint32
	NextAt  time.Time
	// Webhook names the receiver in the rules (never its URL).
	Webhook string
	// Alert is the JSON of the Alert, so a retry after a restart sends
	// what was claimed.
	Alert []byte
	// At is when the Store recorded it, by the Store's clock; set by the
	// Store, to the second.
	At time.Time
}

// Store keeps the records of alert deliveries, shared by the replicas;
// *clickhouse.Client is one. Its methods are safe for concurrent use.
type Store interface {
	// RecordAlerts stores records, stamping each with the store's time.
	RecordAlerts(ctx context.Context, recs []Record) error
	// AlertRecords returns every record of the alerts keys, in no
	// particular order.
	AlertRecords(ctx context.Context, keys []string) ([]Record, error)
	// HeldAlerts returns the keys of the alerts holder claimed since
	// since.
	HeldAlerts(ctx context.Context, holder string, since time.Time) ([]string, error)
}

// Config configures a Notifier.
type Config struct {
	// Groups lists crash groups and their flags; required.
	Groups GroupLister
	// Store keeps the delivery records; required.
	Store Store
	// Rules say which alerts go where; required.
	Rules *Rules
	// Holder names this replica in the records: stable across restarts
	// (so it resumes its retries) and different from every other
	// replica's; required.
	Holder string
	// Interval is how often groups are checked and due retries sent.
	// Default DefaultInterval.
	Interval time.Duration
	// Settle is the wait between claiming and reading claims. Default
	// DefaultSettle.
	Settle time.Duration
	// MaxAttempts, Backoff and MaxBackoff bound the retries: attempt n+1
	// is due Backoff·2^(n-1) (at most MaxBackoff) after attempt n failed,
	// and none follows attempt MaxAttempts. Defaults DefaultMaxAttempts,
	// DefaultBackoff, DefaultMaxBackoff.
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
	// Client sends the webhooks; default an http.Client with
	// DefaultTimeout.
	Client *http.Client
	// GroupLimit is how many groups of each app are checked; default
	// DefaultGroupLimit.
	GroupLimit int
	// Logger logs failures, never URLs, secrets or payloads; default
	// none.
	Logger *zap.Logger
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Stats count a Notifier's deliveries since it started.
type Stats struct {
	// Sent alerts, failed attempts, and alerts dropped.
	Sent, Failed, Dropped uint64
}

// Notifier checks crash groups against the rules and delivers alerts.
type Notifier struct {
	cfg                   Config
	log                   *zap.Logger
	sent, failed, dropped atomic.Uint64
}

// New returns a Notifier; call Run to start it.
func New(cfg Config) (*Notifier, error) {
	if cfg.Groups == nil || cfg.Store == nil || cfg.Rules == nil || cfg.Holder == "" {
		return nil, errors.New("alerts: Groups, Store, Rules and Holder are required")
	}
	if cfg.Interval < 0 || cfg.Settle < 0 || cfg.MaxAttempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 || cfg.GroupLimit < 0 {
		return nil, errors.New("alerts: durations and counts must not be negative")
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Settle = cmp.Or(cfg.Settle, DefaultSettle)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.GroupLimit = cmp.Or(cfg.GroupLimit, DefaultGroupLimit)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, log: cfg.Logger}, nil
}

// Stats returns the deliveries so far.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
}

// Run checks and delivers every Interval, at once first, until ctx ends.
// A check that fails is logged and the next one tries again.
func (n *Notifier) Run(ctx context.Context) error {
	every.Tick(ctx, n.cfg.Interval, true, func(ctx context.Context) {
		if err := n.Check(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("alert check failed", zap.Error(err))
		}
	})
	return nil
}

// Check runs one round: it retries this replica's alerts that are due,
// then claims the alerts of newly flagged groups and sends those it won.
func (n *Notifier) Check(ctx context.Context) error {
	if err := n.retry(ctx); err != nil {
		return err
	}
	return n.alertNew(ctx)
}

// alertNew claims the alerts of flagged groups that no replica claimed
// yet, waits Settle, and delivers those whose earliest claim is ours.
func (n *Notifier) alertNew(ctx context.Context) error {
	cands, err := n.candidates(ctx)
	if err != nil || len(cands) == 0 {
		return err
	}
	keys := slices.Sorted(maps.Keys(cands))
	recs, err := n.cfg.Store.AlertRecords(ctx, keys)
	if err != nil {
		return fmt.Errorf("alerts: read delivery records: %w", err)
	}
	for _, r := range recs {
		delete(cands, r.Key) // claimed before: its holder sees to it
	}
	if len(cands) == 0 {
		return nil
	}
	claims := make([]Record, 0, len(cands))
	for _, k := range slices.Sorted(maps.Keys(cands)) {
		claims = append(claims, cands[k])
	}
	start := time.Now()
	if err := n.cfg.Store.RecordAlerts(ctx, claims); err != nil {
		return fmt.Errorf("alerts: claim: %w", err)
	}
	if time.Since(start) > n.cfg.Settle/2 {
		// A claim this slow may have landed after another replica read
		// the claims: let the next round's retry decide, when every
		// claim is in.
		return nil
	}
	t := time.NewTimer(n.cfg.Settle)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	keys = keys[:0]
	for _, c := range claims {
		keys = append(keys, c.Key)
	}
	return n.deliverWon(ctx, keys, func(k string, st *keyState) bool { return st.lastAttempt == 0 })
}

// retry delivers this replica's alerts that are due: claimed and won but
// never attempted (the replica stopped, or its claim was slow), or failed
// with the next attempt due.
func (n *Notifier) retry(ctx context.Context) error {
	now := n.cfg.Now()
	keys, err := n.cfg.Store.HeldAlerts(ctx, n.cfg.Holder, now.Add(-pendingWindow))
	if err != nil {
		return fmt.Errorf("alerts: read held alerts: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	return n.deliverWon(ctx, keys, func(k string, st *keyState) bool {
		switch st.state {
		case StateClaimed:
			// Not attempted yet: due once every claim that could beat it
			// is surely in.
			return now.Sub(st.claimedAt) >= 2*n.cfg.Settle
		case StateFailed:
			return !now.Before(st.nextAt)
		}
		return false
	})
}

// keyState is where one alert stands, folded from its records.
type keyState struct {
	winner      string
	claimedAt   time.Time
	claim       Record
	state       State
	lastAttempt uint32
	nextAt      time.Time
	// others: a replica other than the winner attempted it.
	others bool
}

// fold returns the state of each alert in recs: the earliest claim
// (server time, then holder) wins; the winner's latest attempt says where
// it stands.
func fold(recs []Record) map[string]*keyState {
	out := make(map[string]*keyState)
	for _, r := range recs {
		if r.State != StateClaimed {
			continue
		}
		st, ok := out[r.Key]
		if !ok || r.At.Before(st.claimedAt) || (r.At.Equal(st.claimedAt) && r.Holder < st.winner) {
			out[r.Key] = &keyState{winner: r.Holder, claimedAt: r.At, claim: r, state: StateClaimed}
		}
	}
	rank := map[State]int{StateFailed: 1, StateSent: 2, StateDropped: 2}
	for _, r := range recs {
		st, ok := out[r.Key]
		if !ok || r.State == StateClaimed {
			continue
		}
		if r.Holder != st.winner {
			st.others = true
			continue
		}
		if r.Attempt > st.lastAttempt || (r.Attempt == st.lastAttempt && rank[r.State] > rank[st.state]) {
			st.state, st.lastAttempt, st.nextAt = r.State, r.Attempt, r.NextAt
		}
	}
	return out
}

// deliverWon reads the records of keys and delivers the alerts this
// replica won for which due holds.
func (n *Notifier) deliverWon(ctx context.Context, keys []string, due func(string, *keyState) bool) error {
	recs, err := n.cfg.Store.AlertRecords(ctx, keys)
	if err != nil {
		return fmt.Errorf("alerts: read delivery records: %w", err)
	}
	states := fold(recs)
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(states)) {
		st := states[k]
		if st.winner != n.cfg.Holder || st.others || !due(k, st) {
			continue
		}
		if err := n.attempt(ctx, st.claim, st.lastAttempt+1); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// attempt delivers the alert of claim once and records the outcome.
func (n *Notifier) attempt(ctx context.Context, claim Record, attempt uint32) error {
	out := claim
	out.Holder, out.Attempt, out.NextAt, out.At = n.cfg.Holder, attempt, time.Time{}, time.Time{}
	log := n.log.With(zap.String("app_id", claim.AppID), zap.String("webhook", claim.Webhook), zap.Uint32("attempt", attempt))
	var a Alert
	w, ok := n.cfg.Rules.Webhooks[claim.Webhook]
	err := json.Unmarshal(claim.Alert, &a)
	switch {
	case err != nil:
		out.State = StateDropped
		log.Error("alert dropped: its record does not decode", zap.Error(err))
	case !ok:
		out.State = StateDropped
		log.Warn("alert dropped: its webhook is no longer in the rules")
	default:
		err = deliver(ctx, n.cfg.Client, w, &a, n.cfg.Now())
		switch {
		case err == nil:
			out.State = StateSent
			n.sent.Add(1)
		case ctx.Err() != nil:
			return ctx.Err() // shutting down: the attempt did not count
		case int(attempt) >= n.cfg.MaxAttempts:
			out.State = StateDropped
			n.failed.Add(1)
			log.Error("alert dropped after its last attempt", zap.Error(err))
		default:
			out.State = StateFailed
			out.NextAt = n.cfg.Now().Add(n.backoff(attempt))
			n.failed.Add(1)
			log.Warn("alert delivery failed; will retry", zap.Error(err), zap.Time("next_attempt", out.NextAt))
		}
	}
	if out.State == StateDropped {
		n.dropped.Add(1)
	}
	if err := n.cfg.Store.RecordAlerts(ctx, []Record{out}); err != nil {
		return fmt.Errorf("alerts: record delivery: %w", err)
	}
	return nil
}

// backoff returns the wait after failed attempt n (1-based).
func (n *Notifier) backoff(attempt uint32) time.Duration {
	d := n.cfg.Backoff
	for i := uint32(1); i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.cfg.MaxBackoff)
}

// candidates returns the alerts the rules want for the groups flagged
// now, by key.
func (n *Notifier) candidates(ctx context.Context) (map[string]Record, error) {
	now := n.cfg.Now()
	out := make(map[string]Record)
	rules := n.cfg.Rules
	for _, app := range rules.appIDs() {
		groups, err := listGroups(ctx, n.cfg.Groups, triage.Filter{AppID: app, Days: 1, Status: triage.StatusAll}, n.cfg.GroupLimit)
		if err != nil {
			return nil, fmt.Errorf("alerts: groups of %s: %w", app, err)
		}
		for _, g := range groups {
			if g.Status.State == triage.StateIgnored {
				continue
			}
			for _, kind := range kinds {
				episode, ok := flagged(&g, kind, now)
				if !ok {
					continue
				}
				for i := range rules.Apps[app] {
					r := &rules.Apps[app][i]
					if !r.sends(kind) || g.Crashes < r.MinCrashes || g.Sessions < r.MinSessions || r.quiet.contains(now) {
						continue
					}
					key := alertKey(app, kind, g.Fingerprint, episode, r.Webhook)
					if _, ok := out[key]; ok {
						continue
					}
					a := newAlert(&g, kind, key, rules.DashboardURL)
					body, err := json.Marshal(a)
					if err != nil {
						return nil, fmt.Errorf("alerts: encode alert: %w", err)
					}
					out[key] = Record{Key: key, AppID: app, Holder: n.cfg.Holder, State: StateClaimed, Webhook: r.Webhook, Alert: body}
				}
			}
		}
	}
	return out, nil
}

// flagged reports whether g has kind's flag, and the episode that names
// this occurrence of it: a group is new once, regresses once per
// resolution, and escalates at most once a day.
func flagged(g *triage.Group, kind Kind, now time.Time) (string, bool) {
	switch kind {
	case KindNew:
		return "first", g.New
	case KindRegressed:
		return "resolved-" + strconv.FormatInt(g.Status.ChangedAt.Unix(), 10), g.Regressed
	case KindEscalating:
		return now.UTC().Format(time.DateOnly), g.Escalating
	}
	return "", false
}

// alertKey names an alert.
func alertKey(app string, kind Kind, fp uint64, episode, webhook string) string {
	return app + "|" + string(kind) + "|" + fingerprint.Hex(fp) + "|" + episode + "|" + webhook
}

// newAlert describes g's alert of kind.
func newAlert(g *triage.Group, kind Kind, key, dashboardURL string) Alert {
	sum := sha256.Sum256([]byte(key))
	a := Alert{
		ID: hex.EncodeToString(sum[:16]), Kind: kind, AppID: g.AppID, Group: fingerprint.Hex(g.Fingerprint),
		ExceptionType: g.ExceptionType, Message: g.Message, Culprit: g.Culprit,
		Crashes: g.Crashes, Sessions: g.Sessions, Versions: slices.Clone(g.Versions),
		FirstSeen: g.FirstEver.UTC(), LastSeen: g.LastSeen.UTC(),
	}
	if kind == KindRegressed {
		a.ResolvedIn = g.Status.ResolvedIn
	}
	if dashboardURL != "" {
		a.URL = dashboardURL + "/crashes/" + url.PathEscape(g.AppID) + "/" + a.Group
	}
	return a
}
