package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Migration is one versioned step of the schema.
type Migration struct {
	// Version orders the migrations; it is recorded once the migration's
	// statements all succeeded.
	Version int
	// Name says what the migration does.
	Name string
	// Statements returns the DDL for a server of dialect d. Every statement
	// must be idempotent (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT
	// EXISTS, ...): a migration interrupted before its record was written
	// runs again, and two collectors may run it at the same time. 18.16
	// has no ADD COLUMN IF NOT EXISTS: there, Migrate takes the error
	// that the column already exists as success.
	//
	// The CREATE statements make the tables as the current schema has
	// them, so a new database gets every column at once, and later
	// migrations that add a column to an existing table change nothing
	// there.
	Statements func(d Dialect, o SchemaOptions) []string
	// Data, if set, runs after Statements to move rows between tables. It
	// must be idempotent too.
	Data func(ctx context.Context, c *Client) error
}

// Migrations returns every migration in version order.
func Migrations() []Migration {
	return []Migration{
		{
			Version: 1,
			Name:    "event tables and rejects",
			Statements: createTables(func(s *schema) []*tableDef {
				return []*tableDef{s.sessions.def, s.gestures.def, s.crashes.def, s.customs.def, s.diagnostics.def, s.rejects.def}
			}),
		},
		{
			Version: 2,
			Name:    "sessions_daily aggregate and its materialized view",
			Statements: func(d Dialect, o SchemaOptions) []string {
				s := newSchema(o)
				return append(s.sessionsDaily.create(d, s.opts), s.aggregates()[0].createView(s.opts))
			},
		},
		{
			Version:    3,
			Name:       "consent_key column on event tables",
			Statements: addColumns((*schema).eventTables, columnConsentKey),
		},
		{
			Version:    4,
			Name:       "consent store: apps, revocations and erasures",
			Statements: createTables((*schema).storeTables),
		},
		{
			Version: 5,
			Name:    "session_salts: daily salts shared by the replicas",
			// Created in the private database since migration 7.
			Statements: createPrivateTables(saltTables),
		},
		{
			Version:    6,
			Name:       "fingerprint column on crashes: the crash group key",
			Statements: addColumns(func(s *schema) []*tableDef { return []*tableDef{s.crashes.def} }, columnFingerprint),
		},
		{
			Version:    7,
			Name:       "private database: session_salts moved out of analysts' reach",
			Statements: createPrivateTables(saltTables),
			Data:       func(ctx context.Context, c *Client) error { return c.moveSalts(ctx) },
		},
		{
			Version: 8,
			Name:    "crash groups: crash_groups_daily, its materialized view, and crash_group_status",
			Statements: func(d Dialect, o SchemaOptions) []string {
				s := newSchema(o)
				stmts := s.crashGroups.create(d, s.opts)
				stmts = append(stmts, s.aggregates()[1].createView(s.opts))
				return append(stmts, s.crashStatus.def.create(d, s.opts)...)
			},
		},
		{
			Version: 9,
			Name:    "event tables remember recent inserts, so a repeated one (same deduplication token) is stored once",
			Statements: func(d Dialect, o SchemaOptions) []string {
				s := newSchema(o)
				if !d.Modern || s.opts.Cluster != "" {
					return nil // 18.16 has no such setting; replicated tables deduplicate already.
				}
				var stmts []string
				for _, t := range s.eventTables() {
					stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s.%s MODIFY SETTING non_replicated_deduplication_window = %d", t.database, t.name, t.dedupWindow))
				}
				return stmts
			},
		},
		{
			Version: 10,
			Name:    "aggregates count each event once: sessions_daily and crash_groups_daily of distinct event ids, refilled from the event tables",
			Statements: func(Dialect, SchemaOptions) []string {
				return nil // conditional: see replaceAggregates
			},
			Data: func(ctx context.Context, c *Client) error { return c.replaceAggregates(ctx) },
		},
		kanonMigration(11),
		breadcrumbsMigration(12),
		crashGroupChangesMigration(13),
		alertsMigration(14),
		mappingsMigration(15),
		secretFingerprintsMigration(16),
	}
}

