package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestErasedWithRowsIntegration detaches the partition of the gestures
// table that holds rows of a consent, erases the consent, and attaches
// the partition back, as an operator restoring it would: the consent's
// rows are stored again. ErasedWithRows finds that consent and no other,
// and erasing it again leaves nothing.
func TestErasedWithRowsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	const app = "com.example.notes"
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	start := time.Now().Add(-time.Second)
	if err := c.Insert(ctx, keyedRows(k1, k2)); err != nil {
		t.Fatal(err)
	}
	partition := detachConsentPartition(t, c, k1).Partition
	if _, err := c.Erase(ctx, app, k1); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ErasedWithRows(ctx, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("right after the erasure: %v, %v", got, err)
	}
	if err := c.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.gestures ATTACH PARTITION %s", c.Database(), partition)); err != nil {
		t.Fatal(err)
	}
	back := consentRows(t, c, TableGestures, app, k1)
	if back == 0 {
		t.Fatal("no rows of the erased consent came back with the partition")
	}
	got, err := c.ErasedWithRows(ctx, time.Time{})
	if err != nil || len(got) != 1 || got[0] != (ErasedConsent{AppID: app, ConsentKey: k1, Rows: back}) {
		t.Fatalf("ErasedWithRows = %v, %v; want consent 1 with its %d rows back", got, err, back)
	}
	if got, err := c.ErasedWithRows(ctx, start.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("erasures since an hour from now: %v, %v", got, err)
	}
	if got, err := c.ErasedWithRows(ctx, start); err != nil || len(got) != 1 {
		t.Fatalf("erasures since the test began: %v, %v", got, err)
	}
	if _, err := c.Erase(ctx, app, k1); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ErasedWithRows(ctx, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("after erasing again: %v, %v", got, err)
	}
	if n := consentRows(t, c, TableGestures, app, k2); n == 0 {
		t.Error("the other consent's rows went too")
	}
}

// TestClusterErasedWithRowsIntegration stores an erased consent's rows
// again on the cluster: ErasedWithRows, asked through one server, finds
// them on the shards' local tables, and erasing again leaves none.
func TestClusterErasedWithRowsIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_erased")
	c := clusterMigrated(t, db, [2]int{0, 0})
	ctx := context.Background()
	const app = "com.example.erased"
	key := fmt.Sprintf("%064x", 7)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	if err := c.Insert(ctx, clusterRows(app, key, 20, day)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Erase(ctx, app, key); err != nil {
		t.Fatal(err)
	}
	if err := c.Insert(ctx, clusterRows(app, key, 20, day)); err != nil { // new event ids: a restored copy
		t.Fatal(err)
	}
	eventually(t, "the erased consent's rows found again", func() error {
		got, err := c.ErasedWithRows(ctx, time.Time{})
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].AppID != app || got[0].ConsentKey != key || got[0].Rows == 0 {
			return fmt.Errorf("ErasedWithRows = %v", got)
		}
		return nil
	})
	if _, err := c.Erase(ctx, app, key); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ErasedWithRows(ctx, time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("after erasing again: %v, %v", got, err)
	}
}
