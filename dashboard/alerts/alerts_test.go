package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// memStore is a Store in memory, with a clock that moves a second per
// record (ClickHouse stamps to the second).
type memStore struct {
	mu   sync.Mutex
	recs []Record
	now  time.Time
	fail error
}

func (m *memStore) RecordAlerts(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, r := range recs {
		r.At = m.now
		m.recs = append(m.recs, r)
	}
	return nil
}

func (m *memStore) AlertRecords(_ context.Context, keys []string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.recs {
		if slices.Contains(keys, r.Key) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) HeldAlerts(_ context.Context, holder string, since time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		if r.Holder == holder && r.State == StateClaimed && !r.At.Before(since) && !slices.Contains(out, r.Key) {
			out = append(out, r.Key)
		}
	}
	return out, nil
}

// states returns the states recorded, in order.
func (m *memStore) states() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, r := range m.recs {
		out = append(out, r.State)
	}
	return out
}

// groupList is a GroupLister of fixed groups.
type groupList []triage.Group

func (g groupList) List(_ context.Context, f triage.Filter, _ triage.ListOptions) (*triage.GroupList, error) {
	var out []triage.Group
	for _, x := range g {
		if x.AppID == f.AppID {
			out = append(out, x)
		}
	}
	return &triage.GroupList{Groups: out, Total: len(out), Pages: 1}, nil
}

