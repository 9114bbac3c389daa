package triage_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/dashboard/triage/triagetest"
	"github.com/consentry/consentry/internal/seed"
	"github.com/consentry/consentry/pipeline"
)

// TestSearchIntegration searches the seeded groups by exception type,
// message and culprit function, ignoring case; text that is SQL or a
// LIKE pattern is looked for as it is.
func TestSearchIntegration(t *testing.T) {
	env := seeded(t)
	search := func(text string, f triage.Filter) []string {
		t.Helper()
		f.AppID, f.Status, f.Search = triagetest.AppID, triage.StatusAll, text
		groups, err := list(t, env, f)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name := range byName(t, groups) {
			names = append(names, name)
		}
		slices.Sort(names)
		return names
	}
	for _, tc := range []struct {
		text string
		f    triage.Filter
		want []string
	}{
		{"illegalstateexception", triage.Filter{}, []string{seed.BugEditorDetached, seed.BugSettingsDetached}},
		{"pageRenderer has not", triage.Filter{}, []string{seed.BugPDFRenderer}},
		{"NoteEditorFragment.saveDraft", triage.Filter{}, []string{seed.BugEditorDetached}},
		{"IllegalState", triage.Filter{OSName: "ios"}, nil},
		{"'; DROP TABLE crashes --", triage.Filter{}, nil},
		{"%", triage.Filter{}, nil},
	} {
		if got := search(tc.text, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("search %q %+v: %v, want %v", tc.text, tc.f, got, tc.want)
		}
	}
}

// TestKindIntegration lists crashes that ended the process and handled
// exceptions apart.
func TestKindIntegration(t *testing.T) {
	env := seeded(t)
	for _, kind := range []triage.Kind{triage.KindFatal, triage.KindHandled} {
		groups, err := list(t, env, triage.Filter{AppID: triagetest.AppID, Status: triage.StatusAll, Kind: kind})
		if err != nil {
			t.Fatal(err)
		}
		named := byName(t, groups)
		for _, b := range seed.Bugs() {
			g, ok := named[b.Name]
			if want := b.Handled == (kind == triage.KindHandled); ok != want {
				t.Errorf("%s under %s: listed %v, want %v", b.Name, kind, ok, want)
			}
			if ok && (kind == triage.KindFatal) != (g.Fatal == g.Crashes) {
				t.Errorf("%s under %s: %d of %d crashes fatal", b.Name, kind, g.Fatal, g.Crashes)
			}
		}
	}
}

