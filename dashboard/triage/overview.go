package triage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Overview is an app's health over a filter's days.
type Overview struct {
	// Days has a day for each day of the filter, oldest first.
	Days []DayHealth
	// Versions are the cells of the app versions' breakdown, newest
	// first: versions with at least K sessions, and coarse cells ("4.x")
	// of smaller ones that have K together. HiddenVersions counts the
	// versions in neither, GeneralizedVersions those in coarse cells.
	Versions            []VersionHealth
	HiddenVersions      int
	GeneralizedVersions int
	// Sessions and CrashedSessions total the filter's days.
	Sessions        uint64
	CrashedSessions uint64
	// Adoption has each day's sessions per cell of Versions.
	Adoption []AdoptionDay
}

// DayHealth is one day of an app's sessions.
type DayHealth struct {
	Date            time.Time
	Sessions        uint64
	CrashedSessions uint64
}

// CrashFree returns the day's crash-free session rate; false on a day
// without sessions, which has none.
func (d DayHealth) CrashFree() (float64, bool) { return CrashFree(d.Sessions, d.CrashedSessions) }

// VersionHealth is one app version's sessions and crashes, or those of a
// coarse cell of versions (Coarse).
type VersionHealth struct {
	Version         string
	Coarse          bool
	Sessions        uint64
	CrashedSessions uint64
	Crashes         uint64
}

// CrashFree returns the version's crash-free session rate; false without
// sessions.
func (v VersionHealth) CrashFree() (float64, bool) { return CrashFree(v.Sessions, v.CrashedSessions) }

// AdoptionDay is the share of each version on one day.
type AdoptionDay struct {
	Date     time.Time
	Sessions uint64
	// Versions holds the sessions of each cell of Overview.Versions,
	// in its order; 0 where that day's cell has fewer than K sessions.
	Versions []uint64
	// Other sums the day's sessions of hidden versions and cells when
	// that sum has K (see Generalize); Hidden is set when a day's
	// sessions are all in cells too small to show.
	Other  uint64
	Hidden bool
}

// CrashFree returns the share of sessions that did not crash, from 0 to
// 1; false without sessions, where there is no rate to show.
func CrashFree(sessions, crashed uint64) (float64, bool) {
	if sessions == 0 {
		return 0, false
	}
	return 1 - float64(min(crashed, sessions))/float64(sessions), true
}

