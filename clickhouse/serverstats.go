package clickhouse

import (
	"context"
	"fmt"
)

// InsertedRows returns the server's InsertedRows counter
// (system.events): the rows of every INSERT it has taken since it
// started, materialized views' own inserts aside. Benchmarks read it
// before and after a run to count what was stored, independently of the
// collector's own figures.
func (c *Client) InsertedRows(ctx context.Context) (uint64, error) {
	var n uint64
	if err := c.conn.QueryRow(ctx, "SELECT toUInt64(sum(value)) FROM system.events WHERE event = 'InsertedRows'").Scan(&n); err != nil {
		return 0, fmt.Errorf("inserted rows: %w", err)
	}
	return n, nil
}

// RunningMerges returns how many merges the server is running
// (system.merges). Benchmarks wait for it to reach 0 after a load, so the
// merges a load leaves behind count towards the load, not towards what
// is measured next.
func (c *Client) RunningMerges(ctx context.Context) (uint64, error) {
	var n uint64
	if err := c.conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil {
		return 0, fmt.Errorf("running merges: %w", err)
	}
	return n, nil
}
