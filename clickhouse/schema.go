package clickhouse

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/pipeline"
)

// Table names. Queries, retention settings and the docs use these names on
// every kind of server, single or clustered.
const (
	// TableSessions holds session starts and ends.
	TableSessions = "sessions"
	// TableGestures holds gesture summaries.
	TableGestures = "gestures"
	// TableCrashes holds crashes and handled exceptions.
	TableCrashes = "crashes"
	// TableCustomEvents holds app-defined events.
	TableCustomEvents = "custom_events"
	// TableDiagnostics holds performance and health measurements.
	TableDiagnostics = "diagnostics"
	// TableRejects counts events that were not stored, per minute, app and
	// reason.
	TableRejects = "rejects"
	// TableSessionsDaily aggregates sessions per day, app, version, OS and
	// region; it is filled by the materialized view ViewSessionsDaily.
	TableSessionsDaily = "sessions_daily"
	// ViewSessionsDaily is the materialized view that fills
	// TableSessionsDaily from TableSessions.
	ViewSessionsDaily = "sessions_daily_mv"
	// TableMigrations records the applied schema migrations.
	TableMigrations = "schema_migrations"
	// TableApps holds the registered apps, one row per version of each;
	// reads take the latest.
	TableApps = "apps"
	// TableRevocations holds withdrawn consents, named by the hash of the
	// consent id, until their tokens expire.
	TableRevocations = "revocations"
	// TableErasures is the audit log of erasures: what was deleted for
	// which app and consent key, without any payload.
	TableErasures = "erasures"
)

// Tables returns the names of the tables whose rows expire with age, in
// the order they are created. Each is a valid key of
// SchemaOptions.RetentionDays. The apps and revocations tables are not
// among them: apps are kept until replaced, revocations until their tokens
// expire (Client.PruneRevocations).
func Tables() []string {
	s := newSchema(SchemaOptions{})
	var names []string
	for _, t := range s.dataTables() {
		names = append(names, t.name)
	}
	return names
}

// tableDef describes one table for every dialect and layout.
type tableDef struct {
	// name is the table's name in queries.
	name string
	// database is the database that holds the table: SchemaOptions'
	// Database, or its PrivateDatabase for secrets analysts must not read.
	database string
	// comment is the table comment, set on servers that support one.
	comment string
	// engine is the MergeTree-family engine without "Replicated" and
	// arguments, e.g. "ReplacingMergeTree".
	engine string
	// columns are the table's columns in insert order.
	columns []column
	// day is the Date or DateTime column whose UTC day (or month, if
	// monthly) partitions the table and bounds its retention; "" for
	// unpartitioned tables.
	day string
	// monthly partitions the table by the month of day instead of by its
	// day, for tables that get few rows a day.
	monthly bool
	// engineArgs are the engine's arguments, e.g. the version column of a
	// ReplacingMergeTree; "" for none.
	engineArgs string
	// expiry, if set, is the TTL expression of a table whose rows expire at
	// a time they carry (e.g. a column), instead of after the configured
	// retention.
	expiry string
	// primaryKey is a prefix of orderBy kept in the in-memory index; nil
	// means all of orderBy.
	primaryKey []string
	// orderBy is the sorting key; for the replacing and summing engines it
	// is also the key that rows are merged on.
	orderBy []string
	// retention is the default retention in days, 0 for forever.
	retention int
	// placement says where a cluster keeps the table's rows: split over
	// the shards (sharded, the zero value) or a full copy on every
	// server (everywhere). See cluster.go.
	placement placement
	// shardKey distributes a sharded table's inserted rows over the
	// shards of a cluster: a deterministic expression of what must stay
	// together (an event id's copies, for FINAL and deduplication), or
	// rand() where nothing must. "" for tables that are never inserted
	// into through their Distributed table (the aggregates, filled on
	// each shard by their views).
	shardKey string
	// storageName, if not "", names the storage table instead of the
	// usual name: the aggregates that migration 10 renamed.
	storageName string
	// quorum, for tables placed everywhere on a cluster, is how many
	// replicas an insert waits for (insert_quorum): durable writes the
	// consent gate depends on, and claims every replica must see at
	// once. See cluster.go.
	quorum quorum
	// indexGranularity, if not 0, is the rows per mark of the primary
	// index, for tables read in small key ranges; default 8192.
	indexGranularity int
	// dedupWindow, if not 0, is how many recent inserts a table on a
	// modern, unclustered server remembers to drop a repeated one
	// (non_replicated_deduplication_window; replicated tables always
	// deduplicate).
	dedupWindow int
}

