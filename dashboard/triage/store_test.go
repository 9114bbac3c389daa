package triage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend answers from fields and records the scopes it was asked
// about.
type fakeBackend struct {
	days      []GroupDay
	firstDays map[uint64]time.Time
	versions  map[uint64][]string
	decisions map[uint64]Decision
	err       error

	mu       sync.Mutex
	scopes   []Scope
	recorded []Decision
}

func (f *fakeBackend) saw(s Scope) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scopes = append(f.scopes, s)
}

func (f *fakeBackend) GroupDays(_ context.Context, s Scope) ([]GroupDay, error) {
	f.saw(s)
	return slices.Clone(f.days), f.err
}

func (f *fakeBackend) GroupTitles(_ context.Context, s Scope) (map[uint64]Title, error) {
	f.saw(s)
	out := make(map[uint64]Title)
	for _, g := range s.Groups {
		out[g] = Title{Message: "boom", Culprit: "f"}
	}
	return out, nil
}

func (f *fakeBackend) FirstCrashDays(context.Context, string, []uint64) (map[uint64]time.Time, error) {
	return f.firstDays, nil
}

func (f *fakeBackend) FirstCrashTimes(_ context.Context, _ string, groups []uint64) (map[uint64]time.Time, error) {
	out := make(map[uint64]time.Time)
	for _, g := range groups {
		out[g] = f.firstDays[g].Add(time.Hour)
	}
	return out, nil
}

func (f *fakeBackend) CrashedVersions(_ context.Context, _ string, groups []uint64) (map[uint64][]string, error) {
	out := make(map[uint64][]string)
	for _, g := range groups {
		out[g] = f.versions[g]
	}
	return out, nil
}

func (f *fakeBackend) LatestCrash(context.Context, Scope, time.Time, []string) (Crash, bool, error) {
	return Crash{}, false, nil
}

func (f *fakeBackend) DayCells(context.Context, Scope) ([]DayCell, error) { return nil, nil }

func (f *fakeBackend) DeviceCells(context.Context, Scope, []string) ([]DeviceCell, error) {
	return nil, nil
}

func (f *fakeBackend) VersionDays(context.Context, Scope) ([]VersionDay, error) { return nil, nil }

func (f *fakeBackend) AppIDs(context.Context) ([]string, error) { return []string{"app"}, nil }

func (f *fakeBackend) FilterValues(_ context.Context, s Scope, _ int) (*FilterValues, error) {
	f.saw(s)
	return &FilterValues{AppVersions: []string{"4.9", "4.10"}, Countries: []string{"AT"}, Regions: []string{"AT-9"}}, nil
}

func (f *fakeBackend) LatestDecisions(context.Context, string, []uint64) (map[uint64]Decision, error) {
	return f.decisions, nil
}

func (f *fakeBackend) DecisionHistory(context.Context, string, uint64, int) ([]Decision, error) {
	return nil, nil
}

func (f *fakeBackend) RecordDecision(_ context.Context, d Decision) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = append(f.recorded, d)
	return nil
}

