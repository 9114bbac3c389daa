package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/alerts"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/seed"
)

var shared *chserver.Server

func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }

// secret signs the JSON webhook's bodies.
const secret = "0123456789abcdef-test-secret"

// receiver is a webhook receiver that refuses the first failures
// requests with 503 and records the alerts it takes.
type receiver struct {
	t        *testing.T
	slack    bool
	mu       sync.Mutex
	failures int
	requests int
	taken    map[string][]alerts.Alert // by alert id
	texts    []string                  // Slack texts taken
}

func newReceiver(t *testing.T, slack bool, failures int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, slack: slack, failures: failures, taken: make(map[string][]alerts.Alert)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Error(err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.requests <= r.failures {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	id := req.Header.Get(alerts.HeaderID)
	if r.slack {
		var msg struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.Text == "" || len(msg.Blocks) != 2 || msg.Blocks[0].Type != "section" {
			r.t.Errorf("Slack body %s: %v", body, err)
		}
		r.texts = append(r.texts, msg.Text)
		r.taken[id] = append(r.taken[id], alerts.Alert{ID: id})
		return
	}
	if err := alerts.Verify([]byte(secret), req.Header.Get(alerts.HeaderTimestamp), req.Header.Get(alerts.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var a alerts.Alert
	if err := json.Unmarshal(body, &a); err != nil || a.ID != id {
		r.t.Errorf("alert %s (id header %s): %v", body, id, err)
	}
	r.taken[id] = append(r.taken[id], a)
}

// snapshot returns the alerts taken and the requests received.
func (r *receiver) snapshot() (map[string][]alerts.Alert, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]alerts.Alert, len(r.taken))
	for k, v := range r.taken {
		out[k] = slices.Clone(v)
	}
	return out, r.requests
}

// TestAlertsIntegration is the acceptance test: two collectors
// (Notifiers with their own holder) check the same seeded ClickHouse at
// once; a JSON webhook that fails its first requests and a Slack webhook
// receive exactly one alert per new, regressed and escalating group, the
// failed ones after retries; a restarted Notifier sends nothing again.
func TestAlertsIntegration(t *testing.T) {
	chtest.Require(t, shared)
	// An escalating group alerts once per UTC day: a run across midnight
	// would rightly send its alert twice.
	chtest.ClearOfUTCMidnight(t, time.Minute)
	env := triagetest.Fresh(t, shared, "t_alerts")
	ctx := context.Background()
	// A group resolved in 4.12.1 two days ago that crashed in 4.13.0
	// since regresses (crashes from before a resolve do not count); an
	// ignored group sends nothing.
	regress, _ := seed.BugNamed(seed.BugShareAdapterIndex)
	noise, _ := seed.BugNamed(seed.BugUploadFailed)
	for _, d := range []triage.Decision{
		{AppID: triagetest.AppID, Fingerprint: regress.Fingerprint, State: triage.StateResolved, ResolvedIn: "4.12.1", ChangedBy: "alice",
			ChangedAt: env.Now.Add(-48 * time.Hour)},
		{AppID: triagetest.AppID, Fingerprint: noise.Fingerprint, State: triage.StateIgnored, ChangedBy: "alice"},
	} {
		if err := env.Store.SetStatus(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	// What the dashboard flags today: one JSON alert each.
	list, err := env.Store.List(ctx, triage.Filter{AppID: triagetest.AppID, Days: 1, Status: triage.StatusAll}, triage.ListOptions{PerPage: triage.MaxPerPage})
	if err != nil {
		t.Fatal(err)
	}
	if list.Pages > 1 {
		t.Fatalf("%d groups: more than a page", list.Total)
	}
	groups := list.Groups
	want := make(map[string]bool) // kind/group
	var wantNew int
	for _, g := range groups {
		if g.Status.State == triage.StateIgnored {
			continue
		}
		for kind, on := range map[alerts.Kind]bool{alerts.KindNew: g.New, alerts.KindRegressed: g.Regressed, alerts.KindEscalating: g.Escalating} {
			if on {
				want[string(kind)+"/"+fingerprint.Hex(g.Fingerprint)] = true
				if kind == alerts.KindNew {
					wantNew++
				}
			}
		}
	}
	for _, k := range []alerts.Kind{alerts.KindNew, alerts.KindRegressed, alerts.KindEscalating} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(want)), func(s string) bool { return strings.HasPrefix(s, string(k)+"/") }) {
			t.Fatalf("the seeded data has no %s group: %v", k, want)
		}
	}

	jsonRecv, jsonSrv := newReceiver(t, false, 2)
	slackRecv, slackSrv := newReceiver(t, true, 0)
	rules, err := alerts.ParseRules(fmt.Appendf(nil, `{
  "dashboard_url": "https://crashes.example.com/",
  "webhooks": {
    "oncall": {"url": %q, "format": "json", "secret": %q},
    "team": {"url": %q, "format": "slack"}
  },
  "apps": {
    %q: [
      {"webhook": "oncall"},
      {"webhook": "team", "events": ["new"]}
    ],
    "com.example.quiet": [{"webhook": "oncall"}]
  }
}`, jsonSrv.URL, secret, slackSrv.URL, triagetest.AppID))
	if err != nil {
		t.Fatal(err)
	}
	notifier := func(holder string) *alerts.Notifier {
		n, err := alerts.New(alerts.Config{
			Groups: env.Store, Store: env.Client, Rules: rules, Holder: holder,
			Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := notifier("replica-a"), notifier("replica-b")

	// Both replicas check at once, then again until the retries are
	// done.
	check := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Go(func() { errs[0] = a.Check(ctx) })
		wg.Go(func() { errs[1] = b.Check(ctx) })
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Until every alert is in (a claim that took over a second is sent
	// by the next checks, once every claim has surely landed), then
	// twice more.
	check()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		taken, _ := jsonRecv.snapshot()
		slack, _ := slackRecv.snapshot()
		if len(taken) >= len(want) && len(slack) >= wantNew {
			break
		}
		time.Sleep(100 * time.Millisecond)
		check()
	}
	check()
	check()

	taken, requests := jsonRecv.snapshot()
	got := make(map[string]bool)
	for id, as := range taken {
		if len(as) != 1 {
			t.Errorf("alert %s received %d times", id, len(as))
		}
		x := as[0]
		got[string(x.Kind)+"/"+x.Group] = true
		if x.AppID != triagetest.AppID || x.Crashes == 0 || x.ExceptionType == "" || len(x.Versions) == 0 ||
			x.URL != "https://crashes.example.com/crashes/"+triagetest.AppID+"/"+x.Group {
			t.Errorf("alert %+v", x)
		}
		if x.Kind == alerts.KindRegressed && x.ResolvedIn != "4.12.1" {
			t.Errorf("regressed alert %+v", x)
		}
	}
	if fmt.Sprint(slices.Sorted(maps.Keys(got))) != fmt.Sprint(slices.Sorted(maps.Keys(want))) {
		t.Errorf("JSON webhook got alerts\n%v\nwant\n%v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if requests != len(want)+2 {
		t.Errorf("JSON webhook got %d requests, want %d alerts and the 2 it failed", requests, len(want))
	}
	slackTaken, slackRequests := slackRecv.snapshot()
	if len(slackTaken) != wantNew || slackRequests != wantNew {
		t.Errorf("Slack webhook got %d alerts in %d requests, want %d new groups once each", len(slackTaken), slackRequests, wantNew)
	}
	st := a.Stats()
	stb := b.Stats()
	if st.Sent+stb.Sent != uint64(len(want)+wantNew) || st.Failed+stb.Failed != 2 || st.Dropped+stb.Dropped != 0 {
		t.Errorf("stats %+v and %+v", st, stb)
	}

	// A restarted replica, and the other one, find every alert
	// delivered: nothing is sent again.
	restarted := notifier("replica-a")
	if err := restarted.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, n := jsonRecv.snapshot(); n != requests {
		t.Errorf("after a restart the JSON webhook got %d more requests", n-requests)
	}
	if _, n := slackRecv.snapshot(); n != slackRequests {
		t.Errorf("after a restart the Slack webhook got %d more requests", n-slackRequests)
	}
}
