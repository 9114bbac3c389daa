package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// The aggregates, sessions_daily and crash_groups_daily, are filled by
// materialized views, which see every insert into the event tables: also
// an event stored again, when an SDK resends a batch whose answer it lost
// or the spool repeats an insert after a crash (ClickHouse 26.x runs the
// view even for an insert its deduplication token drops; 18.16 takes no
// token). The event tables merge such repeats away by event id; an
// aggregate cannot, so every state in it is idempotent:
//
//   - counts of events are exact distinct counts of a 64-bit hash of the
//     event id (uniqExact), so a repeated event adds nothing, in the same
//     part, in another part, or on another shard (the union of two states
//     is exact);
//   - distinct sessions are uniq states of the session key, min, max and
//     any are idempotent already;
//   - sums are left out: an exact sum would need a state per event (the
//     event's hash and value) for columns nothing in Consentry reads;
//     sessions' lengths are read from sessions FINAL.
//
// What this costs, measured over a million crashes on 18.16 (see
// docs/benchmarks.md): 8 bytes a crash in crash_groups_daily (13 MiB
// against 9 MiB with plain sums), 8 bytes a session event in
// sessions_daily, and merging the hashes when reading.

// eventIDHash is the expression the aggregates count distinct events by:
// a 64-bit hash of the event id's canonical text, the same on every
// server version (18.16 hashes no UUID directly). Two distinct events
// collide with probability 2⁻⁶⁴ per pair: among the 10 million crashes of
// one group, an expected 3 in a million reads would count one crash
// fewer.
const eventIDHash = "cityHash64(toString(event_id))"

// aggregate is an aggregate table and the materialized view that fills it
// from an event table.
type aggregate struct {
	// def is the table; its columns are keys, then the names of states.
	def *tableDef
	// view is the materialized view's name.
	view string
	// source is the event table the view reads.
	source *tableDef
	// keys are the source's columns the view groups by: the table's key
	// columns.
	keys []string
	// states are the view's aggregate expressions, each "expr AS column".
	states []string
	// marker is a column, and markerType the start of its type, that the
	// table has since it counts each event once (migration 10); older
	// tables lack one or the other.
	marker, markerType string
}

// legacyName is the name the migration to idempotent aggregates gives an
// aggregate table that counted repeated events again, so its history
// beyond the event tables' retention is kept (see replaceAggregates).
func legacyName(table string) string { return table + "_legacy" }

// sessionsDailyTable returns the definition of TableSessionsDaily.
func sessionsDailyTable(o SchemaOptions) *tableDef {
	return &tableDef{
		name:     TableSessionsDaily,
		database: o.Database,
		comment:  "Sessions per day, app version, OS and region, filled from sessions by sessions_daily_mv; each event counts once, however often it was stored. Read the aggregate columns with the -Merge function their comments name, grouping by the key columns.",
		engine:   "AggregatingMergeTree",
		columns: []column{
			{name: "event_date", typ: dateType(), comment: "UTC day of the session events."},
			{name: "app_id", typ: lowCardType(), comment: "App id as registered with the collector."},
			{name: "app_version", typ: lowCardType(), comment: "App's user-visible version."},
			{name: "os_name", typ: lowCardType(), comment: "Operating system family."},
			{name: "os_version", typ: lowCardType(), comment: "Operating system version."},
			{name: "country", typ: lowCardType(), comment: "ISO 3166-1 alpha-2 country code; empty when unknown."},
			{name: "region", typ: lowCardType(), comment: "ISO 3166-2 region code; empty when unknown."},
			{name: "starts", typ: aggregateType("uniqExact", "UInt64"), comment: "Session starts, each event once (exact distinct count of a hash of event_id): uniqExactMerge(starts)."},
			{name: "ends", typ: aggregateType("uniqExact", "UInt64"), comment: "Session ends, each event once: uniqExactMerge(ends)."},
			{name: "sessions", typ: aggregateType("uniq", "UInt64"), comment: "Distinct sessions (by session_key, approximate, ignoring events without a session): uniqMerge(sessions)."},
		},
		day:       "event_date",
		orderBy:   []string{"app_id", "event_date", "app_version", "os_name", "os_version", "country", "region"},
		retention: DefaultAggregateRetentionDays,
	}
}

