package triage

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Overview is an app's health over a filter's days.
type Overview struct {
	// Days has a day for each day of the filter, oldest first.
	Days []DayHealth
	// Versions are the app versions with at least K sessions, newest
	// first; HiddenVersions counts the others.
	Versions       []VersionHealth
	HiddenVersions int
	// Sessions and CrashedSessions total the filter's days.
	Sessions        uint64
	CrashedSessions uint64
}

// DayHealth is one day of an app's sessions.
type DayHealth struct {
	Date            time.Time
	Sessions        uint64
	CrashedSessions uint64
}

// VersionHealth is one app version's sessions and crashes.
type VersionHealth struct {
	Version         string
	Sessions        uint64
	CrashedSessions uint64
	Crashes         uint64
}

// CrashFree returns the share of sessions that did not crash, from 0 to 1;
// 1 without sessions.
func CrashFree(sessions, crashed uint64) float64 {
	if sessions == 0 {
		return 1
	}
	return 1 - float64(min(crashed, sessions))/float64(sessions)
}

// Overview returns sessions per day and the crash-free session rate per
// app version for f (its status aside): distinct sessions, and distinct
// sessions with a crash that ended the process, both counted per day.
func (s *Store) Overview(ctx context.Context, f Filter) (*Overview, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
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
	versions := make(map[string]*VersionHealth)
	version := func(v string) *VersionHealth {
		if versions[v] == nil {
			versions[v] = &VersionHealth{Version: v}
		}
		return versions[v]
	}
	for _, r := range rows {
		if i := days.index(r.Day); i >= 0 {
			o.Days[i].Sessions += r.Sessions
			o.Days[i].CrashedSessions += r.Crashed
			v := version(r.AppVersion)
			v.Sessions += r.Sessions
			v.CrashedSessions += r.Crashed
			v.Crashes += r.Crashes
		}
	}
	for _, d := range o.Days {
		o.Sessions += d.Sessions
		o.CrashedSessions += d.CrashedSessions
	}
	for _, v := range versions {
		if v.Sessions < uint64(s.cfg.K) {
			o.HiddenVersions++
			continue
		}
		o.Versions = append(o.Versions, *v)
	}
	slices.SortFunc(o.Versions, func(a, b VersionHealth) int { return CompareVersions(b.Version, a.Version) })
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
	f.AppVersion, f.OSName, f.Region = "", "", ""
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
