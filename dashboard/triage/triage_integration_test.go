package triage_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/seed"
	"github.com/consentry/consentry/pipeline"
)

var shared *chserver.Server

func TestMain(m *testing.M) { os.Exit(chtest.Main(m, &shared)) }

// seeded returns a freshly seeded database named for the test.
func seeded(t *testing.T) *triagetest.Env {
	t.Helper()
	return triagetest.Fresh(t, shared, "t_"+strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())))
}

// list returns every group of f, in the default order, or an error.
func list(t *testing.T, env *triagetest.Env, f triage.Filter) ([]triage.Group, error) {
	t.Helper()
	l, err := env.Store.List(context.Background(), f, triage.ListOptions{PerPage: triage.MaxPerPage})
	if err != nil {
		return nil, err
	}
	return l.Groups, nil
}

// crashAgain stores one more crash of the group fp in version, after the
// Store's clock start by after (within the last day): a copy of a stored
// crash of the group with a new event id.
func crashAgain(t *testing.T, env *triagetest.Env, fp uint64, version string, after time.Duration) {
	t.Helper()
	i := slices.IndexFunc(env.Rows.Crashes, func(c pipeline.CrashRow) bool { return c.Fingerprint == fp })
	if i < 0 {
		t.Fatalf("no crash of %016x", fp)
	}
	c := env.Rows.Crashes[i]
	c.EventID = [16]byte{byte(after), byte(len(version)), 0xc0, 0xff, 0xee}
	c.EventTime = env.Now.Add(after)
	c.AppVersion = version
	if err := env.Client.Insert(context.Background(), &pipeline.Rows{Crashes: []pipeline.CrashRow{c}}); err != nil {
		t.Fatal(err)
	}
}

// byName maps the catalogue's bugs to the groups listed.
func byName(t *testing.T, groups []triage.Group) map[string]triage.Group {
	t.Helper()
	out := make(map[string]triage.Group)
	for _, b := range seed.Bugs() {
		for _, g := range groups {
			if g.Fingerprint == b.Fingerprint {
				out[b.Name] = g
			}
		}
	}
	return out
}

// TestGroupsIntegration checks grouping, ranking and the flags over a
// seeded fortnight: one group per bug of the catalogue, whatever its
// versions, addresses, line numbers and scrubbed messages; counts that
// match the raw rows; the new, escalating and regressed flags on the bugs
// that play them and on no other.
func TestGroupsIntegration(t *testing.T) {
	env := seeded(t)
	f := triage.Filter{AppID: triagetest.AppID, Days: triagetest.Days, Status: triage.StatusAll}
	groups, err := list(t, env, f)
	if err != nil {
		t.Fatal(err)
	}
	bugs := seed.Bugs()
	if len(groups) != len(bugs) {
		t.Fatalf("%d groups, want one per bug: %d", len(groups), len(bugs))
	}
	named := byName(t, groups)
	if len(named) != len(bugs) {
		t.Fatalf("groups match %d of %d bugs", len(named), len(bugs))
	}
	// Counts agree with the rows stored.
	want := make(map[uint64]uint64)
	for _, c := range env.Rows.Crashes {
		want[c.Fingerprint]++
	}
	for name, g := range named {
		if g.Crashes != want[g.Fingerprint] {
			t.Errorf("%s: %d crashes, want %d", name, g.Crashes, want[g.Fingerprint])
		}
		if g.Sessions == 0 || g.Sessions > g.Crashes {
			t.Errorf("%s: %d sessions for %d crashes", name, g.Sessions, g.Crashes)
		}
		if len(g.Daily) != triagetest.Days || g.ExceptionType == "" || g.Culprit == "" {
			t.Errorf("%s: %d days, type %q, culprit %q", name, len(g.Daily), g.ExceptionType, g.Culprit)
		}
	}
	// Ranked by affected sessions.
	if !slices.IsSortedFunc(groups, func(a, b triage.Group) int { return int(b.Sessions) - int(a.Sessions) }) {
		t.Error("groups are not ranked by sessions")
	}
	for _, b := range bugs {
		g := named[b.Name]
		if wantNew := b.LastDayOnly; g.New != wantNew {
			t.Errorf("%s: new = %v, want %v", b.Name, g.New, wantNew)
		}
		// A new bug escalates if it crashes often enough on its first day.
		if wantEsc := b.LastDayFactor >= 5; !b.LastDayOnly && g.Escalating != wantEsc {
			t.Errorf("%s: escalating = %v, want %v (daily %v)", b.Name, g.Escalating, wantEsc, g.Daily)
		}
		if g.Regressed || g.Status.State != triage.StateOpen {
			t.Errorf("%s: %+v before any triage", b.Name, g.Status)
		}
		// Old versions fade out: a bug need not crash in each of its
		// versions within the fortnight, but in no other.
		for _, v := range g.Versions {
			if !slices.Contains(b.Versions, v) {
				t.Errorf("%s: crashed in %s, want only %v", b.Name, v, b.Versions)
			}
		}
	}
}

