package clickhouse

import (
	"time"

	"github.com/consentry/consentry/pipeline"
)

// The event tables: one row per event the collector stored, the columns
// every event table starts with (commonFields), and each table's own.

// commonFields returns the columns every event table starts with.
func commonFields[R any](c func(*R) *pipeline.Common) []field[R] {
	return []field[R]{
		lowCardCol("app_id", "App id as registered with the collector, e.g. com.example.notes.",
			func(r *R) string { return c(r).AppID }),
		dateCol("event_date", "UTC day of event_time; the table is partitioned by it.",
			func(r *R) time.Time { return c(r).EventTime }),
		eventTimeCol("event_time", "When the event happened (UTC), after correcting the device clock's skew, truncated to the collector's precision.",
			func(r *R) time.Time { return c(r).EventTime }),
		uuidCol("event_id", "Random id the SDK drew for the event; identifies the event, never the device. Retried events share it: rows with the same sorting key are merged away in the background, count exactly with uniqExact(event_id).",
			func(r *R) [16]byte { return c(r).EventID }),
		uint64Col("session_key", "App session, re-keyed with a salt that rotates daily and is destroyed: counts sessions within a day, joins nothing across days. 0 when the event had no session.",
			func(r *R) uint64 { return c(r).SessionKey }),
		lowCardCol("app_version", "App's user-visible version, e.g. 4.12.0.",
			func(r *R) string { return c(r).AppVersion }),
		lowCardCol("app_build", "App's build number, e.g. 4120003.",
			func(r *R) string { return c(r).AppBuild }),
		lowCardCol("sdk_version", "SDK name and version, e.g. consentry-go/0.1.0.",
			func(r *R) string { return c(r).SDKVersion }),
		lowCardCol("device_class", "Class of device: phone, tablet, watch, tv, desktop, car, other or unknown.",
			func(r *R) string { return c(r).DeviceClass }),
		lowCardCol("device_model", "Marketing model name, e.g. Pixel 8; rare models are generalized.",
			func(r *R) string { return c(r).DeviceModel }),
		lowCardCol("os_name", "Operating system family: android, ios, ipados, watchos, tvos, macos, windows, linux, harmonyos, other or unknown.",
			func(r *R) string { return c(r).OSName }),
		lowCardCol("os_version", "Operating system version, e.g. 17.4.1.",
			func(r *R) string { return c(r).OSVersion }),
		lowCardCol("locale", "UI locale reduced to language and region, e.g. de-AT.",
			func(r *R) string { return c(r).Locale }),
		lowCardCol("country", "ISO 3166-1 alpha-2 country code, e.g. AT; empty when unknown.",
			func(r *R) string { return c(r).Country }),
		lowCardCol("region", "ISO 3166-2 first-level region code, e.g. AT-9; empty when unknown or generalized away.",
			func(r *R) string { return c(r).Region }),
		// Added to existing tables by migration 3, after region.
		withDefault(textCol(columnConsentKey, "For apps whose erasure policy is erasable: a keyed pseudonym of the consent (HMAC-SHA-256 under a server secret), so a revoked consent's rows can be erased; empty for anonymous apps, whose rows carry no link to any consent.",
			func(r *R) string { return c(r).ConsentKey }), "''"),
	}
}

// eventTable returns the description of an event table whose rows are
// merged on (app_id, event_date, keys..., event_id).
func eventTable(name, comment string, keys ...string) *tableDef {
	primary := append([]string{"app_id", "event_date"}, keys...)
	return &tableDef{
		name:    name,
		comment: comment,
		// Retries of a batch that was partly stored repeat event ids;
		// merges keep one row per id.
		engine:     "ReplacingMergeTree",
		day:        "event_date",
		primaryKey: primary,
		orderBy:    append(primary[:len(primary):len(primary)], "event_id"),
		retention:  DefaultEventRetentionDays,
		shardKey:   "sipHash64(toString(event_id))",
		// The spool repeats an insert, with its token, after a crash.
		dedupWindow: eventDedupWindow,
	}
}

