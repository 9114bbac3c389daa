package triage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/pipeline"
)

// Crash is one stored crash, as the Backend reads it. Its device fields
// are never shown as they are: see CrashView.
type Crash struct {
	// EventID identifies the event (not the device): it tells copies of
	// one event apart from other events.
	EventID       string
	Fingerprint   uint64
	EventTime     time.Time
	AppVersion    string
	OSName        string
	OSVersion     string
	DeviceClass   string
	DeviceModel   string
	Country       string
	Region        string
	ExceptionType string
	Message       string
	Thread        string
	Handled       bool
	AppState      string
	Frames        []pipeline.Frame
	// Breadcrumbs are what the user did before the crash, oldest first,
	// as stored; nil for none.
	Breadcrumbs []Breadcrumb
}

// Breadcrumb is one thing the user did before a crash, as the crashes
// table stores it: the SDK sends them only under a consent to analytics,
// the collector scrubs the name like a screen name and rounds the offset
// to the precision of event times. None of it is a device's value, so a
// crash's page shows them as stored.
type Breadcrumb struct {
	// Type is screen_view, custom, a gesture's type (tap, swipe, ...) or
	// unknown.
	Type string
	// Name is the screen (screen_view, gestures) or the event (custom).
	Name string
	// Before is how long before the crash it happened.
	Before time.Duration
}

// CrashView is a crash as a group's page shows it: what is stored
// (scrubbed already), except that the app version, OS, device and region
// are those of the group's breakdowns: the shown cell the crash is
// counted in ("4.13.0", or a coarse "4.x"), or "" where that cell is
// hidden, so a list of crashes never shows what the breakdowns hide.
type CrashView struct {
	Fingerprint   uint64
	EventTime     time.Time
	AppVersion    string
	OS            string
	Device        string
	Place         string
	ExceptionType string
	Message       string
	Thread        string
	Handled       bool
	AppState      string
	Frames        []pipeline.Frame
	Breadcrumbs   []Breadcrumb
}

// Detail is one crash group with what its page shows.
type Detail struct {
	Group
	// Sample is the group's latest crash in the filter.
	Sample CrashView
	// GroupingInputs are what the fingerprint of the sample was computed
	// from (package fingerprint); Custom is set when the app chose the
	// group itself, which the stored crash cannot show.
	GroupingInputs []string
	Custom         bool
	// Series counts crashes and sessions over the filter: per hour of the
	// last 24 hours for a filter of one day (Hourly), else per day.
	Series []Point
	Hourly bool
	// CrashList is a page of the group's crashes, latest first, from
	// CrashOffset; the group has Group.Crashes in all.
	CrashList   []CrashView
	CrashOffset int
	// Breakdowns are by app version, OS, device model and region, with
	// small values grouped or hidden.
	Breakdowns []Breakdown
	// Note is the group's note, if any (Value "" if none).
	Note Change
	// Activity is the history of decisions and changes, latest first.
	Activity []Activity
}

// Point is the crashes and distinct sessions of one hour or day.
type Point struct {
	Time     time.Time
	Crashes  uint64
	Sessions uint64
}

// Activity is one decision or change in a group's history: Decision or
// Change is set.
type Activity struct {
	At       time.Time
	Decision *Decision
	Change   *Change
}

// ErrNotFound is returned by Group for a group without crashes in the
// filter.
var ErrNotFound = errors.New("triage: no such crash group in this range")

// historyLimit is how many decisions and changes about a group Group
// returns.
const historyLimit = 100