// saltTables picks the session salts table from s.
func saltTables(s *schema) []*tableDef { return []*tableDef{s.salts.def} }

// createTables returns the Statements of a migration that creates the
// tables pick chooses from the schema, in order.
func createTables(pick func(*schema) []*tableDef) func(Dialect, SchemaOptions) []string {
	return func(d Dialect, o SchemaOptions) []string {
		s := newSchema(o)
		return s.creates(d, pick(s)...)
	}
}

// createPrivateTables is createTables for tables of the private
// database: its statements create that database first.
func createPrivateTables(pick func(*schema) []*tableDef) func(Dialect, SchemaOptions) []string {
	return func(d Dialect, o SchemaOptions) []string {
		s := newSchema(o)
		return s.privateCreates(d, pick(s)...)
	}
}

// addColumns returns the Statements of a migration that adds columns, in
// order, to each table pick chooses from the schema (see
// tableDef.addColumn).
func addColumns(pick func(*schema) []*tableDef, columns ...string) func(Dialect, SchemaOptions) []string {
	return func(d Dialect, o SchemaOptions) []string {
		s := newSchema(o)
		var stmts []string
		for _, t := range pick(s) {
			for _, c := range columns {
				stmts = append(stmts, t.addColumn(d, s.opts, c)...)
			}
		}
		return stmts
	}
}

// creates returns the statements that create tables, in order, for a
// server of dialect d.
func (s *schema) creates(d Dialect, tables ...*tableDef) []string {
	var stmts []string
	for _, t := range tables {
		stmts = append(stmts, t.create(d, s.opts)...)
	}
	return stmts
}

// privateCreates returns the statement that creates the private database,
// then creates(d, tables...): for migrations whose tables live there.
func (s *schema) privateCreates(d Dialect, tables ...*tableDef) []string {
	return append([]string{s.createPrivateDatabase()}, s.creates(d, tables...)...)
}

// Server error codes that a concurrent, idempotent CREATE may still report
// when another process won the race, and that an ADD COLUMN without IF NOT
// EXISTS reports for a column that exists: ILLEGAL_COLUMN on 18.16,
// DUPLICATE_COLUMN on newer servers.
const (
	codeDuplicateColumn       = 15
	codeIllegalColumn         = 44
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

// execDDL runs one idempotent DDL statement.
func (c *Client) execDDL(ctx context.Context, stmt string) error { return execDDL(ctx, c.conn, stmt) }

// execDDL runs one idempotent DDL statement on conn.
func execDDL(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == codeTableAlreadyExists || ex.Code == codeDatabaseAlreadyExists ||
		(ex.Code == codeIllegalColumn || ex.Code == codeDuplicateColumn) && columnExists(ex.Message)) {
		return nil
	}
	return err
}

// columnExists reports whether a server's error message says that a column
// to add exists already ("Cannot add column consent_key: column with this
// name already exists"). ILLEGAL_COLUMN alone also means other errors.
func columnExists(msg string) bool {
	return strings.Contains(msg, "column with this name already exists")
}

// Migrate applies the migrations not yet recorded in schema_migrations, in
// version order, and returns the versions it applied. It is safe to run
// again and from several processes at once: every statement is idempotent,
// and a version recorded twice is the same as once.
//
// On servers with TTL support it then aligns each table's TTL with the
// configured retention, so changing RetentionDays, or upgrading a server
// that started on the legacy schema, takes effect.
func (c *Client) Migrate(ctx context.Context) ([]int, error) {
	return c.migrate(ctx, Migrations())
}

