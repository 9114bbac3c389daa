// Package triage reads crash groups for the people who fix them: groups
// ranked by impact with their trend, the regressed, new and escalating
// flags, one group's stack, breakdowns and timeline, triage decisions, and
// an app's crash-free session rate.
//
// A Store asks a Backend, which this package declares and package
// clickhouse implements, for what is stored: per-group and per-day counts
// from the aggregates, the raw crashes of one group at a time, and the
// decisions made. The Store ranks, flags and hides; the Backend only
// counts, so pages stay fast over millions of crashes.
//
// Breakdowns hide every cell of fewer than K distinct sessions (see
// Suppress): what triage shows never singles out a device.
package triage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/pipeline"
)

// Defaults for Config.
const (
	// DefaultK is the fewest distinct sessions a breakdown cell, or a
	// filter value, needs to be shown.
	DefaultK = 10
	// DefaultNewWithin is how recently a group must have first crashed to
	// be new.
	DefaultNewWithin = 24 * time.Hour
	// DefaultEscalateFactor is how many times its previous daily average a
	// group must crash today to be escalating.
	DefaultEscalateFactor = 2.0
	// DefaultEscalateMin is the fewest crashes today an escalating group
	// has.
	DefaultEscalateMin = 10
	// DefaultLimit is how many groups Groups returns.
	DefaultLimit = 50
)

// escalateBaselineDays is how many days before today the escalation
// baseline averages over.
const escalateBaselineDays = 7

// Config configures a Store.
type Config struct {
	// Backend holds the crash groups, sessions and decisions; required.
	// A *clickhouse.Client is one.
	Backend Backend
	// K is the fewest distinct sessions a breakdown cell needs to be
	// shown. Default DefaultK.
	K int
	// NewWithin, EscalateFactor and EscalateMin define the new and
	// escalating flags. Defaults DefaultNewWithin, DefaultEscalateFactor,
	// DefaultEscalateMin.
	NewWithin      time.Duration
	EscalateFactor float64
	EscalateMin    uint64
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Store answers triage questions. It is safe for concurrent use.
type Store struct {
	cfg Config
	b   Backend
}

// New returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Backend == nil {
		return nil, errors.New("triage: Backend is required")
	}
	if cfg.K < 0 || cfg.EscalateFactor < 0 || cfg.NewWithin < 0 {
		return nil, errors.New("triage: K, NewWithin and EscalateFactor must not be negative")
	}
	if cfg.K == 0 {
		cfg.K = DefaultK
	}
	if cfg.NewWithin == 0 {
		cfg.NewWithin = DefaultNewWithin
	}
	if cfg.EscalateFactor == 0 {
		cfg.EscalateFactor = DefaultEscalateFactor
	}
	if cfg.EscalateMin == 0 {
		cfg.EscalateMin = DefaultEscalateMin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, b: cfg.Backend}, nil
}

// K returns the fewest distinct sessions a shown cell has.
func (s *Store) K() int { return s.cfg.K }

// Status selects groups by their triage state in Groups.
type Status string

// Statuses a Filter can select.
const (
	// StatusUnresolved is open and regressed groups: what needs work.
	StatusUnresolved Status = "unresolved"
	// StatusAll is every group.
	StatusAll Status = "all"
	// StatusResolved is resolved groups that have not regressed.
	StatusResolved Status = "resolved"
	// StatusIgnored is ignored groups.
	StatusIgnored Status = "ignored"
)

// Filter selects the crashes a page is about.
type Filter struct {
	// AppID is the app; required.
	AppID string
	// Days is how many UTC days, ending today, to cover; default 14, at
	// most 400.
	Days int
	// AppVersion, OSName and Region narrow the crashes, "" for any.
	// Region is an ISO 3166-1 country ("AT") or a 3166-2 region ("AT-9").
	AppVersion string
	OSName     string
	Region     string
	// Status selects groups by state; default StatusUnresolved.
	Status Status
}

// ErrInvalidFilter wraps the errors of filters that cannot be run.
var ErrInvalidFilter = errors.New("invalid filter")

