package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestDailySaltIntegration checks that replicas agree on a day's salt even
// when they race to create it, that days get different salts, and that
// DestroySalts leaves nothing of the days before.
func TestDailySaltIntegration(t *testing.T) {
	a := migrated(t, Config{})
	b := openClient(t, Config{Database: a.Database()})
	ctx := context.Background()
	day := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	candidate := func(v byte) []byte { return bytes.Repeat([]byte{v}, SaltSize) }

	// Two replicas propose different salts for the same day at once.
	var (
		wg   sync.WaitGroup
		got  [2][]byte
		errs [2]error
	)
	for i, c := range []*Client{a, b} {
		wg.Go(func() { got[i], errs[i] = c.DailySalt(ctx, day, candidate(byte(i+1))) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	// Whatever each saw during the race, both converge on one salt.
	agreed, err := a.DailySalt(ctx, day, candidate(9))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := b.DailySalt(ctx, day.Add(8*time.Hour), candidate(7)); !bytes.Equal(agreed, again) {
		t.Fatalf("replicas disagree on the day's salt: %x vs %x", agreed, again)
	}
	if !bytes.Equal(agreed, candidate(1)) && !bytes.Equal(agreed, candidate(2)) {
		t.Fatalf("agreed salt %x is not one of the candidates", agreed)
	}
	next, err := b.DailySalt(ctx, day.AddDate(0, 0, 1), candidate(3))
	if err != nil || !bytes.Equal(next, candidate(3)) {
		t.Fatalf("next day's salt = %x, %v; want the candidate", next, err)
	}
	if _, err := a.DailySalt(ctx, day, []byte("short")); err == nil {
		t.Error("a short candidate was accepted")
	}

	// Destroying before the next day leaves only the next day's salt.
	if err := a.DestroySalts(ctx, day.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE day < toDate('2026-11-29')", a.PrivateDatabase(), TableSessionSalts)
	if n := queryUint64(t, a, q); n != 0 {
		t.Fatalf("%d salts of destroyed days are left", n)
	}
	if s, err := b.DailySalt(ctx, day.AddDate(0, 0, 1), candidate(4)); err != nil || !bytes.Equal(s, next) {
		t.Fatalf("the next day's salt changed after DestroySalts: %x, %v", s, err)
	}
	// A destroyed day gets a new salt if asked again, never the old one.
	if s, err := b.DailySalt(ctx, day, candidate(5)); err != nil || bytes.Equal(s, agreed) {
		t.Fatalf("destroyed salt came back: %x, %v", s, err)
	}
}

// TestSaltsMoveToPrivateDatabaseIntegration upgrades a database whose
// session_salts table migration 5 made next to the analysts' tables, as
// before migration 7: the agreed salts move to the private database, and
// the old table is gone.
func TestSaltsMoveToPrivateDatabaseIntegration(t *testing.T) {
	ctx := context.Background()
	c := openClient(t, Config{Database: testDB(t)})
	if _, err := c.migrate(ctx, Migrations()[:6]); err != nil {
		t.Fatal(err)
	}
	old := sessionSaltsTable(c.Database())
	for _, stmt := range old.def.create(c.Dialect(), c.schema.opts) {
		if err := c.execDDL(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	agreed := bytes.Repeat([]byte{5}, SaltSize)
	if err := insertRows(ctx, c.conn, old, []saltRow{{day: day, salt: agreed, createdAt: day}}); err != nil {
		t.Fatal(err)
	}
	// 7 and every later migration.
	if applied, err := c.Migrate(ctx); err != nil || fmt.Sprint(applied) != fmt.Sprint(versionsOf(Migrations()[6:])) {
		t.Fatalf("Migrate = %v, %v; want %v", applied, err, versionsOf(Migrations()[6:]))
	}
	if got, err := c.DailySalt(ctx, day, bytes.Repeat([]byte{6}, SaltSize)); err != nil || !bytes.Equal(got, agreed) {
		t.Errorf("salt after the move = %x, %v; want the agreed %x", got, err, agreed)
	}
	q := fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = '%s'", c.Database(), TableSessionSalts)
	if n := queryUint64(t, c, q); n != 0 {
		t.Errorf("the old session_salts table is still in %s", c.Database())
	}
	// Running the move again (an interrupted migration) changes nothing.
	if err := c.moveSalts(ctx); err != nil {
		t.Fatal(err)
	}
}
