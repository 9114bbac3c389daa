package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// groupDaysQuery is GroupDays' query. A session with a handled
// exception and a crash of one group on one day of one part counts twice
// (rows of handled = 0 and 1); the dashboard only ranks by it.
func groupDaysQuery(db string, s triage.Scope, d splitDays) query {
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT fingerprint, event_date, groupUniqArray(exception_type) AS types,
    %s AS fatal, %s AS handled_crashes, %s AS distinct_sessions,
    minMerge(first_seen) AS first_time, maxMerge(last_seen) AS last_time,
    groupUniqArray(app_version) AS versions
FROM %s.%s
WHERE %s
GROUP BY fingerprint, event_date`, d.count("uniqExact", "crashes", "handled = 0"), d.count("uniqExact", "crashes", "handled != 0"),
		d.count("uniq", "sessions", ""), db, TableCrashGroupsDaily, where), vals}
}

// GroupDays implements triage.Backend.
func (c *Client) GroupDays(ctx context.Context, s triage.Scope) ([]triage.GroupDay, error) {
	d, err := c.splitDays(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("crash group days: %w", err)
	}
	type row struct {
		Fingerprint uint64    `ch:"fingerprint"`
		Day         time.Time `ch:"event_date"`
		Types       []string  `ch:"types"`
		Fatal       uint64    `ch:"fatal"`
		Handled     uint64    `ch:"handled_crashes"`
		Sessions    uint64    `ch:"distinct_sessions"`
		FirstSeen   time.Time `ch:"first_time"`
		LastSeen    time.Time `ch:"last_time"`
		Versions    []string  `ch:"versions"`
	}
	out, err := selectAll(ctx, c, groupDaysQuery(c.Database(), s, d), func(r row) triage.GroupDay {
		return triage.GroupDay{
			Fingerprint: r.Fingerprint, Day: r.Day, ExceptionTypes: r.Types,
			Crashes: r.Fatal + r.Handled, Fatal: r.Fatal, Sessions: r.Sessions,
			FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, Versions: r.Versions,
		}
	})
	if err != nil {
		return nil, fmt.Errorf("crash group days: %w", err)
	}
	return out, nil
}

// groupTitlesQuery is GroupTitles' query: it reads only the groups' rows
// of the aggregate.
func groupTitlesQuery(db string, s triage.Scope) query {
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT fingerprint, anyMerge(message) AS message, anyMerge(culprit) AS culprit
FROM %s.%s WHERE %s GROUP BY fingerprint`, db, TableCrashGroupsDaily, where), vals}
}

// GroupTitles implements triage.Backend.
func (c *Client) GroupTitles(ctx context.Context, s triage.Scope) (map[uint64]triage.Title, error) {
	var rows []struct {
		Fingerprint uint64 `ch:"fingerprint"`
		Message     string `ch:"message"`
		Culprit     string `ch:"culprit"`
	}
	if err := c.selectQuery(ctx, &rows, groupTitlesQuery(c.Database(), s)); err != nil {
		return nil, fmt.Errorf("crash group titles: %w", err)
	}
	out := make(map[uint64]triage.Title, len(rows))
	for _, r := range rows {
		out[r.Fingerprint] = triage.Title{Message: r.Message, Culprit: r.Culprit}
	}
	return out, nil
}

