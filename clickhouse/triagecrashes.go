package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/pipeline"
)

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
	type row struct {
		Hour     time.Time `ch:"hour"`
		Sessions uint64    `ch:"sessions"`
		Crashes  uint64    `ch:"crashes"`
	}
	out, err := selectAll(ctx, c, hourCellsQuery(c.Database(), s, since, types), func(r row) triage.HourCell {
		return triage.HourCell{Hour: r.Hour, Sessions: r.Sessions, Crashes: r.Crashes}
	})
	if err != nil {
		return nil, fmt.Errorf("crashes per hour: %w", err)
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
	type row struct {
		Fingerprint uint64    `ch:"fingerprint"`
		Day         time.Time `ch:"event_date"`
		AppVersion  string    `ch:"app_version"`
		Country     string    `ch:"country"`
		Region      string    `ch:"region"`
		Sessions    uint64    `ch:"sessions"`
		Crashes     uint64    `ch:"crashes"`
	}
	out, err := selectAll(ctx, c, dayCellsQuery(c.Database(), s), func(r row) triage.DayCell {
		return triage.DayCell{Fingerprint: r.Fingerprint, Day: r.Day, AppVersion: r.AppVersion, Country: r.Country, Region: r.Region, Sessions: r.Sessions, Crashes: r.Crashes}
	})
	if err != nil {
		return nil, fmt.Errorf("crash group cells: %w", err)
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
	type row struct {
		Fingerprint uint64 `ch:"fingerprint"`
		OSName      string `ch:"os_name"`
		DeviceClass string `ch:"device_class"`
		OSVersion   string `ch:"os_version"`
		DeviceModel string `ch:"device_model"`
		Sessions    uint64 `ch:"sessions"`
		Crashes     uint64 `ch:"crashes"`
	}
	out, err := selectAll(ctx, c, deviceCellsQuery(c.Database(), s, types), func(r row) triage.DeviceCell {
		return triage.DeviceCell{Fingerprint: r.Fingerprint, OSName: r.OSName, OSVersion: r.OSVersion, DeviceClass: r.DeviceClass, DeviceModel: r.DeviceModel, Sessions: r.Sessions, Crashes: r.Crashes}
	})
	if err != nil {
		return nil, fmt.Errorf("crash device cells: %w", err)
	}
	return out, nil
}
