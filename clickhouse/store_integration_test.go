package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// columnDefs returns, per table of db, its columns as the server describes
// them (name, type, default and comment), in table order.
func columnDefs(t *testing.T, c *Client, db string, tables []string) map[string][]string {
	t.Helper()
	out := make(map[string][]string)
	for _, table := range tables {
		var cols []struct {
			Name    string `ch:"name"`
			Type    string `ch:"type"`
			Kind    string `ch:"default_kind"`
			Default string `ch:"default_expression"`
			Comment string `ch:"comment"`
		}
		// Without ORDER BY, system.columns lists a table's columns in order.
		q := fmt.Sprintf("SELECT name, type, default_kind, default_expression, comment FROM system.columns WHERE database = %s AND table = %s", quote(db), quote(table))
		if err := c.conn.Select(context.Background(), &cols, q); err != nil {
			t.Fatal(err)
		}
		for _, col := range cols {
			out[table] = append(out[table], fmt.Sprintf("%s %s %s %s %q", col.Name, col.Type, col.Kind, col.Default, col.Comment))
		}
	}
	return out
}

// TestUpgradeIntegration migrates a database that an earlier version made
// (migrations 1 and 2, event tables without consent_key, rows in them) and
// checks it ends up like a new one.
func TestUpgradeIntegration(t *testing.T) {
	ctx := context.Background()
	db := testDB(t)
	c := openClient(t, Config{Database: db})
	if applied, err := c.migrate(ctx, Migrations()[:2]); err != nil || !slices.Equal(applied, []int{1, 2}) {
		t.Fatalf("migrations 1 and 2: %v, %v", applied, err)
	}
	// Migration 1 creates the tables as they are now; without consent_key
	// they are as the earlier version left them.
	for _, table := range EventTables() {
		if err := c.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP COLUMN consent_key", db, table)); err != nil {
			t.Fatal(err)
		}
	}
	old := fmt.Sprintf("INSERT INTO %s.sessions (app_id, event_date, event_time, event_id, phase) SELECT 'com.example.notes', today(), now(), generateUUIDv4(), 'start'", db)
	if err := c.conn.Exec(ctx, old); err != nil {
		t.Fatal(err)
	}
	// The new collector's inserts name consent_key: they need migration 3.
	rows := &pipeline.Rows{Sessions: []pipeline.SessionRow{{Common: testCommon(1, time.Now()), Phase: "start"}}}
	rows.Sessions[0].ConsentKey = "0a1b"
	if err := c.Insert(ctx, rows); err == nil || errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Errorf("Insert before the upgrade = %v, want a permanent error", err)
	}

	applied, err := c.Migrate(ctx)
	if want := versionsOf(Migrations()[2:]); err != nil || !slices.Equal(applied, want) {
		t.Fatalf("upgrade: applied %v, %v; want %v", applied, err, want)
	}
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatalf("Insert after the upgrade: %v", err)
	}
	if got := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.sessions WHERE consent_key = ''", db)); got != 1 {
		t.Errorf("%d rows of before the upgrade with an empty consent_key, want 1", got)
	}
	if n, err := c.Erase(ctx, "com.example.notes", "0a1b"); err != nil || n[TableSessions] != 1 {
		t.Errorf("Erase after the upgrade = %v, %v", n, err)
	}

	// Running migration 3 again changes nothing: 18.16 has no ADD COLUMN
	// IF NOT EXISTS, and the error that the column exists counts as done.
	for _, stmt := range Migrations()[2].Statements(c.Dialect(), c.schema.opts) {
		if err := c.execDDL(ctx, stmt); err != nil {
			t.Errorf("again: %v\n%s", err, stmt)
		}
	}
	if again, err := c.Migrate(ctx); err != nil || len(again) != 0 {
		t.Errorf("Migrate after the upgrade = %v, %v; want nothing applied", again, err)
	}

	// The upgraded tables are those of a new database, column for column.
	freshDB := db + "_fresh"
	if err := c.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+freshDB); err != nil {
		t.Fatal(err)
	}
	fresh := migrated(t, Config{Database: freshDB})
	tables := append(Tables(), TableApps, TableRevocations, TableMigrations)
	upgraded, created := columnDefs(t, c, db, tables), columnDefs(t, fresh, freshDB, tables)
	for _, table := range tables {
		if !slices.Equal(upgraded[table], created[table]) || len(created[table]) == 0 {
			t.Errorf("%s:\nupgraded %q\n     new %q", table, upgraded[table], created[table])
		}
	}
	if want := "consent_key String DEFAULT '' \"For apps whose erasure policy is erasable"; !strings.HasPrefix(upgraded[TableCrashes][15], want) {
		t.Errorf("crashes' 16th column: %s", upgraded[TableCrashes][15])
	}
}

