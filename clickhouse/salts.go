package clickhouse

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// TableSessionSalts holds the daily salts that session ids are re-keyed
// with (see anonymizer.Salts): one agreed salt per UTC day, shared by every
// collector replica and dropped once its day is over. Only the collector's
// user may read it; analysts must not be granted it.
const TableSessionSalts = "session_salts"

// SaltSize is the size of a session salt in bytes.
const SaltSize = 32

// saltRow is one candidate salt for a day.
type saltRow struct {
	day       time.Time
	salt      []byte
	createdAt time.Time
}

// sessionSaltsTable returns the definition of TableSessionSalts.
func sessionSaltsTable(database string) *rowTable[saltRow] {
	return newRowTable(database,
		&tableDef{
			name:    TableSessionSalts,
			comment: "Daily salts that session ids are re-keyed with, shared by the collector replicas; each day's partition is dropped when the day is over. Secret: not for analysts.",
			engine:  "MergeTree",
			day:     "day",
			// On modern servers the TTL also removes a day's salt at the
			// end of the day; DestroySalts does it on every server.
			expiry:  "day + toIntervalDay(1)",
			orderBy: []string{"day", "created_at", "salt"},
			// Every collector reads the salt of the day from its own
			// server (after catching up: DailySalt).
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[saltRow]{
			dateCol("day", "UTC day the salt is for; the table is partitioned by it.",
				func(r *saltRow) time.Time { return r.day }),
			stringCol("salt", "Hex of 32 random bytes. Replicas that raced to create a day's salt agree on the earliest created_at, then the smallest salt.",
				func(r *saltRow) string { return hex.EncodeToString(r.salt) }),
			timeCol("created_at", "When the replica proposed this salt (UTC).",
				func(r *saltRow) time.Time { return r.createdAt }),
		})
}

// createPrivateDatabase returns the statement that creates the private
// database.
func (s *schema) createPrivateDatabase() string {
	return fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", s.opts.PrivateDatabase, onCluster(s.opts))
}

// moveSalts moves the salts of a session_salts table that migration 5
// made in the analysts' database, before migration 7 moved it, into the
// private database, and drops the old table. Replicas keep the salts they
// agreed on; copying twice only duplicates candidates, which DailySalt
// tolerates.
func (c *Client) moveSalts(ctx context.Context) error {
	o, t := c.schema.opts, c.schema.salts.def
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = %s AND name = %s", quote(o.Database), quote(t.name))
	if err := c.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return classify("look for the old session_salts", err)
	}
	if n == 0 {
		return nil
	}
	cols := strings.Join(t.columnNames(), ", ")
	stmt := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s", t.database, t.name, cols, cols, o.Database, t.name)
	if err := c.conn.Exec(ctx, stmt); err != nil {
		return classify("copy the session salts", err)
	}
	names := []string{t.name}
	if o.Cluster != "" {
		names = append(names, t.storage(o))
	}
	for _, name := range names {
		if err := c.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, name, onCluster(o))); err != nil {
			return classify("drop the old session_salts", err)
		}
	}
	c.logger.Info("moved the session salts to the private database", zap.String(logKeyDatabase, t.database))
	return nil
}

// utcDay returns the start of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// DailySalt returns the session salt every replica uses for day's UTC day.
// If none is stored yet, candidate (SaltSize random bytes) is stored first;
// replicas that race agree on the earliest, then smallest, salt stored, so
// the answer for a day only changes while that race is undecided.
func (c *Client) DailySalt(ctx context.Context, day time.Time, candidate []byte) ([]byte, error) {
	if len(candidate) != SaltSize {
		return nil, fmt.Errorf("daily salt: candidate has %d bytes, want %d", len(candidate), SaltSize)
	}
	day = utcDay(day)
	if s, err := c.storedSalt(ctx, day); err != nil || s != nil {
		return s, err
	}
	row := saltRow{day: day, salt: candidate, createdAt: time.Now().UTC()}
	if err := insertEverywhere(ctx, c, c.schema.salts, []saltRow{row}); err != nil {
		return nil, fmt.Errorf("daily salt: %w", err)
	}
	s, err := c.storedSalt(ctx, day)
	if err == nil && s == nil {
		err = errors.New("daily salt: the stored salt is not readable")
	}
	return s, err
}

// storedSalt returns the agreed salt of day, or nil if there is none. On
// a cluster it reads the connected server's replica once it caught up
// with the candidates acknowledged elsewhere.
func (c *Client) storedSalt(ctx context.Context, day time.Time) ([]byte, error) {
	if err := c.syncReplica(ctx, c.schema.salts.def); err != nil {
		return nil, fmt.Errorf("read daily salt: %w", err)
	}
	q := fmt.Sprintf("SELECT salt FROM %s.%s WHERE day = toDate(%s) ORDER BY created_at, salt LIMIT 1",
		c.schema.salts.def.database, TableSessionSalts, quote(day.Format(time.DateOnly)))
	var hexSalt string
	err := c.conn.QueryRow(ctx, q).Scan(&hexSalt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, classify("read daily salt", err)
	}
	s, err := hex.DecodeString(hexSalt)
	if err != nil || len(s) != SaltSize {
		return nil, fmt.Errorf("read daily salt: stored salt is not %d hex bytes", SaltSize)
	}
	return s, nil
}

// DestroySalts drops the salts of every UTC day before before's day. It
// drops whole daily partitions, which the server then deletes from disk
// (after its old_parts_lifetime, 8 minutes by default). Run it at least
// hourly.
func (c *Client) DestroySalts(ctx context.Context, before time.Time) error {
	if err := c.dropPartitionsEndedBy(ctx, c.schema.salts.def, utcDay(before)); err != nil {
		return fmt.Errorf("destroy salts: %w", err)
	}
	return nil
}

// dropPartitionsEndedBy drops the partitions of t (daily or monthly) whose
// last day ended at or before end, and logs each.
func (c *Client) dropPartitionsEndedBy(ctx context.Context, t *tableDef, end time.Time) error {
	ids, err := c.partitions(ctx, t)
	if err != nil {
		return err
	}
	for _, id := range ids {
		last, err := partitionLastDay(t, id)
		if err != nil {
			c.logger.Warn("partition id is not a day or month; skipped", zap.String(logKeyTable, t.name), zap.String(logKeyPartition, id))
			continue
		}
		if last.AddDate(0, 0, 1).After(end) {
			continue
		}
		if err := c.dropPartition(ctx, t, id); err != nil {
			return classify("drop partition "+id+" of "+t.name, err)
		}
		c.logger.Info("dropped a partition", zap.String(logKeyTable, t.name), zap.String(logKeyPartition, id))
	}
	return nil
}