// Group returns the crash group fp of f.AppID with the crashes of f (its
// status, search and assignee selection aside), and the page of its
// individual crashes that starts at crashOffset. For a group merged into
// another one it returns a *MergedError naming that one.
func (s *Store) Group(ctx context.Context, f Filter, fp uint64, crashOffset int) (*Detail, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	ms, err := s.merges(ctx, f.AppID)
	if err != nil {
		return nil, err
	}
	if root := ms.root(fp); root != fp {
		return nil, &MergedError{Into: root}
	}
	members := ms.members(fp)
	groups, err := s.groups(ctx, f, &ms, members)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, ErrNotFound
	}
	d := &Detail{Group: groups[0], CrashOffset: max(crashOffset, 0)}
	sc := s.scope(f, members...)
	var (
		sample      Crash
		hasSample   bool
		crashes     []Crash
		dayCells    []DayCell
		deviceCells []DeviceCell
		hourCells   []HourCell
		decisions   []Decision
		changes     []Change
	)
	since := s.cfg.Now().UTC().Truncate(time.Hour).Add(-23 * time.Hour)
	d.Hourly = f.Days == 1
	// The page of crashes reads only the days it falls on; the first page
	// starts with the latest crash, the sample.
	page, pageOffset, pageCrashes := s.crashWindow(f, sc, d.Daily, d.CrashOffset)
	needSample := d.CrashOffset > 0 || !pageCrashes
	// Each query fills its own variables.
	err = parallel(
		func() error { return s.titles(ctx, f, groups) },
		func() (err error) {
			if !needSample {
				return nil
			}
			if sample, hasSample, err = s.b.LatestCrash(ctx, sc, d.LastSeen.UTC().Truncate(24*time.Hour), d.ExceptionTypes); err != nil {
				return fmt.Errorf("triage: sample crash: %w", err)
			}
			return nil
		},
		func() (err error) {
			if !pageCrashes {
				return nil
			}
			if crashes, err = s.b.Crashes(ctx, page, d.ExceptionTypes, pageOffset, CrashesPerPage); err != nil {
				return fmt.Errorf("triage: crashes: %w", err)
			}
			return nil
		},
		func() (err error) {
			if decisions, err = s.b.DecisionHistory(ctx, f.AppID, fp, historyLimit); err != nil {
				return fmt.Errorf("triage: status history: %w", err)
			}
			return nil
		},
		func() (err error) {
			if changes, err = s.b.ChangeHistory(ctx, f.AppID, members, historyLimit); err != nil {
				return fmt.Errorf("triage: change history: %w", err)
			}
			return nil
		},
		// The app version and region are dimensions of the aggregate, and
		// the days its rows; the OS version and device model are not:
		// they count the group's raw crashes, of its exception types
		// (which the crashes table is sorted by).
		func() (err error) {
			if dayCells, err = s.b.DayCells(ctx, sc); err != nil {
				return fmt.Errorf("triage: breakdown: %w", err)
			}
			return nil
		},
		func() (err error) {
			if deviceCells, err = s.b.DeviceCells(ctx, sc, d.ExceptionTypes); err != nil {
				return fmt.Errorf("triage: breakdown: %w", err)
			}
			return nil
		},
		func() (err error) {
			if !d.Hourly {
				return nil
			}
			hs := sc
			hs.First = since.Truncate(24 * time.Hour)
			if hourCells, err = s.b.HourCells(ctx, hs, since, d.ExceptionTypes); err != nil {
				return fmt.Errorf("triage: crashes per hour: %w", err)
			}
			return nil
		},
	)
	if err != nil {
		return nil, err
	}
	d.Message, d.Culprit = groups[0].Message, groups[0].Culprit
	if !needSample && len(crashes) > 0 {
		sample, hasSample = crashes[0], true
	}
	d.Breakdowns = s.breakdowns(dayCells, deviceCells, len(members) > 1)
	view := s.viewer(d.Breakdowns)
	if hasSample {
		d.Sample = view(sample)
		var key string
		key, d.GroupingInputs = fingerprint.Of(&pipeline.CrashRow{ExceptionType: sample.ExceptionType, Message: sample.Message, Frames: sample.Frames}, "")
		d.Custom = !slices.ContainsFunc(members, func(m uint64) bool { return fingerprint.Hex(m) == key })
	}
	for _, c := range crashes {
		d.CrashList = append(d.CrashList, view(c))
	}
	d.Series = s.series(f, d.Hourly, since, dayCells, hourCells)
	d.Activity = activity(decisions, changes)
	for i := range changes {
		if c := &changes[i]; c.Kind == ChangeNote && c.Fingerprint == fp {
			d.Note = *c
			break
		}
	}
	return d, nil
}