// sameApp reports whether two apps are equal, comparing times as instants.
func sameApp(a, b consent.App) bool {
	return a.ID == b.ID && a.KeyHash == b.KeyHash && slices.Equal(a.Scopes, b.Scopes) && a.Policy == b.Policy &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestAppsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	v1 := consent.App{ID: "com.example.notes", KeyHash: consent.HashAppKey("key 1"),
		Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports}, Policy: consent.PolicyAnonymous, CreatedAt: at, UpdatedAt: at}
	v2 := v1
	v2.KeyHash, v2.Scopes, v2.Policy, v2.UpdatedAt = consent.HashAppKey("key 2"), []consentryv1.Scope{consentryv1.ScopeAnalytics}, consent.PolicyErasable, at.Add(time.Minute)
	other := consent.App{ID: "com.example.maps", KeyHash: consent.HashAppKey("key 3"), Policy: consent.PolicyErasable,
		CreatedAt: at.Add(-time.Hour), UpdatedAt: at.Add(-time.Hour)}

	if apps, err := c.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("Apps of an empty store = %v, %v", apps, err)
	}
	// v1 again after v2, as from a collector with a stale copy: v2 stays
	// the latest.
	for _, a := range []consent.App{v1, other, v2, v1} {
		if err := c.PutApp(ctx, a); err != nil {
			t.Fatalf("PutApp(%s): %v", a.ID, err)
		}
	}
	check := func(when string) {
		t.Helper()
		apps, err := c.Apps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(apps) != 2 || !sameApp(apps[0], other) || !sameApp(apps[1], v2) {
			t.Errorf("Apps %s = %+v\nwant %+v and %+v", when, apps, other, v2)
		}
	}
	check("before merges")
	if err := c.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.apps FINAL", c.Database())); err != nil {
		t.Fatal(err)
	}
	check("after merges")
	if n := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.apps", c.Database())); n != 2 {
		t.Errorf("%d rows after merges, want 2", n)
	}

	bad := v2
	bad.Policy = "forgetful"
	if err := c.PutApp(ctx, bad); err == nil {
		t.Error("PutApp with an unknown policy: no error")
	}
}

func TestRevocationsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const app = "com.example.notes"
	h1, h2, h3 := consent.HashConsentID("consent 1"), consent.HashConsentID("consent 2"), consent.HashConsentID("consent 3")
	first := consent.Revocation{ConsentHash: h1, AppID: app, RevokedAt: now.Add(-2 * time.Hour), ExpiresAt: now.AddDate(0, 0, 20)}
	again := first
	again.RevokedAt, again.Erase = now.Add(-time.Hour), true
	second := consent.Revocation{ConsentHash: h2, AppID: app, RevokedAt: now.Add(-30 * time.Minute), ExpiresAt: now.AddDate(0, 0, 1), Erase: true}
	expired := consent.Revocation{ConsentHash: h3, AppID: app, RevokedAt: now.AddDate(0, 0, -3), ExpiresAt: now.Add(-time.Hour)}
	// The repeated revocation is stored last: a plain ReplacingMergeTree
	// would keep it.
	for _, r := range []consent.Revocation{first, second, expired, again} {
		if err := c.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	check := func(since, at time.Time, want ...consent.Revocation) {
		t.Helper()
		got, err := c.Revocations(ctx, since, at)
		if err != nil {
			t.Fatal(err)
		}
		same := len(got) == len(want)
		for i := 0; same && i < len(got); i++ {
			g, w := got[i], want[i]
			same = g.ConsentHash == w.ConsentHash && g.AppID == w.AppID && g.RevokedAt.Equal(w.RevokedAt) && g.ExpiresAt.Equal(w.ExpiresAt) && g.Erase == w.Erase
		}
		if !same {
			t.Errorf("Revocations(%s, %s) = %+v\nwant %+v", since.Format(time.TimeOnly), at.Format(time.DateTime), got, want)
		}
	}
	for _, merged := range []bool{false, true} {
		if merged {
			if err := c.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.revocations FINAL", c.Database())); err != nil {
				t.Fatal(err)
			}
			if n := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.revocations WHERE consent_hash = '%s'", c.Database(), h1)); n != 1 {
				t.Errorf("%d rows of the consent revoked twice after merges, want 1", n)
			}
		}
		// The first revocation counts, whole.
		check(time.Time{}, now, first, second)
		// Consent 1 was revoked before since, so it is not new, though it
		// was revoked again after.
		check(now.Add(-90*time.Minute), now, second)
		check(now.Add(-30*time.Minute), now, second)
		check(now.Add(-29*time.Minute), now)
		// Revocations go with their tokens.
		check(time.Time{}, now.AddDate(0, 0, 2), first)
		check(time.Time{}, now.Add(-2*time.Hour), expired, first, second)
	}

	id := first
	id.ConsentHash = "consent 1"
	if err := c.PutRevocation(ctx, id); err == nil {
		t.Error("PutRevocation with a consent id instead of its hash: no error")
	}
}

func TestPruneRevocationsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	expiries := map[string]time.Time{
		"september":       time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC),
		"end of october":  time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC),
		"an hour ago":     now.Add(-time.Hour),
		"in an hour":      now.Add(time.Hour),
		"in december":     time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC),
		"a second before": now.Add(-time.Second),
	}
	for name, exp := range expiries {
		r := consent.Revocation{ConsentHash: consent.HashConsentID(name), AppID: "com.example.notes", RevokedAt: exp.AddDate(0, 0, -60), ExpiresAt: exp}
		if err := c.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := c.PruneRevocations(ctx, now); err != nil {
			t.Fatalf("PruneRevocations: %v", err)
		}
		var left []struct {
			Hash string `ch:"consent_hash"`
		}
		if err := c.conn.Select(ctx, &left, fmt.Sprintf("SELECT consent_hash FROM %s.revocations ORDER BY expires_at", c.Database())); err != nil {
			t.Fatal(err)
		}
		want := []string{consent.HashConsentID("in an hour"), consent.HashConsentID("in december")}
		if len(left) != 2 || left[0].Hash != want[0] || left[1].Hash != want[1] {
			t.Errorf("left after pruning: %v, want %v", left, want)
		}
		q := fmt.Sprintf("SELECT groupArray(partition_id) FROM (SELECT DISTINCT partition_id FROM system.parts WHERE database = '%s' AND table = 'revocations' AND active ORDER BY partition_id)", c.Database())
		var parts []string
		if err := c.conn.QueryRow(ctx, q).Scan(&parts); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(parts, []string{"202611", "202612"}) {
			t.Errorf("partitions after pruning: %v", parts)
		}
	}
	// The second run found nothing to delete and started no mutation.
	if n := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM system.mutations WHERE database = '%s'", c.Database())); n != 1 {
		t.Errorf("%d mutations, want 1", n)
	}
}

// consentRows counts the rows of app under key in table.
func consentRows(t *testing.T, c *Client, table, app, key string) uint64 {
	t.Helper()
	return queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.%s WHERE app_id = %s AND consent_key = %s", c.Database(), table, quote(app), quote(key)))
}