// TestTriageStatesIntegration resolves, ignores and reopens groups: a
// group resolved in 4.12.1 after all its crashes (some in 4.13.0) is
// resolved, not regressed; a crash in an older version after the resolve
// changes nothing; one in 4.13.0 after it makes it regressed, back in the
// unresolved list; one fixed for good moves to the resolved list; an
// ignored one leaves the unresolved list.
func TestTriageStatesIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	regress, _ := seed.BugNamed(seed.BugShareAdapterIndex)
	fixed, _ := seed.BugNamed(seed.BugSyncNullTitle)
	noise, _ := seed.BugNamed(seed.BugUploadFailed)
	set := func(fp uint64, state triage.State, version string) {
		t.Helper()
		err := env.Store.SetStatus(ctx, triage.Decision{AppID: triagetest.AppID, Fingerprint: fp, State: state, ResolvedIn: version, ChangedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
	}
	set(regress.Fingerprint, triage.StateResolved, "4.12.1")
	set(fixed.Fingerprint, triage.StateResolved, "4.12.1")
	set(noise.Fingerprint, triage.StateIgnored, "")

	list := func(st triage.Status) map[string]triage.Group {
		t.Helper()
		groups, err := list(t, env, triage.Filter{AppID: triagetest.AppID, Status: st})
		if err != nil {
			t.Fatal(err)
		}
		return byName(t, groups)
	}
	if _, ok := list(triage.StatusUnresolved)[seed.BugShareAdapterIndex]; ok {
		t.Error("a group resolved after its crashes in 4.13.0 is unresolved: crashes from before the resolve count")
	}
	if g, ok := list(triage.StatusResolved)[seed.BugShareAdapterIndex]; !ok || g.Regressed || g.Status.ResolvedIn != "4.12.1" || g.Status.ChangedBy != "alice" {
		t.Errorf("group resolved in 4.12.1 in the resolved list: %v, %+v", ok, g)
	}
	crashAgain(t, env, regress.Fingerprint, "4.12.0", 20*time.Second)
	if g, ok := list(triage.StatusResolved)[seed.BugShareAdapterIndex]; !ok || g.Regressed {
		t.Errorf("a crash in 4.12.0 after the resolve in 4.12.1 regressed it: %v, %+v", ok, g)
	}
	crashAgain(t, env, regress.Fingerprint, "4.13.0", 30*time.Second)
	unresolved := list(triage.StatusUnresolved)
	if g, ok := unresolved[seed.BugShareAdapterIndex]; !ok || !g.Regressed || !slices.Equal(g.RegressedIn, []string{"4.13.0"}) || g.Status.ResolvedIn != "4.12.1" {
		t.Errorf("a crash in 4.13.0 after the resolve: want it regressed in 4.13.0 and unresolved: %v, %+v", ok, g)
	}
	for _, name := range []string{seed.BugSyncNullTitle, seed.BugUploadFailed} {
		if _, ok := unresolved[name]; ok {
			t.Errorf("%s is listed as unresolved", name)
		}
	}
	if g, ok := list(triage.StatusResolved)[seed.BugSyncNullTitle]; !ok || g.Regressed {
		t.Errorf("fixed group in the resolved list: %v, %+v", ok, g)
	}
	if _, ok := list(triage.StatusIgnored)[seed.BugUploadFailed]; !ok {
		t.Error("ignored group is not in the ignored list")
	}
	// Resolved in a version that has not shipped: nothing regressed.
	set(regress.Fingerprint, triage.StateResolved, "4.14.0")
	if g := list(triage.StatusResolved)[seed.BugShareAdapterIndex]; g.Regressed || g.Status.ResolvedIn != "4.14.0" {
		t.Errorf("resolved in 4.14.0: %+v", g)
	}
	// Reopened: open again, and the history keeps every decision.
	set(regress.Fingerprint, triage.StateOpen, "")
	d, err := env.Store.Group(ctx, triage.Filter{AppID: triagetest.AppID}, regress.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	var history []triage.Decision
	for _, a := range d.Activity {
		if a.Decision != nil {
			history = append(history, *a.Decision)
		}
	}
	if d.Status.State != triage.StateOpen || len(history) != 3 || history[0].State != triage.StateOpen || history[2].ResolvedIn != "4.12.1" {
		t.Errorf("after reopening: status %+v, history %+v", d.Status, history)
	}
	// Bad decisions are refused before they are stored.
	for _, st := range []triage.Decision{
		{AppID: triagetest.AppID, Fingerprint: 1, State: triage.StateResolved},
		{AppID: triagetest.AppID, Fingerprint: 1, State: "fixed"},
		{AppID: triagetest.AppID, Fingerprint: 1, State: triage.StateIgnored, ResolvedIn: "4.12.1"},
		{AppID: triagetest.AppID, Fingerprint: 1, State: triage.StateResolved, ResolvedIn: "next week"},
	} {
		if err := env.Store.SetStatus(ctx, st); err == nil {
			t.Errorf("SetStatus(%+v) succeeded", st)
		}
	}
}

// TestGroupDetailIntegration checks a group's page data: the latest
// crash's scrubbed stack, the grouping inputs (also for the fallback and
// custom groups), the timeline, and breakdowns that hide the rare device
// model and region.
func TestGroupDetailIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	f := triage.Filter{AppID: triagetest.AppID, Days: triagetest.Days}
	for _, b := range seed.Bugs() {
		t.Run(b.Name, func(t *testing.T) {
			d, err := env.Store.Group(ctx, f, b.Fingerprint, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Sample.Frames) == 0 || d.Sample.ExceptionType == "" || len(d.GroupingInputs) == 0 {
				t.Fatalf("sample %+v, inputs %v", d.Sample, d.GroupingInputs)
			}
			if d.Custom != (b.CustomKey != "") {
				t.Errorf("custom = %v, want %v", d.Custom, b.CustomKey != "")
			}
			inputs := strings.Join(d.GroupingInputs, "\n")
			if b.Fallback && !strings.Contains(inputs, "message:") {
				t.Errorf("fallback group's inputs lack the message:\n%s", inputs)
			}
			if len(d.Series) != triagetest.Days {
				t.Errorf("%d timeline days", len(d.Series))
			}
			var sum uint64
			for _, day := range d.Series {
				sum += day.Crashes
			}
			if sum != d.Crashes {
				t.Errorf("timeline sums to %d crashes, group has %d", sum, d.Crashes)
			}
			names := make([]string, len(d.Breakdowns))
			for i, br := range d.Breakdowns {
				names[i] = br.Name
				for _, c := range br.Cells {
					if c.Sessions < 10 {
						t.Errorf("%s: cell %+v has fewer than k sessions", br.Name, c)
					}
					if c.Value == seed.RareModel || c.Value == seed.RareRegion {
						t.Errorf("%s: the rare value %q is shown", br.Name, c.Value)
					}
				}
			}
			if want := "App version,OS,Device model,Region"; strings.Join(names, ",") != want {
				t.Errorf("breakdowns %v, want %s", names, want)
			}
		})
	}
	if _, err := env.Store.Group(ctx, f, 12345, 0); err != triage.ErrNotFound {
		t.Errorf("unknown group: %v, want ErrNotFound", err)
	}
}

// TestFiltersIntegration checks that filters narrow the groups and that
// the filter values offered leave out those with fewer than k sessions.
func TestFiltersIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	base := triage.Filter{AppID: triagetest.AppID, Status: triage.StatusAll}
	opts, err := env.Store.Options(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(opts.Apps, triagetest.AppID) || !slices.Contains(opts.OSNames, "ios") || !slices.Contains(opts.Regions, "AT") || !slices.Contains(opts.Regions, "AT-9") {
		t.Fatalf("options %+v", opts)
	}
	if slices.Contains(opts.Regions, seed.RareRegion) || slices.Contains(opts.Regions, "IS") {
		t.Errorf("the rare region is offered: %v", opts.Regions)
	}
	if opts.Allowed(triage.Filter{Region: "IS"}) || !opts.Allowed(triage.Filter{Region: "AT"}) {
		t.Error("Allowed does not follow the options")
	}
	total := func(f triage.Filter) (n uint64, osNames map[string]bool) {
		t.Helper()
		groups, err := list(t, env, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			n += g.Crashes
		}
		return n, nil
	}
	all, _ := total(base)
	for _, f := range []triage.Filter{
		{AppVersion: "4.13.0"}, {OSName: "ios"}, {Region: "AT"}, {Region: "DE-BY"}, {Days: 1},
	} {
		f.AppID, f.Status = base.AppID, base.Status
		n, _ := total(f)
		if n == 0 || n >= all {
			t.Errorf("filter %+v: %d crashes of %d", f, n, all)
		}
	}
	// An iOS-only filter leaves out Android-only bugs.
	groups, err := list(t, env, triage.Filter{AppID: triagetest.AppID, OSName: "ios", Status: triage.StatusAll})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := byName(t, groups)[seed.BugImageDecoderSEGV]; ok {
		t.Error("an Android-only bug is listed under iOS")
	}
	for _, bad := range []triage.Filter{{}, {AppID: triagetest.AppID, Days: 500}, {AppID: triagetest.AppID, Status: "fixed"}} {
		if _, err := list(t, env, bad); err == nil {
			t.Errorf("filter %+v accepted", bad)
		}
	}
}

// TestOverviewIntegration checks sessions per day and crash-free rates
// against the rows stored.
func TestOverviewIntegration(t *testing.T) {
	env := seeded(t)
	o, err := env.Store.Overview(context.Background(), triage.Filter{AppID: triagetest.AppID, Days: triagetest.Days})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Days) != triagetest.Days {
		t.Fatalf("%d days", len(o.Days))
	}
	// Sessions per day are approximate (uniq): within 2% of the rows.
	starts := make(map[string]map[uint64]bool)
	for _, s := range env.Rows.Sessions {
		d := s.EventTime.UTC().Format(time.DateOnly)
		if starts[d] == nil {
			starts[d] = make(map[uint64]bool)
		}
		starts[d][s.SessionKey] = true
	}
	for _, d := range o.Days {
		want := float64(len(starts[d.Date.Format(time.DateOnly)]))
		if got := float64(d.Sessions); got < 0.98*want || got > 1.02*want || want == 0 {
			t.Errorf("%s: %v sessions, want about %v", d.Date.Format(time.DateOnly), got, want)
		}
		if d.CrashedSessions == 0 || d.CrashedSessions > d.Sessions/5 {
			t.Errorf("%s: %d of %d sessions crashed", d.Date.Format(time.DateOnly), d.CrashedSessions, d.Sessions)
		}
	}
	if len(o.Versions) != len(seed.Versions()) {
		t.Errorf("versions %+v, want %v", o.Versions, seed.Versions())
	}
	for _, v := range o.Versions {
		if r, ok := v.CrashFree(); !ok || r < 0.8 || r >= 1 {
			t.Errorf("%s: crash-free rate %.3f", v.Version, r)
		}
	}
	if triage.CompareVersions(o.Versions[0].Version, o.Versions[len(o.Versions)-1].Version) <= 0 {
		t.Errorf("versions are not newest first: %+v", o.Versions)
	}
}

