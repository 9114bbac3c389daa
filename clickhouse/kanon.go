package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/pipeline"
)

// The ClickHouse side of k-anonymity (package anonymizer/kanon): rows
// whose combination of quasi-identifiers is not yet published wait in
// held tables, one per event table, in the private database; the release
// log records every class published; the slots table serializes release
// passes across replicas. A Client is the kanon.Store.

// Names of the k-anonymity tables, all in the private database.
const (
	// HeldTablePrefix prefixes an event table's name to name its held
	// table, e.g. held_sessions.
	HeldTablePrefix = "held_"
	// TableReleases is the release log: one row per class a release pass
	// published rows into.
	TableReleases = "kanon_releases"
	// TableReleaseDone records the passes whose moves completed, per app
	// and day.
	TableReleaseDone = "kanon_release_done"
	// TableReleaseSlots holds the replicas' claims on release slots.
	TableReleaseSlots = "kanon_release_slots"
)

// Retention of the k-anonymity tables: the release log is kept as long as
// the aggregates, for the privacy report; slot claims for two days.
const (
	releaseLogRetentionDays = DefaultAggregateRetentionDays
	slotRetentionDays       = 2
)

// moveChunk is the most combinations one move statement names, which
// keeps the statement well below the server's max_query_size (256 KiB).
const moveChunk = 200

var _ kanon.Store = (*Client)(nil)

// releaseRow is one row of the release log.
type releaseRow struct {
	app string
	day time.Time
	kanon.Release
}

// doneRow is one row of kanon_release_done.
type doneRow struct {
	pass   uint64
	app    string
	day    time.Time
	doneAt time.Time
}

// kanonSchema is the k-anonymity tables for one SchemaOptions.
type kanonSchema struct {
	opts SchemaOptions
	// held are the held tables, in the order of schema.eventTables.
	held []*tableDef
	// heldInsert are the INSERT statements of the held tables: the event
	// table's columns and the member key.
	heldInsert []string
	releases   *rowTable[releaseRow]
	done       *rowTable[doneRow]
	slots      *tableDef
	counts     *rowTable[countRow]
}

// qiColumns are the quasi-identifier columns, as kanon.Columns.
var qiColumns = kanon.Columns()