// normalize returns f with defaults applied, or an error wrapping
// ErrInvalidFilter.
func (f Filter) normalize() (Filter, error) {
	if f.AppID == "" {
		return f, fmt.Errorf("%w: no app selected", ErrInvalidFilter)
	}
	if f.Days == 0 {
		f.Days = 14
	}
	if f.Days < 1 || f.Days > 400 {
		return f, fmt.Errorf("%w: %d days is not between 1 and 400", ErrInvalidFilter, f.Days)
	}
	switch f.Status {
	case "":
		f.Status = StatusUnresolved
	case StatusUnresolved, StatusAll, StatusResolved, StatusIgnored:
	default:
		return f, fmt.Errorf("%w: unknown status %q", ErrInvalidFilter, f.Status)
	}
	return f, nil
}

// scope returns the Scope of f's app, days and dimensions, and of the
// crash groups groups (nil for every group). A two-letter Region is an
// ISO 3166-1 country, a longer one an ISO 3166-2 region.
func (s *Store) scope(f Filter, groups ...uint64) Scope {
	days := s.days(f.Days)
	sc := Scope{AppID: f.AppID, First: days.first, Last: days.date(days.n - 1), AppVersion: f.AppVersion, OSName: f.OSName, Groups: groups}
	if len(f.Region) == 2 {
		sc.Country = f.Region
	} else {
		sc.Region = f.Region
	}
	return sc
}