// TestResentRowsCountOnceIntegration stores the seeded rows a second and
// a third time, as an SDK resending batches whose answers it lost and a
// collector repeating inserts after a crash do, and checks that the
// groups, a group's page and the overview count every event once, as
// before, both while the copies are in parts of their own (the queries
// merge states) and once ClickHouse merged them (they read each row's
// state).
func TestResentRowsCountOnceIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	f := triage.Filter{AppID: triagetest.AppID, Days: triagetest.Days, Status: triage.StatusAll}
	bug, _ := seed.BugNamed(seed.BugShareAdapterIndex)
	snapshot := func() (groups []triage.Group, d *triage.Detail, o *triage.Overview) {
		t.Helper()
		var err error
		if groups, err = list(t, env, f); err != nil {
			t.Fatal(err)
		}
		if d, err = env.Store.Group(ctx, f, bug.Fingerprint, 0); err != nil {
			t.Fatal(err)
		}
		if o, err = env.Store.Overview(ctx, f); err != nil {
			t.Fatal(err)
		}
		return groups, d, o
	}
	counts := func(groups []triage.Group) map[uint64]string {
		out := make(map[uint64]string)
		for _, g := range groups {
			out[g.Fingerprint] = fmt.Sprint(g.Crashes, g.Fatal, g.Sessions, g.Daily, g.FirstSeen.Unix(), g.LastSeen.Unix())
		}
		return out
	}
	groups, d, o := snapshot()
	// The last day's crashes again: that day has parts to merge, the
	// others not.
	var last pipeline.Rows
	for _, c := range env.Rows.Crashes {
		if c.EventTime.UTC().Truncate(24 * time.Hour).Equal(env.Now.Truncate(24 * time.Hour)) {
			last.Crashes = append(last.Crashes, c)
		}
	}
	if err := env.Client.Insert(ctx, &last); err != nil {
		t.Fatal(err)
	}
	mixed, dMixed, oMixed := snapshot()
	if got, want := counts(mixed), counts(groups); !maps.Equal(got, want) || len(last.Crashes) == 0 {
		t.Errorf("groups after the last day's %d crashes were stored twice:\n%v\nwant\n%v", len(last.Crashes), got, want)
	}
	if fmt.Sprint(dMixed.Breakdowns, dMixed.Series, oMixed) != fmt.Sprint(d.Breakdowns, d.Series, o) {
		t.Errorf("group page or overview after the last day's crashes were stored twice:\n%v %v %+v\nwant\n%v %v %+v", dMixed.Breakdowns, dMixed.Series, oMixed, d.Breakdowns, d.Series, o)
	}
	if err := env.Client.Insert(ctx, env.Rows); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.InsertDedup(ctx, env.Rows, "spool:1:2"); err != nil {
		t.Fatal(err)
	}
	again, dAgain, oAgain := snapshot()
	if got, want := counts(again), counts(groups); !maps.Equal(got, want) {
		t.Errorf("groups after the rows were stored three times:\n%v\nwant\n%v", got, want)
	}
	if fmt.Sprint(dAgain.Breakdowns, dAgain.Series) != fmt.Sprint(d.Breakdowns, d.Series) {
		t.Errorf("group page after the rows were stored three times:\n%v %v\nwant\n%v %v", dAgain.Breakdowns, dAgain.Series, d.Breakdowns, d.Series)
	}
	if fmt.Sprint(oAgain) != fmt.Sprint(o) {
		t.Errorf("overview after the rows were stored three times:\n%+v\nwant\n%+v", oAgain, o)
	}
	// Once ClickHouse merged the copies, each day is one part again, and
	// each row's own state counts.
	for _, table := range []string{"crash_groups_daily", "sessions_daily"} {
		if err := chtest.Conn(t, shared).Exec(ctx, "OPTIMIZE TABLE "+env.Client.Database()+"."+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	merged, dMerged, oMerged := snapshot()
	if got, want := counts(merged), counts(groups); !maps.Equal(got, want) {
		t.Errorf("groups after merging:\n%v\nwant\n%v", got, want)
	}
	if fmt.Sprint(dMerged.Breakdowns, dMerged.Series, oMerged) != fmt.Sprint(d.Breakdowns, d.Series, o) {
		t.Errorf("group page or overview after merging:\n%v %v %+v\nwant\n%v %v %+v", dMerged.Breakdowns, dMerged.Series, oMerged, d.Breakdowns, d.Series, o)
	}
	// Counts match the rows stored once.
	want := make(map[uint64]uint64)
	for _, c := range env.Rows.Crashes {
		want[c.Fingerprint]++
	}
	for _, g := range again {
		if g.Crashes != want[g.Fingerprint] {
			t.Errorf("group %016x: %d crashes, want %d", g.Fingerprint, g.Crashes, want[g.Fingerprint])
		}
	}
}