func newKanonSchema(s *schema) *kanonSchema {
	o := s.opts
	k := &kanonSchema{opts: o}
	for _, t := range s.eventTables() {
		h := heldTable(t, o.PrivateDatabase)
		k.held = append(k.held, h)
		k.heldInsert = append(k.heldInsert, fmt.Sprintf("INSERT INTO %s.%s (%s, member)", h.database, h.name, strings.Join(t.columnNames(), ", ")))
	}
	qiField := func(i int, name string) field[releaseRow] {
		return lowCardCol(name, "The class's "+name+" as its rows are stored (generalized as the rung columns say).",
			func(r *releaseRow) string { return r.QI.Values()[i] })
	}
	fields := []field[releaseRow]{
		uint64Col("pass_id", "Random id of the release pass.", func(r *releaseRow) uint64 { return r.Pass }),
		lowCardCol("app_id", "App the class belongs to.", func(r *releaseRow) string { return r.app }),
		dateCol("event_date", "UTC event day the class belongs to; classes are counted per app and day.", func(r *releaseRow) time.Time { return r.day }),
		scalar("level", uint8Type(), "Level of the hierarchy: 0 exact, then one step per level, the highest (top=1) every quasi-identifier unknown.",
			func(r *releaseRow) uint8 { return uint8(r.Level) }),
	}
	for i, name := range qiColumns {
		fields = append(fields, qiField(i, name))
	}
	for a := range kanon.NumAttributes {
		fields = append(fields, scalar("rung_"+kanon.Attribute(a).String(), uint8Type(),
			fmt.Sprintf("Rung of the %s ladder the class reached: 0 exact, %d the last (docs/privacy.md).", kanon.Attribute(a), kanon.Attribute(a).Rungs()),
			func(r *releaseRow) uint8 { return r.Generalization.Rungs[a] }))
	}
	fields = append(fields,
		boolCol("top", "1 for the top level: every quasi-identifier unknown, the row says no more than a user of the app that day.",
			func(r *releaseRow) bool { return r.Generalization.Top }),
		uint64Col("consents", "Distinct consents among the rows the pass moved into the class; for a new class its size when published, at least k except at the top.",
			func(r *releaseRow) uint64 { return r.Consents }),
		uint64Col("held_rows", "Held rows the pass decided to move into the class.", func(r *releaseRow) uint64 { return r.Rows }),
		boolCol("is_new", "1 if the pass published the class, 0 if the class was published before and grew.", func(r *releaseRow) bool { return r.New }),
		timeCol("expired_before", "Rows held before this time had waited the delay when the pass ran.", func(r *releaseRow) time.Time { return r.ExpiredBefore }),
		timeCol("released_at", "When the pass ran (UTC).", func(r *releaseRow) time.Time { return r.ReleasedAt }),
	)
	k.releases = newRowTable(o.PrivateDatabase, &tableDef{
		name:      TableReleases,
		comment:   "Release log of k-anonymity (package anonymizer/kanon): the classes of quasi-identifiers published per app and day, with their consent counts; no consent keys, no payload. Read by the collector and consentry privacy-report.",
		engine:    "MergeTree",
		day:       "event_date",
		monthly:   true,
		orderBy:   []string{"app_id", "event_date", "level", "pass_id"},
		retention: releaseLogRetentionDays,
		placement: everywhere,
		quorum:    quorumTwo,
	}, fields)
	k.done = newRowTable(o.PrivateDatabase, &tableDef{
		name:      TableReleaseDone,
		comment:   "Release passes whose moves of an app and day completed; entries of kanon_releases without one are completed by the next pass.",
		engine:    "MergeTree",
		day:       "event_date",
		monthly:   true,
		orderBy:   []string{"app_id", "event_date", "pass_id"},
		retention: releaseLogRetentionDays,
		placement: everywhere,
		quorum:    quorumTwo,
	}, []field[doneRow]{
		uint64Col("pass_id", "Random id of the release pass.", func(r *doneRow) uint64 { return r.pass }),
		lowCardCol("app_id", "App whose held rows the pass moved.", func(r *doneRow) string { return r.app }),
		dateCol("event_date", "UTC event day of the rows the pass moved.", func(r *doneRow) time.Time { return r.day }),
		timeCol("done_at", "When the moves completed (UTC).", func(r *doneRow) time.Time { return r.doneAt }),
	})
	k.slots = &tableDef{
		name:     TableReleaseSlots,
		database: o.PrivateDatabase,
		comment:  "Claims of the collector replicas on release slots: the earliest claim of a slot runs its release pass.",
		engine:   "MergeTree",
		columns: []column{
			{name: "slot", typ: uint64Type(), comment: "Release slot: the pass's start time divided by the release interval."},
			{name: "holder", typ: stringType(), comment: "Random id of the claiming replica."},
			{name: "claimed_at", typ: timeType(), comment: "Server time of the claim.", dflt: "now()"},
		},
		day:       "claimed_at",
		expiry:    "claimed_at + toIntervalDay(1)",
		orderBy:   []string{"slot", "claimed_at", "holder"},
		retention: slotRetentionDays,
		// A claim is on every server once acknowledged, as on a single
		// server: see ClaimSlot.
		placement: everywhere,
		quorum:    quorumAll,
	}
	k.counts = privacyCountsTable(o.Database)
	return k
}

// heldTable returns the held table of event table t: its columns, then
// the member key and the time the row was held. A migration that adds a
// column to an event table must add it to the held table too.
func heldTable(t *tableDef, private string) *tableDef {
	return &tableDef{
		name:     HeldTablePrefix + t.name,
		database: private,
		comment: fmt.Sprintf("Rows of %s held until their combination of quasi-identifiers is shared by k consents of their app and day (package anonymizer/kanon); a release pass moves them to %s, generalized if need be. Holds member keys: not for analysts.",
			t.name, t.name),
		engine: "MergeTree",
		columns: append(slices.Clone(t.columns),
			column{name: "member", typ: uint64Type(), comment: "Member key: keyed hash of the consent under the salt of the event's day, to count distinct consents; never leaves the private database."},
			column{name: "held_at", typ: timeType(), comment: "When the row was held (server time).", dflt: "now()"},
		),
		day:     "event_date",
		orderBy: []string{"app_id", "event_date", "event_id"},
		// Held rows live on the shard of their event: a shard alone
		// tells which of its held rows are public already.
		shardKey:    t.shardKey,
		dedupWindow: t.dedupWindow,
	}
}

// tables returns the tables kanonMigration creates, in creation order.
func (k *kanonSchema) tables() []*tableDef {
	return append(slices.Clone(k.held), k.releases.def, k.done.def, k.slots, k.counts.def)
}