// TestMergeIntegration merges two seeded groups, as a person who sees
// that two stacks are one bug does, and checks that the list, the group's
// page, its crashes and its breakdowns read them as one, that the merged
// group's address names the group it joined, and that unmerging restores
// both.
func TestMergeIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	editor, _ := seed.BugNamed(seed.BugEditorDetached)
	settings, _ := seed.BugNamed(seed.BugSettingsDetached)
	f := triage.Filter{AppID: triagetest.AppID, Status: triage.StatusAll}
	before, err := list(t, env, f)
	if err != nil {
		t.Fatal(err)
	}
	was := byName(t, before)
	if _, err := env.Store.Merge(ctx, triagetest.AppID, editor.Fingerprint, []uint64{settings.Fingerprint}, "alice"); err != nil {
		t.Fatal(err)
	}
	after, err := list(t, env, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before)-1 {
		t.Fatalf("%d groups after merging two of %d", len(after), len(before))
	}
	g := byName(t, after)[seed.BugEditorDetached]
	e, s := was[seed.BugEditorDetached], was[seed.BugSettingsDetached]
	if g.Crashes != e.Crashes+s.Crashes || g.Sessions != e.Sessions+s.Sessions || !slices.Equal(g.Members, []uint64{settings.Fingerprint}) {
		t.Errorf("merged group: %d crashes in %d sessions, members %x; want %d in %d with the settings group", g.Crashes, g.Sessions, g.Members, e.Crashes+s.Crashes, e.Sessions+s.Sessions)
	}
	if _, ok := byName(t, after)[seed.BugSettingsDetached]; ok {
		t.Error("the merged group is still listed")
	}

	d, err := env.Store.Group(ctx, f, editor.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	var series uint64
	for _, p := range d.Series {
		series += p.Crashes
	}
	if series != g.Crashes || d.Crashes != g.Crashes {
		t.Errorf("page: %d crashes, chart %d; want %d", d.Crashes, series, g.Crashes)
	}
	from := make(map[uint64]bool)
	for _, c := range d.CrashList {
		from[c.Fingerprint] = true
	}
	if len(d.CrashList) != triage.CrashesPerPage || !from[editor.Fingerprint] && !from[settings.Fingerprint] {
		t.Errorf("crashes of the merged group: %d, from %v", len(d.CrashList), from)
	}
	// (Generalize's tests check that no cell holds a small part of a
	// group.)
	for _, b := range d.Breakdowns {
		for _, c := range b.Cells {
			if c.Sessions < 10 {
				t.Errorf("%s: %+v under k", b.Name, c)
			}
		}
	}
	if _, err := env.Store.Group(ctx, f, settings.Fingerprint, 0); !strings.Contains(errString(err), "merged into "+fingerprint.Hex(editor.Fingerprint)) {
		t.Errorf("the merged group's page: %v, want it merged into the editor group", err)
	}
	// Resolving the merged group's address resolves the group it joined.
	if err := env.Store.SetStatus(ctx, triage.Decision{AppID: triagetest.AppID, Fingerprint: settings.Fingerprint, State: triage.StateIgnored, ChangedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	ignored, _ := list(t, env, triage.Filter{AppID: triagetest.AppID, Status: triage.StatusIgnored})
	if _, ok := byName(t, ignored)[seed.BugEditorDetached]; !ok || len(ignored) != 1 {
		t.Errorf("ignored: %v", byName(t, ignored))
	}

	if err := env.Store.Unmerge(ctx, triagetest.AppID, settings.Fingerprint, "bob"); err != nil {
		t.Fatal(err)
	}
	restored, _ := list(t, env, f)
	for _, name := range []string{seed.BugEditorDetached, seed.BugSettingsDetached} {
		if got := byName(t, restored)[name]; got.Crashes != was[name].Crashes || len(got.Members) != 0 {
			t.Errorf("%s after unmerging: %d crashes, members %x; want %d", name, got.Crashes, got.Members, was[name].Crashes)
		}
	}
	d, err = env.Store.Group(ctx, f, editor.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	var merges int
	for _, a := range d.Activity {
		if a.Change != nil && a.Change.Kind == triage.ChangeMerge {
			merges++
		}
	}
	if merges != 2 {
		t.Errorf("history of the group: %d merge changes, want the merge and the unmerge", merges)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCrashesIntegration pages through a group's individual crashes:
// latest first, each event once even when stored twice, and with the
// version, OS, device and region that the group's breakdowns show, never
// a hidden one.
func TestCrashesIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	bug, _ := seed.BugNamed(seed.BugEditorDetached)
	f := triage.Filter{AppID: triagetest.AppID}
	var all []triage.CrashView
	var d *triage.Detail
	for offset := 0; ; offset += triage.CrashesPerPage {
		var err error
		if d, err = env.Store.Group(ctx, f, bug.Fingerprint, offset); err != nil {
			t.Fatal(err)
		}
		if len(d.CrashList) == 0 {
			break
		}
		all = append(all, d.CrashList...)
	}
	if uint64(len(all)) != d.Crashes {
		t.Fatalf("%d crashes on the pages, the group has %d", len(all), d.Crashes)
	}
	if !slices.IsSortedFunc(all, func(a, b triage.CrashView) int { return b.EventTime.Compare(a.EventTime) }) {
		t.Error("crashes are not latest first")
	}
	if !all[0].EventTime.Equal(d.Sample.EventTime) {
		t.Errorf("the first crash (%v) is not the latest (%v)", all[0].EventTime, d.Sample.EventTime)
	}
	shown := func(dim int, v string) bool {
		if v == "" {
			return true
		}
		b := d.Breakdowns[dim]
		return slices.ContainsFunc(b.Cells, func(c triage.Cell) bool { return c.Value == v })
	}
	var named int
	for _, c := range all {
		for dim, v := range []string{c.AppVersion, c.OS, c.Device, c.Place} {
			if !shown(dim, v) {
				t.Errorf("crash at %v shows %q, which the %s breakdown does not", c.EventTime, v, d.Breakdowns[dim].Name)
			}
			if v != "" {
				named++
			}
		}
		if c.Device == seed.RareModel || c.Place == seed.RareRegion || len(c.Frames) == 0 || c.Message == "" {
			t.Errorf("crash %+v", c)
		}
	}
	if named == 0 {
		t.Error("every device field is hidden: the breakdowns show values")
	}
	// Stored again, each crash is listed once.
	var again pipeline.Rows
	for _, c := range env.Rows.Crashes {
		if c.Fingerprint == bug.Fingerprint {
			again.Crashes = append(again.Crashes, c)
		}
	}
	if err := env.Client.Insert(ctx, &again); err != nil {
		t.Fatal(err)
	}
	d2, err := env.Store.Group(ctx, f, bug.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d2.CrashList {
		if !d2.CrashList[i].EventTime.Equal(all[i].EventTime) || d2.CrashList[i].Message != all[i].Message {
			t.Errorf("crash %d after storing them twice: %v, want %v", i, d2.CrashList[i].EventTime, all[i].EventTime)
		}
	}
}

// TestBreadcrumbsIntegration checks that a group's latest crash and its
// list of crashes show each crash's breadcrumbs as stored, oldest first,
// and a crash without any as such.
func TestBreadcrumbsIntegration(t *testing.T) {
	env := seeded(t)
	ctx := context.Background()
	bug, _ := seed.BugNamed(seed.BugImageDecoderSEGV)
	f := triage.Filter{AppID: triagetest.AppID, Days: 1}
	at := env.Now.Add(30 * time.Second)
	crumbs := []pipeline.Breadcrumb{
		{Type: "custom", Name: "export_pdf", OffsetMs: 120_000},
		{Type: "tap", Name: "settings.privacy", OffsetMs: 0},
	}
	if err := triagetest.AddCrash(ctx, env, bug.Fingerprint, at, crumbs); err != nil {
		t.Fatal(err)
	}
	if err := triagetest.AddCrash(ctx, env, bug.Fingerprint, at.Add(-time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	d, err := env.Store.Group(ctx, f, bug.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []triage.Breadcrumb{{Type: "custom", Name: "export_pdf", Before: 2 * time.Minute}, {Type: "tap", Name: "settings.privacy"}}
	for _, c := range []triage.CrashView{d.Sample, d.CrashList[0]} {
		if !slices.Equal(c.Breadcrumbs, want) {
			t.Errorf("latest crash's breadcrumbs: %+v, want %+v", c.Breadcrumbs, want)
		}
	}
	if c := d.CrashList[1]; len(c.Breadcrumbs) != 0 {
		t.Errorf("a crash without breadcrumbs: %+v", c.Breadcrumbs)
	}
	// The seeded crashes' (see seed): home, then editor, then a tap.
	seeded := []triage.Breadcrumb{{Type: "screen_view", Name: "home", Before: 3 * time.Minute}, {Type: "screen_view", Name: "editor", Before: time.Minute}, {Type: "tap", Name: "editor"}}
	if c := d.CrashList[2]; !slices.Equal(c.Breadcrumbs, seeded) {
		t.Errorf("a seeded crash's breadcrumbs: %+v, want %+v", c.Breadcrumbs, seeded)
	}
}

// TestHourlyIntegration checks a group's chart over one day: 24 hours,
// which sum to the day's crashes.
func TestHourlyIntegration(t *testing.T) {
	env := seeded(t)
	bug, _ := seed.BugNamed(seed.BugListUpdate)
	d, err := env.Store.Group(context.Background(), triage.Filter{AppID: triagetest.AppID, Days: 1}, bug.Fingerprint, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, p := range d.Series {
		sum += p.Crashes
	}
	if !d.Hourly || len(d.Series) != 24 || sum != d.Crashes || d.Crashes == 0 {
		t.Errorf("hourly %v, %d points summing to %d crashes; want 24 summing to %d", d.Hourly, len(d.Series), sum, d.Crashes)
	}
}