// migrate is Migrate with the migrations ms; tests apply the first few to
// make a database as older versions left it.
func (c *Client) migrate(ctx context.Context, ms []Migration) ([]int, error) {
	o := c.schema.opts
	t := c.schema.migrations.def
	exists := false
	if c.hosts != nil {
		// As createDatabase: no ON CLUSTER statement while a server may
		// be away, unless there is something to do.
		var err error
		if exists, err = c.onEveryServer(ctx, fmt.Sprintf("SELECT count() FROM system.tables WHERE database = %s AND name = %s",
			quote(t.database), quote(t.storage(o)))); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	if !exists {
		for _, stmt := range t.create(c.dialect, o) {
			if err := c.execDDL(ctx, stmt); err != nil {
				return nil, fmt.Errorf("migrate: create %s: %w", TableMigrations, err)
			}
		}
	}
	applied, err := c.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range ms {
		if slices.Contains(applied, m.Version) {
			continue
		}
		if err := c.runStatements(ctx, m.Statements(c.dialect, o)); err != nil {
			return done, fmt.Errorf("migrate: migration %d (%s), %w", m.Version, m.Name, err)
		}
		if m.Data != nil {
			if err := m.Data(ctx, c); err != nil {
				return done, fmt.Errorf("migrate: migration %d (%s): %w", m.Version, m.Name, err)
			}
		}
		row := migrationRow{version: uint32(m.Version), name: m.Name, appliedAt: time.Now().UTC(), serverVersion: c.dialect.Version}
		if err := insertEverywhere(ctx, c, c.schema.migrations, []migrationRow{row}); err != nil {
			return done, fmt.Errorf("migrate: record migration %d: %w", m.Version, err)
		}
		c.logger.Info("applied schema migration", zap.Int(logKeyVersion, m.Version), zap.String(logKeyName, m.Name))
		done = append(done, m.Version)
	}
	if c.hosts != nil && len(ms) == len(Migrations()) {
		if err := c.repairSchema(ctx, ms); err != nil {
			return done, err
		}
	}
	if c.dialect.Modern {
		if err := c.syncTTL(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

// repairSchema gives every server of the cluster that answers the tables
// and views of the schema, if one lacks some: a server added to the
// cluster (a new shard, a replaced replica), or one that missed an ON
// CLUSTER statement for good. It runs the statements of every migration
// in ms again, ON CLUSTER; they are idempotent. Rows already stored stay
// on their shards; new rows spread over every shard.
func (c *Client) repairSchema(ctx context.Context, ms []Migration) error {
	o := c.schema.opts
	var names []string
	for _, t := range c.tables() {
		names = append(names, quote(t.database+"."+t.storage(o)))
		if t.distributed(o) {
			names = append(names, quote(t.database+"."+t.name))
		}
	}
	for _, a := range c.schema.aggregates() {
		names = append(names, quote(o.Database+"."+a.view))
	}
	q := fmt.Sprintf("SELECT toUInt64(count() = %d) FROM system.tables WHERE concat(database, '.', name) IN (%s)", len(names), strings.Join(names, ", "))
	complete, err := c.onEveryServer(ctx, q)
	if err != nil || complete {
		return wrapErr("migrate: check every server's tables", err)
	}
	c.logger.Warn("a server of the cluster lacks tables of the schema: creating them")
	for _, m := range ms {
		if err := c.runStatements(ctx, m.Statements(c.dialect, o)); err != nil {
			return fmt.Errorf("migrate: repair: migration %d (%s), %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// Column additions on a cluster, as tableDef.addColumn writes them: an
// ALTER of the storage table, then, for a table behind a Distributed
// table on 18.16, which cannot alter one ON CLUSTER, the Distributed
// table dropped and created again.
var (
	addColumnStmt = regexp.MustCompile(`^ALTER TABLE (\w+)\.(\w+) ON CLUSTER \S+ ADD COLUMN (?:IF NOT EXISTS )?(\w+) `)
	dropTableStmt = regexp.MustCompile(`^DROP TABLE IF EXISTS (\w+)\.(\w+) ON CLUSTER `)
)

// runStatements runs a migration's statements in order. On a cluster it
// leaves out a column addition whose column every server that answers
// has already (a database that CREATE made with the current columns, a
// migration run again), and the re-creation of the Distributed table
// after it when that table has the column too: on 18.16 an ALTER of a
// replicated table ON CLUSTER that fails on its leader replica (the
// column exists) can hold up the servers' DDL queue until the client
// gives up, and dropping the Distributed table of a live database
// refuses inserts until it is back.
func (c *Client) runStatements(ctx context.Context, stmts []string) error {
	skipped := "" // database.table.column of the addition left out
	for i := 0; i < len(stmts); i++ {
		stmt := stmts[i]
		if c.hosts != nil {
			if m := addColumnStmt.FindStringSubmatch(stmt); m != nil {
				has, err := c.columnEverywhere(ctx, m[1], m[2], m[3])
				if err != nil {
					return fmt.Errorf("statement %d: %w", i+1, err)
				}
				skipped = ""
				if has {
					skipped = m[1] + "." + strings.TrimSuffix(m[2], "_local") + "." + m[3]
					continue
				}
			} else if m := dropTableStmt.FindStringSubmatch(stmt); m != nil && skipped != "" && i+1 < len(stmts) &&
				strings.HasPrefix(skipped, m[1]+"."+m[2]+".") && strings.Contains(stmts[i+1], "ENGINE = Distributed(") {
				has, err := c.columnEverywhere(ctx, m[1], m[2], strings.TrimPrefix(skipped, m[1]+"."+m[2]+"."))
				if err != nil {
					return fmt.Errorf("statement %d: %w", i+1, err)
				}
				if has {
					i++ // and the CREATE after it
					continue
				}
			}
		}
		if err := c.execDDL(ctx, stmt); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	return nil
}

// columnEverywhere reports whether every server of the cluster that
// answers has column in database.table.
func (c *Client) columnEverywhere(ctx context.Context, database, table, column string) (bool, error) {
	has, err := c.onEveryServer(ctx, fmt.Sprintf("SELECT count() FROM system.columns WHERE database = %s AND table = %s AND name = %s",
		quote(database), quote(table), quote(column)))
	if err != nil {
		return false, fmt.Errorf("look for column %s of %s.%s: %w", column, database, table, err)
	}
	return has, nil
}

// appliedMigrations returns the versions recorded in schema_migrations.
func (c *Client) appliedMigrations(ctx context.Context) ([]int, error) {
	if err := c.syncReplica(ctx, c.schema.migrations.def); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var versions []struct {
		Version uint32 `ch:"version"`
	}
	q := fmt.Sprintf("SELECT DISTINCT version FROM %s.%s ORDER BY version", c.schema.opts.Database, TableMigrations)
	if err := c.conn.Select(ctx, &versions, q); err != nil {
		return nil, fmt.Errorf("migrate: read applied migrations: %w", err)
	}
	out := make([]int, len(versions))
	for i, v := range versions {
		out[i] = int(v.Version)
	}
	return out, nil
}

// syncTTL aligns the tables' TTL with the configured retention.
func (c *Client) syncTTL(ctx context.Context) error {
	var tables []struct {
		Database string `ch:"database"`
		Name     string `ch:"name"`
		Query    string `ch:"create_table_query"`
	}
	o := c.schema.opts
	q := fmt.Sprintf("SELECT database, name, create_table_query FROM system.tables WHERE database IN (%s, %s)",
		quote(o.Database), quote(o.PrivateDatabase))
	if err := c.conn.Select(ctx, &tables, q); err != nil {
		return fmt.Errorf("migrate: read table definitions: %w", err)
	}
	current := make(map[string]string, len(tables))
	for _, t := range tables {
		current[t.Database+"."+t.Name] = t.Query
	}
	// Rewriting old parts under a new TTL is heavy; EnforceRetention drops
	// whatever the new TTL would have removed.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"materialize_ttl_after_modify": 0}))
	for _, stmt := range c.schema.ttlChanges(current) {
		if err := c.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("migrate: update retention: %w", err)
		}
		c.logger.Info("updated table TTL", zap.String(logKeyStatement, stmt))
	}
	return nil
}

// ttlRE finds the day-based TTL in a table's CREATE statement.
func ttlRE() *regexp.Regexp {
	return regexp.MustCompile(`\bTTL\s+(\w+)\s*\+\s*toIntervalDay\((\d+)\)`)
}

// ttlChanges returns the ALTER statements that give the tables whose CREATE
// statements are in current (keyed by database.table) the configured TTL. It
// expects a modern server.
func (s *schema) ttlChanges(current map[string]string) []string {
	o := s.opts
	re := ttlRE()
	var stmts []string
	for _, t := range append(s.dataTables(), s.revocations.def, s.salts.def) {
		ttl := t.ttl(o)
		create, ok := current[t.database+"."+t.storage(o)]
		if ttl == "" || !ok {
			continue
		}
		if t.expiry != "" {
			// A fixed expiry only needs adding to a table created on a
			// server without TTL.
			if !strings.Contains(create, "TTL "+ttl) {
				stmts = append(stmts, t.alter(o, "MODIFY SETTING ttl_only_drop_parts = 1"), t.alter(o, "MODIFY TTL "+ttl))
			}
			continue
		}
		m := re.FindStringSubmatch(create)
		if m == nil {
			// Created on a server without TTL, since upgraded.
			stmts = append(stmts, t.alter(o, "MODIFY SETTING ttl_only_drop_parts = 1"))
		} else if n, _ := strconv.Atoi(m[2]); m[1] == t.day && n == o.retention(t) {
			continue
		}
		stmts = append(stmts, t.alter(o, "MODIFY TTL "+ttl))
	}
	return stmts
}

// EnforceRetention drops the partitions older than each table's retention
// as of now and returns them as "table/YYYYMMDD" (or "table/YYYYMM" for
// the erasures table, which is partitioned by month). The aggregates that
// migration 10 kept under their legacy names expire with their
// successors. A table with a
// retention of N days keeps the partitions of the N days up to and
// including now's UTC day, as its TTL does on servers that have one; a
// month partition goes once its last day is older.
//
// It works on every server version. On a cluster it lists the partitions
// of every server and drops each on the leader replica of every shard (of
// the one replica set of a table placed everywhere), from where the drop
// replicates; a server that is away gets it when it is back.
func (c *Client) EnforceRetention(ctx context.Context, now time.Time) ([]string, error) {
	o := c.schema.opts
	var tables []*tableDef
	for _, t := range c.schema.dataTables() {
		if t.day != "" && o.retention(t) > 0 {
			tables = append(tables, t)
		}
	}
	// The aggregates that migration 10 renamed expire as the tables that
	// replaced them.
	for _, a := range c.schema.aggregates() {
		if t := a.def; o.retention(t) > 0 {
			legacy := *t
			legacy.name, legacy.retention = legacyName(t.name), o.retention(t)
			legacy.storageName = legacyName(t.storage(o))
			tables = append(tables, &legacy)
		}
	}
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	var dropped []string
	for _, t := range tables {
		ids, err := c.partitions(ctx, t)
		if err != nil {
			return dropped, fmt.Errorf("enforce retention: %w", err)
		}
		for _, id := range ids {
			last, err := partitionLastDay(t, id)
			if err != nil {
				c.logger.Warn("partition id is not a day or month; skipped", zap.String(logKeyTable, t.name), zap.String(logKeyPartition, id))
				continue
			}
			if last.After(today.AddDate(0, 0, -o.retention(t))) {
				continue
			}
			if err := c.dropPartition(ctx, t, id); err != nil {
				return dropped, classify(fmt.Sprintf("enforce retention: drop %s/%s", t.name, id), err)
			}
			c.logger.Info("dropped expired partition", zap.String(logKeyTable, t.name), zap.String(logKeyPartition, id))
			dropped = append(dropped, t.name+"/"+id)
		}
	}
	return dropped, nil
}

// partitionLastDay returns the last UTC day of t's partition with id
// (YYYYMMDD, or YYYYMM if t is monthly).
func partitionLastDay(t *tableDef, id string) (time.Time, error) {
	if !t.monthly {
		return time.Parse("20060102", id)
	}
	month, err := time.Parse("200601", id)
	if err != nil {
		return time.Time{}, err
	}
	return month.AddDate(0, 1, -1), nil
}