// aggregates returns the aggregates of s, in creation order.
func (s *schema) aggregates() []*aggregate {
	return []*aggregate{
		{
			def: s.sessionsDaily, view: ViewSessionsDaily, source: s.sessions.def,
			keys: []string{"event_date", "app_id", "app_version", "os_name", "os_version", "country", "region"},
			states: []string{
				"uniqExactStateIf(" + eventIDHash + ", phase = 'start') AS starts",
				"uniqExactStateIf(" + eventIDHash + ", phase = 'end') AS ends",
				"uniqStateIf(session_key, session_key != 0) AS sessions",
			},
			marker: "starts", markerType: "AggregateFunction(uniqExact,",
		},
		{
			def: s.crashGroups, view: ViewCrashGroupsDaily, source: s.crashes.def,
			keys: append(append([]string{"app_id", "event_date", columnFingerprint, "exception_type"}, crashGroupDims...), "handled"),
			states: []string{
				"uniqExactState(" + eventIDHash + ") AS crashes",
				"uniqStateIf(session_key, session_key != 0) AS sessions",
				"minState(event_time) AS first_seen",
				"maxState(event_time) AS last_seen",
				"anyState(message) AS message",
				"anyState(if(has(frame_in_app, 1), frame_function[indexOf(frame_in_app, 1)], frame_function[1])) AS culprit",
			},
			marker: "handled", markerType: "UInt8",
		},
	}
}

// selectSQL returns the SELECT that aggregates rows of the table from
// (a name in a's database) into a's columns, with the condition where
// (without WHERE) if not "". The conditional states (uniqExactStateIf,
// uniqStateIf) yield the plain states, so the columns' types are
// AggregateFunction(uniqExact, UInt64) and AggregateFunction(uniq, UInt64)
// on every version.
func (a *aggregate) selectSQL(o SchemaOptions, from, where string) string {
	keys := strings.Join(a.keys, ", ")
	if where != "" {
		where = "\nWHERE " + where
	}
	return fmt.Sprintf("SELECT\n    %s,\n    %s\nFROM %s.%s%s\nGROUP BY %s", keys, strings.Join(a.states, ",\n    "), o.Database, from, where, keys)
}

// createView returns the statement creating a's materialized view.
func (a *aggregate) createView(o SchemaOptions) string {
	return fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s\nTO %s.%s\nAS %s",
		o.Database, a.view, onCluster(o), o.Database, a.def.storage(o), a.selectSQL(o, a.source.storage(o), ""))
}

// backfill returns the statement that aggregates the rows of day in a's
// source table into a's table. Its states count each event once, so
// running it again, or while the view adds the same rows, changes
// nothing. It inserts into the storage table of the connected server.
func (a *aggregate) backfill(o SchemaOptions, day time.Time) string {
	cols := append(a.keys[:len(a.keys):len(a.keys)], stateNames(a.states)...)
	return fmt.Sprintf("INSERT INTO %s.%s (%s)\n%s", o.Database, a.def.storage(o), strings.Join(cols, ", "),
		a.selectSQL(o, a.source.storage(o), "event_date = toDate("+quote(day.UTC().Format(time.DateOnly))+")"))
}

// stateNames returns the column names of states ("expr AS name").
func stateNames(states []string) []string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = s[strings.LastIndex(s, " AS ")+len(" AS "):]
	}
	return names
}

// backfillSettings keep a backfill's aggregation in one level, so each
// day's insert makes one part instead of one per bucket of a two-level
// aggregation (256 on 18.16, each then merged).
var backfillSettings = clickhouse.Settings{"group_by_two_level_threshold": 0, "group_by_two_level_threshold_bytes": 0}

// sqlRunner runs SQL text: a Client's connection, or chDB in tests.
type sqlRunner interface {
	// exec runs a statement.
	exec(ctx context.Context, sql string) error
	// column runs a query and returns its first column as text.
	column(ctx context.Context, sql string) ([]string, error)
}

