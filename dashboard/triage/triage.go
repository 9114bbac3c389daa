// Package triage reads crash groups for the people who fix them: groups
// ranked by impact with their trend, the regressed, new and escalating
// flags, one group's stack, breakdowns and timeline, triage decisions, and
// an app's crash-free session rate. It queries the aggregates that
// package clickhouse maintains (crash_groups_daily, sessions_daily) and
// reads raw crashes only for one group at a time, so pages stay fast over
// millions of crashes.
//
// Breakdowns hide every cell of fewer than K distinct sessions (see
// Suppress): what triage shows never singles out a device.
package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/clickhouse"
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
	// Client is the ClickHouse client whose database holds the tables.
	Client *clickhouse.Client
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
	cfg  Config
	conn driver.Conn
	db   string
}

// New returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("triage: Client is required")
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
	return &Store{cfg: cfg, conn: cfg.Client.Conn(), db: cfg.Client.Database()}, nil
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

// where returns the WHERE clause (without WHERE) selecting f's app, days
// and dimensions on a table with app_id, event_date, app_version, os_name,
// country and region, and its arguments.
func (s *Store) where(f Filter) (string, []any) {
	days := s.days(f.Days)
	conds := []string{"app_id = ?", "event_date >= toDate(?)", "event_date <= toDate(?)"}
	args := []any{f.AppID, day(days.first), day(days.date(days.n - 1))}
	if f.AppVersion != "" {
		conds, args = append(conds, "app_version = ?"), append(args, f.AppVersion)
	}
	if f.OSName != "" {
		conds, args = append(conds, "os_name = ?"), append(args, f.OSName)
	}
	if f.Region != "" {
		col := "region"
		if len(f.Region) == 2 {
			col = "country"
		}
		conds, args = append(conds, col+" = ?"), append(args, f.Region)
	}
	return strings.Join(conds, " AND "), args
}