// today returns the start of the current UTC day.
func (s *Store) today() time.Time {
	y, m, d := s.cfg.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayRange is n UTC days, the oldest first.
type dayRange struct {
	first time.Time
	n     int
}

// days returns the n days ending today.
func (s *Store) days(n int) dayRange { return dayRange{first: s.today().AddDate(0, 0, 1-n), n: n} }

// date returns the i-th day.
func (r dayRange) date(i int) time.Time { return r.first.AddDate(0, 0, i) }

// index returns the position of t's day, or -1 if it is not one of them.
func (r dayRange) index(t time.Time) int {
	if i := int(t.UTC().Sub(r.first).Hours() / 24); i >= 0 && i < r.n {
		return i
	}
	return -1
}

// Group is a crash group: every crash of an app with one fingerprint.
type Group struct {
	AppID       string
	Fingerprint uint64
	// ExceptionType, Message and Culprit describe one of its crashes:
	// type, scrubbed message, and the innermost in-app function.
	ExceptionType string
	Message       string
	Culprit       string
	// ExceptionTypes are every type of its crashes: one, unless the app
	// grouped them with a custom fingerprint.
	ExceptionTypes []string
	// Crashes, Fatal and Sessions count the crashes, those that ended the
	// process, and the distinct sessions affected, in the filter.
	Crashes  uint64
	Fatal    uint64
	Sessions uint64
	// FirstSeen and LastSeen bound the crashes in the filter; FirstEver is
	// the group's first crash in all the data kept.
	FirstSeen time.Time
	LastSeen  time.Time
	FirstEver time.Time
	// Versions are the app versions it crashed in, in the filter, oldest
	// first.
	Versions []string
	// Daily counts crashes per day of the filter, oldest first.
	Daily []uint64
	// Status is the latest triage decision; State is open if none.
	Status Decision
	// Regressed: resolved, but crashing in the fixed version or a later
	// one. New: first crashed within Config.NewWithin. Escalating: today
	// at least EscalateMin crashes and EscalateFactor times the daily
	// average of the 7 days before.
	Regressed  bool
	New        bool
	Escalating bool
}

// Groups returns up to limit crash groups of f (DefaultLimit if limit is
// 0), most affected sessions first, then most crashes.
func (s *Store) Groups(ctx context.Context, f Filter, limit int) ([]Group, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	groups, err := s.groups(ctx, f)
	if err != nil {
		return nil, err
	}
	groups = slices.DeleteFunc(groups, func(g Group) bool { return !f.Status.selects(&g) })
	if len(groups) > limit {
		groups = groups[:limit]
	}
	if err := s.titles(ctx, f, groups); err != nil {
		return nil, err
	}
	return groups, nil
}

// selects reports whether a group in g's state is listed under st.
func (st Status) selects(g *Group) bool {
	switch st {
	case StatusUnresolved:
		return g.Status.State == StateOpen || g.Regressed
	case StatusResolved:
		return g.Status.State == StateResolved && !g.Regressed
	case StatusIgnored:
		return g.Status.State == StateIgnored
	}
	return true
}

// parallel runs fns at once and returns their errors joined.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// groups returns the groups of f, or only those of only, with their
// status and flags but without their titles (see titles), ranked by
// impact: most affected sessions first, then most crashes.
func (s *Store) groups(ctx context.Context, f Filter, only ...uint64) ([]Group, error) {
	var (
		days      []GroupDay
		statuses  map[uint64]Decision
		regressed map[uint64]bool
		firstEver map[uint64]time.Time
	)
	// The days read cover the escalation baseline too.
	wide := f
	wide.Days = max(f.Days, escalateBaselineDays+1)
	err := parallel(
		func() (err error) {
			if days, err = s.b.GroupDays(ctx, s.scope(wide, only...)); err != nil {
				return fmt.Errorf("triage: list crash groups: %w", err)
			}
			return nil
		},
		func() (err error) {
			if statuses, err = s.statuses(ctx, f.AppID, only); err != nil {
				return err
			}
			regressed, err = s.regressed(ctx, f.AppID, statuses)
			return err
		},
		func() (err error) { firstEver, err = s.firstEver(ctx, f.AppID, only); return err },
	)
	if err != nil {
		return nil, err
	}

	// Sum each group's days of f: distinct sessions add up over days,
	// as a session's key changes every day.
	wideDays, fDays := s.days(wide.Days), s.days(f.Days)
	index := make(map[uint64]int)
	var out []Group
	daily := make(map[uint64][]uint64)
	for _, d := range days {
		i := wideDays.index(d.Day)
		if i < 0 {
			continue
		}
		counts, ok := daily[d.Fingerprint]
		if !ok {
			counts = make([]uint64, wideDays.n)
			daily[d.Fingerprint] = counts
		}
		counts[i] += d.Crashes
		if fDays.index(d.Day) < 0 {
			continue
		}
		j, ok := index[d.Fingerprint]
		if !ok {
			j = len(out)
			index[d.Fingerprint] = j
			out = append(out, Group{AppID: f.AppID, Fingerprint: d.Fingerprint, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen})
		}
		g := &out[j]
		g.Crashes += d.Crashes
		g.Fatal += d.Fatal
		g.Sessions += d.Sessions
		if d.FirstSeen.Before(g.FirstSeen) {
			g.FirstSeen = d.FirstSeen
		}
		if d.LastSeen.After(g.LastSeen) {
			g.LastSeen = d.LastSeen
		}
		g.Versions = appendNew(g.Versions, d.Versions...)
		g.ExceptionTypes = appendNew(g.ExceptionTypes, d.ExceptionTypes...)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})

	now := s.cfg.Now()
	for i := range out {
		g := &out[i]
		slices.SortFunc(g.Versions, CompareVersions)
		slices.Sort(g.ExceptionTypes)
		g.ExceptionType = g.ExceptionTypes[0]
		g.FirstEver = g.FirstSeen
		if t, ok := firstEver[g.Fingerprint]; ok {
			g.FirstEver = t
		}
		g.Status = Decision{AppID: f.AppID, Fingerprint: g.Fingerprint, State: StateOpen}
		if st, ok := statuses[g.Fingerprint]; ok {
			g.Status = st
		}
		g.Regressed = regressed[g.Fingerprint]
		g.New = now.Sub(g.FirstEver) <= s.cfg.NewWithin
		counts := daily[g.Fingerprint]
		g.Daily = slices.Clone(counts[len(counts)-f.Days:])
		g.Escalating = s.escalating(counts)
	}
	return out, nil
}

// appendNew appends to list the values it does not hold yet.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// titles fills in the message and culprit of groups.
func (s *Store) titles(ctx context.Context, f Filter, groups []Group) error {
	if len(groups) == 0 {
		return nil
	}
	fps := make([]uint64, len(groups))
	for i, g := range groups {
		fps[i] = g.Fingerprint
	}
	titles, err := s.b.GroupTitles(ctx, s.scope(f, fps...))
	if err != nil {
		return fmt.Errorf("triage: crash group titles: %w", err)
	}
	for i := range groups {
		if t, ok := titles[groups[i].Fingerprint]; ok {
			groups[i].Message, groups[i].Culprit = t.Message, t.Culprit
		}
	}
	return nil
}

