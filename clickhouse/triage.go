package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/pipeline"
)

// *Client is the storage of the crash triage dashboard.
var _ triage.Backend = (*Client)(nil)

// The triage queries below read crash_groups_daily and sessions_daily,
// the crashes of one group at a time, and crash_group_status. Values are
// bound as query arguments (clickhouse-go quotes them); the only names in
// the text are the configured database, a plain identifier (Config
// validates it), and the tables' and columns' own names.

// placeholders returns n comma-separated argument placeholders, for an IN
// list.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// args returns vs as query arguments.
func args[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// dayArg returns t's UTC day as an argument for toDate(?).
func dayArg(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// scopeWhere returns the condition (without WHERE) that selects s's rows
// of a table with app_id, event_date, app_version, os_name, country and
// region (and fingerprint, if s names groups; and handled, if s.Kind
// selects one), and its arguments.
func scopeWhere(s triage.Scope) (string, []any) {
	conds := []string{"app_id = ?", "event_date >= toDate(?)", "event_date <= toDate(?)"}
	vals := []any{s.AppID, dayArg(s.First), dayArg(s.Last)}
	for _, dim := range []struct{ col, value string }{
		{"app_version", s.AppVersion}, {"os_name", s.OSName}, {"country", s.Country}, {"region", s.Region},
	} {
		if dim.value != "" {
			conds, vals = append(conds, dim.col+" = ?"), append(vals, dim.value)
		}
	}
	if len(s.Groups) > 0 {
		conds, vals = append(conds, groupsIn(s.Groups)), append(vals, args(s.Groups)...)
	}
	switch s.Kind {
	case triage.KindFatal:
		conds = append(conds, "handled = 0")
	case triage.KindHandled:
		conds = append(conds, "handled = 1")
	}
	return strings.Join(conds, " AND "), vals
}

// sessionScope returns s for a table of sessions, which has no crash
// groups and no handled column.
func sessionScope(s triage.Scope) triage.Scope {
	s.Groups, s.Kind = nil, triage.KindAll
	return s
}

// groupsIn returns the condition that selects the crash groups of a list
// of n, whose fingerprints are the arguments.
func groupsIn(groups []uint64) string {
	return columnFingerprint + " IN (" + placeholders(len(groups)) + ")"
}

// appGroups returns the condition that selects app's rows (and only those
// of groups, unless empty), and its arguments.
func appGroups(app string, groups []uint64) (string, []any) {
	if len(groups) == 0 {
		return "app_id = ?", []any{app}
	}
	return "app_id = ? AND " + groupsIn(groups), append([]any{app}, args(groups)...)
}

// query is a query's text and arguments.
type query struct {
	sql  string
	args []any
}

// select runs q, scanning its rows into dest (a pointer to a slice of
// structs with ch tags).
func (c *Client) selectQuery(ctx context.Context, dest any, q query) error {
	return c.conn.Select(ctx, dest, q.sql, q.args...)
}

// The aggregates hold idempotent states (see aggregates.go). Within one
// part of crash_groups_daily each key has one row (a view's insert is
// grouped by the key, a merge merges equal keys), but until ClickHouse
// merges a day's parts, a key can have a row in each: a resent event is
// then in two rows. So the queries count from a row's own state
// (finalizeAggregation) only on days whose partition is one part, and
// merge the states of the group (-Merge: 146 ms of CPU instead of 60 for
// the group list over a million crashes on 18.16) on the days of several
// parts, usually today's; on a cluster, where the parts are each
// shard's, they always merge. An insert that lands on a day of one part
// between the listing of parts and the query may count its copies of
// older events once more, in that one answer.
//
// Counts then add up over what cannot overlap: distinct event ids of
// different rows of a day of one part, distinct sessions of different
// days (a session's key changes every day).

// splitDays tells which days of a table's rows the triage queries merge.
type splitDays struct {
	// all merges every day.
	all bool
	// days are the days (YYYY-MM-DD) whose partition has more than one
	// part.
	days []string
}

// merging returns the condition that selects the rows to merge: "1", "0"
// or an event_date IN list.
func (d splitDays) merging() string {
	switch {
	case d.all:
		return "1"
	case len(d.days) == 0:
		return "0"
	}
	lits := make([]string, len(d.days))
	for i, day := range d.days {
		lits[i] = "toDate(" + quote(day) + ")"
	}
	return "event_date IN (" + strings.Join(lits, ", ") + ")"
}

// count returns the expression that counts a group's distinct values of
// the state column col (merged with fn+"Merge", e.g. uniqExactMerge) in
// its rows that meet cond ("" for all): summed from each row's state on
// days of one part, merged on the others.
func (d splitDays) count(fn, col, cond string) string {
	and := func(a, b string) string {
		if b == "" {
			return a
		}
		return "(" + a + ") AND (" + b + ")"
	}
	merged := func(c string) string {
		if c == "" {
			return fn + "Merge(" + col + ")"
		}
		return fn + "MergeIf(" + col + ", " + c + ")"
	}
	perRow := func(c string) string {
		if c == "" {
			return "sum(finalizeAggregation(" + col + "))"
		}
		return "sumIf(finalizeAggregation(" + col + "), " + c + ")"
	}
	switch m := d.merging(); m {
	case "1":
		return merged(cond)
	case "0":
		return perRow(cond)
	default:
		return perRow(and("NOT ("+m+")", cond)) + " + " + merged(and(m, cond))
	}
}

// splitDays returns which days of the crash group aggregate in s to
// merge.
func (c *Client) splitDays(ctx context.Context, s triage.Scope) (splitDays, error) {
	o := c.schema.opts
	if o.Cluster != "" {
		return splitDays{all: true}, nil
	}
	var parts []struct {
		Partition string `ch:"partition"`
	}
	q := "SELECT partition FROM system.parts WHERE database = ? AND table = ? AND active GROUP BY partition HAVING count() > 1"
	if err := c.conn.Select(ctx, &parts, q, o.Database, c.schema.crashGroups.storage(o)); err != nil {
		return splitDays{}, fmt.Errorf("parts of %s: %w", TableCrashGroupsDaily, err)
	}
	var d splitDays
	for _, p := range parts {
		day, err := time.Parse("20060102", p.Partition)
		if err != nil {
			return splitDays{all: true}, nil // not partitioned by day: merge all
		}
		if !day.Before(s.First) && !day.After(s.Last) {
			d.days = append(d.days, day.Format(time.DateOnly))
		}
	}
	return d, nil
}

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
	var rows []struct {
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
	if err := c.selectQuery(ctx, &rows, groupDaysQuery(c.Database(), s, d)); err != nil {
		return nil, fmt.Errorf("crash group days: %w", err)
	}
	out := make([]triage.GroupDay, len(rows))
	for i, r := range rows {
		out[i] = triage.GroupDay{
			Fingerprint: r.Fingerprint, Day: r.Day, ExceptionTypes: r.Types,
			Crashes: r.Fatal + r.Handled, Fatal: r.Fatal, Sessions: r.Sessions,
			FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, Versions: r.Versions,
		}
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
	var rows []struct {
		Fingerprint uint64 `ch:"fingerprint"`
	}
	if err := c.selectQuery(ctx, &rows, searchGroupsQuery(c.Database(), s, text)); err != nil {
		return nil, fmt.Errorf("search crash groups: %w", err)
	}
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Fingerprint
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

// crashColumns are the columns of the crashes table a triage.Crash is
// read from, its breadcrumbs (migration 12) among them.
const crashColumns = `toString(event_id) AS id, fingerprint, event_time, app_version, os_name, os_version, device_class, device_model,
    country, region, exception_type, message, thread, handled, app_state,
    frame_module, frame_function, frame_file, frame_line, frame_in_app,
    breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms`

// crashRow is a crash as crashColumns read it.
type crashRow struct {
	ID            string    `ch:"id"`
	Fingerprint   uint64    `ch:"fingerprint"`
	EventTime     time.Time `ch:"event_time"`
	AppVersion    string    `ch:"app_version"`
	OSName        string    `ch:"os_name"`
	OSVersion     string    `ch:"os_version"`
	DeviceClass   string    `ch:"device_class"`
	DeviceModel   string    `ch:"device_model"`
	Country       string    `ch:"country"`
	Region        string    `ch:"region"`
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
	CrumbTypes    []string  `ch:"breadcrumb_types"`
	CrumbNames    []string  `ch:"breadcrumb_names"`
	CrumbOffsets  []int64   `ch:"breadcrumb_offsets_ms"`
}

// crash returns r as a triage.Crash.
func (r *crashRow) crash() triage.Crash {
	out := triage.Crash{
		EventID: r.ID, Fingerprint: r.Fingerprint, EventTime: r.EventTime,
		AppVersion: r.AppVersion, OSName: r.OSName, OSVersion: r.OSVersion, DeviceClass: r.DeviceClass, DeviceModel: r.DeviceModel,
		Country: r.Country, Region: r.Region,
		ExceptionType: r.ExceptionType, Message: r.Message, Thread: r.Thread, Handled: r.Handled == 1, AppState: r.AppState,
	}
	// The frame arrays are parallel; a shorter one leaves fields empty.
	for i := range r.Functions {
		f := pipeline.Frame{Function: r.Functions[i]}
		if i < len(r.Modules) {
			f.Module = r.Modules[i]
		}
		if i < len(r.Files) {
			f.File = r.Files[i]
		}
		if i < len(r.Lines) {
			f.Line = r.Lines[i]
		}
		if i < len(r.InApp) {
			f.InApp = r.InApp[i] == 1
		}
		out.Frames = append(out.Frames, f)
	}
	// So are the breadcrumb arrays.
	if len(r.CrumbTypes) > 0 {
		out.Breadcrumbs = make([]triage.Breadcrumb, len(r.CrumbTypes))
		for i := range out.Breadcrumbs {
			b := &out.Breadcrumbs[i]
			b.Type = r.CrumbTypes[i]
			if i < len(r.CrumbNames) {
				b.Name = r.CrumbNames[i]
			}
			if i < len(r.CrumbOffsets) {
				b.Before = time.Duration(r.CrumbOffsets[i]) * time.Millisecond
			}
		}
	}
	return out
}

// latestCrashQuery is LatestCrash's query: the crashes table is sorted by
// app, day and exception type, so it reads the group's rows of one day.
func latestCrashQuery(db string, s triage.Scope, day time.Time, types []string) query {
	where, vals := scopeWhere(s)
	vals = append(append(vals, dayArg(day)), args(types)...)
	return query{fmt.Sprintf(`SELECT %s
FROM %s.%s
WHERE %s AND event_date = toDate(?) AND exception_type IN (%s)
ORDER BY event_time DESC, id LIMIT 1`, crashColumns, db, TableCrashes, where, placeholders(len(types))), vals}
}

// LatestCrash implements triage.Backend.
func (c *Client) LatestCrash(ctx context.Context, s triage.Scope, day time.Time, types []string) (triage.Crash, bool, error) {
	if len(types) == 0 {
		return triage.Crash{}, false, nil
	}
	var rows []crashRow
	if err := c.selectQuery(ctx, &rows, latestCrashQuery(c.Database(), s, day, types)); err != nil {
		return triage.Crash{}, false, fmt.Errorf("latest crash: %w", err)
	}
	if len(rows) == 0 {
		return triage.Crash{}, false, nil
	}
	return rows[0].crash(), true, nil
}

// crashPageQuery is the first of Crashes' queries: the ids and times of
// a page of crashes, each event once.
func crashPageQuery(db string, s triage.Scope, types []string, offset, limit int) query {
	where, vals := scopeWhere(s)
	vals = append(append(vals, args(types)...), offset, limit)
	return query{fmt.Sprintf(`SELECT toString(event_id) AS id, max(event_time) AS time
FROM %s.%s
WHERE %s AND exception_type IN (%s)
GROUP BY event_id
ORDER BY time DESC, id
LIMIT ?, ?`, db, TableCrashes, where, placeholders(len(types))), vals}
}

// crashRowsQuery is the second of Crashes' queries: the crashes of ids,
// within s (narrowed to their days).
func crashRowsQuery(db string, s triage.Scope, types, ids []string) query {
	where, vals := scopeWhere(s)
	vals = append(append(vals, args(types)...), args(ids)...)
	return query{fmt.Sprintf(`SELECT %s
FROM %s.%s
WHERE %s AND exception_type IN (%s) AND toString(event_id) IN (%s)`,
		crashColumns, db, TableCrashes, where, placeholders(len(types)), placeholders(len(ids))), vals}
}

// Crashes implements triage.Backend. It reads the page's ids and times
// first, then only those crashes' rows, on their days: reading every
// column of a large group's crashes to sort them would take long.
func (c *Client) Crashes(ctx context.Context, s triage.Scope, types []string, offset, limit int) ([]triage.Crash, error) {
	if len(types) == 0 || limit <= 0 {
		return nil, nil
	}
	var page []struct {
		ID   string    `ch:"id"`
		Time time.Time `ch:"time"`
	}
	if err := c.selectQuery(ctx, &page, crashPageQuery(c.Database(), s, types, max(offset, 0), limit)); err != nil {
		return nil, fmt.Errorf("crashes: %w", err)
	}
	if len(page) == 0 {
		return nil, nil
	}
	ids := make([]string, len(page))
	narrow := s
	narrow.First, narrow.Last = page[len(page)-1].Time.UTC().Truncate(24*time.Hour), page[0].Time.UTC().Truncate(24*time.Hour)
	for i, p := range page {
		ids[i] = p.ID
	}
	var rows []crashRow
	if err := c.selectQuery(ctx, &rows, crashRowsQuery(c.Database(), narrow, types, ids)); err != nil {
		return nil, fmt.Errorf("crashes: %w", err)
	}
	// Copies of an event (stored twice, not merged yet) are alike: keep
	// one, in the page's order.
	byID := make(map[string]*crashRow, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	out := make([]triage.Crash, 0, len(ids))
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r.crash())
		}
	}
	return out, nil
}

// hourCellsQuery is HourCells' query, over the raw crashes of the
// group's exception types.
func hourCellsQuery(db string, s triage.Scope, since time.Time, types []string) query {
	where, vals := scopeWhere(s)
	vals = append(append(vals, uint64(since.Unix())), args(types)...)
	return query{fmt.Sprintf(`SELECT toStartOfHour(event_time) AS hour,
    uniqIf(session_key, session_key != 0) AS sessions, uniqExact(event_id) AS crashes
FROM %s.%s WHERE %s AND event_time >= toDateTime(?) AND exception_type IN (%s) GROUP BY hour`,
		db, TableCrashes, where, placeholders(len(types))), vals}
}

// HourCells implements triage.Backend.
func (c *Client) HourCells(ctx context.Context, s triage.Scope, since time.Time, types []string) ([]triage.HourCell, error) {
	if len(types) == 0 {
		return nil, nil
	}
	var rows []struct {
		Hour     time.Time `ch:"hour"`
		Sessions uint64    `ch:"sessions"`
		Crashes  uint64    `ch:"crashes"`
	}
	if err := c.selectQuery(ctx, &rows, hourCellsQuery(c.Database(), s, since, types)); err != nil {
		return nil, fmt.Errorf("crashes per hour: %w", err)
	}
	out := make([]triage.HourCell, len(rows))
	for i, r := range rows {
		out[i] = triage.HourCell{Hour: r.Hour, Sessions: r.Sessions, Crashes: r.Crashes}
	}
	return out, nil
}

// dayCellsQuery is DayCells' query.
func dayCellsQuery(db string, s triage.Scope) query {
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT fingerprint, event_date, app_version, country, region,
    uniqMerge(sessions) AS sessions, uniqExactMerge(crashes) AS crashes
FROM %s.%s WHERE %s GROUP BY fingerprint, event_date, app_version, country, region`, db, TableCrashGroupsDaily, where), vals}
}

// DayCells implements triage.Backend.
func (c *Client) DayCells(ctx context.Context, s triage.Scope) ([]triage.DayCell, error) {
	var rows []struct {
		Fingerprint uint64    `ch:"fingerprint"`
		Day         time.Time `ch:"event_date"`
		AppVersion  string    `ch:"app_version"`
		Country     string    `ch:"country"`
		Region      string    `ch:"region"`
		Sessions    uint64    `ch:"sessions"`
		Crashes     uint64    `ch:"crashes"`
	}
	if err := c.selectQuery(ctx, &rows, dayCellsQuery(c.Database(), s)); err != nil {
		return nil, fmt.Errorf("crash group cells: %w", err)
	}
	out := make([]triage.DayCell, len(rows))
	for i, r := range rows {
		out[i] = triage.DayCell{Fingerprint: r.Fingerprint, Day: r.Day, AppVersion: r.AppVersion, Country: r.Country, Region: r.Region, Sessions: r.Sessions, Crashes: r.Crashes}
	}
	return out, nil
}

// deviceCellsQuery is DeviceCells' query, over the raw crashes of the
// group's exception types (which the crashes table is sorted by). Until
// ClickHouse merges them, an event stored twice is two rows: crashes are
// distinct event ids.
func deviceCellsQuery(db string, s triage.Scope, types []string) query {
	where, vals := scopeWhere(s)
	return query{fmt.Sprintf(`SELECT fingerprint, os_name, os_version, device_class, device_model,
    uniqIf(session_key, session_key != 0) AS sessions, uniqExact(event_id) AS crashes
FROM %s.%s WHERE %s AND exception_type IN (%s) GROUP BY fingerprint, os_name, os_version, device_class, device_model`,
		db, TableCrashes, where, placeholders(len(types))), append(vals, args(types)...)}
}

// DeviceCells implements triage.Backend.
func (c *Client) DeviceCells(ctx context.Context, s triage.Scope, types []string) ([]triage.DeviceCell, error) {
	if len(types) == 0 {
		return nil, nil
	}
	var rows []struct {
		Fingerprint uint64 `ch:"fingerprint"`
		OSName      string `ch:"os_name"`
		DeviceClass string `ch:"device_class"`
		OSVersion   string `ch:"os_version"`
		DeviceModel string `ch:"device_model"`
		Sessions    uint64 `ch:"sessions"`
		Crashes     uint64 `ch:"crashes"`
	}
	if err := c.selectQuery(ctx, &rows, deviceCellsQuery(c.Database(), s, types)); err != nil {
		return nil, fmt.Errorf("crash device cells: %w", err)
	}
	out := make([]triage.DeviceCell, len(rows))
	for i, r := range rows {
		out[i] = triage.DeviceCell{Fingerprint: r.Fingerprint, OSName: r.OSName, OSVersion: r.OSVersion, DeviceClass: r.DeviceClass, DeviceModel: r.DeviceModel, Sessions: r.Sessions, Crashes: r.Crashes}
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
	var rows []struct {
		AppID string `ch:"app_id"`
	}
	if err := c.selectQuery(ctx, &rows, appIDsQuery(c.Database())); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.AppID
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

// decisionRow is a triage decision as crash_group_status holds it.
type decisionRow struct {
	Fingerprint uint64    `ch:"fingerprint"`
	State       string    `ch:"status"`
	ResolvedIn  string    `ch:"resolved_in"`
	ChangedBy   string    `ch:"changed_by"`
	ChangedAt   time.Time `ch:"changed_at"`
}

// decision returns r as app's triage.Decision.
func (r decisionRow) decision(app string) triage.Decision {
	return triage.Decision{AppID: app, Fingerprint: r.Fingerprint, State: triage.State(r.State),
		ResolvedIn: r.ResolvedIn, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
}

// latestDecisionsQuery is LatestDecisions' query.
func latestDecisionsQuery(db, app string, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf(`SELECT fingerprint, argMax(status, version) AS status, argMax(resolved_in, version) AS resolved_in,
    argMax(changed_by, version) AS changed_by, argMax(changed_at, version) AS changed_at
FROM %s.%s WHERE %s GROUP BY fingerprint`, db, TableCrashGroupStatus, where), vals}
}

// LatestDecisions implements triage.Backend.
func (c *Client) LatestDecisions(ctx context.Context, app string, groups []uint64) (map[uint64]triage.Decision, error) {
	var rows []decisionRow
	if err := c.selectQuery(ctx, &rows, latestDecisionsQuery(c.Database(), app, groups)); err != nil {
		return nil, fmt.Errorf("latest decisions: %w", err)
	}
	out := make(map[uint64]triage.Decision, len(rows))
	for _, r := range rows {
		out[r.Fingerprint] = r.decision(app)
	}
	return out, nil
}

// decisionHistoryQuery is DecisionHistory's query.
func decisionHistoryQuery(db, app string, group uint64, limit int) query {
	return query{fmt.Sprintf(`SELECT fingerprint, status, resolved_in, changed_by, changed_at FROM %s.%s
WHERE app_id = ? AND fingerprint = ? ORDER BY version DESC LIMIT ?`, db, TableCrashGroupStatus), []any{app, group, limit}}
}

// DecisionHistory implements triage.Backend.
func (c *Client) DecisionHistory(ctx context.Context, app string, group uint64, limit int) ([]triage.Decision, error) {
	var rows []decisionRow
	if err := c.selectQuery(ctx, &rows, decisionHistoryQuery(c.Database(), app, group, limit)); err != nil {
		return nil, fmt.Errorf("decision history: %w", err)
	}
	out := make([]triage.Decision, len(rows))
	for i, r := range rows {
		out[i] = r.decision(app)
	}
	return out, nil
}

// RecordDecisions implements triage.Backend: it validates ds and appends
// them to crash_group_status in one insert.
func (c *Client) RecordDecisions(ctx context.Context, ds []triage.Decision) error {
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	if err := insertRows(ctx, c.conn, c.schema.crashStatus, ds); err != nil {
		return fmt.Errorf("record decisions: %w", err)
	}
	return nil
}

// changeRow is a change as crash_group_changes holds it.
type changeRow struct {
	Fingerprint uint64    `ch:"fingerprint"`
	Kind        string    `ch:"kind"`
	Value       string    `ch:"value"`
	MergedInto  uint64    `ch:"merged_into"`
	ChangedBy   string    `ch:"changed_by"`
	ChangedAt   time.Time `ch:"changed_at"`
}

// change returns r as app's triage.Change.
func (r changeRow) change(app string) triage.Change {
	return triage.Change{AppID: app, Fingerprint: r.Fingerprint, Kind: triage.ChangeKind(r.Kind), Value: r.Value,
		MergedInto: r.MergedInto, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
}

// latestChangesQuery is LatestChanges' query. (The kind is not selected:
// an aggregate named kind would replace the column in WHERE.)
func latestChangesQuery(db, app string, kind triage.ChangeKind, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf(`SELECT fingerprint, argMax(value, version) AS value, argMax(merged_into, version) AS merged_into,
    argMax(changed_by, version) AS changed_by, argMax(changed_at, version) AS changed_at
FROM %s.%s WHERE %s AND kind = ? GROUP BY fingerprint`, db, TableCrashGroupChanges, where), append(vals, string(kind))}
}

// LatestChanges implements triage.Backend.
func (c *Client) LatestChanges(ctx context.Context, app string, kind triage.ChangeKind, groups []uint64) (map[uint64]triage.Change, error) {
	var rows []changeRow
	if err := c.selectQuery(ctx, &rows, latestChangesQuery(c.Database(), app, kind, groups)); err != nil {
		return nil, fmt.Errorf("latest changes: %w", err)
	}
	out := make(map[uint64]triage.Change, len(rows))
	for _, r := range rows {
		r.Kind = string(kind)
		out[r.Fingerprint] = r.change(app)
	}
	return out, nil
}

// changeHistoryQuery is ChangeHistory's query: the changes of groups, and
// of the groups ever merged into one of them.
func changeHistoryQuery(db, app string, groups []uint64, limit int) query {
	in := placeholders(len(groups))
	vals := append(append(append([]any{app}, args(groups)...), app, string(triage.ChangeMerge)), args(groups)...)
	return query{fmt.Sprintf(`SELECT fingerprint, kind, value, merged_into, changed_by, changed_at FROM %[1]s.%[2]s
WHERE app_id = ? AND (fingerprint IN (%[3]s)
    OR fingerprint IN (SELECT fingerprint FROM %[1]s.%[2]s WHERE app_id = ? AND kind = ? AND merged_into IN (%[3]s)))
ORDER BY version DESC LIMIT ?`, db, TableCrashGroupChanges, in), append(vals, limit)}
}

// ChangeHistory implements triage.Backend.
func (c *Client) ChangeHistory(ctx context.Context, app string, groups []uint64, limit int) ([]triage.Change, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	var rows []changeRow
	if err := c.selectQuery(ctx, &rows, changeHistoryQuery(c.Database(), app, groups, limit)); err != nil {
		return nil, fmt.Errorf("change history: %w", err)
	}
	out := make([]triage.Change, len(rows))
	for i, r := range rows {
		out[i] = r.change(app)
	}
	return out, nil
}

// RecordChanges implements triage.Backend: it validates cs and appends
// them to crash_group_changes in one insert.
func (c *Client) RecordChanges(ctx context.Context, cs []triage.Change) error {
	for _, ch := range cs {
		if err := ch.Validate(); err != nil {
			return err
		}
	}
	if err := insertRows(ctx, c.conn, c.schema.crashChanges, cs); err != nil {
		return fmt.Errorf("record changes: %w", err)
	}
	return nil
}

// triageQueries returns the text and arguments of every triage query in
// db, for a scope of the app app over days that end with last, so tests
// can run them on each server.
func triageQueries(db, app string, last time.Time) []query {
	s := triage.Scope{AppID: app, First: last.AddDate(0, 0, -13), Last: last}
	narrow := s
	narrow.AppVersion, narrow.OSName, narrow.Country, narrow.Groups = "4.12.0", "android", "AT", []uint64{1, 2}
	one := s
	one.Region, one.Groups = "AT-9", []uint64{1}
	types := []string{"SIGSEGV", "java.lang.IllegalStateException"}
	split := splitDays{days: []string{last.Format(time.DateOnly), last.AddDate(0, 0, -1).Format(time.DateOnly)}}
	fatal := narrow
	fatal.Kind = triage.KindFatal
	handled := one
	handled.Kind = triage.KindHandled
	qs := []query{
		groupDaysQuery(db, s, splitDays{}), groupDaysQuery(db, narrow, split), groupDaysQuery(db, s, splitDays{all: true}), groupDaysQuery(db, fatal, split),
		groupTitlesQuery(db, narrow), searchGroupsQuery(db, s, "NoteEditor"), searchGroupsQuery(db, handled, "%_'"),
		firstCrashDaysQuery(db, app, nil), firstCrashDaysQuery(db, app, []uint64{1}), firstCrashTimesQuery(db, app, []uint64{1, 2}),
		versionsLastSeenQuery(db, app, []uint64{1, 2}, last),
		latestCrashQuery(db, one, last, types), latestCrashQuery(db, handled, last, types),
		crashPageQuery(db, one, types, 0, 20), crashPageQuery(db, handled, types, 40, 20), crashRowsQuery(db, one, types, []string{"00000000-0000-0000-0000-000000000001"}),
		hourCellsQuery(db, one, last.Add(-time.Hour), types),
		dayCellsQuery(db, one), deviceCellsQuery(db, one, types), dayCellsQuery(db, handled), deviceCellsQuery(db, handled, types),
		versionSessionsQuery(db, narrow), versionCrashedQuery(db, narrow, split), versionCrashedQuery(db, s, splitDays{all: true}), versionSessionsQuery(db, fatal),
		appIDsQuery(db),
		latestDecisionsQuery(db, app, nil), latestDecisionsQuery(db, app, []uint64{1}), decisionHistoryQuery(db, app, 1, 100),
		latestChangesQuery(db, app, triage.ChangeMerge, nil), latestChangesQuery(db, app, triage.ChangeAssignee, []uint64{1, 2}),
		changeHistoryQuery(db, app, []uint64{1, 2}, 100),
	}
	for _, dim := range filterDimensions {
		qs = append(qs, filterValuesQuery(db, s, dim, 10), filterValuesQuery(db, fatal, dim, 10))
	}
	return qs
}