// crashWindow returns the scope and offset that read the page of a
// group's crashes starting at offset, the latest first: only the days the
// page falls on, as the group's daily counts (exact counts of events, as
// the page's) tell; false if the group has fewer crashes than offset.
// Reading one day instead of 14 matters for a large group.
func (s *Store) crashWindow(f Filter, sc Scope, daily []uint64, offset int) (Scope, int, bool) {
	r := s.days(f.Days)
	if len(daily) != r.n {
		return sc, offset, true
	}
	var newer uint64 // crashes on days after day i
	first, last := -1, -1
	var before uint64
	for i := r.n - 1; i >= 0; i-- {
		end := newer + daily[i]
		if last < 0 && end > uint64(offset) {
			last, before = i, newer
		}
		if last >= 0 && newer < uint64(offset+CrashesPerPage) {
			first = i
		}
		newer = end
	}
	if last < 0 {
		return sc, 0, false
	}
	sc.First, sc.Last = r.date(first), r.date(last)
	return sc, offset - int(before), true
}

// series returns the points of a group's chart: per hour from since for
// an hourly one, else per day of f.
func (s *Store) series(f Filter, hourly bool, since time.Time, days []DayCell, hours []HourCell) []Point {
	if hourly {
		out := make([]Point, 24)
		for i := range out {
			out[i].Time = since.Add(time.Duration(i) * time.Hour)
		}
		for _, h := range hours {
			if i := int(h.Hour.UTC().Sub(since) / time.Hour); i >= 0 && i < len(out) {
				out[i].Crashes += h.Crashes
				out[i].Sessions += h.Sessions
			}
		}
		return out
	}
	r := s.days(f.Days)
	out := make([]Point, r.n)
	for i := range out {
		out[i].Time = r.date(i)
	}
	// Cells of one day and different versions, regions or merged groups
	// hold different sessions: they add up.
	for _, c := range days {
		if i := r.index(c.Day); i >= 0 {
			out[i].Crashes += c.Crashes
			out[i].Sessions += c.Sessions
		}
	}
	return out
}

// activity merges decisions and changes, latest first.
func activity(decisions []Decision, changes []Change) []Activity {
	out := make([]Activity, 0, len(decisions)+len(changes))
	for i := range decisions {
		out = append(out, Activity{At: decisions[i].ChangedAt, Decision: &decisions[i]})
	}
	for i := range changes {
		out = append(out, Activity{At: changes[i].ChangedAt, Change: &changes[i]})
	}
	slices.SortStableFunc(out, func(a, b Activity) int { return b.At.Compare(a.At) })
	return out[:min(len(out), historyLimit)]
}

// The hierarchies of the breakdowns: coarser values for small ones.
var (
	versionHierarchy = &Hierarchy{Label: coarseLabel(func(p string) string { return p + ".x" })}
	plainHierarchy   = &Hierarchy{Label: coarseLabel(func(p string) string { return p })}
)

// coarseLabel returns a Hierarchy's Label: name(parent), or for a
// partial cell, what else of it there is.
func coarseLabel(name func(string) string) func(string, bool) string {
	return func(parent string, partial bool) string {
		if partial {
			return "other " + name(parent)
		}
		return name(parent)
	}
}

// The dimensions of a group's breakdowns, in order.
const (
	dimVersion = iota
	dimOS
	dimDevice
	dimPlace
)

// osValue, placeValue and versionParent name the values of a breakdown
// and their coarser values.
func osValue(name, version string) string { return strings.TrimSpace(name + " " + version) }

