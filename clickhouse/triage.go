package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// *Client is the storage of the crash triage dashboard.
var _ triage.Backend = (*Client)(nil)

// The triage queries read crash_groups_daily and sessions_daily
// (triagegroups.go), the crashes of one group at a time
// (triagecrashes.go), and crash_group_status and crash_group_changes
// (triagechanges.go); this file has what they share. Values are
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