// searchGroupsQuery is SearchGroups' query: it reads the aggregate, whose
// rows each hold one message and one culprit of their key's crashes, so
// a group is found by the messages and culprits of its days, versions,
// OS families and regions, not by every crash. The text is an argument;
// positionCaseInsensitiveUTF8 finds it as it is, with no pattern syntax.
func searchGroupsQuery(db string, s triage.Scope, text string) query {
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT DISTINCT fingerprint FROM %s.%s
WHERE %s AND (positionCaseInsensitiveUTF8(exception_type, ?) > 0
    OR positionCaseInsensitiveUTF8(finalizeAggregation(message), ?) > 0
    OR positionCaseInsensitiveUTF8(finalizeAggregation(culprit), ?) > 0)`, db, TableCrashGroupsDaily, where), append(vals, text, text, text)}
}

// SearchGroups implements triage.Backend.
func (c *Client) SearchGroups(ctx context.Context, s triage.Scope, text string) ([]uint64, error) {
	type row struct {
		Fingerprint uint64 `ch:"fingerprint"`
	}
	out, err := selectAll(ctx, c, searchGroupsQuery(c.Database(), s, text), func(r row) uint64 { return r.Fingerprint })
	if err != nil {
		return nil, fmt.Errorf("search crash groups: %w", err)
	}
	return out, nil
}

// firstCrashDaysQuery is FirstCrashDays' query.
func firstCrashDaysQuery(db, app string, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf("SELECT fingerprint, min(event_date) AS first FROM %s.%s WHERE %s GROUP BY fingerprint",
		db, TableCrashGroupsDaily, where), vals}
}

// firstCrashTimesQuery is FirstCrashTimes' query.
func firstCrashTimesQuery(db, app string, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf("SELECT fingerprint, minMerge(first_seen) AS first FROM %s.%s WHERE %s GROUP BY fingerprint",
		db, TableCrashGroupsDaily, where), vals}
}

// FirstCrashDays implements triage.Backend.
func (c *Client) FirstCrashDays(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error) {
	return c.firstCrashes(ctx, firstCrashDaysQuery(c.Database(), app, groups))
}

// FirstCrashTimes implements triage.Backend.
func (c *Client) FirstCrashTimes(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error) {
	return c.firstCrashes(ctx, firstCrashTimesQuery(c.Database(), app, groups))
}

// firstCrashes runs a query of fingerprints and first times.
func (c *Client) firstCrashes(ctx context.Context, q query) (map[uint64]time.Time, error) {
	var rows []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		First       time.Time `ch:"first"`
	}
	if err := c.selectQuery(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("first crashes: %w", err)
	}
	out := make(map[uint64]time.Time, len(rows))
	for _, r := range rows {
		out[r.Fingerprint] = r.First
	}
	return out, nil
}

// versionsLastSeenQuery is VersionsLastSeen's query.
func versionsLastSeenQuery(db, app string, groups []uint64, since time.Time) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf(`SELECT fingerprint, app_version, maxMerge(last_seen) AS last
FROM %s.%s WHERE %s AND event_date >= toDate(?) GROUP BY fingerprint, app_version`,
		db, TableCrashGroupsDaily, where), append(vals, dayArg(since))}
}

// VersionsLastSeen implements triage.Backend.
func (c *Client) VersionsLastSeen(ctx context.Context, app string, groups []uint64, since time.Time) (map[uint64]map[string]time.Time, error) {
	var rows []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		Version     string    `ch:"app_version"`
		Last        time.Time `ch:"last"`
	}
	if err := c.selectQuery(ctx, &rows, versionsLastSeenQuery(c.Database(), app, groups, since)); err != nil {
		return nil, fmt.Errorf("versions last seen: %w", err)
	}
	out := make(map[uint64]map[string]time.Time)
	for _, r := range rows {
		if out[r.Fingerprint] == nil {
			out[r.Fingerprint] = make(map[string]time.Time)
		}
		out[r.Fingerprint][r.Version] = r.Last
	}
	return out, nil
}

// versionSessionsQuery counts distinct sessions per day and app version:
// the first of VersionDays' queries.
func versionSessionsQuery(db string, s triage.Scope) query {
	s = sessionScope(s)
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT event_date, app_version, uniqMerge(sessions) AS sessions
FROM %s.%s WHERE %s GROUP BY event_date, app_version`, db, TableSessionsDaily, where), vals}
}

