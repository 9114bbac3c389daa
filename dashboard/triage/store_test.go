package triage

import (
	"context"
	"errors"
	"fmt"
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
	// versions are the versions each group crashed in, at lastSeen.
	versions  map[uint64][]string
	lastSeen  time.Time
	decisions map[uint64]Decision
	changes   []Change
	found     []uint64
	vdays     []VersionDay
	err       error

	mu       sync.Mutex
	scopes   []Scope
	recorded []Decision
}

// record appends xs to *to, one of f's fields, under f.mu: a Store asks
// its Backend from several goroutines at once.
func record[T any](f *fakeBackend, to *[]T, xs ...T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*to = append(*to, xs...)
}

func (f *fakeBackend) saw(s Scope) { record(f, &f.scopes, s) }

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

func (f *fakeBackend) VersionsLastSeen(_ context.Context, _ string, groups []uint64, since time.Time) (map[uint64]map[string]time.Time, error) {
	out := make(map[uint64]map[string]time.Time)
	if f.lastSeen.Before(since.Truncate(24 * time.Hour)) {
		return out, nil
	}
	for _, g := range groups {
		for _, v := range f.versions[g] {
			if out[g] == nil {
				out[g] = make(map[string]time.Time)
			}
			out[g][v] = f.lastSeen
		}
	}
	return out, nil
}

func (f *fakeBackend) SearchGroups(_ context.Context, s Scope, _ string) ([]uint64, error) {
	f.saw(s)
	return f.found, nil
}

func (f *fakeBackend) LatestCrash(context.Context, Scope, time.Time, []string) (Crash, bool, error) {
	return Crash{}, false, nil
}

func (f *fakeBackend) Crashes(context.Context, Scope, []string, int, int) ([]Crash, error) {
	return nil, nil
}

func (f *fakeBackend) HourCells(context.Context, Scope, time.Time, []string) ([]HourCell, error) {
	return nil, nil
}

func (f *fakeBackend) DayCells(context.Context, Scope) ([]DayCell, error) { return nil, nil }

func (f *fakeBackend) DeviceCells(context.Context, Scope, []string) ([]DeviceCell, error) {
	return nil, nil
}

func (f *fakeBackend) VersionDays(_ context.Context, s Scope) ([]VersionDay, error) {
	f.saw(s)
	return f.vdays, nil
}

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

func (f *fakeBackend) RecordDecisions(_ context.Context, ds []Decision) error {
	record(f, &f.recorded, ds...)
	return nil
}

func (f *fakeBackend) LatestChanges(_ context.Context, _ string, kind ChangeKind, groups []uint64) (map[uint64]Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[uint64]Change)
	for _, c := range f.changes {
		if c.Kind == kind && (len(groups) == 0 || slices.Contains(groups, c.Fingerprint)) {
			out[c.Fingerprint] = c
		}
	}
	return out, nil
}

func (f *fakeBackend) ChangeHistory(context.Context, string, []uint64, int) ([]Change, error) {
	return nil, nil
}

func (f *fakeBackend) RecordChanges(_ context.Context, cs []Change) error {
	record(f, &f.changes, cs...)
	return nil
}