// Overview returns sessions per day, the crash-free session rate per app
// version and the adoption of versions per day for f (its status, kind,
// search and assignee aside): distinct sessions, and distinct sessions
// with a crash that ended the process, both counted per day.
func (s *Store) Overview(ctx context.Context, f Filter) (*Overview, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	f.Kind = KindAll
	rows, err := s.b.VersionDays(ctx, s.scope(f))
	if err != nil {
		return nil, fmt.Errorf("triage: sessions per day: %w", err)
	}

	days := s.days(f.Days)
	o := &Overview{Days: make([]DayHealth, days.n)}
	for i := range o.Days {
		o.Days[i].Date = days.date(i)
	}
	// Distinct sessions are counted per day (their keys change daily), so
	// days add up.
	type version struct {
		VersionHealth
		days []uint64
	}
	versions := make(map[string]*version)
	var names []string
	for _, r := range rows {
		i := days.index(r.Day)
		if i < 0 {
			continue
		}
		o.Days[i].Sessions += r.Sessions
		o.Days[i].CrashedSessions += r.Crashed
		v := versions[r.AppVersion]
		if v == nil {
			v = &version{VersionHealth: VersionHealth{Version: r.AppVersion}, days: make([]uint64, days.n)}
			versions[r.AppVersion] = v
			names = append(names, r.AppVersion)
		}
		v.Sessions += r.Sessions
		v.CrashedSessions += r.Crashed
		v.Crashes += r.Crashes
		v.days[i] += r.Sessions
	}
	for _, d := range o.Days {
		o.Sessions += d.Sessions
		o.CrashedSessions += d.CrashedSessions
	}

	atoms := make([]Atom, 0, len(names))
	for _, n := range names {
		v := versions[n]
		atoms = append(atoms, Atom{Cell: Cell{Value: n, Sessions: v.Sessions, Crashes: v.Crashes}, Parent: MajorVersion(n)})
	}
	b := Generalize("App version", atoms, s.cfg.K, versionHierarchy)
	o.HiddenVersions, o.GeneralizedVersions = b.Hidden, b.Generalized
	index := make(map[string]int)
	for _, c := range b.Cells {
		index[c.Value] = len(o.Versions)
		o.Versions = append(o.Versions, VersionHealth{Version: c.Value, Coarse: c.Coarse})
	}
	for _, n := range names {
		v := versions[n]
		if l, ok := b.Label(n); ok {
			vh := &o.Versions[index[l]]
			vh.Sessions += v.Sessions
			vh.CrashedSessions += v.CrashedSessions
			vh.Crashes += v.Crashes
		}
	}
	slices.SortStableFunc(o.Versions, func(a, b VersionHealth) int {
		if a.Coarse != b.Coarse {
			if a.Coarse {
				return 1
			}
			return -1
		}
		return cmp.Or(CompareVersions(strings.TrimPrefix(b.Version, "other "), strings.TrimPrefix(a.Version, "other ")), strings.Compare(a.Version, b.Version))
	})

	// Adoption: each day is a breakdown of its own over the cells shown
	// for the range; a version hidden over the range stays hidden on
	// every day, or the day's cells would give the range's rest away.
	cell := make(map[string]int)
	for i, v := range o.Versions {
		cell[v.Version] = i
	}
	for i, d := range o.Days {
		a := AdoptionDay{Date: d.Date, Sessions: d.Sessions, Versions: make([]uint64, len(o.Versions))}
		perCell := make([]Atom, len(o.Versions))
		for j, v := range o.Versions {
			perCell[j] = Atom{Cell: Cell{Value: v.Version}}
		}
		var day []Atom
		for _, n := range names {
			l, ok := b.Label(n)
			if !ok {
				if versions[n].days[i] > 0 {
					day = append(day, Atom{Cell: Cell{Value: n, Sessions: versions[n].days[i]}, Hidden: true})
				}
				continue
			}
			perCell[cell[l]].Sessions += versions[n].days[i]
		}
		for _, c := range perCell {
			if c.Sessions > 0 {
				day = append(day, c)
			}
		}
		db := Generalize("", day, s.cfg.K, nil)
		for _, c := range db.Cells {
			a.Versions[cell[c.Value]] = c.Sessions
		}
		a.Other = db.Other.Sessions
		a.Hidden = d.Sessions > 0 && len(db.Cells) == 0 && a.Other == 0
		o.Adoption = append(o.Adoption, a)
	}
	return o, nil
}

// Options are the values a filter can take for an app: those with at
// least K distinct sessions in the range, so a filter never narrows a
// page down to a handful of devices.
type Options struct {
	Apps        []string
	AppVersions []string
	OSNames     []string
	Regions     []string
}

// Options returns the apps registered or seen, and for f.AppID (if set)
// the app versions, OS names and regions (countries and first-level
// regions) with at least K sessions in f's days.
func (s *Store) Options(ctx context.Context, f Filter) (*Options, error) {
	apps, err := s.b.AppIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("triage: list apps: %w", err)
	}
	o := &Options{Apps: apps}
	if f.AppID == "" {
		return o, nil
	}
	f.AppVersion, f.OSName, f.Region, f.Kind, f.Search, f.Assignee = "", "", "", KindAll, "", ""
	if f, err = f.normalize(); err != nil {
		return nil, err
	}
	v, err := s.b.FilterValues(ctx, s.scope(f), s.cfg.K)
	if err != nil {
		return nil, fmt.Errorf("triage: filter values: %w", err)
	}
	o.AppVersions, o.OSNames = v.AppVersions, v.OSNames
	o.Regions = append(slices.Clip(v.Countries), v.Regions...)
	slices.SortFunc(o.AppVersions, func(a, b string) int { return CompareVersions(b, a) })
	slices.Sort(o.Regions)
	return o, nil
}

// Allowed reports whether every dimension f narrows to is among o's
// values: a filter value with fewer than K sessions is refused.
func (o *Options) Allowed(f Filter) bool {
	ok := func(v string, in []string) bool { return v == "" || slices.Contains(in, v) }
	return ok(f.AppVersion, o.AppVersions) && ok(f.OSName, o.OSNames) && ok(f.Region, o.Regions)
}

// HasApp reports whether app is registered or has data.
func (o *Options) HasApp(app string) bool { return slices.Contains(o.Apps, app) }
