package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Deletions ClickHouse cannot finish.
//
// An erasure is a mutation (ALTER TABLE ... DELETE) that ClickHouse
// applies part by part, rewriting each part that holds rows to delete.
// A part it cannot read whole (one damaged byte in one of its column
// files fails that block's checksum) fails the rewrite on every attempt,
// and every later mutation of the table waits behind the one that
// failed: from then on no erasure of that table finishes, whoever's rows
// it deletes, and Erase reports each as unfinished. Replicated tables
// (a cluster) fetch a good copy of such a part from another replica; a
// single server has none, and the part must be removed
// (docs/operations.md, "A damaged ClickHouse part").

// StalledMutation describes the unfinished mutations of one table of the
// collector's database, on one server, that were made before the age
// StalledMutations was asked for.
type StalledMutation struct {
	// Server names the server on a cluster; "" without one.
	Server string
	// Table is the table that holds the data (on a cluster, the local
	// table behind a Distributed one).
	Table string
	// Count is how many mutations of Table are unfinished; Oldest is
	// when the oldest was made; PartsToDo how many parts they have left.
	Count     int
	Oldest    time.Time
	PartsToDo int64
	// FailedPart is the part ClickHouse's last attempt failed on, and
	// FailureCode its error code (on servers that report them, 21.8 and
	// later; "" and 0 before). The failure's text is not kept: it may
	// quote the mutation's command, which names a consent key.
	FailedPart  string
	FailureCode int
	// Damaged lists the parts of Table that ClickHouse cannot read whole
	// (DamagedParts), where the caller looked for them.
	Damaged []string
}

// String describes m for a log line or an error: the table, the server,
// how many mutations since when, and the parts to blame. It holds no
// consent key.
func (m StalledMutation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", m.Table)
	if m.Server != "" {
		fmt.Fprintf(&b, " on %s", m.Server)
	}
	fmt.Fprintf(&b, ": %d unfinished since %s, %d parts to do", m.Count, m.Oldest.UTC().Format(time.RFC3339), m.PartsToDo)
	if m.FailedPart != "" {
		fmt.Fprintf(&b, ", last failed on part %s (code %d)", m.FailedPart, m.FailureCode)
	}
	if len(m.Damaged) > 0 {
		fmt.Fprintf(&b, ", damaged parts %s", strings.Join(m.Damaged, ", "))
	}
	return b.String()
}

// StalledMutations returns the tables of the collector's database with
// mutations (erasures, or an operator's ALTER ... DELETE) still
// unfinished more than olderThan after they were made, on the connected
// server or, on a cluster, on every server. A server that does not
// answer makes it fail, naming the server, with what the others
// reported. Where the server does not say which part a mutation failed
// on (before 21.8), DamagedParts finds the parts to blame.
func (c *Client) StalledMutations(ctx context.Context, olderThan time.Duration) ([]StalledMutation, error) {
	q := stalledMutationsQuery(c.dialect, c.Database(), olderThan)
	out, err := onServers(ctx, c, func(ctx context.Context, conn driver.Conn, server string) ([]StalledMutation, error) {
		return stalledOn(ctx, conn, q, server)
	})
	if err != nil {
		return out, classify("stalled mutations", err)
	}
	return out, nil
}

// Damage returns the parts known to be damaged: Damaged, and FailedPart
// if the last attempt failed for what is in its files.
func (m StalledMutation) Damage() []string {
	if m.FailedPart != "" && damageCode(m.FailureCode) && !slices.Contains(m.Damaged, m.FailedPart) {
		return append(slices.Clip(m.Damaged), m.FailedPart)
	}
	return m.Damaged
}

// stalledMutationsQuery returns, per table of db, the mutations still
// unfinished that were made olderThan ago or earlier.
func stalledMutationsQuery(d Dialect, db string, olderThan time.Duration) string {
	failedPart, failure := "''", "''"
	if d.Modern {
		failedPart = "argMax(latest_failed_part, latest_fail_time)"
		failure = "argMax(latest_fail_reason, latest_fail_time)"
	}
	return fmt.Sprintf(`SELECT table, toUInt64(count()) AS n, min(create_time) AS oldest, toInt64(sum(parts_to_do)) AS parts,
	%s AS failed_part, %s AS failure
FROM system.mutations
WHERE database = %s AND is_done = 0 AND create_time <= now() - %d
GROUP BY table
ORDER BY table`, failedPart, failure, quote(db), int64(olderThan.Round(time.Second)/time.Second))
}

// stalledOn runs q, a stalledMutationsQuery, on one server.
func stalledOn(ctx context.Context, conn driver.Conn, q, server string) ([]StalledMutation, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StalledMutation
	for rows.Next() {
		var (
			m       = StalledMutation{Server: server}
			n       uint64
			failure string
		)
		if err := rows.Scan(&m.Table, &n, &m.Oldest, &m.PartsToDo, &m.FailedPart, &failure); err != nil {
			return nil, err
		}
		m.Count, m.FailureCode = int(n), exceptionCode(failure)
		out = append(out, m)
	}
	return out, rows.Err()
}

// exceptionCode returns the error code an exception's text gives
// ("Code: 40. DB::Exception: ..."), or 0.
func exceptionCode(text string) int {
	_, after, ok := strings.Cut(text, "Code: ")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(after)
	}
	n, _ := strconv.Atoi(after[:end])
	return n
}

// DamagedParts reads each active part of table (a table of the
// collector's database, as StalledMutation names it) whole, every column
// and every block, on the connected server, and returns those ClickHouse
// cannot read because their files are damaged, cut or missing. It reads
// the whole table: call it when a mutation has stalled, not routinely.
func (c *Client) DamagedParts(ctx context.Context, table string) ([]string, error) {
	db := c.Database()
	var parts []struct {
		Name string `ch:"name"`
	}
	if err := c.conn.Select(ctx, &parts, activePartsQuery(db, table)); err != nil {
		return nil, classify("list the parts of "+table, err)
	}
	var damaged []string
	for _, p := range parts {
		var n uint64
		err := c.conn.QueryRow(ctx, readPartQuery(db, table, p.Name)).Scan(&n)
		switch {
		case err == nil:
		case damageError(err):
			damaged = append(damaged, p.Name)
		default:
			return damaged, classify("read part "+p.Name+" of "+table, err)
		}
	}
	return damaged, nil
}

// activePartsQuery lists the active parts of db.table.
func activePartsQuery(db, table string) string {
	return fmt.Sprintf("SELECT name FROM system.parts WHERE database = %s AND table = %s AND active ORDER BY name", quote(db), quote(table))
}

// readPartQuery reads every column of every row of db.table's part (ignore
// takes them all; NOT ignore is true, so every row is counted).
func readPartQuery(db, table, part string) string {
	return fmt.Sprintf("SELECT count() FROM %s.%s WHERE _part = %s AND NOT ignore(*)", db, table, quote(part))
}

// damageError reports whether err is ClickHouse failing to read a part
// because of what is in its files.
func damageError(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && damageCode(int(ex.Code))
}

// damageCode reports whether code is an error ClickHouse reports for a
// part whose files are damaged, cut or missing.
func damageCode(code int) bool {
	switch code {
	case 32, // ATTEMPT_TO_READ_AFTER_EOF
		33,  // CANNOT_READ_ALL_DATA
		40,  // CHECKSUM_DOESNT_MATCH
		107, // FILE_DOESNT_EXIST
		117, // INCORRECT_DATA
		226, // NO_FILE_IN_DATA_PART
		246, // CORRUPTED_DATA
		271: // CANNOT_DECOMPRESS
		return true
	}
	return false
}