// InsertHeld stores rows in the held tables, one insert per table that
// has rows, all at once or one after another as Insert does. token, if
// not "", deduplicates a repeated insert on servers that take tokens, as
// InsertDedup does.
func (c *Client) InsertHeld(ctx context.Context, rows *pipeline.Rows, token string) (err error) {
	done := c.observeInsert(rows)
	defer func() { done(err) }()
	if _, err := c.insertHeld(ctx, rows, allTables, token); err != nil {
		return fmt.Errorf("hold rows: %w", err)
	}
	return nil
}

// insertHeld stores rows of the tables in todo in their held tables,
// deduplicated by token (tableContexts, by the held table's name), and
// returns the tables that failed.
func (c *Client) insertHeld(ctx context.Context, rows *pipeline.Rows, todo tableSet, token string) (tableSet, error) {
	k, s := c.kanon, c.schema
	ctxFor := c.tableContexts(ctx, token)
	return insertJobs(pipeline.IsUnhurried(ctx), []tableJob{
		{setSessions, len(rows.Sessions), func() error {
			return insertHeld(ctxFor(k.held[0].name), c.conn, s.sessions, k.heldInsert[0], rows.Sessions, func(r *pipeline.SessionRow) uint64 { return r.Member })
		}},
		{setGestures, len(rows.Gestures), func() error {
			return insertHeld(ctxFor(k.held[1].name), c.conn, s.gestures, k.heldInsert[1], rows.Gestures, func(r *pipeline.GestureRow) uint64 { return r.Member })
		}},
		{setCrashes, len(rows.Crashes), func() error {
			return insertHeld(ctxFor(k.held[2].name), c.conn, s.crashes, k.heldInsert[2], rows.Crashes, func(r *pipeline.CrashRow) uint64 { return r.Member })
		}},
		{setCustoms, len(rows.Customs), func() error {
			return insertHeld(ctxFor(k.held[3].name), c.conn, s.customs, k.heldInsert[3], rows.Customs, func(r *pipeline.CustomRow) uint64 { return r.Member })
		}},
		{setDiagnostics, len(rows.Diagnostics), func() error {
			return insertHeld(ctxFor(k.held[4].name), c.conn, s.diagnostics, k.heldInsert[4], rows.Diagnostics, func(r *pipeline.DiagnosticRow) uint64 { return r.Member })
		}},
	}, todo)
}

// heldInserter is the Writer's inserter for the held tables.
type heldInserter struct{ c *Client }

func (h heldInserter) insert(ctx context.Context, rows *pipeline.Rows, todo tableSet) (tableSet, error) {
	return h.c.insertHeld(ctx, rows, todo, "")
}

// NewHeldWriter returns a Writer that groups held rows into the held
// tables, as NewWriter does for the event tables: for a collector without
// a spool, whose requests would otherwise make one small insert each.
func NewHeldWriter(cfg WriterConfig, c *Client, logger *zap.Logger) (*Writer, error) {
	return newWriter(cfg, heldInserter{c}, logger)
}

// insertHeld inserts rows into a held table: the columns of their event
// table t, encoded as for t, then the member keys.
func insertHeld[R any](ctx context.Context, conn driver.Conn, t *rowTable[R], sql string, rows []R, member func(*R) uint64) error {
	var members []uint64
	return insertColumns(ctx, conn, t, HeldTablePrefix+t.def.name, sql, rows, func(batch driver.Batch, rows []R) error {
		members = members[:0]
		for i := range rows {
			members = append(members, member(&rows[i]))
		}
		return batch.Column(len(t.def.columns)).Append(members)
	})
}

// HeldUnits implements kanon.Store. A release pass calls it first: on a
// cluster it also makes the connected server's replicas of the release
// log catch up, so the pass sees every earlier pass's entries.
func (c *Client) HeldUnits(ctx context.Context) ([]kanon.Unit, error) {
	if err := c.syncReplica(ctx, c.kanon.releases.def, c.kanon.done.def); err != nil {
		return nil, fmt.Errorf("list held units: %w", err)
	}
	var rows []struct {
		App string    `ch:"app_id"`
		Day time.Time `ch:"event_date"`
	}
	if err := c.conn.Select(ctx, &rows, heldUnitsQuery(c.kanon)); err != nil {
		return nil, classify("list held units", err)
	}
	units := make([]kanon.Unit, len(rows))
	for i, r := range rows {
		units[i] = kanon.Unit{App: r.App, Day: utcDay(r.Day)}
	}
	return units, nil
}