// TestGroupsFromBackend checks what a Store makes of a Backend's answers:
// the scope it asks about, the ranking, the status selection and the
// regressed, new and escalating flags.
func TestGroupsFromBackend(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	today := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	day := func(fp uint64, ago int, crashes, sessions uint64, versions ...string) GroupDay {
		at := today.AddDate(0, 0, -ago).Add(time.Hour)
		return GroupDay{Fingerprint: fp, Day: today.AddDate(0, 0, -ago), ExceptionTypes: []string{"E"}, Crashes: crashes, Fatal: crashes,
			Sessions: sessions, FirstSeen: at, LastSeen: at.Add(time.Hour), Versions: versions}
	}
	b := &fakeBackend{
		days: []GroupDay{
			day(3, 0, 5, 5),
			day(1, 0, 8, 6, "4.10"), day(1, 3, 42, 6, "4.9"),
			// Group 2 crashes 20 times today after 2 a day: escalating.
			day(2, 0, 20, 5), day(2, 1, 2, 1), day(2, 2, 2, 1), day(2, 3, 2, 1), day(2, 4, 2, 1), day(2, 5, 2, 1), day(2, 6, 2, 1), day(2, 7, 2, 1),
			day(4, 0, 70, 30),
		},
		firstDays: map[uint64]time.Time{1: today.AddDate(0, 0, -30), 2: today.AddDate(0, 0, -30), 3: today, 4: today.AddDate(0, 0, -30)},
		versions:  map[uint64][]string{1: {"4.9", "4.10"}, 4: {"4.9"}},
		decisions: map[uint64]Decision{
			1: {AppID: "app", Fingerprint: 1, State: StateResolved, ResolvedIn: "4.10"},
			4: {AppID: "app", Fingerprint: 4, State: StateResolved, ResolvedIn: "4.10"},
		},
	}
	s, err := New(Config{Backend: b, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := s.Groups(t.Context(), Filter{AppID: "app", Days: 14, Region: "AT", Status: StatusUnresolved}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fps []uint64
	for _, g := range groups {
		fps = append(fps, g.Fingerprint)
	}
	// 4 is resolved for good; 1 before 2 on crashes (both 12 sessions);
	// 3 has fewest sessions.
	if want := []uint64{1, 2, 3}; !slices.Equal(fps, want) {
		t.Fatalf("groups %v, want %v", fps, want)
	}
	g1 := groups[0]
	if !g1.Regressed || g1.Status.State != StateResolved || !slices.Equal(g1.Versions, []string{"4.9", "4.10"}) || g1.Crashes != 50 || g1.Sessions != 12 {
		t.Errorf("group 1: %+v; want regressed, versions oldest first, the days summed", g1)
	}
	if !g1.FirstSeen.Equal(today.AddDate(0, 0, -3).Add(time.Hour)) || !g1.LastSeen.Equal(today.Add(2*time.Hour)) || g1.Daily[13] != 8 || g1.Daily[10] != 42 {
		t.Errorf("group 1: seen %v to %v, daily %v", g1.FirstSeen, g1.LastSeen, g1.Daily)
	}
	if !groups[1].Escalating || groups[0].Escalating || groups[1].New || !groups[2].New {
		t.Errorf("flags: %+v", groups)
	}
	if groups[2].FirstEver != today.Add(time.Hour) || groups[0].Message != "boom" || groups[0].ExceptionType != "E" {
		t.Errorf("group 3: first ever %v (want the exact time of a recent group); group 1: %q, %q", groups[2].FirstEver, groups[0].Message, groups[0].ExceptionType)
	}
	// One day: only today's crashes count, the escalation looks back a
	// week all the same.
	groups, err = s.Groups(t.Context(), Filter{AppID: "app", Days: 1, Status: StatusAll}, 0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(groups, func(g Group) bool { return g.Fingerprint == 2 })
	if len(groups) != 4 || i < 0 || groups[i].Crashes != 20 || !groups[i].Escalating || len(groups[i].Daily) != 1 {
		t.Errorf("today: %+v", groups)
	}

	sc := b.scopes[0]
	if sc.Country != "AT" || sc.Region != "" || sc.AppID != "app" || !sc.Last.Equal(today) || sc.First.After(today.AddDate(0, 0, -13)) {
		t.Errorf("scope %+v: want AT as a country, the 14 days ending today", sc)
	}

	b.err = errors.New("down")
	if _, err := s.Groups(t.Context(), Filter{AppID: "app"}, 0); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("a failing backend: %v", err)
	}
}

// TestOptionsFromBackend checks that countries and regions are offered
// together and versions newest first.
func TestOptionsFromBackend(t *testing.T) {
	b := &fakeBackend{}
	s, err := New(Config{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	o, err := s.Options(t.Context(), Filter{AppID: "app", AppVersion: "4.9", Region: "AT-9"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Apps, []string{"app"}) || !slices.Equal(o.AppVersions, []string{"4.10", "4.9"}) || !slices.Equal(o.Regions, []string{"AT", "AT-9"}) {
		t.Errorf("options %+v", o)
	}
	if sc := b.scopes[0]; sc.AppVersion != "" || sc.Region != "" {
		t.Errorf("filter values asked within the filter's own dimensions: %+v", sc)
	}
}

func TestSetStatus(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	b := &fakeBackend{}
	s, err := New(Config{Backend: b, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(t.Context(), Decision{AppID: "app", Fingerprint: 1, State: StateIgnored, ChangedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(t.Context(), Decision{AppID: "app", Fingerprint: 1, State: StateResolved}); err == nil {
		t.Error("a resolved decision without a version was recorded")
	}
	if len(b.recorded) != 1 || !b.recorded[0].ChangedAt.Equal(now) {
		t.Errorf("recorded %+v; want one decision made now", b.recorded)
	}
}

func TestDecisionValidate(t *testing.T) {
	at := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    Decision
		want string // "" for valid
	}{
		{Decision{AppID: "a", State: StateOpen, ChangedAt: at}, ""},
		{Decision{AppID: "a", State: StateResolved, ResolvedIn: "4.12.1", ChangedAt: at}, ""},
		{Decision{AppID: "a", State: StateIgnored, ChangedBy: "alice", ChangedAt: at}, ""},
		{Decision{State: StateOpen, ChangedAt: at}, "app id"},
		{Decision{AppID: "a", State: "fixed", ChangedAt: at}, "not open, resolved or ignored"},
		{Decision{AppID: "a", State: StateResolved, ChangedAt: at}, "needs the version"},
		{Decision{AppID: "a", State: StateIgnored, ResolvedIn: "4.12.1", ChangedAt: at}, "only a resolved group"},
		{Decision{AppID: "a", State: StateOpen, ChangedBy: strings.Repeat("x", 65), ChangedAt: at}, "limited to 64 bytes"},
		{Decision{AppID: "a", State: StateOpen}, "outside 1970 to 2106"},
		{Decision{AppID: "a", State: StateOpen, ChangedAt: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside 1970 to 2106"},
	} {
		err := tc.d.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.d, err, tc.want)
		}
	}
}
