package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/pipeline"
)

// shared is the ClickHouse server of this test binary (Debian's 18.16 in
// CI); nil under -short. Each test uses a database of its own.
var shared *chserver.Server

func TestMain(m *testing.M) {
	code := chtest.Main(m, &shared)
	cluster.Stop()
	os.Exit(code)
}

// testDB returns a database name for t, dropping any left by an earlier run.
func testDB(t testing.TB) string {
	t.Helper()
	chtest.Require(t, shared)
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return r
		}
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name())
	name = "t_" + name
	for _, db := range []string{name, name + "_private"} {
		if err := chtest.Conn(t, shared).Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// openClient opens a Client on the shared server (or cfg.Addr, a proxy
// to it) as its user, in a database of t's own.
func openClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.Database == "" {
		cfg.Database = testDB(t)
	}
	chtest.Require(t, shared)
	if cfg.Addr == "" {
		cfg.Addr = shared.Addr()
	}
	if cfg.Username == "" {
		cfg.Username, cfg.Password = shared.User(), shared.Password()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Open(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// migrated returns a Client whose schema is in place.
func migrated(t testing.TB, cfg Config) *Client {
	t.Helper()
	c := openClient(t, cfg)
	if _, err := c.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return c
}

// queryUint64 runs a query returning one number.
func queryUint64(t *testing.T, c *Client, q string) uint64 {
	t.Helper()
	var n uint64
	if err := c.conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// storedEvents counts the distinct events stored in every event table.
func storedEvents(t *testing.T, c *Client) uint64 {
	t.Helper()
	var total uint64
	for _, table := range Tables()[:5] {
		total += queryUint64(t, c, fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.%s", c.Database(), table))
	}
	return total
}

func TestMigrateIntegration(t *testing.T) {
	db := testDB(t)
	a, b := openClient(t, Config{Database: db}), openClient(t, Config{Database: db})
	t.Logf("server %s", a.Dialect())

	// Two collectors starting at once.
	var wg sync.WaitGroup
	var appliedA, appliedB []int
	var errA, errB error
	wg.Go(func() { appliedA, errA = a.Migrate(context.Background()) })
	wg.Go(func() { appliedB, errB = b.Migrate(context.Background()) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("concurrent Migrate: %v, %v", errA, errB)
	}
	var all []int
	for _, m := range Migrations() {
		all = append(all, m.Version)
	}
	if got := slices.Compact(slices.Sorted(slices.Values(append(appliedA, appliedB...)))); !slices.Equal(got, all) {
		t.Errorf("applied %v and %v, want %v between them", appliedA, appliedB, all)
	}
	again, err := a.Migrate(context.Background())
	if err != nil || len(again) != 0 {
		t.Errorf("second Migrate = %v, %v; want nothing applied", again, err)
	}

	var tables []struct {
		Name   string `ch:"name"`
		Engine string `ch:"engine"`
	}
	if err := a.conn.Select(context.Background(), &tables, fmt.Sprintf("SELECT name, engine FROM system.tables WHERE database = '%s' ORDER BY name", db)); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(tables)
	want := "[{apps ReplacingMergeTree} {crash_group_changes MergeTree} {crash_group_status MergeTree} {crash_groups_daily AggregatingMergeTree} {crash_groups_daily_mv MaterializedView} {crashes ReplacingMergeTree} {custom_events ReplacingMergeTree} {diagnostics ReplacingMergeTree} {erasures MergeTree} {gestures ReplacingMergeTree} " +
		"{privacy_counts SummingMergeTree} {rejects SummingMergeTree} {revocations ReplacingMergeTree} {schema_migrations MergeTree} {sessions ReplacingMergeTree} {sessions_daily AggregatingMergeTree} {sessions_daily_mv MaterializedView}]"
	if got != want {
		t.Errorf("tables:\n got %s\nwant %s", got, want)
	}
	// The server kept a comment on every column. (The view's columns are
	// those of its SELECT; analysts read the table it fills.)
	uncommented := queryUint64(t, a, fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s' AND table NOT IN ('%s', '%s') AND comment = ''", db, ViewSessionsDaily, ViewCrashGroupsDaily))
	columns := queryUint64(t, a, fmt.Sprintf("SELECT count() FROM system.columns WHERE database = '%s'", db))
	if uncommented != 0 || columns < 100 {
		t.Errorf("%d of %d columns without a comment", uncommented, columns)
	}
}

// day is an expected Date value, as YYYY-MM-DD.
type day string

// sameValue reports whether a value read back equals the expected one.
func sameValue(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	case day:
		g, ok := got.(time.Time)
		return ok && g.Format(time.DateOnly) == string(w)
	}
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	if gv.Kind() == reflect.Slice && wv.Kind() == reflect.Slice && gv.Type() == wv.Type() && gv.Len() == 0 && wv.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

// checkRow reads the row with cm's event id from table and compares every
// column with want, which must name every column of the table.
func checkRow(t *testing.T, c *Client, table *tableDef, cm pipeline.Common, want map[string]any) {
	t.Helper()
	cols := table.columnNames()
	if len(want) != len(cols) {
		t.Errorf("%s: the test expects %d columns, the table has %d", table.name, len(want), len(cols))
	}
	q := fmt.Sprintf("SELECT %s FROM %s.%s WHERE event_id = toUUID('%s')", strings.Join(cols, ", "), c.Database(), table.name, uuid.UUID(cm.EventID))
	rows, err := c.conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row for event %x", table.name, cm.EventID)
	}
	vals := make([]any, len(cols))
	for i, ct := range rows.ColumnTypes() {
		vals[i] = reflect.New(ct.ScanType()).Interface()
	}
	if err := rows.Scan(vals...); err != nil {
		t.Fatalf("%s: scan: %v", table.name, err)
	}
	for i, col := range cols {
		got := reflect.ValueOf(vals[i]).Elem().Interface()
		w, ok := want[col]
		if !ok {
			t.Errorf("%s.%s: no expected value", table.name, col)
		} else if !sameValue(got, w) {
			t.Errorf("%s.%s = %#v, want %#v", table.name, col, got, w)
		}
	}
}

// wantCommon returns the expected common columns of a row with cm.
func wantCommon(cm pipeline.Common, extra map[string]any) map[string]any {
	m := map[string]any{
		"app_id": cm.AppID, "event_date": day(cm.EventTime.UTC().Format(time.DateOnly)), "event_time": cm.EventTime,
		"event_id": uuid.UUID(cm.EventID), "session_key": cm.SessionKey, "app_version": cm.AppVersion,
		"app_build": cm.AppBuild, "sdk_version": cm.SDKVersion, "device_class": cm.DeviceClass,
		"device_model": cm.DeviceModel, "os_name": cm.OSName, "os_version": cm.OSVersion,
		"locale": cm.Locale, "country": cm.Country, "region": cm.Region, "consent_key": cm.ConsentKey,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func testCommon(n byte, at time.Time) pipeline.Common {
	return pipeline.Common{
		AppID: "com.example.notes", EventID: [16]byte{0x4e, n, 2, 3, 4, 5, 0x46, 7, 0x88, 9, 10, 11, 12, 13, 14, n},
		EventTime: at, SessionKey: 0xfedcba9876543210 + uint64(n),
		QI: pipeline.QI{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-kotlin/0.3.1",
			DeviceClass: "phone", DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14",
			Locale: "de-AT", Country: "AT", Region: "AT-9"},
	}
}

func TestInsertReadBack(t *testing.T) {
	c := migrated(t, Config{})
	at := time.Date(2025, 11, 28, 23, 59, 58, 0, time.UTC)
	cm := func(n byte) pipeline.Common {
		c := testCommon(n, at)
		if n%2 == 0 { // an erasable app's rows
			c.ConsentKey = fmt.Sprintf("%064x", n)
		}
		return c
	}
	rows := &pipeline.Rows{
		Sessions: []pipeline.SessionRow{
			{Common: cm(1), Phase: "start"},
			{Common: cm(2), Phase: "end", DurationMs: 1 << 40, ForegroundMs: 12345},
		},
		Gestures: []pipeline.GestureRow{{Common: cm(3), Type: "swipe", Screen: "settings.privacy", Count: 7, DurationMs: 4_000_000_000}},
		Crashes: []pipeline.CrashRow{
			{Common: cm(4), ExceptionType: "java.lang.IllegalStateException", Fingerprint: math.MaxUint64 - 1, Message: "can't save [email]'s note",
				Frames: []pipeline.Frame{
					{Module: "com.example.notes", Function: "NoteEditor.save", File: "NoteEditor.kt", Line: 42, InApp: true},
					{Module: "java.base", Function: "Thread.run", File: "", Line: 0, InApp: false},
				}, Thread: "main", Handled: true, AppState: "foreground",
				Breadcrumbs: []pipeline.Breadcrumb{{Type: "screen_view", Name: "editor", OffsetMs: 120_000}, {Type: "tap", Name: "editor"}}},
			{Common: cm(5), ExceptionType: "SIGSEGV", Thread: "worker-1", AppState: "unknown"},
			{Common: cm(6), ExceptionType: "SIGABRT", Frames: []pipeline.Frame{{Module: "libc.so", Function: "abort", Line: 7}},
				Thread: "main", AppState: "background"},
		},
		Customs: []pipeline.CustomRow{
			{Common: cm(7), Name: "export_pdf", StringKeys: []string{"format", "source"}, StringValues: []string{"a4", "menu"},
				NumberKeys: []string{"pages", "ratio"}, NumberValues: []float64{12, 0.25},
				BoolKeys: []string{"premium"}, BoolValues: []bool{true}},
			{Common: cm(8), Name: "noop"},
		},
		Diagnostics: []pipeline.DiagnosticRow{{Common: cm(9), Kind: "memory_warning", DurationMs: 0, StartType: "unknown",
			NetworkType: "wifi", MemoryBytes: 3 << 30}},
	}
	if err := c.Insert(context.Background(), rows); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	s := c.schema
	checkRow(t, c, s.sessions.def, cm(1), wantCommon(cm(1), map[string]any{"phase": "start", "duration_ms": uint64(0), "foreground_ms": uint64(0)}))
	checkRow(t, c, s.sessions.def, cm(2), wantCommon(cm(2), map[string]any{"phase": "end", "duration_ms": uint64(1 << 40), "foreground_ms": uint64(12345)}))
	checkRow(t, c, s.gestures.def, cm(3), wantCommon(cm(3), map[string]any{"gesture_type": "swipe", "screen": "settings.privacy",
		"gesture_count": uint32(7), "duration_ms": uint32(4_000_000_000)}))
	checkRow(t, c, s.crashes.def, cm(4), wantCommon(cm(4), map[string]any{
		"exception_type": "java.lang.IllegalStateException", "fingerprint": uint64(math.MaxUint64 - 1), "message": "can't save [email]'s note",
		"frame_module": []string{"com.example.notes", "java.base"}, "frame_function": []string{"NoteEditor.save", "Thread.run"},
		"frame_file": []string{"NoteEditor.kt", ""}, "frame_line": []uint32{42, 0}, "frame_in_app": []uint8{1, 0},
		"thread": "main", "handled": uint8(1), "app_state": "foreground",
		"breadcrumb_types": []string{"screen_view", "tap"}, "breadcrumb_names": []string{"editor", "editor"}, "breadcrumb_offsets_ms": []int64{120_000, 0}}))
	checkRow(t, c, s.crashes.def, cm(5), wantCommon(cm(5), map[string]any{
		"exception_type": "SIGSEGV", "fingerprint": uint64(0), "message": "", "frame_module": []string{}, "frame_function": []string{},
		"frame_file": []string{}, "frame_line": []uint32{}, "frame_in_app": []uint8{},
		"thread": "worker-1", "handled": uint8(0), "app_state": "unknown",
		"breadcrumb_types": []string{}, "breadcrumb_names": []string{}, "breadcrumb_offsets_ms": []int64{}}))
	checkRow(t, c, s.crashes.def, cm(6), wantCommon(cm(6), map[string]any{
		"exception_type": "SIGABRT", "fingerprint": uint64(0), "message": "", "frame_module": []string{"libc.so"}, "frame_function": []string{"abort"},
		"frame_file": []string{""}, "frame_line": []uint32{7}, "frame_in_app": []uint8{0},
		"thread": "main", "handled": uint8(0), "app_state": "background",
		"breadcrumb_types": []string{}, "breadcrumb_names": []string{}, "breadcrumb_offsets_ms": []int64{}}))
	checkRow(t, c, s.customs.def, cm(7), wantCommon(cm(7), map[string]any{"name": "export_pdf",
		"string_keys": []string{"format", "source"}, "string_values": []string{"a4", "menu"},
		"number_keys": []string{"pages", "ratio"}, "number_values": []float64{12, 0.25},
		"bool_keys": []string{"premium"}, "bool_values": []uint8{1}}))
	checkRow(t, c, s.customs.def, cm(8), wantCommon(cm(8), map[string]any{"name": "noop",
		"string_keys": []string{}, "string_values": []string{}, "number_keys": []string{}, "number_values": []float64{},
		"bool_keys": []string{}, "bool_values": []uint8{}}))
	checkRow(t, c, s.diagnostics.def, cm(9), wantCommon(cm(9), map[string]any{"kind": "memory_warning", "duration_ms": uint32(0),
		"start_type": "unknown", "network_type": "wifi", "memory_bytes": uint64(3 << 30)}))

	// The same events again, as after a client's retry, merge away.
	if err := c.Insert(context.Background(), rows); err != nil {
		t.Fatalf("second Insert: %v", err)
	}
	if err := c.conn.Exec(context.Background(), fmt.Sprintf("OPTIMIZE TABLE %s.crashes FINAL", c.Database())); err != nil {
		t.Fatal(err)
	}
	if n := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.crashes", c.Database())); n != 3 {
		t.Errorf("crashes after a repeated insert and a merge: %d rows, want 3", n)
	}
}

func TestSessionsDailyIntegration(t *testing.T) {
	c := migrated(t, Config{})
	at := time.Date(2025, 11, 28, 12, 0, 0, 0, time.UTC)
	session := func(n byte, key uint64, phase string, dur uint64) pipeline.SessionRow {
		cm := testCommon(n, at)
		cm.SessionKey = key
		return pipeline.SessionRow{Common: cm, Phase: phase, DurationMs: dur, ForegroundMs: dur / 2}
	}
	// Two inserts, so the aggregate has two parts to merge at query time.
	for _, rows := range []*pipeline.Rows{
		{Sessions: []pipeline.SessionRow{session(1, 11, "start", 0), session(2, 22, "start", 0), session(3, 0, "start", 0)}},
		{Sessions: []pipeline.SessionRow{session(4, 11, "end", 60_000), session(5, 22, "end", 30_000), session(6, 33, "start", 0)}},
	} {
		if err := c.Insert(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}
	var got []struct {
		Day      time.Time `ch:"event_date"`
		Starts   uint64    `ch:"starts"`
		Ends     uint64    `ch:"ends"`
		Sessions uint64    `ch:"sessions"`
	}
	q := fmt.Sprintf(`SELECT event_date, uniqExactMerge(starts) AS starts, uniqExactMerge(ends) AS ends, uniqMerge(sessions) AS sessions
FROM %s.sessions_daily WHERE app_id = 'com.example.notes' GROUP BY event_date`, c.Database())
	if err := c.conn.Select(context.Background(), &got, q); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d days, want 1: %+v", len(got), got)
	}
	g := got[0]
	if g.Day.Format(time.DateOnly) != "2025-11-28" || g.Starts != 4 || g.Ends != 2 || g.Sessions != 3 {
		t.Errorf("sessions_daily = %+v; want 2025-11-28, 4 starts, 2 ends, 3 sessions", g)
	}
}

func TestInsertErrorsIntegration(t *testing.T) {
	c := migrated(t, Config{})
	rows := newRowGen(1, time.Now()).rows(50)

	// A schema that does not match is permanent.
	if err := c.conn.Exec(context.Background(), fmt.Sprintf("ALTER TABLE %s.sessions DROP COLUMN foreground_ms", c.Database())); err != nil {
		t.Fatal(err)
	}
	err := c.Insert(context.Background(), rows)
	if err == nil || errors.Is(err, pipeline.ErrStorageUnavailable) || !strings.Contains(err.Error(), "insert into sessions") {
		t.Errorf("Insert into a changed table = %v, want a permanent error naming sessions", err)
	}
	t.Logf("permanent: %v", err)

	// A server that went away is worth retrying.
	p := faultproxy.StartForTest(t, shared.Addr())
	viaProxy := openClient(t, Config{Addr: p.Addr(), Database: c.Database(), DialTimeout: time.Second})
	refuse(p)
	err = viaProxy.Insert(context.Background(), &pipeline.Rows{Gestures: rows.Gestures})
	if !errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Errorf("Insert with the server gone = %v, want ErrStorageUnavailable", err)
	}
	t.Logf("retryable: %v", err)

	// So is a read.
	for name, read := range map[string]func() error{
		"LatestCrashes": func() error {
			_, err := viaProxy.LatestCrashes(context.Background(), "com.example.notes", 3)
			return err
		},
		"Apps": func() error { _, err := viaProxy.Apps(context.Background()); return err },
		"Revocations": func() error {
			_, err := viaProxy.Revocations(context.Background(), time.Now().Add(-time.Hour), time.Now())
			return err
		},
	} {
		if err := read(); !errors.Is(err, pipeline.ErrStorageUnavailable) {
			t.Errorf("%s with the server gone = %v, want ErrStorageUnavailable", name, err)
		}
	}
}

func TestWriterGroupsIntegration(t *testing.T) {
	checkLeaks(t)
	c := migrated(t, Config{})
	w := startWriter(t, WriterConfig{}, c)
	for i, err := range writeAll(context.Background(), w, repeat(50, 100)...) {
		if err != nil {
			t.Errorf("Write %d: %v", i, err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	t.Logf("50 requests of 100 rows: %+v", s)
	if s.Inserts > 5 || s.Rows != 5000 {
		t.Errorf("Stats = %+v; want 5000 rows in at most 5 grouped inserts", s)
	}
	if n := storedEvents(t, c); n != 5000 {
		t.Errorf("stored %d events, want 5000", n)
	}
}

func TestWriterBackpressureIntegration(t *testing.T) {
	checkLeaks(t)
	c, p := proxiedClient(t, Config{})
	w := startWriter(t, WriterConfig{MaxPendingRows: 100, FlushInterval: time.Millisecond}, c)

	p.Stall() // ClickHouse stops answering
	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), newRowGen(1, time.Now()).rows(100), pipeline.Origin{}) }()
	for w.Stats().PendingRows != 100 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Write(ctx, newRowGen(2, time.Now()).rows(10), pipeline.Origin{}); !errors.Is(err, pipeline.ErrOverloaded) {
		t.Errorf("Write while the insert is stalled = %v, want ErrOverloaded", err)
	}
	p.Resume()
	if err := <-first; err != nil {
		t.Errorf("stalled Write after the server recovered: %v", err)
	}
	if n := storedEvents(t, c); n != 100 {
		t.Errorf("stored %d events, want 100", n)
	}
}

func TestWriterRetriesIntegration(t *testing.T) {
	checkLeaks(t)
	c, p := proxiedClient(t, Config{DialTimeout: time.Second})
	w := startWriter(t, WriterConfig{FlushInterval: time.Millisecond, RetryBackoff: 20 * time.Millisecond}, c)

	refuse(p) // ClickHouse restarts
	done := make(chan error, 1)
	go func() { done <- w.Write(context.Background(), newRowGen(1, time.Now()).rows(300), pipeline.Origin{}) }()
	for w.Stats().Retries < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	p.Refuse(false)
	if err := <-done; err != nil {
		t.Fatalf("Write across an outage: %v", err)
	}
	if n := storedEvents(t, c); n != 300 {
		t.Errorf("stored %d events, want 300", n)
	}
}

func TestWriterCloseIntegration(t *testing.T) {
	checkLeaks(t)
	c := migrated(t, Config{})
	w := startWriter(t, WriterConfig{FlushInterval: time.Hour}, c)
	errs := make(chan error, 4)
	for i := range 4 {
		rows := newRowGen(uint64(i+1), time.Now()).rows(250)
		go func() { errs <- w.Write(context.Background(), rows, pipeline.Origin{}) }()
	}
	for w.Stats().PendingRows != 1000 {
		time.Sleep(time.Millisecond)
	}
	if n := storedEvents(t, c); n != 0 {
		t.Fatalf("%d events stored before Close", n)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("Write: %v", err)
		}
	}
	if n := storedEvents(t, c); n != 1000 {
		t.Errorf("stored %d events after Close, want 1000", n)
	}
}

func TestRejectsIntegration(t *testing.T) {
	checkLeaks(t)
	c := migrated(t, Config{})
	r, err := NewRejects(RejectsConfig{FlushInterval: time.Hour}, c, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		r.CountRejects("com.example.notes", "consent_revoked", 3)
		r.CountRejects("com.example.maps", pipeline.ReasonStorageUnavailable, 1)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.CountRejects("com.example.notes", "consent_revoked", 7)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		App    string `ch:"app_id"`
		Reason string `ch:"reason"`
		Events uint64 `ch:"events"`
	}
	q := fmt.Sprintf("SELECT app_id, reason, sum(events) AS events FROM %s.rejects GROUP BY app_id, reason ORDER BY app_id", c.Database())
	if err := c.conn.Select(context.Background(), &got, q); err != nil {
		t.Fatal(err)
	}
	if want := "[{com.example.maps storage_unavailable 100} {com.example.notes consent_revoked 307}]"; fmt.Sprint(got) != want {
		t.Errorf("rejects = %v, want %s", got, want)
	}
}

func TestEnforceRetentionIntegration(t *testing.T) {
	c := migrated(t, Config{Schema: SchemaOptions{RetentionDays: map[string]int{TableGestures: 30}}})
	now := time.Date(2025, 11, 28, 15, 0, 0, 0, time.UTC)
	rows := &pipeline.Rows{}
	for _, age := range []int{0, 29, 30, 89, 90, 91, 400} {
		at := now.AddDate(0, 0, -age)
		rows.Sessions = append(rows.Sessions, pipeline.SessionRow{Common: testCommon(byte(age), at), Phase: "start"})
		rows.Gestures = append(rows.Gestures, pipeline.GestureRow{Common: testCommon(byte(age), at), Type: "tap", Count: 1})
	}
	if err := c.Insert(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	dropped, err := c.EnforceRetention(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"gestures/20251029", "gestures/20250831", "gestures/20250830", "gestures/20250829", "gestures/20241024",
		"sessions/20250830", "sessions/20250829", "sessions/20241024",
		"sessions_daily/20241024",
	}
	slices.Sort(dropped)
	slices.Sort(want)
	if !slices.Equal(dropped, want) {
		t.Errorf("dropped %v\n   want %v", dropped, want)
	}
	for table, n := range map[string]uint64{"sessions": 4, "gestures": 2, "sessions_daily": 6} {
		if got := queryUint64(t, c, fmt.Sprintf("SELECT count() FROM %s.%s", c.Database(), table)); got != n {
			t.Errorf("%s keeps %d rows, want %d", table, got, n)
		}
	}
	if again, err := c.EnforceRetention(context.Background(), now); err != nil || len(again) != 0 {
		t.Errorf("second EnforceRetention = %v, %v; want nothing dropped", again, err)
	}
}

func TestReadmeQueriesIntegration(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	if err := c.Insert(ctx, newRowGen(7, time.Now()).rows(3000)); err != nil {
		t.Fatal(err)
	}
	rejects := []rejectRow{{minute: time.Now().UTC().Truncate(time.Minute), app: "com.example.notes", reason: "consent_revoked", events: 3}}
	if err := insertRows(ctx, c.conn, c.schema.rejects, rejects); err != nil {
		t.Fatal(err)
	}
	for _, q := range readmeQueries(t, c.Database()) {
		rows, err := c.conn.Query(ctx, q)
		if err != nil {
			t.Errorf("%v\n%s", err, q)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 {
			t.Errorf("%d rows, %v:\n%s", n, err, q)
		}
		rows.Close()
	}
}

// TestToolQueries runs the queries consentry demo ships on 18.16 (the chDB
// test runs the same text on 26.x).
func TestToolQueries(t *testing.T) {
	c := migrated(t, Config{})
	ctx := context.Background()
	rows := newRowGen(11, time.Now()).rows(500)
	if err := c.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	app := rows.Crashes[0].AppID
	var total uint64
	for _, tbl := range EventTables() {
		n, err := c.CountRows(ctx, tbl, app)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	var want int
	for _, r := range []int{len(rows.Sessions), len(rows.Gestures), len(rows.Crashes), len(rows.Customs), len(rows.Diagnostics)} {
		want += r
	}
	if app == "" || total == 0 || total > uint64(want) {
		t.Fatalf("counted %d rows for %q of %d", total, app, want)
	}
	crashes, err := c.LatestCrashes(ctx, app, 3)
	if err != nil || len(crashes) == 0 || crashes[0].ExceptionType == "" {
		t.Fatalf("latest crashes = %v, %v", crashes, err)
	}
	if n, err := c.CountRows(ctx, TableSessions, "no.such'app"); err != nil || n != 0 {
		t.Fatalf("quoted app: %d, %v", n, err)
	}
}