// sessionsTable returns the definition of the sessions table in database.
func sessionsTable(database string) *rowTable[pipeline.SessionRow] {
	return newRowTable(database,
		eventTable(TableSessions, "App sessions: one row per session start and per session end.", "phase"),
		append(commonFields(func(r *pipeline.SessionRow) *pipeline.Common { return &r.Common }),
			lowCardCol("phase", "start or end.",
				func(r *pipeline.SessionRow) string { return r.Phase }),
			uint64Col("duration_ms", "On end: the session's length in milliseconds; 0 on start.",
				func(r *pipeline.SessionRow) uint64 { return r.DurationMs }),
			uint64Col("foreground_ms", "On end: milliseconds the app was in the foreground, at most duration_ms; 0 on start.",
				func(r *pipeline.SessionRow) uint64 { return r.ForegroundMs }),
		))
}

// gesturesTable returns the definition of the gestures table in database.
func gesturesTable(database string) *rowTable[pipeline.GestureRow] {
	return newRowTable(database,
		eventTable(TableGestures, "Touch gestures, summarized per type and screen by the SDK.", "screen", "gesture_type"),
		append(commonFields(func(r *pipeline.GestureRow) *pipeline.Common { return &r.Common }),
			lowCardCol("gesture_type", "tap, double_tap, long_press, swipe, pinch or scroll.",
				func(r *pipeline.GestureRow) string { return r.Type }),
			lowCardCol("screen", "App's name for the screen, e.g. settings.privacy.",
				func(r *pipeline.GestureRow) string { return r.Screen }),
			uint32Col("gesture_count", "Number of gestures the row summarizes, at least 1: sum it to count gestures.",
				func(r *pipeline.GestureRow) uint32 { return r.Count }),
			uint32Col("duration_ms", "Total duration of the gestures in milliseconds for long presses, swipes, pinches and scrolls; else 0.",
				func(r *pipeline.GestureRow) uint32 { return r.DurationMs }),
		))
}

// crashesTable returns the definition of the crashes table in database.
func crashesTable(database string) *rowTable[pipeline.CrashRow] {
	frames := func(r *pipeline.CrashRow) []pipeline.Frame { return r.Frames }
	return newRowTable(database,
		eventTable(TableCrashes, "Crashes and handled exceptions, with scrubbed messages and stacks.", "exception_type"),
		append(append(commonFields(func(r *pipeline.CrashRow) *pipeline.Common { return &r.Common }),
			lowCardCol("exception_type", "Exception or signal type, e.g. java.lang.IllegalStateException or SIGSEGV.",
				func(r *pipeline.CrashRow) string { return r.ExceptionType }),
			uint64Col(columnFingerprint, "Crash group key: the same for every occurrence of one bug, across app versions, addresses, line numbers and scrubbed values (package fingerprint); group by it. 0 for crashes stored before it existed.",
				func(r *pipeline.CrashRow) uint64 { return r.Fingerprint }),
			textCol("message", "Exception message, scrubbed: removed values are replaced by their kind, e.g. [email].",
				func(r *pipeline.CrashRow) string { return r.Message }),
			arrayOf("frame_module", lowCardArrayType(), "Stack frames' modules, innermost frame first, e.g. libsystem_kernel.dylib; frame_* arrays are parallel.",
				frames, func(f pipeline.Frame) string { return f.Module }),
			arrayOf("frame_function", textArrayType(), "Stack frames' functions or methods, e.g. NoteEditor.save.",
				frames, func(f pipeline.Frame) string { return f.Function }),
			arrayOf("frame_file", lowCardArrayType(), "Stack frames' source file names, e.g. NoteEditor.kt; user names in paths are scrubbed.",
				frames, func(f pipeline.Frame) string { return f.File }),
			arrayOf("frame_line", uint32ArrayType(), "Stack frames' line numbers; 0 when unknown.",
				frames, func(f pipeline.Frame) uint32 { return f.Line }),
			arrayOf("frame_in_app", uint8ArrayType(), "1 where the frame is the app's own code, 0 for system and library code.",
				frames, func(f pipeline.Frame) uint8 { return b2u(f.InApp) }),
			lowCardCol("thread", "Name of the crashing thread, e.g. main.",
				func(r *pipeline.CrashRow) string { return r.Thread }),
			boolCol("handled", "1 for an exception the app caught and reported, 0 for a crash that ended the process.",
				func(r *pipeline.CrashRow) bool { return r.Handled }),
			lowCardCol("app_state", "What the app was doing: foreground, background, launching, terminating or unknown.",
				func(r *pipeline.CrashRow) string { return r.AppState }),
		),
			// Added to existing tables by breadcrumbsMigration.
			breadcrumbFields()...))
}

