// Package triage reads crash groups for the people who fix them: groups
// ranked by impact with their trend, the regressed, new and escalating
// flags, search, sorting and pages of groups, one group's stack, charts,
// breakdowns and individual crashes, triage decisions, assignments, notes
// and merges, and an app's crash-free session rate and release adoption.
//
// A Store asks a Backend, which this package declares and package
// clickhouse implements, for what is stored: per-group and per-day counts
// from the aggregates, the raw crashes of one group at a time, and the
// changes made. The Store merges, ranks, flags and hides; the Backend
// only counts, so pages stay fast over millions of crashes.
//
// Merged groups are a fingerprint override applied at read time: every
// count, flag, chart and breakdown of a group includes the groups merged
// into it, and the stored crashes and aggregates are never rewritten.
//
// Breakdowns show only cells of at least K distinct sessions, grouping
// smaller values under coarser ones (see Generalize), and an individual
// crash shows a version, OS, device or region only as the breakdown of
// its group shows it: what triage shows never singles out a device.
package triage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/anonymizer/scrub"
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
	// DefaultPerPage is how many groups a page of List has.
	DefaultPerPage = 50
	// MaxPerPage is the most groups a page of List has.
	MaxPerPage = 200
	// CrashesPerPage is how many individual crashes a group's page shows
	// at a time.
	CrashesPerPage = 20
	// MaxSearchLen is the longest search text, in bytes.
	MaxSearchLen = 200
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
	// Scrubber scrubs notes of identifiers before they are stored;
	// default a Scrubber with every detector.
	Scrubber *scrub.Scrubber
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
	if cfg.Scrubber == nil {
		cfg.Scrubber = scrub.New(scrub.Config{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, b: cfg.Backend}, nil
}

// K returns the fewest distinct sessions a shown cell has.
func (s *Store) K() int { return s.cfg.K }

// Now returns the Store's current time.
func (s *Store) Now() time.Time { return s.cfg.Now() }

// Status selects groups by their triage state in List.
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

// Kind selects crashes by whether they ended the process.
type Kind string

// Kinds a Filter can select.
const (
	// KindAll is crashes and handled exceptions.
	KindAll Kind = ""
	// KindFatal is crashes that ended the process.
	KindFatal Kind = "fatal"
	// KindHandled is exceptions the app caught and reported.
	KindHandled Kind = "handled"
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
	// Kind narrows to crashes that ended the process or to handled
	// exceptions; KindAll for both.
	Kind Kind
	// Status selects groups by state; default StatusUnresolved.
	Status Status
	// Search selects the groups with a crash whose exception type,
	// message or culprit function contains it, ignoring case; "" for
	// every group. At most MaxSearchLen bytes.
	Search string
	// Assignee selects the groups assigned to this dashboard user; "" for
	// any.
	Assignee string
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
	switch f.Kind {
	case KindAll, KindFatal, KindHandled:
	default:
		return f, fmt.Errorf("%w: unknown kind %q: fatal, handled or empty", ErrInvalidFilter, f.Kind)
	}
	f.Search = strings.TrimSpace(f.Search)
	if len(f.Search) > MaxSearchLen || !utf8.ValidString(f.Search) {
		return f, fmt.Errorf("%w: the search is longer than %d bytes", ErrInvalidFilter, MaxSearchLen)
	}
	if f.Assignee != "" && !ValidUser(f.Assignee) {
		return f, fmt.Errorf("%w: %q is not a user name", ErrInvalidFilter, f.Assignee)
	}
	return f, nil
}

// Range returns the first and the last UTC day f covers, at midnight, as
// of now.
func (s *Store) Range(f Filter) (first, last time.Time) {
	if f.Days == 0 {
		f.Days = 14
	}
	d := s.days(max(f.Days, 1))
	return d.first, d.date(d.n - 1)
}

// scope returns the Scope of f's app, days, dimensions and kind, and of
// the crash groups groups (nil for every group). A two-letter Region is
// an ISO 3166-1 country, a longer one an ISO 3166-2 region.
func (s *Store) scope(f Filter, groups ...uint64) Scope {
	days := s.days(f.Days)
	sc := Scope{AppID: f.AppID, First: days.first, Last: days.date(days.n - 1), AppVersion: f.AppVersion, OSName: f.OSName, Groups: groups, Kind: f.Kind}
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

// Group is a crash group: every crash of an app with one fingerprint, and
// of the groups merged into it.
type Group struct {
	AppID       string
	Fingerprint uint64
	// Members are the groups merged into this one, in order; nil if none.
	Members []uint64
	// ExceptionType, Message and Culprit describe one of its crashes:
	// type, scrubbed message, and the innermost in-app function.
	ExceptionType string
	Message       string
	Culprit       string
	// ExceptionTypes are every type of its crashes: one, unless the app
	// grouped them with a custom fingerprint or groups were merged.
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
	// Assignee is the dashboard user working on it, "" for nobody.
	Assignee string
	// Regressed: resolved, but crashing in the fixed version or a later
	// one since it was resolved; RegressedIn are those versions. New:
	// first crashed within Config.NewWithin. Escalating: today at least
	// EscalateMin crashes and EscalateFactor times the daily average of
	// the 7 days before.
	Regressed   bool
	RegressedIn []string
	New         bool
	Escalating  bool
}

// AllFingerprints returns the group's own fingerprint and its members'.
func (g *Group) AllFingerprints() []uint64 { return append([]uint64{g.Fingerprint}, g.Members...) }

// Sort orders a list of groups.
type Sort string

// The orders of a list.
const (
	// SortSessions orders by affected sessions, then crashes.
	SortSessions Sort = "sessions"
	// SortCrashes orders by crashes, then sessions.
	SortCrashes Sort = "crashes"
	// SortLastSeen orders by the latest crash.
	SortLastSeen Sort = "last_seen"
	// SortFirstSeen orders by the first crash ever: the age of the group.
	SortFirstSeen Sort = "first_seen"
)

// Sorts returns the orders a list can take.
func Sorts() []Sort { return []Sort{SortSessions, SortCrashes, SortLastSeen, SortFirstSeen} }

// ListOptions picks the order and the page of a list.
type ListOptions struct {
	// Sort is the order; default SortSessions.
	Sort Sort
	// Asc sorts smallest or oldest first; the default is largest or
	// newest first.
	Asc bool
	// Page is the page, from 1; default 1. A page past the last is empty.
	Page int
	// PerPage is how many groups a page has; default DefaultPerPage, at
	// most MaxPerPage.
	PerPage int
}

// normalize returns o with defaults applied, or an error wrapping
// ErrInvalidFilter.
func (o ListOptions) normalize() (ListOptions, error) {
	if o.Sort == "" {
		o.Sort = SortSessions
	}
	if !slices.Contains(Sorts(), o.Sort) {
		return o, fmt.Errorf("%w: unknown order %q", ErrInvalidFilter, o.Sort)
	}
	if o.Page == 0 {
		o.Page = 1
	}
	if o.PerPage == 0 {
		o.PerPage = DefaultPerPage
	}
	if o.Page < 1 || o.PerPage < 1 || o.PerPage > MaxPerPage {
		return o, fmt.Errorf("%w: page %d of %d groups is not a page", ErrInvalidFilter, o.Page, o.PerPage)
	}
	return o, nil
}

// GroupList is a page of crash groups.
type GroupList struct {
	// Groups are the page's groups, in order.
	Groups []Group
	// Total is how many groups the filter selects, on every page, and
	// Crashes their crashes.
	Total   int
	Crashes uint64
	// Options are the order and page, with defaults applied; Pages is
	// the number of pages.
	Options ListOptions
	Pages   int
}

// List returns a page of the crash groups of f, in the order of o.
func (s *Store) List(ctx context.Context, f Filter, o ListOptions) (*GroupList, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	if o, err = o.normalize(); err != nil {
		return nil, err
	}
	var (
		groups []Group
		found  []uint64
	)
	err = parallel(
		func() (err error) { groups, err = s.groups(ctx, f, nil, nil); return err },
		func() (err error) {
			if f.Search == "" {
				return nil
			}
			if found, err = s.b.SearchGroups(ctx, s.scope(f), f.Search); err != nil {
				return fmt.Errorf("triage: search: %w", err)
			}
			return nil
		},
	)
	if err != nil {
		return nil, err
	}
	groups = slices.DeleteFunc(groups, func(g Group) bool {
		if !f.Status.selects(&g) || f.Assignee != "" && g.Assignee != f.Assignee {
			return true
		}
		return f.Search != "" && !slices.ContainsFunc(g.AllFingerprints(), func(fp uint64) bool { return slices.Contains(found, fp) })
	})
	sortGroups(groups, o)
	l := &GroupList{Total: len(groups), Options: o, Pages: max(1, (len(groups)+o.PerPage-1)/o.PerPage)}
	for _, g := range groups {
		l.Crashes += g.Crashes
	}
	from := min((o.Page-1)*o.PerPage, len(groups))
	l.Groups = groups[from:min(from+o.PerPage, len(groups))]
	if err := s.titles(ctx, f, l.Groups); err != nil {
		return nil, err
	}
	return l, nil
}

// sortGroups orders groups as o says; ties go by the other counts, then
// fingerprint, so the order is stable between pages.
func sortGroups(groups []Group, o ListOptions) {
	key := func(a, b *Group) int {
		switch o.Sort {
		case SortCrashes:
			return cmp.Or(cmp.Compare(a.Crashes, b.Crashes), cmp.Compare(a.Sessions, b.Sessions))
		case SortLastSeen:
			return a.LastSeen.Compare(b.LastSeen)
		case SortFirstSeen:
			return a.FirstEver.Compare(b.FirstEver)
		}
		return cmp.Or(cmp.Compare(a.Sessions, b.Sessions), cmp.Compare(a.Crashes, b.Crashes))
	}
	slices.SortFunc(groups, func(a, b Group) int {
		c := key(&a, &b)
		if !o.Asc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
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

// merges returns app's merges.
func (s *Store) merges(ctx context.Context, app string) (mergeSet, error) {
	latest, err := s.b.LatestChanges(ctx, app, ChangeMerge, nil)
	if err != nil {
		return mergeSet{}, fmt.Errorf("triage: read merges: %w", err)
	}
	return newMergeSet(latest), nil
}

// groups returns the groups of f, with their status and flags but without
// their titles (see titles), ranked by impact: most affected sessions
// first, then most crashes. With only (the members of one group, ms the
// app's merges), it reads only those; else every group, reading the
// merges itself. A merged group's crashes count in the group it joined.
func (s *Store) groups(ctx context.Context, f Filter, ms *mergeSet, only []uint64) ([]Group, error) {
	var (
		days      []GroupDay
		statuses  map[uint64]Decision
		assignees map[uint64]Change
		regressed map[uint64][]string
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
			if ms == nil {
				m, err := s.merges(ctx, f.AppID)
				if err != nil {
					return err
				}
				ms = &m
			}
			if statuses, err = s.statuses(ctx, f.AppID, only); err != nil {
				return err
			}
			regressed, err = s.regressed(ctx, f.AppID, *ms, statuses)
			return err
		},
		func() (err error) {
			if assignees, err = s.b.LatestChanges(ctx, f.AppID, ChangeAssignee, only); err != nil {
				return fmt.Errorf("triage: read assignees: %w", err)
			}
			return nil
		},
		func() (err error) { firstEver, err = s.firstEver(ctx, f.AppID, only); return err },
	)
	if err != nil {
		return nil, err
	}

	// Sum each group's days of f: distinct sessions add up over days,
	// as a session's key changes every day, and (nearly) over merged
	// groups (see docs/dashboard.md).
	wideDays, fDays := s.days(wide.Days), s.days(f.Days)
	index := make(map[uint64]int)
	var out []Group
	daily := make(map[uint64][]uint64)
	for _, d := range days {
		i := wideDays.index(d.Day)
		if i < 0 {
			continue
		}
		root := ms.root(d.Fingerprint)
		counts, ok := daily[root]
		if !ok {
			counts = make([]uint64, wideDays.n)
			daily[root] = counts
		}
		counts[i] += d.Crashes
		if fDays.index(d.Day) < 0 {
			continue
		}
		j, ok := index[root]
		if !ok {
			j = len(out)
			index[root] = j
			out = append(out, Group{AppID: f.AppID, Fingerprint: root, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen})
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
		if d.Fingerprint != root && !slices.Contains(g.Members, d.Fingerprint) {
			g.Members = append(g.Members, d.Fingerprint)
		}
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})

	now := s.cfg.Now()
	for i := range out {
		g := &out[i]
		slices.Sort(g.Members)
		slices.SortFunc(g.Versions, CompareVersions)
		slices.Sort(g.ExceptionTypes)
		g.ExceptionType = g.ExceptionTypes[0]
		g.FirstEver = g.FirstSeen
		for _, fp := range g.AllFingerprints() {
			if t, ok := firstEver[fp]; ok && t.Before(g.FirstEver) {
				g.FirstEver = t
			}
		}
		g.Status = Decision{AppID: f.AppID, Fingerprint: g.Fingerprint, State: StateOpen}
		if st, ok := statuses[g.Fingerprint]; ok {
			g.Status = st
		}
		g.Assignee = assignees[g.Fingerprint].Value
		g.RegressedIn = regressed[g.Fingerprint]
		g.Regressed = len(g.RegressedIn) > 0
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

// titles fills in the message and culprit of groups: the group's own, or
// else a member's.
func (s *Store) titles(ctx context.Context, f Filter, groups []Group) error {
	if len(groups) == 0 {
		return nil
	}
	var fps []uint64
	for _, g := range groups {
		fps = append(fps, g.AllFingerprints()...)
	}
	titles, err := s.b.GroupTitles(ctx, s.scope(f, fps...))
	if err != nil {
		return fmt.Errorf("triage: crash group titles: %w", err)
	}
	for i := range groups {
		for _, fp := range groups[i].AllFingerprints() {
			if t, ok := titles[fp]; ok {
				groups[i].Message, groups[i].Culprit = t.Message, t.Culprit
				break
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

// regressed returns, for each unmerged group resolved in statuses that
// crashed in the fixed version or a later one after it was resolved
// (itself or a group merged into it), those versions, in order. Crashes
// from before the decision do not count, whatever their version: they
// were known when the group was resolved.
func (s *Store) regressed(ctx context.Context, app string, ms mergeSet, statuses map[uint64]Decision) (map[uint64][]string, error) {
	resolved := make(map[uint64]Decision)
	var since time.Time
	var fps []uint64
	for fp, st := range statuses {
		if st.State != StateResolved || ms.merged(fp) {
			continue
		}
		resolved[fp] = st
		if since.IsZero() || st.ChangedAt.Before(since) {
			since = st.ChangedAt
		}
		fps = append(fps, ms.members(fp)...)
	}
	out := make(map[uint64][]string)
	if len(resolved) == 0 {
		return out, nil
	}
	slices.Sort(fps)
	versions, err := s.b.VersionsLastSeen(ctx, app, slices.Compact(fps), since)
	if err != nil {
		return nil, fmt.Errorf("triage: versions of resolved groups: %w", err)
	}
	for fp, last := range versions {
		root := ms.root(fp)
		st, ok := resolved[root]
		if !ok {
			continue
		}
		for v, at := range last {
			if comparableVersion(v) && CompareVersions(v, st.ResolvedIn) >= 0 && at.After(st.ChangedAt) {
				out[root] = appendNew(out[root], v)
			}
		}
	}
	for _, vs := range out {
		slices.SortFunc(vs, CompareVersions)
	}
	return out, nil
}