// create returns the statements that create t: one, or on a cluster
// two for a sharded table (the replicated storage table and the
// Distributed table in front of it) and one for a table placed
// everywhere (replicated on every server).
func (t *tableDef) create(d Dialect, o SchemaOptions) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n(\n", t.database, t.storage(o), onCluster(o))
	// 18.16 cannot create a Replicated table with column comments: every
	// replica, the first too, fails with "Table structure in ZooKeeper is
	// too different from local table structure". Its Distributed tables,
	// which analysts read, keep them.
	t.writeColumns(&b, d, true, d.Modern || o.Cluster == "")
	b.WriteString(")\n")
	fmt.Fprintf(&b, "ENGINE = %s\n", t.engineClause(o))
	if t.day != "" {
		fmt.Fprintf(&b, "PARTITION BY %s\n", t.partitionExpr())
	}
	if t.primaryKey != nil {
		fmt.Fprintf(&b, "PRIMARY KEY (%s)\n", strings.Join(t.primaryKey, ", "))
	}
	fmt.Fprintf(&b, "ORDER BY (%s)\n", strings.Join(t.orderBy, ", "))
	var settings []string
	if ttl := t.ttl(o); d.Modern && ttl != "" {
		fmt.Fprintf(&b, "TTL %s\n", ttl)
		// Rows of a partition expire together: drop whole parts instead
		// of rewriting them.
		settings = append(settings, "ttl_only_drop_parts = 1")
	}
	if t.indexGranularity != 0 {
		settings = append(settings, fmt.Sprintf("index_granularity = %d", t.indexGranularity))
	}
	if d.Modern && o.Cluster == "" && t.dedupWindow != 0 {
		settings = append(settings, fmt.Sprintf("non_replicated_deduplication_window = %d", t.dedupWindow))
	}
	if len(settings) > 0 {
		fmt.Fprintf(&b, "SETTINGS %s\n", strings.Join(settings, ", "))
	}
	if d.Modern {
		fmt.Fprintf(&b, "COMMENT %s\n", quote(t.comment))
	}
	stmts := []string{strings.TrimSuffix(b.String(), "\n")}
	if !t.distributed(o) {
		return stmts
	}
	return append(stmts, t.createDistributed(d, o))
}