// versionCrashedQuery counts the sessions with a crash that ended the
// process, and those crashes, per day and app version: the second of
// VersionDays' queries. A fatal crash ends its session, so a session is
// in one group's row at most: counts add up over the groups.
func versionCrashedQuery(db string, s triage.Scope, d splitDays) query {
	s = sessionScope(s)
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT event_date, app_version, %s AS crashed, %s AS fatal
FROM %s.%s WHERE %s AND handled = 0 GROUP BY event_date, app_version`,
		d.count("uniq", "sessions", ""), d.count("uniqExact", "crashes", ""), db, TableCrashGroupsDaily, where), vals}
}

// VersionDays implements triage.Backend.
func (c *Client) VersionDays(ctx context.Context, s triage.Scope) ([]triage.VersionDay, error) {
	var sessions []struct {
		Day      time.Time `ch:"event_date"`
		Version  string    `ch:"app_version"`
		Sessions uint64    `ch:"sessions"`
	}
	if err := c.selectQuery(ctx, &sessions, versionSessionsQuery(c.Database(), s)); err != nil {
		return nil, fmt.Errorf("sessions per day: %w", err)
	}
	var crashed []struct {
		Day     time.Time `ch:"event_date"`
		Version string    `ch:"app_version"`
		Crashed uint64    `ch:"crashed"`
		Crashes uint64    `ch:"fatal"`
	}
	d, err := c.splitDays(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("crashed sessions per day: %w", err)
	}
	if err := c.selectQuery(ctx, &crashed, versionCrashedQuery(c.Database(), s, d)); err != nil {
		return nil, fmt.Errorf("crashed sessions per day: %w", err)
	}
	out := make([]triage.VersionDay, 0, len(sessions)+len(crashed))
	for _, r := range sessions {
		out = append(out, triage.VersionDay{Day: r.Day, AppVersion: r.Version, Sessions: r.Sessions})
	}
	for _, r := range crashed {
		out = append(out, triage.VersionDay{Day: r.Day, AppVersion: r.Version, Crashed: r.Crashed, Crashes: r.Crashes})
	}
	return out, nil
}

// appIDsQuery is AppIDs' query.
func appIDsQuery(db string) query {
	return query{fmt.Sprintf("SELECT DISTINCT app_id FROM (SELECT app_id FROM %s.%s UNION ALL SELECT DISTINCT app_id FROM %s.%s) ORDER BY app_id",
		db, TableApps, db, TableSessionsDaily), nil}
}

// AppIDs implements triage.Backend.
func (c *Client) AppIDs(ctx context.Context) ([]string, error) {
	type row struct {
		AppID string `ch:"app_id"`
	}
	out, err := selectAll(ctx, c, appIDsQuery(c.Database()), func(r row) string { return r.AppID })
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return out, nil
}

// filterDimensions are the columns of sessions_daily whose values
// FilterValues returns.
var filterDimensions = []string{"app_version", "os_name", "country", "region"}

// filterValuesQuery is FilterValues' query for the column dim.
func filterValuesQuery(db string, s triage.Scope, dim string, minSessions int) query {
	s = sessionScope(s)
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT %s AS value FROM %s.%s WHERE %s GROUP BY value HAVING value != '' AND uniqMerge(sessions) >= ? ORDER BY value`,
		dim, db, TableSessionsDaily, where), append(vals, minSessions)}
}

// FilterValues implements triage.Backend. It runs one query per
// dimension, at the same time.
func (c *Client) FilterValues(ctx context.Context, s triage.Scope, minSessions int) (*triage.FilterValues, error) {
	values := make([][]string, len(filterDimensions))
	errs := make([]error, len(filterDimensions))
	var wg sync.WaitGroup
	for i, dim := range filterDimensions {
		wg.Go(func() {
			var rows []struct {
				Value string `ch:"value"`
			}
			if errs[i] = c.selectQuery(ctx, &rows, filterValuesQuery(c.Database(), s, dim, minSessions)); errs[i] != nil {
				return
			}
			for _, r := range rows {
				values[i] = append(values[i], r.Value)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("filter values: %w", err)
		}
	}
	return &triage.FilterValues{AppVersions: values[0], OSNames: values[1], Countries: values[2], Regions: values[3]}, nil
}