// escalating applies the escalation rule to a group's daily counts, the
// last being today's.
func (s *Store) escalating(counts []uint64) bool {
	if len(counts) == 0 {
		return false
	}
	today := counts[len(counts)-1]
	var base uint64
	for _, n := range counts[max(0, len(counts)-1-escalateBaselineDays) : len(counts)-1] {
		base += n
	}
	avg := float64(base) / escalateBaselineDays
	return today >= s.cfg.EscalateMin && float64(today) >= s.cfg.EscalateFactor*avg
}

// firstEver returns when each group of app (or of only) first crashed,
// over all the data kept. To stay fast over many days it reads the first
// day of each group, and the exact time only for the groups whose first
// day is within NewWithin of now, and for only; the other groups get the
// start of their first day.
func (s *Store) firstEver(ctx context.Context, app string, only []uint64) (map[uint64]time.Time, error) {
	days, err := s.b.FirstCrashDays(ctx, app, only)
	if err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	out := make(map[uint64]time.Time, len(days))
	recent := s.cfg.Now().Add(-s.cfg.NewWithin).UTC().Truncate(24 * time.Hour)
	var exact []uint64
	for fp, d := range days {
		out[fp] = d.UTC()
		if len(only) > 0 || !d.Before(recent) {
			exact = append(exact, fp)
		}
	}
	if len(exact) == 0 {
		return out, nil
	}
	times, err := s.b.FirstCrashTimes(ctx, app, exact)
	if err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	maps.Copy(out, times)
	return out, nil
}

// statuses returns the latest status of each group of app that has one
// (or only of the groups of only).
func (s *Store) statuses(ctx context.Context, app string, only []uint64) (map[uint64]Decision, error) {
	out, err := s.b.LatestDecisions(ctx, app, only)
	if err != nil {
		return nil, fmt.Errorf("triage: read statuses: %w", err)
	}
	return out, nil
}

// regressed returns which of the groups resolved in statuses crashed in
// the fixed version or a later one, over all the data kept.
func (s *Store) regressed(ctx context.Context, app string, statuses map[uint64]Decision) (map[uint64]bool, error) {
	resolved := make(map[uint64]string)
	for fp, st := range statuses {
		if st.State == StateResolved {
			resolved[fp] = st.ResolvedIn
		}
	}
	out := make(map[uint64]bool)
	if len(resolved) == 0 {
		return out, nil
	}
	versions, err := s.b.CrashedVersions(ctx, app, slices.Collect(maps.Keys(resolved)))
	if err != nil {
		return nil, fmt.Errorf("triage: versions of resolved groups: %w", err)
	}
	for fp, vs := range versions {
		fixed, ok := resolved[fp]
		out[fp] = ok && slices.ContainsFunc(vs, func(v string) bool {
			return comparableVersion(v) && CompareVersions(v, fixed) >= 0
		})
	}
	return out, nil
}

// SetStatus records a triage decision about a group; its ChangedAt
// defaults to now.
func (s *Store) SetStatus(ctx context.Context, d Decision) error {
	if d.ChangedAt.IsZero() {
		d.ChangedAt = s.cfg.Now()
	}
	if err := d.Validate(); err != nil {
		return err
	}
	if err := s.b.RecordDecision(ctx, d); err != nil {
		return fmt.Errorf("triage: record decision: %w", err)
	}
	return nil
}

// Crash is one stored crash, as the detail page shows it.
type Crash struct {
	EventTime     time.Time
	AppVersion    string
	OSName        string
	OSVersion     string
	ExceptionType string
	Message       string
	Thread        string
	Handled       bool
	AppState      string
	Frames        []pipeline.Frame
}

// Detail is one crash group with what its page shows.
type Detail struct {
	Group
	// Sample is the group's latest crash in the filter.
	Sample Crash
	// GroupingInputs are what the fingerprint of Sample was computed from
	// (package fingerprint); Custom is set when the app chose the group
	// itself, which the stored crash cannot show.
	GroupingInputs []string
	Custom         bool
	// Breakdowns are by app version, OS, device model and region, with
	// small cells hidden.
	Breakdowns []Breakdown
	// Timeline has a day for each day of the filter, oldest first.
	Timeline []Day
	// History is every triage decision, latest first.
	History []Decision
}

// Day is one day of a timeline.
type Day struct {
	Date     time.Time
	Crashes  uint64
	Sessions uint64
}

