package clickhouse

import (
	"context"
	"fmt"
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
	rows, err := c.conn.Query(ctx, latestCrashesQuery(c.Database(), app, n))
	if err != nil {
		return nil, fmt.Errorf("latest crashes: %w", err)
	}
	defer rows.Close()
	var out []CrashSummary
	for rows.Next() {
		var s CrashSummary
		if err := rows.Scan(&s.ExceptionType, &s.Message, &s.Country, &s.Region); err != nil {
			return nil, fmt.Errorf("latest crashes: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest crashes: %w", err)
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
