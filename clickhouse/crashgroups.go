package clickhouse

import (
	"fmt"
	"strings"
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
)

// crashGroupDims are the key columns that crash_groups_daily is grouped
// by after the app, day and group: the dashboard's filters.
// The OS version is left out: it would double the rows, and with them the
// time to rank groups; breakdowns by OS version read the raw crashes.
var crashGroupDims = []string{"app_version", "os_name", "country", "region"}

// crashGroupsDailyTable returns the definition of TableCrashGroupsDaily.
func crashGroupsDailyTable(o SchemaOptions) *tableDef {
	keys := append([]string{"app_id", "event_date", columnFingerprint, "exception_type"}, crashGroupDims...)
	return &tableDef{
		name:     TableCrashGroupsDaily,
		database: o.Database,
		comment:  "Crash groups per day, app version, OS family and region, filled from crashes by crash_groups_daily_mv. Group by fingerprint and read the aggregate columns with sumMerge, uniqMerge, minMerge and maxMerge.",
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
			{name: "crashes", typ: aggregateType("sum", "UInt64"), comment: "Crashes and handled exceptions: sumMerge(crashes)."},
			{name: "fatal", typ: aggregateType("sum", "UInt64"), comment: "Crashes that ended the process (handled = 0): sumMerge(fatal)."},
			{name: "sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions with a crash or handled exception of the group (approximate): uniqMerge(sessions)."},
			{name: "fatal_sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions that crashed (handled = 0), for crash-free session rates: uniqMerge(fatal_sessions)."},
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

// crashGroupsDailyView returns the statement creating the materialized
// view that fills crash_groups_daily from crashes. The conditional uniq
// states are plain uniq states, as in sessionsDailyView.
func (s *schema) crashGroupsDailyView() string {
	o := s.opts
	keys := "app_id, event_date, fingerprint, exception_type, " + strings.Join(crashGroupDims, ", ")
	return fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %[1]s.%[2]s%[3]s
TO %[1]s.%[4]s
AS SELECT
    %[5]s,
    sumState(toUInt64(1)) AS crashes,
    sumState(toUInt64(handled = 0)) AS fatal,
    uniqStateIf(session_key, session_key != 0) AS sessions,
    uniqStateIf(session_key, session_key != 0 AND handled = 0) AS fatal_sessions,
    minState(event_time) AS first_seen,
    maxState(event_time) AS last_seen,
    anyState(message) AS message,
    anyState(if(has(frame_in_app, 1), frame_function[indexOf(frame_in_app, 1)], frame_function[1])) AS culprit
FROM %[1]s.%[6]s
GROUP BY %[5]s`,
		o.Database, ViewCrashGroupsDaily, onCluster(o), s.crashGroups.storage(o), keys, s.crashes.def.storage(o))
}

// crashGroupStatusTable returns the definition of TableCrashGroupStatus.
func crashGroupStatusTable(database string) *rowTable[triage.Decision] {
	return newRowTable(database,
		&tableDef{
			name:     TableCrashGroupStatus,
			comment:  "Triage decisions on crash groups, one row per change: the latest row of a group counts, read it with argMax(column, version) grouped by app_id and fingerprint. Groups without a row are open.",
			engine:   "MergeTree",
			orderBy:  []string{"app_id", columnFingerprint, "version"},
			shardKey: "sipHash64(app_id)",
		},
		[]field[triage.Decision]{
			lowCardCol("app_id", "App the crash group belongs to.",
				func(d *triage.Decision) string { return d.AppID }),
			uint64Col(columnFingerprint, "Crash group key (crashes.fingerprint).",
				func(d *triage.Decision) uint64 { return d.Fingerprint }),
			lowCardCol("status", "open, resolved or ignored.",
				func(d *triage.Decision) string { return string(d.State) }),
			stringCol("resolved_in", "For resolved: the app version that carries the fix; crashes in it or a later version mark the group regressed. Else empty.",
				func(d *triage.Decision) string { return d.ResolvedIn }),
			stringCol("changed_by", "Dashboard user who made the change.",
				func(d *triage.Decision) string { return d.ChangedBy }),
			timeCol("changed_at", "When the change was made (UTC).",
				func(d *triage.Decision) time.Time { return d.ChangedAt }),
			uint64Col("version", "changed_at in Unix nanoseconds: the row with the highest version of a group is its status, also among changes made in the same second.",
				func(d *triage.Decision) uint64 { return uint64(d.ChangedAt.UnixNano()) }),
		})
}