// ErrNotFound is returned by Group for a group without crashes in the
// filter.
var ErrNotFound = errors.New("triage: no such crash group in this range")

// Group returns the crash group fp of f.AppID with the crashes of f (its
// status selection aside).
func (s *Store) Group(ctx context.Context, f Filter, fp uint64) (*Detail, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	groups, err := s.groups(ctx, f, fp)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, ErrNotFound
	}
	d := &Detail{Group: groups[0]}
	sc := s.scope(f, fp)
	var (
		dayCells    []DayCell
		deviceCells []DeviceCell
	)
	// Each query fills its own fields of d.
	err = parallel(
		func() error { return s.titles(ctx, f, groups) },
		func() error { return s.sample(ctx, sc, d) },
		func() (err error) { d.History, err = s.history(ctx, f.AppID, fp); return err },
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
	)
	if err != nil {
		return nil, err
	}
	d.Message, d.Culprit = groups[0].Message, groups[0].Culprit
	// A session's version, region, OS and device do not change within its
	// day, so cells' distinct sessions add up (see groups).
	d.Breakdowns = []Breakdown{
		Suppress("App version", sumCells(dayCells, func(c *DayCell) (string, uint64, uint64) {
			return c.AppVersion, c.Sessions, c.Crashes
		}), s.cfg.K),
		Suppress("OS", sumCells(deviceCells, func(c *DeviceCell) (string, uint64, uint64) {
			return c.OSName + " " + c.OSVersion, c.Sessions, c.Crashes
		}), s.cfg.K),
		Suppress("Device model", sumCells(deviceCells, func(c *DeviceCell) (string, uint64, uint64) {
			return c.DeviceModel, c.Sessions, c.Crashes
		}), s.cfg.K),
		Suppress("Region", sumCells(dayCells, func(c *DayCell) (string, uint64, uint64) {
			return place(c.Country, c.Region), c.Sessions, c.Crashes
		}), s.cfg.K),
	}
	days := s.days(f.Days)
	d.Timeline = make([]Day, days.n)
	for i := range d.Timeline {
		d.Timeline[i].Date = days.date(i)
	}
	for _, c := range dayCells {
		if i := days.index(c.Day); i >= 0 {
			d.Timeline[i].Crashes += c.Crashes
			d.Timeline[i].Sessions += c.Sessions
		}
	}
	return d, nil
}

// place returns the finest of region and country that is known, or
// "unknown".
func place(country, region string) string {
	return cmp.Or(region, country, "unknown")
}

// sumCells sums rows into one cell per value of key, which returns a
// row's value, sessions and crashes.
func sumCells[R any](rows []R, key func(r *R) (value string, sessions, crashes uint64)) []Cell {
	index := make(map[string]int)
	var cells []Cell
	for i := range rows {
		k, sessions, crashes := key(&rows[i])
		j, ok := index[k]
		if !ok {
			j = len(cells)
			index[k] = j
			cells = append(cells, Cell{Value: k})
		}
		cells[j].Sessions += sessions
		cells[j].Crashes += crashes
	}
	return cells
}

// sample fills d.Sample with the group's latest crash in sc, reading only
// the day it was last seen, and the grouping inputs.
func (s *Store) sample(ctx context.Context, sc Scope, d *Detail) error {
	c, ok, err := s.b.LatestCrash(ctx, sc, d.LastSeen.UTC().Truncate(24*time.Hour), d.ExceptionTypes)
	if err != nil {
		return fmt.Errorf("triage: sample crash: %w", err)
	}
	if !ok {
		return nil
	}
	d.Sample = c
	var fp string
	fp, d.GroupingInputs = fingerprint.Of(&pipeline.CrashRow{ExceptionType: c.ExceptionType, Message: c.Message, Frames: c.Frames}, "")
	d.Custom = fp != fingerprint.Hex(d.Fingerprint)
	return nil
}

// historyLimit is how many decisions about a group Group returns.
const historyLimit = 100

// history returns the latest decisions about a group, latest first.
func (s *Store) history(ctx context.Context, app string, fp uint64) ([]Decision, error) {
	out, err := s.b.DecisionHistory(ctx, app, fp, historyLimit)
	if err != nil {
		return nil, fmt.Errorf("triage: status history: %w", err)
	}
	return out, nil
}
