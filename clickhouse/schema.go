package clickhouse

import (
	"fmt"
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
	fingerprints  *rowTable[fingerprintRow]
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
		s.crashGroups, s.crashStatus.def, s.crashChanges.def, s.alerts, s.mappings, s.fingerprints.def,
	}
}

// storeTables returns the tables of the consent store, in creation order.
func (s *schema) storeTables() []*tableDef {
	return []*tableDef{s.apps.def, s.revocations.def, s.erasures.def}
}

// The comments on columns and tables are what analysts read in
// system.columns and system.tables: say what a value means, its unit, and
// how to aggregate it.

// columnConsentKey is the event tables' column that Client.Erase deletes
// by.
const columnConsentKey = "consent_key"

// columnFingerprint is the crashes table's crash group key.
const columnFingerprint = "fingerprint"

// eventDedupWindow is the number of recent inserts an event table
// remembers on modern servers, to store a repeated one once.
const eventDedupWindow = 10000

// newSchema returns the tables for o.
func newSchema(o SchemaOptions) *schema {
	o = o.withDefaults()
	s := &schema{opts: o}
	s.sessions = sessionsTable(o.Database)
	s.gestures = gesturesTable(o.Database)
	s.crashes = crashesTable(o.Database)
	s.customs = customsTable(o.Database)
	s.diagnostics = diagnosticsTable(o.Database)
	s.rejects = rejectsTable(o.Database)
	s.sessionsDaily = sessionsDailyTable(o)
	s.migrations = migrationsTable(o.Database)
	s.apps = appsTable(o.Database)
	s.revocations = revocationsTable(o.Database)
	s.erasures = erasuresTable(o.Database)
	s.salts = sessionSaltsTable(o.PrivateDatabase)
	s.crashGroups = crashGroupsDailyTable(o)
	s.crashStatus = crashGroupStatusTable(o.Database)
	s.crashChanges = crashGroupChangesTable(o.Database)
	s.alerts = alertDeliveriesTable(o.PrivateDatabase)
	s.mappings = mappingsTable(o.PrivateDatabase)
	s.fingerprints = secretFingerprintsTable(o.PrivateDatabase)
	return s
}

// rejectsTable returns the definition of the rejects table in database.
func rejectsTable(database string) *rowTable[rejectRow] {
	return newRowTable(database,
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
}

// migrationsTable returns the definition of the migrations table in database.
func migrationsTable(database string) *rowTable[migrationRow] {
	return newRowTable(database,
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
}
