package clickhouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDetachedPartsIntegration detaches the partition of the gestures
// table that holds a consent's rows, as an operator would, on 18.16
// (which lists no detached parts, so the folders are read): the consent's
// erasure then finishes, but its rows are still in the detached part's
// files, and DetachedParts names the part, as ClickHouse names it when
// it set the part aside itself (broken_...). Folders a query works on
// are left out; once the part is dropped, nothing is listed.
func TestDetachedPartsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	const app = "com.example.notes"
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)
	if err := c.Insert(ctx, keyedRows(k1, k2)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.DetachedParts(ctx); err != nil || len(got) != 0 {
		t.Fatalf("before any detach: %v, %v", got, err)
	}
	part := detachConsentPartition(t, c, k1)
	if _, err := c.Erase(ctx, app, k1); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if n := consentRows(t, c, TableGestures, app, k1); n != 0 {
		t.Fatalf("%d rows of the erased consent in gestures", n)
	}
	folder := filepath.Join(filepath.Dir(filepath.Clean(part.Path)), "detached", part.Name)
	count, err := os.ReadFile(filepath.Join(folder, "count.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.ParseUint(strings.TrimSpace(string(count)), 10, 64); n != part.Rows || n == 0 {
		t.Fatalf("the detached part holds %q rows, want the %d it had", count, part.Rows)
	}

	want := DetachedPart{Database: c.Database(), Table: TableGestures, Name: part.Name}
	check := func(what string, want ...DetachedPart) {
		t.Helper()
		got, err := c.DetachedParts(ctx)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: DetachedParts = %v, %v; want %v", what, got, err, want)
		}
	}
	check("detached by an operator", want)

	broken := filepath.Join(filepath.Dir(folder), "broken_"+part.Name)
	if err := os.Rename(folder, broken); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(filepath.Dir(folder), "attaching_"+part.Name), 0o750); err != nil {
		t.Fatal(err)
	}
	want.Name, want.Reason = "broken_"+part.Name, "broken"
	check("set aside by ClickHouse, and one being attached", want)
	if s := want.String(); !strings.Contains(s, "gestures broken_"+part.Name+" (broken)") {
		t.Errorf("described as %q", s)
	}

	if err := os.RemoveAll(broken); err != nil {
		t.Fatal(err)
	}
	check("dropped")
}

// consentPart is a part of the gestures table, as system.parts lists it.
type consentPart struct {
	Name      string `ch:"name"`
	Partition string `ch:"partition"`
	Path      string `ch:"path"`
	Rows      uint64 `ch:"rows"`
}

// detachConsentPartition detaches, as an operator would, the partition of
// c's gestures table that holds the first part (by name) with rows of
// consent key, and returns that part as it was.
func detachConsentPartition(t *testing.T, c *Client, key string) consentPart {
	t.Helper()
	ctx := context.Background()
	var part consentPart
	q := fmt.Sprintf(`SELECT name, partition, path, rows FROM system.parts
WHERE database = %s AND table = 'gestures' AND active AND name IN (SELECT _part FROM %s.gestures WHERE consent_key = %s)
ORDER BY name LIMIT 1`, quote(c.Database()), c.Database(), quote(key))
	if err := c.conn.QueryRow(ctx, q).ScanStruct(&part); err != nil {
		t.Fatal(err)
	}
	if err := c.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.gestures DETACH PARTITION %s", c.Database(), part.Partition)); err != nil {
		t.Fatal(err)
	}
	return part
}

// TestClusterDetachedPartsIntegration detaches a partition of a
// replicated table on one server of the cluster: ClickHouse detaches it
// on both replicas of that shard, and DetachedParts, asked through one
// server, names it on each, with the server it is on.
func TestClusterDetachedPartsIntegration(t *testing.T) {
	db := clusterDB(t, "t_cluster_detached")
	c := clusterMigrated(t, db, [2]int{0, 0})
	ctx := context.Background()
	if err := c.Insert(ctx, clusterRows("com.example.detached", fmt.Sprintf("%064x", 1), 40, time.Now().UTC().Truncate(24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	conn := cluster.Get(t).Conn(t, 0, 0)
	var partition string
	eventually(t, "a sessions part on the first shard", func() error {
		return conn.QueryRow(ctx, fmt.Sprintf("SELECT partition FROM system.parts WHERE database = %s AND table = 'sessions_local' AND active ORDER BY name LIMIT 1", quote(db))).Scan(&partition)
	})
	// 18.16 runs it on the shard's leader replica; another forwards it as
	// a user the locked-down servers lack.
	detach := fmt.Sprintf("ALTER TABLE %s.sessions_local DETACH PARTITION %s", db, partition)
	if err := conn.Exec(ctx, detach); err != nil {
		if err := cluster.Get(t).Conn(t, 0, 1).Exec(ctx, detach); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the partition detached on both replicas", func() error {
		got, err := c.DetachedParts(ctx)
		if err != nil {
			return err
		}
		servers := map[string]bool{}
		for _, p := range got {
			if p.Database != db || p.Table != "sessions_local" || p.Reason != "" {
				return fmt.Errorf("unexpected detached part %v", p)
			}
			servers[p.Server] = true
		}
		if len(servers) != 2 {
			return fmt.Errorf("detached parts %v: want them on the two replicas of one shard", got)
		}
		return nil
	})
}
