package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestInsertInBlocksMakesOnePart checks that an insert larger than
// insertBlockRows, sent in several blocks, is still one part per table
// and partition (the server squashes the blocks of one INSERT), with
// every row stored, in the event tables and in the held ones.
func TestInsertInBlocksMakesOnePart(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(3 * time.Hour)
	rows := newRowGen(7, day).rows(6 * insertBlockRows) // gestures: about 2.4 blocks
	if n := len(rows.Gestures); n <= insertBlockRows {
		t.Fatalf("only %d gestures: not several blocks", n)
	}
	// Every row on one day, so one partition per table.
	for i := range rows.Gestures {
		rows.Gestures[i].EventTime = day
	}
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertHeld(ctx, rows, ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ db, table string }{{c.Database(), TableGestures}, {c.PrivateDatabase(), HeldTablePrefix + TableGestures}} {
		db, table := tc.db, tc.table
		parts := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM system.parts WHERE database = '%s' AND table = '%s' AND active", db, table))
		if parts != 1 {
			t.Errorf("%s: %d parts after one insert of %d rows, want 1", table, parts, len(rows.Gestures))
		}
		stored := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.%s", db, table))
		if stored != uint64(len(rows.Gestures)) {
			t.Errorf("%s: %d rows stored, want %d", table, stored, len(rows.Gestures))
		}
	}
}
