package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Moving a single server's database to a cluster: CopyToCluster copies
// every table's rows from a Client of the single server to a Client of
// the cluster, whose schema Migrate made. Event tables and held rows go
// through the Distributed tables, so every row lands on the shard its
// event id picks and the aggregates' views count it there; the consent
// store, salts, triage decisions and the release log go to the tables
// placed everywhere. The aggregates are not copied: their views rebuild
// them from the copied event rows. Days the aggregates still hold but
// the event tables no longer do (older than the events' retention) are
// reported in CopyStats.AggregateOnly: clickhouse-go reads no aggregate
// states, so they move by hand, as ClickHouse's Native format
// (docs/operations.md).

// AggregateDays are the days of an aggregate that only the aggregate
// holds (older than its event table's retention), with the statements
// that move them: Select on the single server, its output in ClickHouse's
// Native format piped into Insert on one server of the cluster (e.g.
// with clickhouse-client). The states merge with the other shards'.
type AggregateDays struct {
	Table          string
	Days           []string
	Select, Insert string
}

// copyBlock is the rows one insert of the copy carries.
const copyBlock = 50_000

// CopyStats says what CopyToCluster copied.
type CopyStats struct {
	// Rows are the rows copied per table.
	Rows map[string]uint64
	// Skipped are the tables left alone because the cluster's held rows
	// already (copied by an earlier run).
	Skipped []string
	// AggregateOnly are the aggregates whose table on the single server
	// holds days that its event table no longer does, and how to move
	// them by hand.
	AggregateOnly []AggregateDays
	// Took is how long the copy took.
	Took time.Duration
}

// CopyToCluster copies from's tables to to's, table by table: the
// consent store first (apps, revocations, erasures), so collectors that
// start on the cluster meanwhile honour every revocation, then salts,
// triage decisions, counters, the release log, the event tables and the
// held rows. A table of to that holds rows already is skipped, so a copy
// that was interrupted between tables continues where it stopped; one
// interrupted within a table needs that table emptied on the cluster
// first. from must be a single server and to a cluster, both migrated.
// Stop the collectors writing to from before.
func CopyToCluster(ctx context.Context, from, to *Client, log *zap.Logger) (CopyStats, error) {
	if log == nil {
		log = zap.NewNop()
	}
	st := CopyStats{Rows: map[string]uint64{}}
	if from.Cluster() != "" || to.Cluster() == "" {
		return st, errors.New("copy to cluster: want a single server to copy from and a cluster to copy to")
	}
	start := time.Now()
	fromTables, toTables := tableIndex(from), tableIndex(to)
	for _, name := range copyOrder(to) {
		src, dst := fromTables[name], toTables[name]
		var n uint64
		if err := to.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", dst.database, dst.name)).Scan(&n); err != nil {
			return st, classify("copy to cluster: count "+name, err)
		}
		if n > 0 {
			log.Info("table holds rows on the cluster already; not copied again", zap.String(logKeyTable, name), zap.Uint64(logKeyRows, n))
			st.Skipped = append(st.Skipped, name)
			continue
		}
		copied, err := copyRows(ctx, from, to, src, dst)
		st.Rows[name] = copied
		if err != nil {
			return st, fmt.Errorf("copy to cluster: %s, after %d rows: %w", name, copied, err)
		}
		log.Info("table copied to the cluster", zap.String(logKeyTable, name), zap.Uint64(logKeyRows, copied))
	}
	for _, a := range from.schema.aggregates() {
		only := fmt.Sprintf("event_date NOT IN (SELECT DISTINCT event_date FROM %s.%s)", from.Database(), a.source.name)
		days, err := (connRunner{c: from}).column(ctx, fmt.Sprintf(
			"SELECT DISTINCT toString(event_date) FROM %s.%s WHERE %s ORDER BY 1", from.Database(), a.def.name, only))
		if err != nil {
			return st, classify("copy to cluster: days of "+a.def.name, err)
		}
		if len(days) > 0 {
			st.AggregateOnly = append(st.AggregateOnly, AggregateDays{Table: a.def.name, Days: days,
				Select: fmt.Sprintf("SELECT * FROM %s.%s WHERE %s FORMAT Native", from.Database(), a.def.name, only),
				Insert: fmt.Sprintf("INSERT INTO %s.%s FORMAT Native", to.Database(), a.def.storage(to.schema.opts)),
			})
		}
	}
	st.Took = time.Since(start)
	return st, nil
}

// tableIndex returns c's tables by name.
func tableIndex(c *Client) map[string]*tableDef {
	out := make(map[string]*tableDef)
	for _, t := range c.tables() {
		out[t.name] = t
	}
	return out
}

// copyOrder returns the names of the tables CopyToCluster copies, in the
// order it copies them: not the migrations (the cluster has its own),
// the aggregates (their views fill them) or the release slots (claims
// of the past).
func copyOrder(c *Client) []string {
	s, k := c.schema, c.kanon
	var names []string
	for _, t := range []*tableDef{s.apps.def, s.revocations.def, s.erasures.def, s.salts.def, s.fingerprints.def, s.crashStatus.def,
		s.rejects.def, k.counts.def, k.releases.def, k.done.def} {
		names = append(names, t.name)
	}
	for _, t := range s.eventTables() {
		names = append(names, t.name)
	}
	for _, t := range k.held {
		names = append(names, t.name)
	}
	return names
}

// copyRows copies every row of src (a table of from) to dst (the same
// table of to), column by column as the schema lists them, in inserts of
// copyBlock rows.
func copyRows(ctx context.Context, from, to *Client, src, dst *tableDef) (uint64, error) {
	cols := strings.Join(dst.columnNames(), ", ")
	rows, err := from.conn.Query(ctx, fmt.Sprintf("SELECT %s FROM %s.%s", cols, src.database, src.name))
	if err != nil {
		return 0, classify("read", err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	dest := make([]any, len(types))
	vals := make([]any, len(types))
	for i, ct := range types {
		dest[i] = reflect.New(ct.ScanType()).Interface()
	}
	insert := fmt.Sprintf("INSERT INTO %s.%s (%s)", dst.database, dst.name, cols)
	var (
		batch  driver.Batch
		copied uint64
		queued int
	)
	send := func() error {
		if batch == nil {
			return nil
		}
		defer func() { batch = nil }()
		if err := batch.Send(); err != nil {
			return classify("write", err)
		}
		copied += uint64(queued)
		queued = 0
		return nil
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return copied, fmt.Errorf("read: %w", err)
		}
		if batch == nil {
			if batch, err = to.conn.PrepareBatch(to.writeCtx(ctx, dst), insert); err != nil {
				return copied, classify("write", err)
			}
		}
		for i, d := range dest {
			vals[i] = reflect.ValueOf(d).Elem().Interface()
		}
		if err := batch.Append(vals...); err != nil {
			return copied, fmt.Errorf("write: %w", err)
		}
		if queued++; queued == copyBlock {
			if err := send(); err != nil {
				return copied, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return copied, classify("read", err)
	}
	return copied, send()
}