// newStore returns a Store over b whose clock stands at now.
func newStore(t *testing.T, b Backend, now time.Time) *Store {
	t.Helper()
	s, err := New(Config{Backend: b, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listed returns the first page of groups of f.
func listed(s *Store, f Filter) ([]Group, error) {
	l, err := s.List(context.Background(), f, ListOptions{})
	if err != nil {
		return nil, err
	}
	return l.Groups, nil
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
		lastSeen:  now.Add(-time.Hour),
		decisions: map[uint64]Decision{
			1: {AppID: "app", Fingerprint: 1, State: StateResolved, ResolvedIn: "4.10", ChangedAt: now.Add(-48 * time.Hour)},
			4: {AppID: "app", Fingerprint: 4, State: StateResolved, ResolvedIn: "4.10", ChangedAt: now.Add(-48 * time.Hour)},
		},
	}
	s := newStore(t, b, now)
	groups, err := listed(s, Filter{AppID: "app", Days: 14, Region: "AT", Status: StatusUnresolved})
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
	if !g1.Regressed || !slices.Equal(g1.RegressedIn, []string{"4.10"}) || g1.Status.State != StateResolved || !slices.Equal(g1.Versions, []string{"4.9", "4.10"}) || g1.Crashes != 50 || g1.Sessions != 12 {
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
	groups, err = listed(s, Filter{AppID: "app", Days: 1, Status: StatusAll})
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
	if _, err := listed(s, Filter{AppID: "app"}); err == nil || !strings.Contains(err.Error(), "down") {
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
	s := newStore(t, b, now)
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

// TestRegressedOnlyByCrashesAfterTheResolve checks the regressed flag: a
// group resolved in 4.10 is regressed by a crash in 4.10 or later made
// after the decision, not by one made before it (the issue: resolving in
// 4.12.1 flagged the group at once), nor by one in an older version.
func TestRegressedOnlyByCrashesAfterTheResolve(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	today := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	resolvedAt := now.Add(-2 * time.Hour)
	for _, tc := range []struct {
		name     string
		versions []string
		lastSeen time.Time
		want     bool
	}{
		{"crashed in 4.10 before the resolve", []string{"4.9", "4.10", "4.11"}, resolvedAt.Add(-time.Minute), false},
		{"crashed in 4.11 after the resolve", []string{"4.11"}, resolvedAt.Add(time.Minute), true},
		{"crashed in 4.10 after the resolve", []string{"4.10"}, resolvedAt.Add(time.Minute), true},
		{"crashed in 4.9 after the resolve", []string{"4.9", "other"}, resolvedAt.Add(time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{
				days:      []GroupDay{{Fingerprint: 1, Day: today, ExceptionTypes: []string{"E"}, Crashes: 3, Sessions: 3, FirstSeen: now, LastSeen: now}},
				firstDays: map[uint64]time.Time{1: today.AddDate(0, 0, -3)},
				versions:  map[uint64][]string{1: tc.versions},
				lastSeen:  tc.lastSeen,
				decisions: map[uint64]Decision{1: {AppID: "app", Fingerprint: 1, State: StateResolved, ResolvedIn: "4.10", ChangedAt: resolvedAt}},
			}
			s := newStore(t, b, now)
			groups, err := listed(s, Filter{AppID: "app", Status: StatusAll})
			if err != nil {
				t.Fatal(err)
			}
			if len(groups) != 1 || groups[0].Regressed != tc.want {
				t.Errorf("groups %+v: want regressed = %v", groups, tc.want)
			}
		})
	}
}

// fiveGroups is a backend with groups 1 to 5 of n sessions and 10n
// crashes on one day, group n last seen n hours before now.
func fiveGroups(now time.Time) *fakeBackend {
	today := now.Truncate(24 * time.Hour)
	b := &fakeBackend{firstDays: map[uint64]time.Time{}}
	for fp := range uint64(5) {
		fp++
		at := now.Add(-time.Duration(fp) * time.Hour)
		b.days = append(b.days, GroupDay{Fingerprint: fp, Day: today, ExceptionTypes: []string{fmt.Sprint("E", fp)}, Crashes: 10 * (6 - fp), Fatal: 10 * (6 - fp),
			Sessions: fp, FirstSeen: at, LastSeen: at, Versions: []string{"4.1"}})
		b.firstDays[fp] = today.AddDate(0, 0, -int(fp))
	}
	return b
}

func fingerprints(groups []Group) []uint64 {
	var out []uint64
	for _, g := range groups {
		out = append(out, g.Fingerprint)
	}
	return out
}

func TestListSortsAndPages(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	s := newStore(t, fiveGroups(now), now)
	f := Filter{AppID: "app", Status: StatusAll}
	for _, tc := range []struct {
		o     ListOptions
		want  []uint64
		pages int
	}{
		{ListOptions{}, []uint64{5, 4, 3, 2, 1}, 1},
		{ListOptions{PerPage: 2}, []uint64{5, 4}, 3},
		{ListOptions{PerPage: 2, Page: 3}, []uint64{1}, 3},
		{ListOptions{PerPage: 2, Page: 4}, nil, 3},
		{ListOptions{Sort: SortCrashes}, []uint64{1, 2, 3, 4, 5}, 1},
		{ListOptions{Sort: SortCrashes, Asc: true, PerPage: 2, Page: 2}, []uint64{3, 2}, 3},
		{ListOptions{Sort: SortLastSeen}, []uint64{1, 2, 3, 4, 5}, 1},
		{ListOptions{Sort: SortFirstSeen, Asc: true}, []uint64{5, 4, 3, 2, 1}, 1},
	} {
		l, err := s.List(context.Background(), f, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := fingerprints(l.Groups); !slices.Equal(got, tc.want) || l.Total != 5 || l.Pages != tc.pages || l.Crashes != 150 {
			t.Errorf("%+v: groups %v of %d in %d pages, %d crashes; want %v of 5 in %d pages, 150 crashes", tc.o, got, l.Total, l.Pages, l.Crashes, tc.want, tc.pages)
		}
	}
	for _, bad := range []ListOptions{{Sort: "title"}, {Page: -1}, {PerPage: MaxPerPage + 1}} {
		if _, err := s.List(context.Background(), f, bad); !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("%+v: %v, want ErrInvalidFilter", bad, err)
		}
	}
}

// TestListMergedGroups checks that a merge applies everywhere a group is
// read: the merged group is counted in the one it joined, with its
// crashes, days, versions and types, under that group's status, and a
// search that finds it lists that group.
func TestListMergedGroups(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	b := fiveGroups(now)
	b.changes = []Change{
		{AppID: "app", Fingerprint: 2, Kind: ChangeMerge, MergedInto: 1},
		{AppID: "app", Fingerprint: 3, Kind: ChangeMerge, MergedInto: 2},
		{AppID: "app", Fingerprint: 4, Kind: ChangeMerge, MergedInto: 0},
		{AppID: "app", Fingerprint: 1, Kind: ChangeAssignee, Value: "bob"},
	}
	b.decisions = map[uint64]Decision{3: {AppID: "app", Fingerprint: 3, State: StateIgnored}}
	s := newStore(t, b, now)
	groups, err := listed(s, Filter{AppID: "app", Status: StatusUnresolved})
	if err != nil {
		t.Fatal(err)
	}
	if got := fingerprints(groups); !slices.Equal(got, []uint64{1, 5, 4}) {
		t.Fatalf("groups %v, want 1 (with 2 and 3; 6 sessions), 5, 4", got)
	}
	g := groups[0]
	if g.Crashes != 50+40+30 || g.Sessions != 6 || !slices.Equal(g.Members, []uint64{2, 3}) || !slices.Equal(g.ExceptionTypes, []string{"E1", "E2", "E3"}) || g.Assignee != "bob" {
		t.Errorf("merged group %+v", g)
	}
	if g.FirstEver != now.Truncate(24*time.Hour).AddDate(0, 0, -3) {
		t.Errorf("first ever %v: want the earliest of the groups'", g.FirstEver)
	}
	b.found = []uint64{3}
	if groups, err = listed(s, Filter{AppID: "app", Status: StatusAll, Search: "E3"}); err != nil || !slices.Equal(fingerprints(groups), []uint64{1}) {
		t.Errorf("search finding a merged group lists %v, %v; want the group it joined", fingerprints(groups), err)
	}
	if groups, err = listed(s, Filter{AppID: "app", Status: StatusAll, Assignee: "bob"}); err != nil || !slices.Equal(fingerprints(groups), []uint64{1}) {
		t.Errorf("assigned to bob: %v, %v", fingerprints(groups), err)
	}
	if _, err := s.Group(context.Background(), Filter{AppID: "app"}, 3, 0); !errors.Is(err, ErrMerged) {
		t.Errorf("Group of a merged group: %v, want ErrMerged", err)
	}
}

func TestListKindReachesTheBackend(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	b := fiveGroups(now)
	s := newStore(t, b, now)
	if _, err := listed(s, Filter{AppID: "app", Kind: KindHandled}); err != nil {
		t.Fatal(err)
	}
	if b.scopes[0].Kind != KindHandled {
		t.Errorf("scope %+v: want handled exceptions only", b.scopes[0])
	}
	if _, err := listed(s, Filter{AppID: "app", Kind: "crashes"}); !errors.Is(err, ErrInvalidFilter) {
		t.Errorf("an unknown kind: %v", err)
	}
}

func TestChangesOfGroups(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	b := &fakeBackend{}
	s := newStore(t, b, now)
	ctx := context.Background()
	if err := s.SetNote(ctx, "app", 1, "Ann (ann@example.com, +43 664 1234567) sees it after login", "alice"); err != nil {
		t.Fatal(err)
	}
	if note := b.changes[0].Value; strings.Contains(note, "ann@example.com") || strings.Contains(note, "1234567") || !strings.Contains(note, "[email]") {
		t.Errorf("note stored as %q: identifiers must be scrubbed", note)
	}
	if root, err := s.Merge(ctx, "app", 1, []uint64{2, 3, 1}, "alice"); err != nil || root != 1 {
		t.Fatalf("Merge = %d, %v", root, err)
	}
	// Merging into a merged group joins the group it is in.
	if root, err := s.Merge(ctx, "app", 2, []uint64{4}, "alice"); err != nil || root != 1 {
		t.Fatalf("Merge into 2 = %d, %v; want 1", root, err)
	}
	if _, err := s.Merge(ctx, "app", 3, []uint64{2}, "alice"); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("merging groups of one group: %v", err)
	}
	if err := s.Assign(ctx, "app", []uint64{3}, "bob", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmerge(ctx, "app", 2, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmerge(ctx, "app", 5, "alice"); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("unmerging a group that is not merged: %v", err)
	}
	var got []string
	for _, c := range b.changes[1:] {
		got = append(got, fmt.Sprintf("%s %d>%d%s", c.Kind, c.Fingerprint, c.MergedInto, c.Value))
	}
	want := "merged_into 2>1 merged_into 3>1 merged_into 4>1 assignee 1>0bob merged_into 2>0"
	if strings.Join(got, " ") != want {
		t.Errorf("changes %q\nwant     %q", strings.Join(got, " "), want)
	}
	if err := s.SetStatus(ctx, Decision{AppID: "app", Fingerprint: 4, State: StateResolved, ResolvedIn: "4.14.0"}); err != nil || b.recorded[0].Fingerprint != 1 {
		t.Errorf("resolving a merged group: %v, %+v; want its group resolved", err, b.recorded)
	}
	if err := s.SetStatus(ctx, Decision{AppID: "app", Fingerprint: 1, State: StateResolved, ResolvedIn: "soon"}); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("resolving in %q: %v", "soon", err)
	}
}

// TestOverviewDaysWithoutSessions checks that a day without sessions has
// no crash-free rate (the page showed 100.00%), and that small versions
// are shown by major version.
func TestOverviewDaysWithoutSessions(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	today := now.Truncate(24 * time.Hour)
	b := &fakeBackend{vdays: []VersionDay{
		{Day: today, AppVersion: "4.12.0", Sessions: 40},
		{Day: today, AppVersion: "4.12.0", Crashed: 2, Crashes: 3},
		{Day: today.AddDate(0, 0, -2), AppVersion: "4.11.0", Sessions: 6},
		{Day: today.AddDate(0, 0, -2), AppVersion: "4.10.0", Sessions: 5},
	}}
	s := newStore(t, b, now)
	o, err := s.Overview(context.Background(), Filter{AppID: "app", Days: 3, Kind: KindHandled})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := o.Days[1].CrashFree(); ok {
		t.Errorf("a day without sessions has a crash-free rate %v", r)
	}
	if r, ok := o.Days[2].CrashFree(); !ok || r != 0.95 {
		t.Errorf("today: %v, %v; want 95%%", r, ok)
	}
	var got []string
	for _, v := range o.Versions {
		got = append(got, fmt.Sprintf("%s:%d", v.Version, v.Sessions))
	}
	if strings.Join(got, " ") != "4.12.0:40 other 4.x:11" || o.GeneralizedVersions != 2 {
		t.Errorf("versions %v", got)
	}
	if a := o.Adoption[0]; !slices.Equal(a.Versions, []uint64{0, 11}) || a.Other != 0 {
		t.Errorf("adoption two days ago: %+v", a)
	}
	if b.scopes[0].Kind != KindAll {
		t.Error("the overview counts crashed sessions of every kind of crash")
	}
}

func TestCrashWindow(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	s := newStore(t, &fakeBackend{}, now)
	f := Filter{AppID: "app", Days: 4}
	day := func(i int) string { return now.Truncate(24*time.Hour).AddDate(0, 0, i-3).Format("01-02") }
	// Oldest first: 30, 0, 5 and 25 crashes today.
	daily := []uint64{30, 0, 5, 25}
	for _, tc := range []struct {
		offset      int
		first, last string
		rel         int
		ok          bool
	}{
		{0, day(3), day(3), 0, true},   // today's 25 hold the first 20
		{20, day(0), day(3), 20, true}, // 5 of today, 5 two days ago, 10 of day 0
		{40, day(0), day(0), 10, true},
		{59, day(0), day(0), 29, true},
		{60, "", "", 0, false},
	} {
		sc, rel, ok := s.crashWindow(f, Scope{}, daily, tc.offset)
		if ok != tc.ok || ok && (sc.First.Format("01-02") != tc.first || sc.Last.Format("01-02") != tc.last || rel != tc.rel) {
			t.Errorf("offset %d: %s to %s from %d, %v; want %s to %s from %d, %v", tc.offset, sc.First.Format("01-02"), sc.Last.Format("01-02"), rel, ok, tc.first, tc.last, tc.rel, tc.ok)
		}
	}
}
