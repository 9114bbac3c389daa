package clickhouse

import "github.com/consentry/consentry/pipeline"

// The crashes table's breadcrumbs: what the user did before a crash, as
// three parallel arrays (18.16 has neither Map nor nested JSON, and
// arrays of scalars read alike on every server), after app_state.
const (
	columnBreadcrumbTypes   = "breadcrumb_types"
	columnBreadcrumbNames   = "breadcrumb_names"
	columnBreadcrumbOffsets = "breadcrumb_offsets_ms"
)

// breadcrumbColumns are the breadcrumb columns, in table order.
var breadcrumbColumns = []string{columnBreadcrumbTypes, columnBreadcrumbNames, columnBreadcrumbOffsets}

// int64ArrayType is an array of signed 64-bit integers.
func int64ArrayType() chType { return chType{legacy: "Array(Int64)", codec: "ZSTD(1)"} }

// breadcrumbFields returns the crashes table's breadcrumb columns.
func breadcrumbFields() []field[pipeline.CrashRow] {
	breadcrumbs := func(r *pipeline.CrashRow) []pipeline.Breadcrumb { return r.Breadcrumbs }
	return []field[pipeline.CrashRow]{
		arrayOf(columnBreadcrumbTypes, lowCardArrayType(), "What the user did before the crash, oldest first, at most 100: screen_view, custom (an app-defined event or breadcrumb), a gesture (tap, double_tap, long_press, swipe, pinch, scroll, or gesture when the SDK did not say) or unknown; breadcrumb_* arrays are parallel. Not part of the fingerprint.",
			breadcrumbs, func(b pipeline.Breadcrumb) string { return b.Type }),
		arrayOf(columnBreadcrumbNames, lowCardArrayType(), "Breadcrumbs' screen (screen_view and gestures) or event name (custom), e.g. settings.privacy; scrubbed like other names.",
			breadcrumbs, func(b pipeline.Breadcrumb) string { return b.Name }),
		arrayOf(columnBreadcrumbOffsets, int64ArrayType(), "How long before the crash each breadcrumb happened, in milliseconds, rounded to the precision of event_time (a minute by default): no more precise than the times of the events themselves.",
			breadcrumbs, func(b pipeline.Breadcrumb) int64 { return b.OffsetMs }),
	}
}

// breadcrumbsMigration is the migration that adds the breadcrumb columns
// to the crashes table and to its held table (which migration 11 made,
// and whose columns must follow the event table's). It is numbered by its
// caller, so it can move when branches merge; it must come after the
// k-anonymity migration.
func breadcrumbsMigration(version int) Migration {
	return Migration{
		Version: version,
		Name:    "breadcrumbs on crashes and held crashes: breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms",
		Statements: addColumns(func(s *schema) []*tableDef {
			return []*tableDef{s.crashes.def, heldTable(s.crashes.def, s.opts.PrivateDatabase)}
		}, breadcrumbColumns...),
	}
}