var testNow = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func testRules(t *testing.T, url, rules string) *Rules {
	t.Helper()
	r, err := ParseRules(fmt.Appendf(nil, `{"webhooks": {"hook": {"url": %q, "secret": "0123456789abcdef"}}, "apps": {"app": %s}}`, url, rules))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// flakyHook answers with the statuses in turn, then 200.
func flakyHook(t *testing.T, statuses ...int) (*httptest.Server, func() int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if n < len(statuses) {
			w.WriteHeader(statuses[n])
		}
		n++
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func newTestNotifier(t *testing.T, store *memStore, groups groupList, rules *Rules, holder string, cfg Config) *Notifier {
	t.Helper()
	cfg.Groups, cfg.Store, cfg.Rules, cfg.Holder = groups, store, rules, holder
	cfg.Settle = time.Millisecond
	cfg.Now = func() time.Time { return store.now }
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var newGroup = triage.Group{AppID: "app", Fingerprint: 0xabc, ExceptionType: "java.lang.NullPointerException", Message: "title is null",
	Crashes: 12, Sessions: 9, Versions: []string{"4.12.0"}, New: true, FirstEver: testNow.Add(-time.Hour), LastSeen: testNow}

// TestRetryBoundAndBackoff: a failing receiver gets MaxAttempts
// attempts, each after its backoff, then the alert is dropped.
func TestRetryBoundAndBackoff(t *testing.T) {
	srv, requests := flakyHook(t, 500, 500, 500, 500)
	store := &memStore{now: testNow}
	n := newTestNotifier(t, store, groupList{newGroup}, testRules(t, srv.URL, `[{"webhook": "hook"}]`), "a",
		Config{MaxAttempts: 3, Backoff: time.Minute, MaxBackoff: time.Hour})
	ctx := context.Background()
	check := func() {
		t.Helper()
		if err := n.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check() // attempt 1 fails
	check() // not due yet
	if requests() != 1 {
		t.Fatalf("%d requests before the backoff passed", requests())
	}
	store.now = store.now.Add(time.Minute)
	check() // attempt 2 fails, next in 2 minutes
	store.now = store.now.Add(time.Minute)
	check()
	if requests() != 2 {
		t.Fatalf("%d requests: the second backoff is not doubled", requests())
	}
	store.now = store.now.Add(time.Minute)
	check() // attempt 3 fails: dropped
	store.now = store.now.Add(time.Hour)
	check()
	if requests() != 3 {
		t.Errorf("%d requests, want MaxAttempts = 3", requests())
	}
	if got := fmt.Sprint(store.states()); got != "[claimed failed failed dropped]" {
		t.Errorf("records %s", got)
	}
	if st := n.Stats(); st != (Stats{Failed: 3, Dropped: 1}) {
		t.Errorf("stats %+v", st)
	}
}

// TestRestartResumes: a claim without an outcome (the replica stopped
// before its attempt) is sent by the same holder after a restart; a sent
// alert is not sent again.
func TestRestartResumes(t *testing.T) {
	srv, requests := flakyHook(t)
	store := &memStore{now: testNow}
	rules := testRules(t, srv.URL, `[{"webhook": "hook"}]`)
	groups := groupList{newGroup}
	// The first run claimed and stopped.
	first := newTestNotifier(t, store, groups, rules, "a", Config{})
	cands, err := first.candidates(context.Background())
	if err != nil || len(cands) != 1 {
		t.Fatal(cands, err)
	}
	for _, c := range cands {
		if err := store.RecordAlerts(context.Background(), []Record{c}); err != nil {
			t.Fatal(err)
		}
	}
	// Another replica sees the claim and leaves it alone.
	other := newTestNotifier(t, store, groups, rules, "b", Config{})
	if err := other.Check(context.Background()); err != nil || requests() != 0 {
		t.Fatalf("the other replica sent %d: %v", requests(), err)
	}
	// The restarted replica sends it once its claim has settled.
	store.now = store.now.Add(time.Second)
	restarted := newTestNotifier(t, store, groups, rules, "a", Config{})
	for range 3 {
		if err := restarted.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if requests() != 1 || fmt.Sprint(store.states()) != "[claimed sent]" {
		t.Errorf("%d requests, records %v", requests(), store.states())
	}
}

// TestRules checks which groups the rules alert: kinds, minimum counts,
// quiet hours, ignored groups, and one alert per rule and webhook.
func TestRules(t *testing.T) {
	esc := newGroup
	esc.Fingerprint, esc.New, esc.Escalating = 0xdef, false, true
	reg := newGroup
	reg.Fingerprint, reg.New, reg.Regressed = 0x123, false, true
	reg.Status = triage.Decision{State: triage.StateResolved, ResolvedIn: "4.11.0", ChangedAt: testNow.Add(-48 * time.Hour)}
	ign := newGroup
	ign.Fingerprint, ign.Status = 0x456, triage.Decision{State: triage.StateIgnored}
	small := newGroup
	small.Fingerprint, small.Crashes, small.Sessions = 0x789, 2, 2
	groups := groupList{newGroup, esc, reg, ign, small}
	for _, tc := range []struct {
		name, rules string
		want        []string
	}{
		{"every kind", `[{"webhook": "hook"}]`, []string{"escalating|0000000000000def", "new|0000000000000789", "new|0000000000000abc", "regressed|0000000000000123"}},
		{"kinds", `[{"webhook": "hook", "events": ["regressed", "escalating"]}]`, []string{"escalating|0000000000000def", "regressed|0000000000000123"}},
		{"minimum crashes", `[{"webhook": "hook", "events": ["new"], "min_crashes": 5}]`, []string{"new|0000000000000abc"}},
		{"minimum sessions", `[{"webhook": "hook", "events": ["new"], "min_sessions": 10}]`, nil},
		{"quiet now", `[{"webhook": "hook", "quiet_hours": "11:30-13:00"}]`, nil},
		{"quiet overnight", `[{"webhook": "hook", "events": ["new"], "quiet_hours": "22:00-07:00"}]`, []string{"new|0000000000000789", "new|0000000000000abc"}},
		{"two rules, one webhook", `[{"webhook": "hook", "events": ["new"]}, {"webhook": "hook", "events": ["new"], "min_crashes": 5}]`,
			[]string{"new|0000000000000789", "new|0000000000000abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &memStore{now: testNow}
			n := newTestNotifier(t, store, groups, testRules(t, "http://127.0.0.1:1", tc.rules), "a", Config{})
			cands, err := n.candidates(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range cands {
				parts := strings.Split(k, "|")
				got = append(got, parts[1]+"|"+parts[2])
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("alerts %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEpisodes: a group regresses once per resolution and escalates at
// most once a day.
func TestEpisodes(t *testing.T) {
	g := newGroup
	g.Escalating, g.Regressed = true, true
	g.Status = triage.Decision{State: triage.StateResolved, ChangedAt: testNow.Add(-time.Hour)}
	e1, _ := flagged(&g, KindEscalating, testNow)
	e2, _ := flagged(&g, KindEscalating, testNow.Add(6*time.Hour))
	e3, _ := flagged(&g, KindEscalating, testNow.Add(24*time.Hour))
	if e1 != e2 || e1 == e3 {
		t.Errorf("escalation episodes %q, %q, %q", e1, e2, e3)
	}
	r1, _ := flagged(&g, KindRegressed, testNow)
	g.Status.ChangedAt = testNow
	r2, _ := flagged(&g, KindRegressed, testNow)
	if r1 == r2 {
		t.Errorf("a new resolution keeps the regression episode %q", r1)
	}
}

// TestFold: the earliest claim wins, ties by holder; the winner's latest
// attempt is the state; another holder's attempt is noticed.
func TestFold(t *testing.T) {
	t0 := testNow
	recs := []Record{
		{Key: "k", Holder: "b", State: StateClaimed, At: t0},
		{Key: "k", Holder: "a", State: StateClaimed, At: t0},
		{Key: "k", Holder: "c", State: StateClaimed, At: t0.Add(-time.Second)},
		{Key: "k", Holder: "c", State: StateFailed, Attempt: 1, NextAt: t0.Add(time.Minute), At: t0},
		{Key: "k", Holder: "c", State: StateSent, Attempt: 2, At: t0.Add(2 * time.Minute)},
		{Key: "k", Holder: "c", State: StateFailed, Attempt: 1, At: t0}, // a repeated record
		{Key: "j", Holder: "b", State: StateClaimed, At: t0},
		{Key: "j", Holder: "a", State: StateClaimed, At: t0},
		{Key: "j", Holder: "b", State: StateSent, Attempt: 1, At: t0},
	}
	st := fold(recs)
	if k := st["k"]; k.winner != "c" || k.state != StateSent || k.lastAttempt != 2 || k.others {
		t.Errorf("k: %+v", k)
	}
	if j := st["j"]; j.winner != "a" || j.state != StateClaimed || !j.others {
		t.Errorf("j: %+v", j)
	}
}

// TestRemovedWebhookDrops: an alert whose webhook left the rules is
// dropped, not retried forever.
func TestRemovedWebhookDrops(t *testing.T) {
	store := &memStore{now: testNow}
	n := newTestNotifier(t, store, groupList{newGroup}, testRules(t, "http://127.0.0.1:1", `[{"webhook": "hook"}]`), "a", Config{})
	claim := Record{Key: "k", AppID: "app", Holder: "a", State: StateClaimed, Webhook: "gone", Alert: []byte(`{}`)}
	if err := n.attempt(context.Background(), claim, 1); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(store.states()) != "[dropped]" {
		t.Errorf("records %v", store.states())
	}
}

// TestStoreErrors: a Store that fails fails the check, and nothing is
// sent.
func TestStoreErrors(t *testing.T) {
	srv, requests := flakyHook(t)
	store := &memStore{now: testNow, fail: errors.New("clickhouse down")}
	n := newTestNotifier(t, store, groupList{newGroup}, testRules(t, srv.URL, `[{"webhook": "hook"}]`), "a", Config{})
	if err := n.Check(context.Background()); err == nil || requests() != 0 {
		t.Errorf("Check = %v with %d requests", err, requests())
	}
}

func TestParseRules(t *testing.T) {
	for _, tc := range []struct {
		name, rules, err string
	}{
		{"ok", `{"webhooks": {"s": {"url": "https://hooks.slack.com/services/T/B/x", "format": "slack"}}, "apps": {"a": [{"webhook": "s"}]}}`, ""},
		{"unknown field", `{"webhooks": {}, "apps": {}, "dashbord_url": "x"}`, "unknown field"},
		{"unknown webhook", `{"webhooks": {}, "apps": {"a": [{"webhook": "s"}]}}`, `no webhook named "s"`},
		{"bad url", `{"webhooks": {"s": {"url": "ftp://secret-token@x", "format": "slack"}}, "apps": {}}`, "not an http or https URL"},
		{"json without secret", `{"webhooks": {"s": {"url": "https://x"}}, "apps": {}}`, "needs a secret"},
		{"bad format", `{"webhooks": {"s": {"url": "https://x", "format": "xml"}}, "apps": {}}`, `format "xml"`},
		{"bad event", `{"webhooks": {"s": {"url": "https://x", "format": "slack"}}, "apps": {"a": [{"webhook": "s", "events": ["fixed"]}]}}`, `event "fixed"`},
		{"bad quiet hours", `{"webhooks": {"s": {"url": "https://x", "format": "slack"}}, "apps": {"a": [{"webhook": "s", "quiet_hours": "22-7"}]}}`, "quiet hours"},
		{"trailing data", `{"webhooks": {}, "apps": {}} {}`, "after the rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.rules))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one with %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error %v quotes the webhook URL", err)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("0123456789abcdef"), []byte(`{"id":"x"}`)
	ts := testNow.Unix()
	sig := Sign(secret, ts, body)
	ok := func(err error) bool { return err == nil }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"valid", Verify(secret, fmt.Sprint(ts), sig, body, testNow, time.Minute), true},
		{"other body", Verify(secret, fmt.Sprint(ts), sig, []byte(`{"id":"y"}`), testNow, time.Minute), false},
		{"other secret", Verify([]byte("another secret!!"), fmt.Sprint(ts), sig, body, testNow, time.Minute), false},
		{"other timestamp", Verify(secret, fmt.Sprint(ts+1), sig, body, testNow, time.Minute), false},
		{"too old", Verify(secret, fmt.Sprint(ts), sig, body, testNow.Add(10*time.Minute), time.Minute), false},
		{"no timestamp", Verify(secret, "", sig, body, testNow, time.Minute), false},
	} {
		if ok(tc.err) != tc.want {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	// The documented recipe: "v1=" and the hex HMAC-SHA-256 of
	// "timestamp.body".
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.%s", ts, body)
	if want := "v1=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
}

func TestSlackBody(t *testing.T) {
	a := Alert{Kind: KindRegressed, AppID: "app", ExceptionType: "E", Message: "a <b> & `c`", Culprit: "X.y", Crashes: 3, Sessions: 2,
		Versions: []string{"1.0"}, ResolvedIn: "0.9", FirstSeen: testNow, URL: "https://d/crashes/app/1"}
	b, err := slackBody(&a)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text != "Regressed crash group in app (resolved in 0.9): E: a &lt;b&gt; &amp; `c`" || len(msg.Blocks) != 2 ||
		!strings.Contains(msg.Blocks[0].Text.Text, "<https://d/crashes/app/1|Open in the dashboard>") {
		t.Errorf("Slack message %s", b)
	}
}
