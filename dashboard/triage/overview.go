package triage

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/consentry/consentry/clickhouse"
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
// app version for f (its status aside). Sessions come from
// sessions_daily, crashed sessions (a crash that ended the process) from
// crash_groups_daily; both count distinct sessions per day.
func (s *Store) Overview(ctx context.Context, f Filter) (*Overview, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	where, args := s.where(f)
	var sessions []struct {
		Day      time.Time `ch:"event_date"`
		Version  string    `ch:"app_version"`
		Sessions uint64    `ch:"sessions"`
	}
	q := fmt.Sprintf(`SELECT event_date, app_version, uniqMerge(sessions) AS sessions
FROM %s.%s WHERE %s GROUP BY event_date, app_version`, s.db, clickhouse.TableSessionsDaily, where)
	if err := s.conn.Select(ctx, &sessions, q, args...); err != nil {
		return nil, fmt.Errorf("triage: sessions per day: %w", err)
	}
	var crashed []struct {
		Day     time.Time `ch:"event_date"`
		Version string    `ch:"app_version"`
		Crashed uint64    `ch:"crashed"`
		Crashes uint64    `ch:"crashes"`
	}
	// A fatal crash ends its session, so a session is in one group's
	// row at most: summing the rows' counts is exact and fast.
	q = fmt.Sprintf(`SELECT event_date, app_version, sum(finalizeAggregation(fatal_sessions)) AS crashed, sumMerge(fatal) AS crashes
FROM %s.%s WHERE %s GROUP BY event_date, app_version`, s.db, clickhouse.TableCrashGroupsDaily, where)
	if err := s.conn.Select(ctx, &crashed, q, args...); err != nil {
		return nil, fmt.Errorf("triage: crashed sessions per day: %w", err)
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
	for _, r := range sessions {
		if i := days.index(r.Day); i >= 0 {
			o.Days[i].Sessions += r.Sessions
			version(r.Version).Sessions += r.Sessions
		}
	}
	for _, r := range crashed {
		if i := days.index(r.Day); i >= 0 {
			o.Days[i].CrashedSessions += r.Crashed
			v := version(r.Version)
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
	o := &Options{}
	var apps []struct {
		AppID string `ch:"app_id"`
	}
	q := fmt.Sprintf("SELECT DISTINCT app_id FROM (SELECT app_id FROM %s.%s UNION ALL SELECT DISTINCT app_id FROM %s.%s) ORDER BY app_id",
		s.db, clickhouse.TableApps, s.db, clickhouse.TableSessionsDaily)
	if err := s.conn.Select(ctx, &apps, q); err != nil {
		return nil, fmt.Errorf("triage: list apps: %w", err)
	}
	for _, a := range apps {
		o.Apps = append(o.Apps, a.AppID)
	}
	if f.AppID == "" {
		return o, nil
	}
	f.AppVersion, f.OSName, f.Region = "", "", ""
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	where, args := s.where(f)
	dims := []struct {
		expr string
		dst  *[]string
	}{
		{"app_version", &o.AppVersions},
		{"os_name", &o.OSNames},
		{"country", &o.Regions},
		{"region", &o.Regions},
	}
	values := make([][]string, len(dims))
	fns := make([]func() error, len(dims))
	for i, dim := range dims {
		fns[i] = func() error {
			var rows []struct {
				Value string `ch:"value"`
			}
			q := fmt.Sprintf(`SELECT %s AS value FROM %s.%s WHERE %s GROUP BY value HAVING value != '' AND uniqMerge(sessions) >= %d ORDER BY value`,
				dim.expr, s.db, clickhouse.TableSessionsDaily, where, s.cfg.K)
			if err := s.conn.Select(ctx, &rows, q, args...); err != nil {
				return fmt.Errorf("triage: filter values: %w", err)
			}
			for _, r := range rows {
				values[i] = append(values[i], r.Value)
			}
			return nil
		}
	}
	if err := parallel(fns...); err != nil {
		return nil, err
	}
	for i, dim := range dims {
		*dim.dst = append(*dim.dst, values[i]...)
	}
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
