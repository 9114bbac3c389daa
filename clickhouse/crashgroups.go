package clickhouse

import (
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// Crash group tables. A crash group is every crash of one app with the
// same fingerprint (package fingerprint).
const (
	// TableCrashGroupsDaily aggregates crashes per day, app, crash group,
	// app version, OS family and region; it is filled by
	// ViewCrashGroupsDaily.
	TableCrashGroupsDaily = "crash_groups_daily"
	// ViewCrashGroupsDaily is the materialized view that fills
	// TableCrashGroupsDaily from TableCrashes.
	ViewCrashGroupsDaily = "crash_groups_daily_mv"
	// TableCrashGroupStatus records triage decisions: one row per change
	// of a crash group's status; the latest row counts.
	TableCrashGroupStatus = "crash_group_status"
	// TableCrashGroupChanges records the other changes of crash groups:
	// assignees, notes and merges, one row per change; the latest row of
	// a group and kind counts.
	TableCrashGroupChanges = "crash_group_changes"
)

// crashGroupDims are the key columns that crash_groups_daily is grouped
// by after the app, day and group: the dashboard's filters.
// The OS version is left out: it would double the rows, and with them the
// time to rank groups; breakdowns by OS version read the raw crashes.
var crashGroupDims = []string{"app_version", "os_name", "country", "region"}

// crashGroupsDailyTable returns the definition of TableCrashGroupsDaily.
// Crashes and handled exceptions are apart in the key (handled), so one
// distinct count of event ids serves both.
func crashGroupsDailyTable(o SchemaOptions) *tableDef {
	keys := append(append([]string{"app_id", "event_date", columnFingerprint, "exception_type"}, crashGroupDims...), "handled")
	return &tableDef{
		name:     TableCrashGroupsDaily,
		database: o.Database,
		comment:  "Crash groups per day, app version, OS family, region and handled, filled from crashes by crash_groups_daily_mv; each event counts once, however often it was stored. Group by fingerprint and read the aggregate columns with the -Merge function their comments name; handled = 0 selects the crashes that ended the process.",
		engine:   "AggregatingMergeTree",
		columns: []column{
			{name: "app_id", typ: lowCardType(), comment: "App id as registered with the collector."},
			{name: "event_date", typ: dateType(), comment: "UTC day of the crashes."},
			{name: columnFingerprint, typ: uint64Type(), comment: "Crash group key (crashes.fingerprint)."},
			{name: "exception_type", typ: lowCardType(), comment: "Exception or signal type."},
			{name: "app_version", typ: lowCardType(), comment: "App's user-visible version."},
			{name: "os_name", typ: lowCardType(), comment: "Operating system family (no version: read crashes for that)."},
			{name: "country", typ: lowCardType(), comment: "ISO 3166-1 alpha-2 country code; empty when unknown."},
			{name: "region", typ: lowCardType(), comment: "ISO 3166-2 region code; empty when unknown."},
			{name: "handled", typ: uint8Type(), comment: "1 for handled exceptions, 0 for crashes that ended the process (crashes.handled)."},
			{name: "crashes", typ: aggregateType("uniqExact", "UInt64"), comment: "Crashes (or handled exceptions, see handled), each event once (exact distinct count of a hash of event_id): uniqExactMerge(crashes); uniqExactMergeIf(crashes, handled = 0) for those that ended the process."},
			{name: "sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions with such a crash (approximate): uniqMerge(sessions); uniqMergeIf(sessions, handled = 0) for sessions that crashed, for crash-free session rates."},
			{name: "first_seen", typ: aggregateType("min", "DateTime('UTC')"), comment: "Earliest event_time: minMerge(first_seen)."},
			{name: "last_seen", typ: aggregateType("max", "DateTime('UTC')"), comment: "Latest event_time: maxMerge(last_seen)."},
			{name: "message", typ: aggregateType("any", "String"), comment: "One scrubbed message of the group, for its title: anyMerge(message)."},
			{name: "culprit", typ: aggregateType("any", "String"), comment: "Function of the innermost in-app frame (else of the innermost frame) of one crash of the group: anyMerge(culprit)."},
		},
		day:       "event_date",
		orderBy:   keys,
		retention: DefaultAggregateRetentionDays,
		// A group's page reads its rows of each day: small marks skip
		// the other groups' rows.
		indexGranularity: 1024,
	}
}

// crashGroupStatusTable returns the definition of TableCrashGroupStatus.
func crashGroupStatusTable(database string) *rowTable[triage.Decision] {
	return newRowTable(database,
		&tableDef{
			name:      TableCrashGroupStatus,
			comment:   "Triage decisions on crash groups, one row per change: the latest row of a group counts, read it with argMax(column, version) grouped by app_id and fingerprint. Groups without a row are open.",
			engine:    "MergeTree",
			orderBy:   []string{"app_id", columnFingerprint, "version"},
			placement: everywhere,
		},
		[]field[triage.Decision]{
			lowCardCol("app_id", "App the crash group belongs to.",
				func(d *triage.Decision) string { return d.AppID }),
			uint64Col(columnFingerprint, "Crash group key (crashes.fingerprint).",
				func(d *triage.Decision) uint64 { return d.Fingerprint }),
			lowCardCol("status", "open, resolved or ignored.",
				func(d *triage.Decision) string { return string(d.State) }),
			stringCol("resolved_in", "For resolved: the app version that carries the fix, often one not released yet; crashes in it or a later version after changed_at mark the group regressed. Else empty.",
				func(d *triage.Decision) string { return d.ResolvedIn }),
			stringCol("changed_by", "Dashboard user who made the change.",
				func(d *triage.Decision) string { return d.ChangedBy }),
			timeCol("changed_at", "When the change was made (UTC).",
				func(d *triage.Decision) time.Time { return d.ChangedAt }),
			uint64Col("version", "changed_at in Unix nanoseconds: the row with the highest version of a group is its status, also among changes made in the same second.",
				func(d *triage.Decision) uint64 { return uint64(d.ChangedAt.UnixNano()) }),
		})
}

// crashGroupChangesTable returns the definition of
// TableCrashGroupChanges.
func crashGroupChangesTable(database string) *rowTable[triage.Change] {
	return newRowTable(database,
		&tableDef{
			name:      TableCrashGroupChanges,
			comment:   "Changes of crash groups besides their status, one row per change: who works on a group (kind assignee), its note (kind note) and merges (kind merged_into: the group's crashes count in the group merged_into; 0 undoes it). The latest row of a group and kind counts: read argMax(value, version) or argMax(merged_into, version) grouped by app_id, fingerprint and kind.",
			engine:    "MergeTree",
			orderBy:   []string{"app_id", columnFingerprint, "kind", "version"},
			placement: everywhere, // like crash_group_status: every server reads it locally
		},
		[]field[triage.Change]{
			lowCardCol("app_id", "App the crash group belongs to.",
				func(c *triage.Change) string { return c.AppID }),
			uint64Col(columnFingerprint, "Crash group key (crashes.fingerprint).",
				func(c *triage.Change) uint64 { return c.Fingerprint }),
			lowCardCol("kind", "assignee, note or merged_into.",
				func(c *triage.Change) string { return string(c.Kind) }),
			textCol("value", "For assignee: the dashboard user working on the group; for note: the group's note, scrubbed of identifiers; empty to clear it, and for merged_into.",
				func(c *triage.Change) string { return c.Value }),
			uint64Col("merged_into", "For merged_into: the crash group this one's crashes count in, a fingerprint; 0 when the merge is undone, and for the other kinds.",
				func(c *triage.Change) uint64 { return c.MergedInto }),
			stringCol("changed_by", "Dashboard user who made the change.",
				func(c *triage.Change) string { return c.ChangedBy }),
			timeCol("changed_at", "When the change was made (UTC).",
				func(c *triage.Change) time.Time { return c.ChangedAt }),
			uint64Col("version", "changed_at in Unix nanoseconds: the row with the highest version of a group and kind counts, also among changes made in the same second.",
				func(c *triage.Change) uint64 { return uint64(c.ChangedAt.UnixNano()) }),
		})
}
