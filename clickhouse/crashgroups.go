package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
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

// CrashGroupState is the triage state of a crash group.
type CrashGroupState string

// Crash group states. A group without a status row is open.
const (
	// StateOpen needs triage or a fix.
	StateOpen CrashGroupState = "open"
	// StateResolved is fixed in CrashGroupStatus.ResolvedIn: crashes in
	// that app version or a later one mean the group has regressed.
	StateResolved CrashGroupState = "resolved"
	// StateIgnored is not worth fixing; it stays out of the default list.
	StateIgnored CrashGroupState = "ignored"
)

// Valid reports whether s is one of the defined states.
func (s CrashGroupState) Valid() bool {
	return s == StateOpen || s == StateResolved || s == StateIgnored
}

// CrashGroupStatus is one triage decision about a crash group.
type CrashGroupStatus struct {
	// AppID and Fingerprint name the group.
	AppID       string
	Fingerprint uint64
	// State is the group's new state.
	State CrashGroupState
	// ResolvedIn is the app version that carries the fix; set exactly
	// when State is StateResolved.
	ResolvedIn string
	// ChangedBy names who made the decision: a dashboard user, never an
	// app user.
	ChangedBy string
	// ChangedAt is when the decision was made; it must be a DateTime
	// (1970 to 2106). It is stored to the second, and orders decisions to
	// the nanosecond.
	ChangedAt time.Time
}

// Validate reports whether s can be stored.
func (s CrashGroupStatus) Validate() error {
	var errs []error
	if s.AppID == "" {
		errs = append(errs, errors.New("app id is empty"))
	}
	if !s.State.Valid() {
		errs = append(errs, fmt.Errorf("state %q is not open, resolved or ignored", s.State))
	}
	if s.State == StateResolved && s.ResolvedIn == "" {
		errs = append(errs, errors.New("a resolved group needs the version that fixes it"))
	}
	if s.State != StateResolved && s.ResolvedIn != "" {
		errs = append(errs, fmt.Errorf("only a resolved group has a version, not a %s one", s.State))
	}
	if len(s.ResolvedIn) > 64 || len(s.ChangedBy) > 64 {
		errs = append(errs, errors.New("version and user name are limited to 64 bytes"))
	}
	if err := checkDateTime("changed at", s.ChangedAt); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("crash group status: %w", err)
	}
	return nil
}

// SetCrashGroupStatus records a triage decision. Earlier decisions are
// kept as the group's history.
func (c *Client) SetCrashGroupStatus(ctx context.Context, s CrashGroupStatus) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := insertRows(ctx, c.conn, c.schema.crashStatus, []CrashGroupStatus{s}); err != nil {
		return fmt.Errorf("set crash group status: %w", err)
	}
	return nil
}

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
func crashGroupStatusTable(database string) *rowTable[CrashGroupStatus] {
	return newRowTable(database,
		&tableDef{
			name:     TableCrashGroupStatus,
			comment:  "Triage decisions on crash groups, one row per change: the latest row of a group counts, read it with argMax(column, version) grouped by app_id and fingerprint. Groups without a row are open.",
			engine:   "MergeTree",
			orderBy:  []string{"app_id", columnFingerprint, "version"},
			shardKey: "sipHash64(app_id)",
		},
		[]field[CrashGroupStatus]{
			lowCardCol("app_id", "App the crash group belongs to.",
				func(s *CrashGroupStatus) string { return s.AppID }),
			uint64Col(columnFingerprint, "Crash group key (crashes.fingerprint).",
				func(s *CrashGroupStatus) uint64 { return s.Fingerprint }),
			lowCardCol("status", "open, resolved or ignored.",
				func(s *CrashGroupStatus) string { return string(s.State) }),
			stringCol("resolved_in", "For resolved: the app version that carries the fix; crashes in it or a later version mark the group regressed. Else empty.",
				func(s *CrashGroupStatus) string { return s.ResolvedIn }),
			stringCol("changed_by", "Dashboard user who made the change.",
				func(s *CrashGroupStatus) string { return s.ChangedBy }),
			timeCol("changed_at", "When the change was made (UTC).",
				func(s *CrashGroupStatus) time.Time { return s.ChangedAt }),
			uint64Col("version", "changed_at in Unix nanoseconds: the row with the highest version of a group is its status, also among changes made in the same second.",
				func(s *CrashGroupStatus) uint64 { return uint64(s.ChangedAt.UnixNano()) }),
		})
}