// HeldGroups implements kanon.Store.
func (c *Client) HeldGroups(ctx context.Context, u kanon.Unit) ([]kanon.Group, uint64, error) {
	var groups []kanon.Group
	var stale uint64
	err := queryEach(ctx, c, "read held rows", heldGroupsQuery(c.kanon, c.Database(), u), func(scan func(...any) error) error {
		var (
			v     [kanon.NumColumns]string
			g     kanon.Group
			isOld uint8
		)
		dest := make([]any, 0, kanon.NumColumns+4)
		for i := range v {
			dest = append(dest, &v[i])
		}
		dest = append(dest, &g.Member, &isOld, &g.Rows, &g.FirstHeld)
		if err := scan(dest...); err != nil {
			return err
		}
		if isOld != 0 {
			stale += g.Rows
			return nil
		}
		g.QI = kanon.QIFromValues(v)
		groups = append(groups, g)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return groups, stale, nil
}

// Releases implements kanon.Store.
func (c *Client) Releases(ctx context.Context, u kanon.Unit) ([]kanon.Release, map[uint64]bool, error) {
	log, err := queryAll(ctx, c, "read the release log", releasesQuery(c.kanon, u), func(scan func(...any) error) (kanon.Release, error) {
		var (
			r     kanon.Release
			level uint8
			v     [kanon.NumColumns]string
			rungs [kanon.NumAttributes]uint8
			top   uint8
			isNew uint8
		)
		dest := []any{&r.Pass, &level}
		for i := range v {
			dest = append(dest, &v[i])
		}
		for i := range rungs {
			dest = append(dest, &rungs[i])
		}
		dest = append(dest, &top, &r.Consents, &r.Rows, &isNew, &r.ExpiredBefore, &r.ReleasedAt)
		if err := scan(dest...); err != nil {
			return r, err
		}
		r.Level, r.QI, r.New = int(level), kanon.QIFromValues(v), isNew != 0
		r.Generalization = kanon.Generalization{Rungs: rungs, Top: top != 0}
		return r, nil
	})
	if err != nil {
		return nil, nil, err
	}
	var passes []struct {
		Pass uint64 `ch:"pass_id"`
	}
	if err := c.conn.Select(ctx, &passes, donePassesQuery(c.kanon, u)); err != nil {
		return nil, nil, classify("read finished release passes", err)
	}
	done := make(map[uint64]bool, len(passes))
	for _, p := range passes {
		done[p.Pass] = true
	}
	return log, done, nil
}

// LogReleases implements kanon.Store.
func (c *Client) LogReleases(ctx context.Context, u kanon.Unit, rs []kanon.Release) error {
	rows := make([]releaseRow, len(rs))
	for i, r := range rs {
		rows[i] = releaseRow{app: u.App, day: u.Day, Release: r}
	}
	if err := insertEverywhere(ctx, c, c.kanon.releases, rows); err != nil {
		return fmt.Errorf("log releases: %w", err)
	}
	return nil
}

// Move implements kanon.Store: per event table, an INSERT ... SELECT from
// its held table that generalizes the quasi-identifier columns in SQL
// (qiExprs) and leaves out rows already public and rows of erased
// consents, in statements of at most moveChunk combinations.
func (c *Client) Move(ctx context.Context, u kanon.Unit, m kanon.Move) error {
	for start := 0; start < len(m.Combos); start += moveChunk {
		combos := m.Combos[start:min(start+moveChunk, len(m.Combos))]
		for i, t := range c.schema.eventTables() {
			stmt := moveStatement(c.schema.opts, t, c.kanon.held[i], c.Database(), u, m.Generalization, combos)
			if err := c.conn.Exec(ctx, stmt); err != nil {
				return classify("move held rows into "+t.name, err)
			}
		}
	}
	return nil
}

// MarkDone implements kanon.Store.
func (c *Client) MarkDone(ctx context.Context, u kanon.Unit, passes []uint64, at time.Time) error {
	rows := make([]doneRow, len(passes))
	for i, p := range passes {
		rows[i] = doneRow{pass: p, app: u.App, day: u.Day, doneAt: at.UTC()}
	}
	if err := insertEverywhere(ctx, c, c.kanon.done, rows); err != nil {
		return fmt.Errorf("mark release passes done: %w", err)
	}
	return nil
}

// DeleteStale implements kanon.Store with one mutation per held table
// (ALTER TABLE ... DELETE, which 18.16 has); the server applies it in the
// background, and passes meanwhile leave the rows out as HeldGroups does.
// On a cluster each shard's replicas compare their held rows with the
// shard's own public rows: held rows live on the shard of their event.
func (c *Client) DeleteStale(ctx context.Context, units []kanon.Unit) error {
	o := c.schema.opts
	for i, h := range c.kanon.held {
		stmt := h.alter(o, "DELETE WHERE "+staleCondition(c.Database(), h, c.schema.eventTables()[i].storage(o), h.storage(o), units))
		if err := c.conn.Exec(ctx, stmt); err != nil {
			return classify("delete released rows from "+h.name, err)
		}
	}
	c.logger.Debug("deleting released held rows", zap.Int("units", len(units)))
	return nil
}

// ClaimSlot implements kanon.Store; the claim's time is the server's.
//
// The releaser's rule (kanon.Releaser.Run) needs every claim visible to
// every replica once acknowledged, as on a single server. On a cluster a
// claim is therefore acknowledged only once every server has it
// (insert_quorum of all the cluster's servers); a server that is away
// fails the claim, and the replica sits the slot out. The claims' times
// then come from the clocks of the servers the claimers are connected
// to, but each replica reads the same set of claims and applies the same
// order to it, so at most one replica wins a slot whatever the clocks
// say; a skewed clock can only make a late claimer win.
func (c *Client) ClaimSlot(ctx context.Context, slot uint64, holder string) error {
	t := c.kanon.slots
	stmt := fmt.Sprintf("INSERT INTO %s.%s (slot, holder) SELECT toUInt64(%d), %s", t.database, t.name, slot, quote(holder))
	if err := c.conn.Exec(c.writeCtx(ctx, t), stmt); err != nil {
		return classify("claim release slot", err)
	}
	return nil
}

// SlotHolder implements kanon.Store.
func (c *Client) SlotHolder(ctx context.Context, slot uint64) (string, error) {
	var rows []struct {
		Holder string `ch:"holder"`
	}
	t := c.kanon.slots
	q := fmt.Sprintf("SELECT holder FROM %s.%s WHERE slot = %d ORDER BY claimed_at, holder LIMIT 1", t.database, t.name, slot)
	if err := c.conn.Select(ctx, &rows, q); err != nil {
		return "", classify("read release slot", err)
	}
	if len(rows) == 0 {
		return "", nil
	}
	return rows[0].Holder, nil
}

// Published implements kanon.Store.
func (c *Client) Published(ctx context.Context, since, loggedAfter time.Time) ([]kanon.ExactClass, error) {
	return queryAll(ctx, c, "read published classes", publishedQuery(c.kanon, since, loggedAfter), func(scan func(...any) error) (kanon.ExactClass, error) {
		var (
			e kanon.ExactClass
			v [kanon.NumColumns]string
		)
		dest := []any{&e.App, &e.Day}
		for i := range v {
			dest = append(dest, &v[i])
		}
		if err := scan(dest...); err != nil {
			return e, err
		}
		e.Day, e.QI = utcDay(e.Day), kanon.QIFromValues(v)
		return e, nil
	})
}

// HeldRows returns how many rows of app are held, waiting for their
// class to reach k.
func (c *Client) HeldRows(ctx context.Context, app string) (uint64, error) {
	var n uint64
	if err := c.conn.QueryRow(ctx, heldRowsQuery(c.kanon, app)).Scan(&n); err != nil {
		return 0, classify("count held rows", err)
	}
	return n, nil
}

// PruneKanon drops what k-anonymity no longer needs as of now: slot
// claims older than two days, release log months beyond its retention,
// and held rows of days beyond their event table's retention (rows are
// released within the hold delay, unless k-anonymity was switched off
// while they were held). Servers with TTL expire the first two
// themselves too; 18.16 needs this.
func (c *Client) PruneKanon(ctx context.Context, now time.Time) error {
	k := c.kanon
	type prune struct {
		t    *tableDef
		days int
	}
	prunes := []prune{{k.slots, slotRetentionDays}, {k.releases.def, releaseLogRetentionDays}, {k.done.def, releaseLogRetentionDays}, {k.counts.def, k.counts.def.retention}}
	for i, t := range c.schema.eventTables() {
		if days := c.schema.opts.retention(t); days > 0 {
			prunes = append(prunes, prune{k.held[i], days})
		}
	}
	for _, p := range prunes {
		if err := c.dropPartitionsEndedBy(ctx, p.t, utcDay(now).AddDate(0, 0, -p.days)); err != nil {
			return fmt.Errorf("prune %s: %w", p.t.name, err)
		}
	}
	return nil
}

// kanonMigration is the migration that creates the k-anonymity tables and
// the privacy counts. It is numbered by its caller, so it can move when
// branches merge.
func kanonMigration(version int) Migration {
	return Migration{
		Version:    version,
		Name:       "k-anonymity: held tables, release log and slots in the private database; privacy_counts",
		Statements: createPrivateTables(func(s *schema) []*tableDef { return newKanonSchema(s).tables() }),
	}
}