// customsTable returns the definition of the customs table in database.
func customsTable(database string) *rowTable[pipeline.CustomRow] {
	return newRowTable(database,
		eventTable(TableCustomEvents, "App-defined events with scalar attributes, split by type.", "name"),
		append(commonFields(func(r *pipeline.CustomRow) *pipeline.Common { return &r.Common }),
			lowCardCol("name", "Event name chosen by the app, e.g. export_pdf.",
				func(r *pipeline.CustomRow) string { return r.Name }),
			array("string_keys", lowCardArrayType(), "Keys of the string attributes, sorted; parallel to string_values.",
				func(dst []string, r *pipeline.CustomRow) []string { return append(dst, r.StringKeys...) }),
			array("string_values", textArrayType(), "Values of the string attributes, scrubbed; read one with string_values[indexOf(string_keys, 'key')].",
				func(dst []string, r *pipeline.CustomRow) []string { return append(dst, r.StringValues...) }),
			array("number_keys", lowCardArrayType(), "Keys of the integer and floating-point attributes; parallel to number_values.",
				func(dst []string, r *pipeline.CustomRow) []string { return append(dst, r.NumberKeys...) }),
			array("number_values", float64ArrayType(), "Values of the integer and floating-point attributes.",
				func(dst []float64, r *pipeline.CustomRow) []float64 { return append(dst, r.NumberValues...) }),
			array("bool_keys", lowCardArrayType(), "Keys of the boolean attributes; parallel to bool_values.",
				func(dst []string, r *pipeline.CustomRow) []string { return append(dst, r.BoolKeys...) }),
			arrayOf("bool_values", uint8ArrayType(), "Values of the boolean attributes: 1 true, 0 false.",
				func(r *pipeline.CustomRow) []bool { return r.BoolValues }, b2u),
		))
}

// diagnosticsTable returns the definition of the diagnostics table in database.
func diagnosticsTable(database string) *rowTable[pipeline.DiagnosticRow] {
	return newRowTable(database,
		eventTable(TableDiagnostics, "Performance and health measurements: app starts, hangs, memory warnings, network changes.", "kind"),
		append(commonFields(func(r *pipeline.DiagnosticRow) *pipeline.Common { return &r.Common }),
			lowCardCol("kind", "What was measured: app_start, memory_warning, network_change, hang, low_storage or thermal.",
				func(r *pipeline.DiagnosticRow) string { return r.Kind }),
			uint32Col("duration_ms", "app_start: time to first frame; hang: how long the main thread was blocked; in milliseconds, else 0.",
				func(r *pipeline.DiagnosticRow) uint32 { return r.DurationMs }),
			lowCardCol("start_type", "app_start: cold, warm or hot; else unknown.",
				func(r *pipeline.DiagnosticRow) string { return r.StartType }),
			lowCardCol("network_type", "Network type where known: none, wifi, cellular, ethernet, other or unknown.",
				func(r *pipeline.DiagnosticRow) string { return r.NetworkType }),
			uint64Col("memory_bytes", "memory_warning: the app's memory footprint in bytes; else 0.",
				func(r *pipeline.DiagnosticRow) uint64 { return r.MemoryBytes }),
		))
}