// createDistributed returns the statement that creates the Distributed
// table in front of sharded table t on o's cluster.
func (t *tableDef) createDistributed(d Dialect, o SchemaOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n(\n", t.database, t.name, onCluster(o))
	t.writeColumns(&b, d, false, true)
	b.WriteString(")\n")
	dist := fmt.Sprintf("Distributed(%s, %s, %s", o.Cluster, t.database, t.storage(o))
	if t.shardKey != "" {
		dist += ", " + t.shardKey
	}
	fmt.Fprintf(&b, "ENGINE = %s)", dist)
	if d.Modern {
		fmt.Fprintf(&b, "\nCOMMENT %s", quote(t.comment))
	}
	return b.String()
}

// addColumn returns the statements that add t's column name to a table
// created without it, where a new table has it: after the column before
// it. Modern servers get ADD COLUMN IF NOT EXISTS with comment and codec.
// 18.16 knows neither IF NOT EXISTS nor a comment in ADD COLUMN (it parses
// the COMMENT clause and drops it): it gets a plain ADD COLUMN, whose
// "already exists" error execDDL takes as success, then COMMENT COLUMN.
//
// On a cluster the storage table gets the column through t.alter (ON
// CLUSTER for a sharded table, replication for a table everywhere), and
// a sharded table's Distributed table gets it too: on modern servers with
// ALTER ... ON CLUSTER; on 18.16, which refuses ALTER ... ON CLUSTER on a
// Distributed table of a cluster with internal_replication
// (INCONSISTENT_CLUSTER_DEFINITION), by dropping and creating it again
// (it holds no data: inserts are synchronous). 18.16 gets no COMMENT
// COLUMN on a cluster: on a Replicated table it can drop the column it
// comments (tried on 18.16.1); new tables have their comments from
// CREATE. name must be one of t's columns, and not the first.
func (t *tableDef) addColumn(d Dialect, o SchemaOptions, name string) []string {
	i := slices.IndexFunc(t.columns, func(c column) bool { return c.name == name })
	if i < 1 {
		panic(fmt.Sprintf("clickhouse: %s has no column %s after another", t.name, name))
	}
	c, after := t.columns[i], t.columns[i-1].name
	var stmts []string
	if d.Modern {
		stmts = append(stmts, t.alter(o, "ADD COLUMN IF NOT EXISTS "+c.definition(d, true, true)+" AFTER "+after))
	} else {
		stmts = append(stmts, t.alter(o, "ADD COLUMN "+c.definition(d, true, false)+" AFTER "+after))
		if o.Cluster == "" {
			stmts = append(stmts, t.alter(o, "COMMENT COLUMN "+c.name+" "+quote(c.comment)))
		}
	}
	if !t.distributed(o) {
		return stmts
	}
	if d.Modern {
		return append(stmts, fmt.Sprintf("ALTER TABLE %s.%s%s ADD COLUMN IF NOT EXISTS %s AFTER %s",
			t.database, t.name, onCluster(o), c.definition(d, false, true), after))
	}
	return append(stmts, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", t.database, t.name, onCluster(o)), t.createDistributed(d, o))
}

// partitionExpr is t's PARTITION BY expression.
func (t *tableDef) partitionExpr() string {
	if t.monthly {
		return "toYYYYMM(" + t.day + ")"
	}
	return "toYYYYMMDD(" + t.day + ")"
}

// ttl returns t's TTL expression on servers that have TTL: its expiry, or
// the configured retention on its day column; "" for none.
func (t *tableDef) ttl(o SchemaOptions) string {
	if t.expiry != "" {
		return t.expiry
	}
	if days := o.retention(t); t.day != "" && days > 0 {
		return ttlExpr(t.day, days)
	}
	return ""
}

// writeColumns writes t's column definitions, with their comments if
// comments; codecs only for tables that store data.
func (t *tableDef) writeColumns(b *strings.Builder, d Dialect, storage, comments bool) {
	for i, c := range t.columns {
		b.WriteString("    " + c.definition(d, storage, comments))
		if i < len(t.columns)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
}

// ttlExpr is the TTL expression for days of retention on column day. It is
// written as servers print it back, so it can be compared with SHOW CREATE.
func ttlExpr(day string, days int) string {
	return fmt.Sprintf("%s + toIntervalDay(%d)", day, days)
}

// quote returns s as a single-quoted SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// columnNames returns the names of t's columns.
func (t *tableDef) columnNames() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return names
}

// rejectRow is one row of the rejects table.
type rejectRow struct {
	minute time.Time
	app    string
	reason string
	events uint64
}

// erasureRow is one row of the erasures table.
type erasureRow struct {
	erasedAt   time.Time
	app        string
	consentKey string
	table      string
	rows       uint64
}

// schema is the set of tables for one SchemaOptions.
type schema struct {
	opts          SchemaOptions
	sessions      *rowTable[pipeline.SessionRow]
	gestures      *rowTable[pipeline.GestureRow]
	crashes       *rowTable[pipeline.CrashRow]
	customs       *rowTable[pipeline.CustomRow]
	diagnostics   *rowTable[pipeline.DiagnosticRow]
	rejects       *rowTable[rejectRow]
	sessionsDaily *tableDef
	migrations    *rowTable[migrationRow]
	apps          *rowTable[consent.App]
	revocations   *rowTable[consent.Revocation]
	erasures      *rowTable[erasureRow]
	salts         *rowTable[saltRow]
	crashGroups   *tableDef
	crashStatus   *rowTable[triage.Decision]
	crashChanges  *rowTable[triage.Change]
	alerts        *tableDef
	mappings      *tableDef
}

// migrationRow is one row of the schema_migrations table.
type migrationRow struct {
	version       uint32
	name          string
	appliedAt     time.Time
	serverVersion string
}

// dataTables returns the tables whose rows expire with age (see Tables),
// in creation order.
func (s *schema) dataTables() []*tableDef {
	return []*tableDef{
		s.sessions.def, s.gestures.def, s.crashes.def, s.customs.def, s.diagnostics.def,
		s.rejects.def, s.sessionsDaily, s.erasures.def, s.crashGroups,
	}
}

// eventTables returns the tables that hold one row per event, in creation
// order; their names are EventTables().
func (s *schema) eventTables() []*tableDef {
	return []*tableDef{s.sessions.def, s.gestures.def, s.crashes.def, s.customs.def, s.diagnostics.def}
}

// all returns every table of s (not k-anonymity's: kanonSchema.tables).
func (s *schema) all() []*tableDef {
	return []*tableDef{
		s.migrations.def, s.sessions.def, s.gestures.def, s.crashes.def, s.customs.def, s.diagnostics.def,
		s.rejects.def, s.sessionsDaily, s.apps.def, s.revocations.def, s.erasures.def, s.salts.def,
		s.crashGroups, s.crashStatus.def, s.crashChanges.def, s.alerts, s.mappings,
	}
}

// storeTables returns the tables of the consent store, in creation order.
func (s *schema) storeTables() []*tableDef {
	return []*tableDef{s.apps.def, s.revocations.def, s.erasures.def}
}

// The comments on columns and tables are what analysts read in
// system.columns and system.tables: say what a value means, its unit, and
// how to aggregate it.

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

// columnConsentKey is the event tables' column that Client.Erase deletes
// by.
const columnConsentKey = "consent_key"

// columnFingerprint is the crashes table's crash group key.
const columnFingerprint = "fingerprint"

// eventDedupWindow is the number of recent inserts an event table
// remembers on modern servers, to store a repeated one once.
const eventDedupWindow = 10000

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

// newSchema returns the tables for o.
func newSchema(o SchemaOptions) *schema {
	o = o.withDefaults()
	s := &schema{opts: o}

	s.sessions = newRowTable(o.Database,
		eventTable(TableSessions, "App sessions: one row per session start and per session end.", "phase"),
		append(commonFields(func(r *pipeline.SessionRow) *pipeline.Common { return &r.Common }),
			lowCardCol("phase", "start or end.",
				func(r *pipeline.SessionRow) string { return r.Phase }),
			uint64Col("duration_ms", "On end: the session's length in milliseconds; 0 on start.",
				func(r *pipeline.SessionRow) uint64 { return r.DurationMs }),
			uint64Col("foreground_ms", "On end: milliseconds the app was in the foreground, at most duration_ms; 0 on start.",
				func(r *pipeline.SessionRow) uint64 { return r.ForegroundMs }),
		))

	s.gestures = newRowTable(o.Database,
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

	frames := func(r *pipeline.CrashRow) []pipeline.Frame { return r.Frames }
	s.crashes = newRowTable(o.Database,
		eventTable(TableCrashes, "Crashes and handled exceptions, with scrubbed messages and stacks.", "exception_type"),
		append(append(commonFields(func(r *pipeline.CrashRow) *pipeline.Common { return &r.Common }),
			lowCardCol("exception_type", "Exception or signal type, e.g. java.lang.IllegalStateException or SIGSEGV.",
				func(r *pipeline.CrashRow) string { return r.ExceptionType }),
			uint64Col(columnFingerprint, "Crash group key: the same for every occurrence of one bug, across app versions, addresses, line numbers and scrubbed values (package fingerprint); group by it. 0 for crashes stored before it existed.",
				func(r *pipeline.CrashRow) uint64 { return r.Fingerprint }),
			textCol("message", "Exception message, scrubbed: removed values are replaced by their kind, e.g. [email].",
				func(r *pipeline.CrashRow) string { return r.Message }),
			array("frame_module", lowCardArrayType(), "Stack frames' modules, innermost frame first, e.g. libsystem_kernel.dylib; frame_* arrays are parallel.",
				func(dst []string, r *pipeline.CrashRow) []string {
					for _, f := range frames(r) {
						dst = append(dst, f.Module)
					}
					return dst
				}),
			array("frame_function", textArrayType(), "Stack frames' functions or methods, e.g. NoteEditor.save.",
				func(dst []string, r *pipeline.CrashRow) []string {
					for _, f := range frames(r) {
						dst = append(dst, f.Function)
					}
					return dst
				}),
			array("frame_file", lowCardArrayType(), "Stack frames' source file names, e.g. NoteEditor.kt; user names in paths are scrubbed.",
				func(dst []string, r *pipeline.CrashRow) []string {
					for _, f := range frames(r) {
						dst = append(dst, f.File)
					}
					return dst
				}),
			array("frame_line", uint32ArrayType(), "Stack frames' line numbers; 0 when unknown.",
				func(dst []uint32, r *pipeline.CrashRow) []uint32 {
					for _, f := range frames(r) {
						dst = append(dst, f.Line)
					}
					return dst
				}),
			array("frame_in_app", uint8ArrayType(), "1 where the frame is the app's own code, 0 for system and library code.",
				func(dst []uint8, r *pipeline.CrashRow) []uint8 {
					for _, f := range frames(r) {
						dst = append(dst, b2u(f.InApp))
					}
					return dst
				}),
			lowCardCol("thread", "Name of the crashing thread, e.g. main.",
				func(r *pipeline.CrashRow) string { return r.Thread }),
			boolCol("handled", "1 for an exception the app caught and reported, 0 for a crash that ended the process.",
				func(r *pipeline.CrashRow) bool { return r.Handled }),
			lowCardCol("app_state", "What the app was doing: foreground, background, launching, terminating or unknown.",
				func(r *pipeline.CrashRow) string { return r.AppState }),
		),
			// Added to existing tables by breadcrumbsMigration.
			breadcrumbFields()...))

	s.customs = newRowTable(o.Database,
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
			array("bool_values", uint8ArrayType(), "Values of the boolean attributes: 1 true, 0 false.",
				func(dst []uint8, r *pipeline.CustomRow) []uint8 {
					for _, v := range r.BoolValues {
						dst = append(dst, b2u(v))
					}
					return dst
				}),
		))

	s.diagnostics = newRowTable(o.Database,
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

	s.rejects = newRowTable(o.Database,
		&tableDef{
			name:    TableRejects,
			comment: "Events the collector did not store, counted per minute, app and reason; no payload.",
			// Rows with the same key are summed in the background; queries
			// sum(events) all the same.
			engine:    "SummingMergeTree",
			day:       "minute",
			orderBy:   []string{"app_id", "minute", "reason"},
			retention: DefaultAggregateRetentionDays,
			shardKey:  "rand()",
		},
		[]field[rejectRow]{
			scalar("minute", minuteType(), "Minute (UTC) the events were rejected in; the table is partitioned by its day.",
				func(r *rejectRow) time.Time { return r.minute }),
			lowCardCol("app_id", "App the events were sent for, as the batch claimed it; empty when unknown, _other when the collector counted too many apps at once.",
				func(r *rejectRow) string { return r.app }),
			lowCardCol("reason", "Why the events were not stored, e.g. consent_revoked, too_old, batch_too_large, storage_unavailable.",
				func(r *rejectRow) string { return r.reason }),
			uint64Col("events", "Number of events: always aggregate with sum(events).",
				func(r *rejectRow) uint64 { return r.events }),
		})

	s.sessionsDaily = sessionsDailyTable(o)

	s.migrations = newRowTable(o.Database,
		&tableDef{
			name:      TableMigrations,
			comment:   "Schema migrations applied by the collector (package clickhouse).",
			engine:    "MergeTree",
			orderBy:   []string{"version"},
			placement: everywhere,
		},
		[]field[migrationRow]{
			uint32Col("version", "Migration version; applied in ascending order.",
				func(r *migrationRow) uint32 { return r.version }),
			textCol("name", "What the migration does.",
				func(r *migrationRow) string { return r.name }),
			scalar("applied_at", eventTimeType(), "When the migration finished (UTC).",
				func(r *migrationRow) time.Time { return r.appliedAt }),
			textCol("server_version", "Version of the server that applied it; it decides the dialect of the DDL.",
				func(r *migrationRow) string { return r.serverVersion }),
		})

	s.apps = newRowTable(o.Database,
		&tableDef{
			name:    TableApps,
			comment: "Apps registered with the collector, one row per version of each: read the latest with argMax(column, version) grouped by app_id. Holds a hash of each app's key, never the key.",
			// Merges keep the highest version of each app.
			engine:     "ReplacingMergeTree",
			engineArgs: "version",
			orderBy:    []string{"app_id"},
			// Every collector reads the apps; a registration survives
			// the loss of the server that took it.
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[consent.App]{
			stringCol("app_id", "App id as apps send it, e.g. com.example.notes.",
				func(a *consent.App) string { return a.ID }),
			stringCol("key_hash", "Hex SHA-256 of the app's key (consent.HashAppKey); the key itself is never stored.",
				func(a *consent.App) string { return a.KeyHash }),
			array("scopes", stringArrayType(), "Scopes the app may ask its users for: analytics, crash_reports, location.",
				func(dst []string, a *consent.App) []string {
					for _, sc := range a.Scopes {
						dst = append(dst, string(sc))
					}
					return dst
				}),
			stringCol("policy", "Erasure policy: anonymous (rows carry no link to a consent) or erasable (rows carry consent_key, so a revoked consent's rows can be erased).",
				func(a *consent.App) string { return string(a.Policy) }),
			timeCol("created_at", "When the app was registered (UTC).",
				func(a *consent.App) time.Time { return a.CreatedAt }),
			timeCol("updated_at", "When this version of the app was made (UTC).",
				func(a *consent.App) time.Time { return a.UpdatedAt }),
			uint64Col("version", "updated_at in Unix nanoseconds: merges keep, and reads take, the row with the highest version of each app.",
				func(a *consent.App) uint64 { return uint64(a.UpdatedAt.UnixNano()) }),
		})

	s.revocations = newRowTable(o.Database,
		&tableDef{
			name:    TableRevocations,
			comment: "Withdrawn consents, named by the SHA-256 of the consent id (never the id), kept until the consent's token expires. The first revocation of a consent counts: read argMin(column, revoked_at) grouped by consent_hash.",
			// Revoking twice leaves two rows until they merge; the version
			// makes the merge keep the first revocation.
			engine:     "ReplacingMergeTree",
			engineArgs: "version",
			// Revocations expire with their tokens: PruneRevocations drops
			// whole months that have passed.
			day:     "expires_at",
			monthly: true,
			expiry:  "expires_at",
			orderBy: []string{"consent_hash"},
			// Every collector reads every revocation from its own
			// server (after catching up: Client.Revocations); one
			// acknowledged by Revoke is on two servers.
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[consent.Revocation]{
			stringCol("consent_hash", "Hex SHA-256 of the consent id (consent.HashConsentID); the id itself is never stored.",
				func(r *consent.Revocation) string { return r.ConsentHash }),
			lowCardCol("app_id", "App the consent was given to.",
				func(r *consent.Revocation) string { return r.AppID }),
			timeCol("revoked_at", "When the consent was withdrawn (UTC).",
				func(r *consent.Revocation) time.Time { return r.RevokedAt }),
			timeCol("expires_at", "When the consent's token expires (UTC); the revocation is forgotten after it, as the token is refused anyway. The table is partitioned by its month.",
				func(r *consent.Revocation) time.Time { return r.ExpiresAt }),
			boolCol("erase", "1 if erasure of the consent's rows was asked, else 0.",
				func(r *consent.Revocation) bool { return r.Erase }),
			uint32Col("version", "4294967295 minus revoked_at in Unix seconds: merges keep the row with the highest version, the first revocation.",
				func(r *consent.Revocation) uint32 { return revocationVersion(r.RevokedAt) }),
		})

	s.erasures = newRowTable(o.Database,
		&tableDef{
			name:      TableErasures,
			comment:   "Audit log of erasures (Client.Erase): one row per event table and erasure, with the number of rows deleted; no payload.",
			engine:    "MergeTree",
			day:       "erased_at",
			monthly:   true,
			orderBy:   []string{"app_id", "erased_at"},
			retention: DefaultAuditRetentionDays,
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[erasureRow]{
			timeCol("erased_at", "When the deletion was complete (UTC); the table is partitioned by its month.",
				func(r *erasureRow) time.Time { return r.erasedAt }),
			lowCardCol("app_id", "App whose rows were erased.",
				func(r *erasureRow) string { return r.app }),
			stringCol("consent_key", "Keyed pseudonym of the consent whose rows were erased, as the event tables stored it in consent_key.",
				func(r *erasureRow) string { return r.consentKey }),
			lowCardCol("table_name", "Event table the rows were deleted from.",
				func(r *erasureRow) string { return r.table }),
			uint64Col("rows", "Rows deleted from table_name; 0 when it held none.",
				func(r *erasureRow) uint64 { return r.rows }),
		})
	s.salts = sessionSaltsTable(o.PrivateDatabase)
	s.crashGroups = crashGroupsDailyTable(o)
	s.crashStatus = crashGroupStatusTable(o.Database)
	s.crashChanges = crashGroupChangesTable(o.Database)
	s.alerts = alertDeliveriesTable(o.PrivateDatabase)
	s.mappings = mappingsTable(o.PrivateDatabase)
	return s
}

// revocationVersion is the version column of a revocation: later
// revocations get lower versions. revokedAt must be a DateTime (see
// checkDateTime).
func revocationVersion(revokedAt time.Time) uint32 {
	return uint32(math.MaxUint32 - revokedAt.Unix())
}