// place returns the finest of region and country that is known, or
// "unknown".
func place(country, region string) string {
	return cmp.Or(region, country, "unknown")
}

// breakdowns returns a group's breakdowns by app version, OS, device model
// and region from its cells; merged says the group has members, whose
// parts each cell must show whole or not at all (see Generalize).
func (s *Store) breakdowns(days []DayCell, devices []DeviceCell, merged bool) []Breakdown {
	// A session's version, region, OS and device do not change within its
	// day, so cells' distinct sessions add up (see groups).
	k := s.cfg.K
	return []Breakdown{
		dimVersion: Generalize("App version", atomsOf(days, merged, func(c *DayCell) (string, string) {
			return c.AppVersion, MajorVersion(c.AppVersion)
		}, func(c *DayCell) (uint64, uint64, uint64) { return c.Fingerprint, c.Sessions, c.Crashes }), k, versionHierarchy),
		dimOS: Generalize("OS", atomsOf(devices, merged, func(c *DeviceCell) (string, string) {
			return osValue(c.OSName, c.OSVersion), c.OSName
		}, deviceCounts), k, plainHierarchy),
		dimDevice: Generalize("Device model", atomsOf(devices, merged, func(c *DeviceCell) (string, string) {
			return c.DeviceModel, c.DeviceClass
		}, deviceCounts), k, plainHierarchy),
		dimPlace: Generalize("Region", atomsOf(days, merged, func(c *DayCell) (string, string) {
			return place(c.Country, c.Region), c.Country
		}, func(c *DayCell) (uint64, uint64, uint64) { return c.Fingerprint, c.Sessions, c.Crashes }), k, plainHierarchy),
	}
}

func deviceCounts(c *DeviceCell) (uint64, uint64, uint64) {
	return c.Fingerprint, c.Sessions, c.Crashes
}

// atomsOf sums rows into one atom per value, which value returns with
// its coarser value ("" for none, and for a value whose rows disagree);
// counts returns a row's group, sessions and crashes. With merged, atoms
// keep each group's sessions.
func atomsOf[R any](rows []R, merged bool, value func(*R) (string, string), counts func(*R) (fp, sessions, crashes uint64)) []Atom {
	index := make(map[string]int)
	var out []Atom
	for i := range rows {
		v, parent := value(&rows[i])
		fp, sessions, crashes := counts(&rows[i])
		j, ok := index[v]
		if !ok {
			j = len(out)
			index[v] = j
			out = append(out, Atom{Cell: Cell{Value: v}, Parent: parent})
		}
		a := &out[j]
		if a.Parent != parent {
			a.Parent = ""
		}
		a.Sessions += sessions
		a.Crashes += crashes
		if merged {
			if a.Parts == nil {
				a.Parts = make(map[uint64]uint64)
			}
			a.Parts[fp] += sessions
		}
	}
	return out
}

// viewer returns the function that shows a crash as the breakdowns of its
// group allow.
func (s *Store) viewer(bs []Breakdown) func(Crash) CrashView {
	label := func(dim int, v string) string {
		l, _ := bs[dim].Label(v)
		return l
	}
	return func(c Crash) CrashView {
		return CrashView{
			Fingerprint:   c.Fingerprint,
			EventTime:     c.EventTime,
			AppVersion:    label(dimVersion, c.AppVersion),
			OS:            label(dimOS, osValue(c.OSName, c.OSVersion)),
			Device:        label(dimDevice, c.DeviceModel),
			Place:         label(dimPlace, place(c.Country, c.Region)),
			ExceptionType: c.ExceptionType,
			Message:       c.Message,
			Thread:        c.Thread,
			Handled:       c.Handled,
			AppState:      c.AppState,
			Frames:        c.Frames,
			Breadcrumbs:   c.Breadcrumbs,
		}
	}
}