// connRunner is a sqlRunner on a Client's connection, or on conn if set
// (one server of a cluster).
type connRunner struct {
	c    *Client
	conn driver.Conn
}

func (r connRunner) on() driver.Conn {
	if r.conn != nil {
		return r.conn
	}
	return r.c.conn
}

func (r connRunner) exec(ctx context.Context, sql string) error { return execDDL(ctx, r.on(), sql) }

func (r connRunner) column(ctx context.Context, sql string) ([]string, error) {
	rows, err := r.on().Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// replaceAggregates is migration 10: it makes each aggregate count every
// event once, then fills it from the event tables.
//
// A table made before (its marker column missing or of another type) has
// its view dropped first, so inserts stop feeding it, then is renamed to
// legacyName: it keeps the days the event tables no longer hold, counted
// as before, until retention drops them. The new table and view are
// created, and every day the event table holds is aggregated into the
// table, one day per insert. The states are idempotent, so events the
// view adds while this runs, or a second run after an interruption, or
// another collector migrating at the same time, count once all the same.
//
// On a cluster the statements run ON CLUSTER through r, and fillers, one
// server of each shard, aggregate each shard's rows into its own
// aggregate table (from where they replicate). Without a cluster fillers
// is r alone.
func replaceAggregates(ctx context.Context, r sqlRunner, fillers []sqlRunner, d Dialect, s *schema, log *zap.Logger) error {
	o := s.opts
	for _, a := range s.aggregates() {
		// 18.16's DDL is not atomic: a statement racing another
		// collector's (a DROP ... IF EXISTS of a view just dropped, a
		// CREATE of a view whose table is being renamed) can fail. Every
		// step is idempotent, so the steps run again from the start.
		for attempt := 1; ; attempt++ {
			err := a.replace(ctx, r, d, o, log)
			if err == nil {
				break
			}
			if attempt == replaceAttempts || ctx.Err() != nil {
				return err
			}
			log.Warn("aggregate replacement failed; trying again", zap.String(logKeyTable, a.def.name), zap.Int(logKeyAttempt, attempt), zap.Error(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		start, filled := time.Now(), 0
		for _, f := range fillers {
			days, err := f.column(ctx, fmt.Sprintf("SELECT DISTINCT toString(event_date) FROM %s.%s ORDER BY 1", o.Database, a.source.storage(o)))
			if err != nil {
				return fmt.Errorf("replace %s: days of %s: %w", a.def.name, a.source.name, err)
			}
			for _, day := range days {
				t, err := time.Parse(time.DateOnly, day)
				if err != nil {
					return fmt.Errorf("replace %s: day %q: %w", a.def.name, day, err)
				}
				if err := f.exec(ctx, a.backfill(o, t)); err != nil {
					return fmt.Errorf("replace %s: fill %s: %w", a.def.name, day, err)
				}
			}
			filled += len(days)
		}
		log.Info("aggregate filled from its event table", zap.String(logKeyTable, a.def.name), zap.Int(logKeyDays, filled), zap.Duration(logKeyTook, time.Since(start)))
	}
	return nil
}

// replaceAttempts is how often replaceAggregates tries to replace an
// aggregate's table and view.
const replaceAttempts = 5

// replace retires a's table if it counts repeated events, and creates the
// table and view that count each event once if missing.
func (a *aggregate) replace(ctx context.Context, r sqlRunner, d Dialect, o SchemaOptions, log *zap.Logger) error {
	current, exists, err := a.isCurrent(ctx, r, o)
	if err != nil {
		return err
	}
	if exists && !current {
		if err := a.retire(ctx, r, o); err != nil {
			return err
		}
		log.Info("aggregate counted repeated events: kept under a new name", zap.String(logKeyTable, a.def.name), zap.String(logKeyName, legacyName(a.def.name)))
	}
	for _, stmt := range append(a.def.create(d, o), a.createView(o)) {
		if err := r.exec(ctx, stmt); err != nil {
			return fmt.Errorf("replace %s: %w", a.def.name, err)
		}
	}
	return nil
}

// isCurrent reports whether a's table exists, and if so whether it counts
// each event once.
func (a *aggregate) isCurrent(ctx context.Context, r sqlRunner, o SchemaOptions) (current, exists bool, err error) {
	tables, err := r.column(ctx, fmt.Sprintf("SELECT name FROM system.tables WHERE database = %s AND name = %s",
		quote(o.Database), quote(a.def.storage(o))))
	if err != nil || len(tables) == 0 {
		return false, false, wrapErr("replace "+a.def.name+": find it", err)
	}
	types, err := r.column(ctx, fmt.Sprintf("SELECT type FROM system.columns WHERE database = %s AND table = %s AND name = %s",
		quote(o.Database), quote(a.def.storage(o)), quote(a.marker)))
	if err != nil {
		return false, true, fmt.Errorf("replace %s: read its columns: %w", a.def.name, err)
	}
	return len(types) == 1 && strings.HasPrefix(types[0], a.markerType), true, nil
}

// wrapErr returns err wrapped with op, or nil.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// retire drops a's view, so inserts stop feeding a's table, and renames
// the table to legacyName. On a cluster it drops the Distributed table in
// front of it too (it holds no data; the new one replaces it) and renames
// each shard's storage table: read the legacy rows per shard.
//
// Another collector may be migrating at the same time: retire drops only
// a view and a Distributed table of the old kind, and a rename that fails
// because the other collector renamed first is success.
func (a *aggregate) retire(ctx context.Context, r sqlRunner, o SchemaOptions) error {
	old := []string{fmt.Sprintf("name = %s AND position(create_table_query, %s) = 0", quote(a.view), quote(eventIDHash))}
	if o.Cluster != "" {
		old = append(old, fmt.Sprintf("name = %s AND name NOT IN (SELECT table FROM system.columns WHERE database = %s AND name = %s)",
			quote(a.def.name), quote(o.Database), quote(a.marker)))
	}
	for _, cond := range old {
		names, err := r.column(ctx, fmt.Sprintf("SELECT name FROM system.tables WHERE database = %s AND %s", quote(o.Database), cond))
		if err != nil {
			return fmt.Errorf("replace %s: %w", a.def.name, err)
		}
		for _, name := range names {
			if err := r.exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, name, onCluster(o))); err != nil {
				return fmt.Errorf("replace %s: drop %s: %w", a.def.name, name, err)
			}
		}
	}
	storage, legacy := a.def.storage(o), legacyName(a.def.storage(o))
	err := r.exec(ctx, fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s%s", o.Database, storage, o.Database, legacy, onCluster(o)))
	if err == nil {
		return nil
	}
	if current, exists, cerr := a.isCurrent(ctx, r, o); cerr == nil && (current || !exists) {
		return nil // another collector renamed it first
	}
	return fmt.Errorf("replace %s: rename it to %s (if a table of that name exists already, drop or rename it, then migrate again): %w", a.def.name, legacy, err)
}

// replaceAggregates is migration 10 on c's server, or cluster: there the
// first server of each shard that answers fills its shard.
func (c *Client) replaceAggregates(ctx context.Context) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(backfillSettings))
	fillers := []sqlRunner{connRunner{c: c}}
	if c.hosts != nil {
		var err error
		if fillers, err = c.shardRunners(ctx); err != nil {
			return fmt.Errorf("replace aggregates: %w", err)
		}
	}
	return replaceAggregates(ctx, connRunner{c: c}, fillers, c.dialect, c.schema, c.logger)
}

// shardRunners returns a runner on one server of each shard: the first
// that answers a ping.
func (c *Client) shardRunners(ctx context.Context) ([]sqlRunner, error) {
	var out []sqlRunner
	for shard := 1; shard <= c.hosts.shards(); shard++ {
		var errs []error
		for _, h := range c.hosts.list {
			if h.shard != shard {
				continue
			}
			if err := h.conn.Ping(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%v: %w", h, err))
				continue
			}
			out = append(out, connRunner{c: c, conn: h.conn})
			errs = nil
			break
		}
		if errs != nil {
			return nil, fmt.Errorf("no server of shard %d answers: %w", shard, errors.Join(errs...))
		}
	}
	return out, nil
}