// eachCommon calls f with the table and the common columns of every row
// of rows, table by table in the order of EventTables.
func eachCommon(rows *pipeline.Rows, f func(table string, c *pipeline.Common)) {
	for i := range rows.Sessions {
		f(TableSessions, &rows.Sessions[i].Common)
	}
	for i := range rows.Gestures {
		f(TableGestures, &rows.Gestures[i].Common)
	}
	for i := range rows.Crashes {
		f(TableCrashes, &rows.Crashes[i].Common)
	}
	for i := range rows.Customs {
		f(TableCustomEvents, &rows.Customs[i].Common)
	}
	for i := range rows.Diagnostics {
		f(TableDiagnostics, &rows.Diagnostics[i].Common)
	}
}

// commons returns the common columns of every row, by table.
func commons(rows *pipeline.Rows) map[string][]*pipeline.Common {
	out := make(map[string][]*pipeline.Common)
	eachCommon(rows, func(table string, c *pipeline.Common) { out[table] = append(out[table], c) })
	return out
}

// keyedRows returns mixed rows of today and of yesterday, from two row
// generators, each row of a table under keys[i%len(keys)] by its place i
// in the table.
func keyedRows(keys ...string) *pipeline.Rows {
	rows := newRowGen(5, time.Now()).rows(1500)
	rows.Append(newRowGen(6, time.Now().AddDate(0, 0, -1)).rows(1500))
	for _, cms := range commons(rows) {
		for i, cm := range cms {
			cm.ConsentKey = keys[i%len(keys)]
		}
	}
	return rows
}

// countRows counts, by table, the rows of rows whose common columns match;
// a table with none has no entry.
func countRows(rows *pipeline.Rows, match func(*pipeline.Common) bool) map[string]uint64 {
	n := make(map[string]uint64)
	eachCommon(rows, func(table string, c *pipeline.Common) {
		if match(c) {
			n[table]++
		}
	})
	return n
}

func TestEraseIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	const app = "com.example.notes"
	k1, k2 := fmt.Sprintf("%064x", 1), fmt.Sprintf("%064x", 2)

	// Rows of three apps, each under consent 1, consent 2 or none; two
	// inserts, so the tables have several parts.
	rows := keyedRows(k1, k2, "")
	want := countRows(rows, func(cm *pipeline.Common) bool { return cm.AppID == app && cm.ConsentKey == k1 })
	for _, table := range EventTables() {
		if want[table] == 0 {
			t.Fatalf("no rows of consent 1 in %s to erase", table)
		}
	}
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	count := func(table, cond string) uint64 {
		return queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", c.Database(), table, cond))
	}
	before := make(map[string]map[string]uint64)
	for _, table := range append(EventTables(), TableSessionsDaily) {
		before[table] = map[string]uint64{"all": count(table, "1")}
		if table != TableSessionsDaily {
			before[table]["k2"] = count(table, "consent_key = "+quote(k2))
			before[table]["none"] = count(table, "consent_key = ''")
			before[table]["k1 other apps"] = count(table, fmt.Sprintf("consent_key = %s AND app_id != %s", quote(k1), quote(app)))
		}
	}

	start := time.Now()
	deleted, err := c.Erase(ctx, app, k1)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	t.Logf("erased %v in %v", deleted, time.Since(start).Round(time.Millisecond))
	if !maps.Equal(deleted, want) {
		t.Errorf("Erase = %v, want %v", deleted, want)
	}
	for _, table := range EventTables() {
		if n := consentRows(t, c, table, app, k1); n != 0 {
			t.Errorf("%s: %d rows of consent 1 left", table, n)
		}
		if n := count(table, "1"); n != before[table]["all"]-want[table] {
			t.Errorf("%s: %d rows left of %d, want %d deleted", table, n, before[table]["all"], want[table])
		}
		if n := count(table, "consent_key = "+quote(k2)); n != before[table]["k2"] {
			t.Errorf("%s: %d rows of consent 2, want %d", table, n, before[table]["k2"])
		}
		if n := count(table, "consent_key = ''"); n != before[table]["none"] {
			t.Errorf("%s: %d rows without a consent key, want %d", table, n, before[table]["none"])
		}
		if n := count(table, fmt.Sprintf("consent_key = %s AND app_id != %s", quote(k1), quote(app))); n != before[table]["k1 other apps"] {
			t.Errorf("%s: %d rows of other apps under the same key, want %d", table, n, before[table]["k1 other apps"])
		}
	}
	// The aggregate holds no consent key and stays as it was.
	if n := count(TableSessionsDaily, "1"); n != before[TableSessionsDaily]["all"] {
		t.Errorf("sessions_daily: %d rows, want %d", n, before[TableSessionsDaily]["all"])
	}

	again, err := c.Erase(ctx, app, k1)
	if err != nil {
		t.Fatalf("second Erase: %v", err)
	}
	if want := map[string]uint64{"sessions": 0, "gestures": 0, "crashes": 0, "custom_events": 0, "diagnostics": 0}; !maps.Equal(again, want) {
		t.Errorf("second Erase = %v, want zeros", again)
	}

	// Each erasure is on record, one row per table, without payload.
	var audit []struct {
		App   string    `ch:"app_id"`
		Key   string    `ch:"consent_key"`
		Table string    `ch:"table_name"`
		Rows  uint64    `ch:"rows"`
		At    time.Time `ch:"erased_at"`
	}
	q := fmt.Sprintf("SELECT app_id, consent_key, table_name, rows, erased_at FROM %s.erasures ORDER BY erased_at, rows DESC, table_name", c.Database())
	if err := c.conn.Select(ctx, &audit, q); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]uint64)
	for i, a := range audit {
		if a.App != app || a.Key != k1 || a.At.Before(start.Truncate(time.Second)) {
			t.Errorf("audit row %d: %+v", i, a)
		}
		got[a.Table] += a.Rows
	}
	if len(audit) != 2*len(EventTables()) || !maps.Equal(got, want) {
		t.Errorf("audit log: %+v; want two rows per table, with %v deleted", audit, want)
	}

	for _, args := range [][2]string{{app, ""}, {"", k1}, {app, "it's"}} {
		if _, err := c.Erase(ctx, args[0], args[1]); err == nil {
			t.Errorf("Erase(%q, %q): no error", args[0], args[1])
		}
	}
}

// TestEraseWaitIsBoundedIntegration checks that waiting for a mutation
// that cannot finish ends with the context.
func TestEraseWaitIsBoundedIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	db := c.Database()
	for _, stmt := range []string{
		fmt.Sprintf("CREATE TABLE %s.stuck (x UInt8 COMMENT 'x') ENGINE = MergeTree() ORDER BY x", db),
		fmt.Sprintf("INSERT INTO %s.stuck (x) SELECT 1", db),
		// Fails on every attempt, so it never finishes.
		fmt.Sprintf("ALTER TABLE %s.stuck DELETE WHERE throwIf(x = 1) = 0", db),
	} {
		if err := c.conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	defer c.conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.stuck", db))
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := c.waitMutations(wctx, []string{"stuck"}, "throwIf")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 mutations unfinished") {
		t.Errorf("waitMutations = %v, want the deadline with what is unfinished", err)
	}
	t.Log(err)
	if err := c.waitMutations(ctx, []string{"stuck"}, "no such command"); err != nil {
		t.Errorf("waitMutations for nothing: %v", err)
	}
}

// TestStoreQueriesIntegration runs the consent store's query text on
// 18.16 (the chDB test runs the same text on 26.x).
func TestStoreQueriesIntegration(t *testing.T) {
	c := migrated(t, Config{})
	for _, q := range storeQueries(c.Dialect(), c.Database()) {
		rows, err := c.conn.Query(context.Background(), q)
		if err != nil {
			t.Errorf("%v\n%s", err, q)
			continue
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%v\n%s", err, q)
		}
		rows.Close()
	}
}