// today returns the start of the current UTC day.
func (s *Store) today() time.Time {
	y, m, d := s.cfg.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// day formats t as a date literal's value.
func day(t time.Time) string { return t.Format(time.DateOnly) }

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

// onlyGroup returns the condition that selects the group only, or "" for
// every group.
func onlyGroup(only string) string {
	if only == "" {
		return ""
	}
	return " AND fingerprint = " + only
}

// inList returns n placeholders for an IN list.
func inList(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// anys returns vs as query arguments.
func anys(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
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
	Status clickhouse.CrashGroupStatus
	// Regressed: resolved, but crashing in the fixed version or a later
	// one. New: first crashed within Config.NewWithin. Escalating: today
	// at least EscalateMin crashes and EscalateFactor times the daily
	// average of the 7 days before.
	Regressed  bool
	New        bool
	Escalating bool
}

// groupRow is a row of the group list query.
type groupRow struct {
	Fingerprint   uint64    `ch:"fingerprint"`
	ExceptionType string    `ch:"type"`
	Types         []string  `ch:"types"`
	Crashes       uint64    `ch:"crashes"`
	Fatal         uint64    `ch:"fatal"`
	Sessions      uint64    `ch:"sessions"`
	FirstSeen     time.Time `ch:"first_seen"`
	LastSeen      time.Time `ch:"last_seen"`
	Versions      []string  `ch:"versions"`
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
	groups, err := s.groups(ctx, f, "")
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
		return g.Status.State == clickhouse.StateOpen || g.Regressed
	case StatusResolved:
		return g.Status.State == clickhouse.StateResolved && !g.Regressed
	case StatusIgnored:
		return g.Status.State == clickhouse.StateIgnored
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

// groups returns the groups of f, or only the one with fingerprint only if
// only is not "", with their status and flags but without their titles
// (see titles), ranked by impact.
//
// Sessions are counted per row of the aggregate and summed, instead of
// merging the rows' distinct counts: merging is five times slower, and
// gives the same number, because a session's version, OS and region do
// not change within its day (its key changes every day). The exception is
// a rare value generalized only in part of the day, whose sessions count
// twice.
func (s *Store) groups(ctx context.Context, f Filter, only string) ([]Group, error) {
	where, args := s.where(f)
	where += onlyGroup(only)
	var (
		rows      []groupRow
		statuses  map[uint64]clickhouse.CrashGroupStatus
		regressed map[uint64]bool
		daily     map[uint64][]uint64
		firstEver map[uint64]time.Time
	)
	q := fmt.Sprintf(`SELECT fingerprint, any(exception_type) AS type, groupUniqArray(exception_type) AS types,
    sumMerge(crashes) AS crashes, sumMerge(fatal) AS fatal,
    sum(finalizeAggregation(sessions)) AS sessions,
    minMerge(first_seen) AS first_seen, maxMerge(last_seen) AS last_seen,
    groupUniqArray(app_version) AS versions
FROM %s.%s
WHERE %s
GROUP BY fingerprint
ORDER BY sessions DESC, crashes DESC, fingerprint`, s.db, clickhouse.TableCrashGroupsDaily, where)
	err := parallel(
		func() error {
			if err := s.conn.Select(ctx, &rows, q, args...); err != nil {
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
		func() (err error) { daily, err = s.daily(ctx, f, only); return err },
		func() (err error) { firstEver, err = s.firstEver(ctx, f.AppID, only); return err },
	)
	if err != nil {
		return nil, err
	}

	now := s.cfg.Now()
	out := make([]Group, len(rows))
	for i, r := range rows {
		slices.SortFunc(r.Versions, CompareVersions)
		g := Group{
			AppID: f.AppID, Fingerprint: r.Fingerprint, ExceptionType: r.ExceptionType, ExceptionTypes: r.Types,
			Crashes: r.Crashes, Fatal: r.Fatal, Sessions: r.Sessions,
			FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, FirstEver: r.FirstSeen,
			Versions: r.Versions,
			Status:   clickhouse.CrashGroupStatus{AppID: f.AppID, Fingerprint: r.Fingerprint, State: clickhouse.StateOpen},
		}
		if t, ok := firstEver[r.Fingerprint]; ok {
			g.FirstEver = t
		}
		if st, ok := statuses[r.Fingerprint]; ok {
			g.Status = st
		}
		g.Regressed = regressed[r.Fingerprint]
		g.New = now.Sub(g.FirstEver) <= s.cfg.NewWithin
		g.Daily = make([]uint64, f.Days)
		counts := daily[r.Fingerprint]
		copy(g.Daily, counts[max(0, len(counts)-f.Days):])
		g.Escalating = s.escalating(counts)
		out[i] = g
	}
	return out, nil
}

// titles fills in the message and culprit of groups, reading only their
// rows of the aggregate.
func (s *Store) titles(ctx context.Context, f Filter, groups []Group) error {
	if len(groups) == 0 {
		return nil
	}
	fps := make([]string, len(groups))
	for i, g := range groups {
		fps[i] = fmt.Sprint(g.Fingerprint)
	}
	where, args := s.where(f)
	var rows []struct {
		Fingerprint uint64 `ch:"fingerprint"`
		Message     string `ch:"message"`
		Culprit     string `ch:"culprit"`
	}
	q := fmt.Sprintf(`SELECT fingerprint, anyMerge(message) AS message, anyMerge(culprit) AS culprit
FROM %s.%s WHERE %s AND fingerprint IN (%s) GROUP BY fingerprint`,
		s.db, clickhouse.TableCrashGroupsDaily, where, strings.Join(fps, ", "))
	if err := s.conn.Select(ctx, &rows, q, args...); err != nil {
		return fmt.Errorf("triage: crash group titles: %w", err)
	}
	for _, r := range rows {
		for i := range groups {
			if groups[i].Fingerprint == r.Fingerprint {
				groups[i].Message, groups[i].Culprit = r.Message, r.Culprit
			}
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

// daily returns per group (or only for the group only) the crashes of
// each day of f's range, extended to cover the escalation baseline, oldest
// first.
func (s *Store) daily(ctx context.Context, f Filter, only string) (map[uint64][]uint64, error) {
	f.Days = max(f.Days, escalateBaselineDays+1)
	days := s.days(f.Days)
	where, args := s.where(f)
	where += onlyGroup(only)
	var rows []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		Day         time.Time `ch:"event_date"`
		Crashes     uint64    `ch:"crashes"`
	}
	q := fmt.Sprintf(`SELECT fingerprint, event_date, sumMerge(crashes) AS crashes
FROM %s.%s
WHERE %s
GROUP BY fingerprint, event_date`, s.db, clickhouse.TableCrashGroupsDaily, where)
	if err := s.conn.Select(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("triage: daily crashes: %w", err)
	}
	out := make(map[uint64][]uint64)
	for _, r := range rows {
		i := days.index(r.Day)
		if i < 0 {
			continue
		}
		c, ok := out[r.Fingerprint]
		if !ok {
			c = make([]uint64, days.n)
			out[r.Fingerprint] = c
		}
		c[i] += r.Crashes
	}
	return out, nil
}

// firstEver returns when each group of app (or only the group only) first
// crashed, over all the data kept. To stay fast over many days it reads
// the first day of each group, and the exact time only for the groups
// whose first day is within NewWithin of now, and for only; the other
// groups get the start of their first day.
func (s *Store) firstEver(ctx context.Context, app, only string) (map[uint64]time.Time, error) {
	var days []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		First       time.Time `ch:"first"`
	}
	q := fmt.Sprintf("SELECT fingerprint, min(event_date) AS first FROM %s.%s WHERE app_id = ?%s GROUP BY fingerprint",
		s.db, clickhouse.TableCrashGroupsDaily, onlyGroup(only))
	if err := s.conn.Select(ctx, &days, q, app); err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	out := make(map[uint64]time.Time, len(days))
	recent := s.cfg.Now().Add(-s.cfg.NewWithin).UTC().Truncate(24 * time.Hour)
	var exact []string
	for _, d := range days {
		out[d.Fingerprint] = d.First.UTC()
		if only != "" || !d.First.Before(recent) {
			exact = append(exact, fmt.Sprint(d.Fingerprint))
		}
	}
	if len(exact) == 0 {
		return out, nil
	}
	var times []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		First       time.Time `ch:"first"`
	}
	q = fmt.Sprintf("SELECT fingerprint, minMerge(first_seen) AS first FROM %s.%s WHERE app_id = ? AND fingerprint IN (%s) GROUP BY fingerprint",
		s.db, clickhouse.TableCrashGroupsDaily, strings.Join(exact, ", "))
	if err := s.conn.Select(ctx, &times, q, app); err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	for _, t := range times {
		out[t.Fingerprint] = t.First
	}
	return out, nil
}

// statusRow is a triage decision as the status table holds it.
type statusRow struct {
	Fingerprint uint64    `ch:"fingerprint"`
	State       string    `ch:"status"`
	ResolvedIn  string    `ch:"resolved_in"`
	ChangedBy   string    `ch:"changed_by"`
	ChangedAt   time.Time `ch:"changed_at"`
}

// status returns r as app's CrashGroupStatus.
func (r statusRow) status(app string) clickhouse.CrashGroupStatus {
	return clickhouse.CrashGroupStatus{AppID: app, Fingerprint: r.Fingerprint, State: clickhouse.CrashGroupState(r.State),
		ResolvedIn: r.ResolvedIn, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
}

// statuses returns the latest status of each group of app that has one
// (or only of the group fp).
func (s *Store) statuses(ctx context.Context, app, only string) (map[uint64]clickhouse.CrashGroupStatus, error) {
	var rows []statusRow
	q := fmt.Sprintf(`SELECT fingerprint, argMax(status, version) AS status, argMax(resolved_in, version) AS resolved_in,
    argMax(changed_by, version) AS changed_by, argMax(changed_at, version) AS changed_at
FROM %s.%s WHERE app_id = ?%s GROUP BY fingerprint`, s.db, clickhouse.TableCrashGroupStatus, onlyGroup(only))
	if err := s.conn.Select(ctx, &rows, q, app); err != nil {
		return nil, fmt.Errorf("triage: read statuses: %w", err)
	}
	out := make(map[uint64]clickhouse.CrashGroupStatus, len(rows))
	for _, r := range rows {
		out[r.Fingerprint] = r.status(app)
	}
	return out, nil
}

// regressed returns which of the groups resolved in statuses crashed in
// the fixed version or a later one, over all the data kept.
func (s *Store) regressed(ctx context.Context, app string, statuses map[uint64]clickhouse.CrashGroupStatus) (map[uint64]bool, error) {
	resolved := make(map[uint64]string)
	for fp, st := range statuses {
		if st.State == clickhouse.StateResolved {
			resolved[fp] = st.ResolvedIn
		}
	}
	out := make(map[uint64]bool)
	if len(resolved) == 0 {
		return out, nil
	}
	fps := make([]string, 0, len(resolved))
	for fp := range resolved {
		fps = append(fps, fmt.Sprint(fp))
	}
	var rows []struct {
		Fingerprint uint64   `ch:"fingerprint"`
		Versions    []string `ch:"versions"`
	}
	q := fmt.Sprintf("SELECT fingerprint, groupUniqArray(app_version) AS versions FROM %s.%s WHERE app_id = ? AND fingerprint IN (%s) GROUP BY fingerprint",
		s.db, clickhouse.TableCrashGroupsDaily, strings.Join(fps, ", "))
	if err := s.conn.Select(ctx, &rows, q, app); err != nil {
		return nil, fmt.Errorf("triage: versions of resolved groups: %w", err)
	}
	for _, r := range rows {
		fixed := resolved[r.Fingerprint]
		out[r.Fingerprint] = slices.ContainsFunc(r.Versions, func(v string) bool {
			return comparableVersion(v) && CompareVersions(v, fixed) >= 0
		})
	}
	return out, nil
}

// SetStatus records a triage decision about a group.
func (s *Store) SetStatus(ctx context.Context, st clickhouse.CrashGroupStatus) error {
	if st.ChangedAt.IsZero() {
		st.ChangedAt = s.cfg.Now()
	}
	return s.cfg.Client.SetCrashGroupStatus(ctx, st)
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
	History []clickhouse.CrashGroupStatus
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
	only := fmt.Sprint(fp)
	groups, err := s.groups(ctx, f, only)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return nil, ErrNotFound
	}
	d := &Detail{Group: groups[0]}
	where, args := s.where(f)
	where += onlyGroup(only)
	var agg, raw []breakdownRow
	// Each query fills its own fields of d.
	err = parallel(
		func() error { return s.titles(ctx, f, groups) },
		func() error { return s.sample(ctx, f, d) },
		func() (err error) { d.History, err = s.history(ctx, f.AppID, fp); return err },
		// The app version and region are dimensions of the aggregate, and
		// the days its rows; the OS version and device model are not:
		// they count the group's raw crashes, of its exception types
		// (which the crashes table is sorted by).
		func() error {
			q := fmt.Sprintf(`SELECT toString(event_date) AS day, app_version AS a, if(region != '', region, if(country != '', country, 'unknown')) AS b,
    sum(finalizeAggregation(sessions)) AS sessions, sumMerge(crashes) AS crashes
FROM %s.%s WHERE %s GROUP BY day, a, b`, s.db, clickhouse.TableCrashGroupsDaily, where)
			return s.breakdownRows(ctx, q, args, &agg)
		},
		func() error {
			q := fmt.Sprintf(`SELECT '' AS day, concat(os_name, ' ', os_version) AS a, device_model AS b,
    uniqIf(session_key, session_key != 0) AS sessions, count() AS crashes
FROM %s.%s WHERE %s AND exception_type IN (%s) GROUP BY a, b`, s.db, clickhouse.TableCrashes, where, inList(len(d.ExceptionTypes)))
			return s.breakdownRows(ctx, q, append(slices.Clip(args), anys(d.ExceptionTypes)...), &raw)
		},
	)
	if err != nil {
		return nil, err
	}
	d.Message, d.Culprit = groups[0].Message, groups[0].Culprit
	// A session's version, region, OS and device do not change within its
	// day, so cells' distinct sessions add up (see groups).
	d.Breakdowns = []Breakdown{
		Suppress("App version", sumCells(agg, func(r *breakdownRow) string { return r.A }), s.cfg.K),
		Suppress("OS", sumCells(raw, func(r *breakdownRow) string { return r.A }), s.cfg.K),
		Suppress("Device model", sumCells(raw, func(r *breakdownRow) string { return r.B }), s.cfg.K),
		Suppress("Region", sumCells(agg, func(r *breakdownRow) string { return r.B }), s.cfg.K),
	}
	days := s.days(f.Days)
	d.Timeline = make([]Day, days.n)
	for i := range d.Timeline {
		d.Timeline[i].Date = days.date(i)
	}
	for _, r := range agg {
		t, err := time.Parse(time.DateOnly, r.Day)
		if err != nil {
			continue
		}
		if i := days.index(t); i >= 0 {
			d.Timeline[i].Crashes += r.Crashes
			d.Timeline[i].Sessions += r.Sessions
		}
	}
	return d, nil
}

// breakdownRow is a row of a breakdown query: a day (or ""), two
// dimensions' values, and counts.
type breakdownRow struct {
	Day      string `ch:"day"`
	A        string `ch:"a"`
	B        string `ch:"b"`
	Sessions uint64 `ch:"sessions"`
	Crashes  uint64 `ch:"crashes"`
}

// breakdownRows runs a breakdown query.
func (s *Store) breakdownRows(ctx context.Context, q string, args []any, dst *[]breakdownRow) error {
	if err := s.conn.Select(ctx, dst, q, args...); err != nil {
		return fmt.Errorf("triage: breakdown: %w", err)
	}
	return nil
}

// sumCells sums rows into one cell per value of key.
func sumCells(rows []breakdownRow, key func(r *breakdownRow) string) []Cell {
	index := make(map[string]int)
	var cells []Cell
	for i := range rows {
		k := key(&rows[i])
		j, ok := index[k]
		if !ok {
			j = len(cells)
			index[k] = j
			cells = append(cells, Cell{Value: k})
		}
		cells[j].Sessions += rows[i].Sessions
		cells[j].Crashes += rows[i].Crashes
	}
	return cells
}

// sample fills d.Sample with the group's latest crash in f, reading only
// the day it was last seen, and the grouping inputs.
func (s *Store) sample(ctx context.Context, f Filter, d *Detail) error {
	where, args := s.where(f)
	var rows []struct {
		EventTime     time.Time `ch:"event_time"`
		AppVersion    string    `ch:"app_version"`
		OSName        string    `ch:"os_name"`
		OSVersion     string    `ch:"os_version"`
		ExceptionType string    `ch:"exception_type"`
		Message       string    `ch:"message"`
		Thread        string    `ch:"thread"`
		Handled       uint8     `ch:"handled"`
		AppState      string    `ch:"app_state"`
		Modules       []string  `ch:"frame_module"`
		Functions     []string  `ch:"frame_function"`
		Files         []string  `ch:"frame_file"`
		Lines         []uint32  `ch:"frame_line"`
		InApp         []uint8   `ch:"frame_in_app"`
	}
	q := fmt.Sprintf(`SELECT event_time, app_version, os_name, os_version, exception_type, message, thread, handled, app_state,
    frame_module, frame_function, frame_file, frame_line, frame_in_app
FROM %s.%s
WHERE %s AND event_date = toDate(?) AND exception_type IN (%s) AND fingerprint = %d
ORDER BY event_time DESC LIMIT 1`, s.db, clickhouse.TableCrashes, where, inList(len(d.ExceptionTypes)), d.Fingerprint)
	args = append(append(args, day(d.LastSeen.UTC())), anys(d.ExceptionTypes)...)
	if err := s.conn.Select(ctx, &rows, q, args...); err != nil {
		return fmt.Errorf("triage: sample crash: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	r := rows[0]
	c := Crash{
		EventTime: r.EventTime, AppVersion: r.AppVersion, OSName: r.OSName, OSVersion: r.OSVersion,
		ExceptionType: r.ExceptionType, Message: r.Message, Thread: r.Thread, Handled: r.Handled == 1, AppState: r.AppState,
	}
	for i := range r.Functions {
		fr := pipeline.Frame{Function: r.Functions[i]}
		if i < len(r.Modules) {
			fr.Module = r.Modules[i]
		}
		if i < len(r.Files) {
			fr.File = r.Files[i]
		}
		if i < len(r.Lines) {
			fr.Line = r.Lines[i]
		}
		if i < len(r.InApp) {
			fr.InApp = r.InApp[i] == 1
		}
		c.Frames = append(c.Frames, fr)
	}
	d.Sample = c
	var fp string
	fp, d.GroupingInputs = fingerprint.Of(&pipeline.CrashRow{ExceptionType: c.ExceptionType, Message: c.Message, Frames: c.Frames}, "")
	d.Custom = fp != fingerprint.Hex(d.Fingerprint)
	return nil
}

// history returns every triage decision about a group, latest first.
func (s *Store) history(ctx context.Context, app string, fp uint64) ([]clickhouse.CrashGroupStatus, error) {
	var rows []statusRow
	q := fmt.Sprintf(`SELECT fingerprint, status, resolved_in, changed_by, changed_at FROM %s.%s
WHERE app_id = ? AND fingerprint = %d ORDER BY version DESC LIMIT 100`, s.db, clickhouse.TableCrashGroupStatus, fp)
	if err := s.conn.Select(ctx, &rows, q, app); err != nil {
		return nil, fmt.Errorf("triage: status history: %w", err)
	}
	out := make([]clickhouse.CrashGroupStatus, len(rows))
	for i, r := range rows {
		out[i] = r.status(app)
	}
	return out, nil
}
