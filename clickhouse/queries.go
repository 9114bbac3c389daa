package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// The queries below are the ones Consentry's tools run (consentry demo).
// Their text is built here, with literals quoted rather than bound, so the
// tests run exactly the same text on ClickHouse 18.16 and on 26.x (chDB).

// countRowsQuery counts table's rows for app.
func countRowsQuery(db, table, app string) string {
	return fmt.Sprintf("SELECT count() FROM %s.%s WHERE app_id = %s", db, table, quote(app))
}

// latestCrashesQuery lists app's n latest crashes.
func latestCrashesQuery(db, app string, n int) string {
	return fmt.Sprintf(`SELECT exception_type, message, country, region
FROM %s.crashes
WHERE app_id = %s
ORDER BY event_time DESC
LIMIT %d`, db, quote(app), n)
}

// CountRows returns how many rows table holds for app.
func (c *Client) CountRows(ctx context.Context, table, app string) (uint64, error) {
	var n uint64
	if err := c.conn.QueryRow(ctx, countRowsQuery(c.Database(), table, app)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	return n, nil
}

// CrashSummary is one stored crash, as consentry demo prints it.
type CrashSummary struct {
	ExceptionType, Message, Country, Region string
}

// LatestCrashes returns app's n latest crashes.
func (c *Client) LatestCrashes(ctx context.Context, app string, n int) ([]CrashSummary, error) {
	return queryAll(ctx, c, "latest crashes", latestCrashesQuery(c.Database(), app, n), func(scan func(...any) error) (CrashSummary, error) {
		var s CrashSummary
		err := scan(&s.ExceptionType, &s.Message, &s.Country, &s.Region)
		return s, err
	})
}

// The reads: selectEach and selectAll scan rows into structs whose ch
// tags name the columns; queryEach and queryAll scan by position, which
// reads where a struct cannot name the columns need (the
// quasi-identifiers, read into an array).

// selectEach runs q and calls each with every row, scanned into an R
// (whose ch tags name the columns); what names the read in errors.
func selectEach[R any](ctx context.Context, c *Client, what, q string, each func(R)) error {
	var rows []R
	if err := c.conn.Select(ctx, &rows, q); err != nil {
		return classify(what, err)
	}
	for _, r := range rows {
		each(r)
	}
	return nil
}

// selectAll runs q and returns conv of every row, scanned into an R
// (whose ch tags name the columns).
func selectAll[R, T any](ctx context.Context, c *Client, q query, conv func(R) T) ([]T, error) {
	var rows []R
	if err := c.selectQuery(ctx, &rows, q); err != nil {
		return nil, err
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out, nil
}

// queryEach runs q and calls each with every row, in order; each reads
// the row's columns with scan, by position. what names the read in
// errors: a failed query or read is classified (see classify), an error
// each returns (a failed scan) is wrapped. The first error stops the
// read.
func queryEach(ctx context.Context, c *Client, what, q string, each func(scan func(dest ...any) error) error) error {
	rows, err := c.conn.Query(ctx, q)
	if err != nil {
		return classify(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows.Scan); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return classify(what, err)
	}
	return nil
}

// queryAll runs q and returns what row makes of every row, in order;
// row reads the columns with scan, by position. Errors are as queryEach
// returns them.
func queryAll[T any](ctx context.Context, c *Client, what, q string, row func(scan func(dest ...any) error) (T, error)) ([]T, error) {
	var out []T
	err := queryEach(ctx, c, what, q, func(scan func(...any) error) error {
		v, err := row(scan)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EventTables returns the tables that hold one row per event.
func EventTables() []string {
	return []string{TableSessions, TableGestures, TableCrashes, TableCustomEvents, TableDiagnostics}
}

// toolQueries returns the text of every query the tools run, for app in
// db, so tests can run them on each server.
func toolQueries(db, app string) []string {
	var qs []string
	for _, t := range EventTables() {
		qs = append(qs, countRowsQuery(db, t, app))
	}
	return append(qs, latestCrashesQuery(db, app, 3))
}

// The consent store's queries (store.go) are built the same way, so the
// tests run their text on both kinds of server too. Times are bound as
// toDateTime(Unix seconds), which means the same instant whatever the
// server's time zone.

// dateTimeLiteral returns t as a DateTime expression, clamped to the range
// of DateTime.
func dateTimeLiteral(t time.Time) string {
	return fmt.Sprintf("toDateTime(%d)", min(max(t.Unix(), 0), math.MaxUint32))
}

// appsQuery reads the latest version of every app. argMax rather than
// FINAL: it needs no merge of parts at query time and gives the same
// answer through a Distributed table.
func appsQuery(db string) string {
	return fmt.Sprintf(`SELECT app_id,
       argMax(key_hash, version) AS latest_key_hash,
       argMax(scopes, version) AS latest_scopes,
       argMax(policy, version) AS latest_policy,
       argMax(created_at, version) AS latest_created_at,
       argMax(updated_at, version) AS latest_updated_at
FROM %s.%s
GROUP BY app_id
ORDER BY app_id`, db, TableApps)
}

// revocationsQuery reads the revocations first recorded at or after since
// whose tokens have not expired at now: one per consent, as its first
// revocation recorded it. The rows of a consent carry its token's expiry,
// so filtering on it before grouping only skips partitions.
func revocationsQuery(db string, since, now time.Time) string {
	return fmt.Sprintf(`SELECT consent_hash,
       argMin(app_id, revoked_at) AS first_app_id,
       min(revoked_at) AS first_revoked_at,
       argMin(expires_at, revoked_at) AS first_expires_at,
       argMin(erase, revoked_at) AS first_erase
FROM %s.%s
WHERE expires_at > %s
GROUP BY consent_hash
HAVING first_revoked_at >= %s
ORDER BY first_revoked_at, consent_hash`, db, TableRevocations, dateTimeLiteral(now), dateTimeLiteral(since))
}

// expiredRevocationsQuery counts the revocations whose tokens expired
// before now.
func expiredRevocationsQuery(db string, now time.Time) string {
	return fmt.Sprintf("SELECT count() FROM %s.%s WHERE expires_at < %s", db, TableRevocations, dateTimeLiteral(now))
}

// consentRowsQuery counts the rows of app stored under consentKey in each
// of tables (reading the table named with suffix: "_local" for a
// server's own rows on a cluster): one row of (table_name, consent_rows)
// per table.
func consentRowsQuery(db string, tables []string, suffix, app, consentKey string) string {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf("SELECT %s AS table_name, count() AS consent_rows FROM %s.%s%s WHERE app_id = %s AND %s = %s",
			quote(t), db, t, suffix, quote(app), columnConsentKey, quote(consentKey))
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

// inList returns values as a parenthesized list of SQL string literals.
func inList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quote(v)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// pendingMutationsQuery counts the unfinished mutations of tables in db
// whose command contains marker, the parts they have left, and (on modern
// servers, which record it) why the last attempt failed.
func pendingMutationsQuery(d Dialect, db string, tables []string, marker string) string {
	failure := "''"
	if d.Modern {
		failure = "max(latest_fail_reason)"
	}
	return fmt.Sprintf(`SELECT count() AS pending, toInt64(sum(parts_to_do)) AS parts, %s AS failure
FROM system.mutations
WHERE database = %s AND table IN %s AND is_done = 0 AND position(command, %s) > 0`,
		failure, quote(db), inList(tables), quote(marker))
}

// storeQueries returns the text of the consent store's queries in db, so
// tests can run them on each server.
func storeQueries(d Dialect, db string) []string {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return []string{
		appsQuery(db),
		revocationsQuery(db, now.AddDate(0, 0, -1), now),
		expiredRevocationsQuery(db, now),
		consentRowsQuery(db, EventTables(), "", "com.example.notes", "0a1b2c"),
		pendingMutationsQuery(d, db, EventTables(), "0a1b2c"),
		stalledMutationsQuery(d, db, 10*time.Minute),
		activePartsQuery(db, TableGestures),
		readPartQuery(db, TableGestures, "20261128_1_1_0"),
	}
}
