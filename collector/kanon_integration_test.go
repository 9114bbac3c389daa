package collector

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/internal/chtest"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// kanonDevice returns the fleet's common device with changes applied.
func kanonDevice(change func(*consentryv1.DeviceContext)) *consentryv1.DeviceContext {
	d := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", AppBuild: "4120003", SdkVersion: "consentry-go/0.1.0",
		DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE, DeviceModel: "Pixel 8",
		OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", Locale: "de-AT",
		Location: &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"}}
	if change != nil {
		change(d)
	}
	return d
}

// kanonFleet is a fleet for the k-anonymity test, k = 5: a crowd on one
// device; crowds each differing from it in one value (model, locale,
// region), so each value is common; one device with all three of those
// values, unique together; four devices of rare models, otherwise the
// crowd's; and one device unique in every way.
func kanonFleet() (groups []string, devices []*consentryv1.DeviceContext) {
	add := func(group string, n int, change func(*consentryv1.DeviceContext)) {
		for range n {
			groups, devices = append(groups, group), append(devices, kanonDevice(change))
		}
	}
	galaxy := func(d *consentryv1.DeviceContext) { d.DeviceModel = "Galaxy S23" }
	english := func(d *consentryv1.DeviceContext) { d.Locale = "en-US" }
	styria := func(d *consentryv1.DeviceContext) { d.Location.RegionCode = "AT-6" }
	add("crowd", 6, nil)
	add("galaxy", 5, galaxy)
	add("english", 5, english)
	add("styria", 5, styria)
	add("together", 1, func(d *consentryv1.DeviceContext) { galaxy(d); english(d); styria(d) })
	for i := range 4 {
		add("rare-model", 1, func(d *consentryv1.DeviceContext) { d.DeviceModel = fmt.Sprintf("Rare %d", i) })
	}
	add("unique", 1, func(d *consentryv1.DeviceContext) {
		d.DeviceModel, d.OsVersion, d.AppVersion, d.AppBuild, d.Locale = "Jane's phone", "9", "1.0.0", "100", "fi-FI"
		d.Location = &consentryv1.CoarseLocation{CountryCode: "FI", RegionCode: "FI-18"}
	})
	return groups, devices
}

// storedQI is a stored row's event day and quasi-identifiers.
type storedQI struct {
	day string
	qi  kanon.QI
}

// storedRows returns every stored row's event id with its day and
// quasi-identifiers, from every event table, deduplicated (FINAL).
func (h *harness) storedRows(t *testing.T) map[uuid.UUID]storedQI {
	t.Helper()
	cols := kanon.Columns()
	out := map[uuid.UUID]storedQI{}
	for _, table := range eventTables {
		rows, err := h.ch.Query(context.Background(), fmt.Sprintf("SELECT event_id, toString(event_date), %s FROM %s.%s FINAL WHERE app_id = '%s'",
			strings.Join(cols[:], ", "), h.db, table, testApp))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id uuid.UUID
			var day string
			var v [kanon.NumColumns]string
			dest := []any{&id, &day}
			for i := range v {
				dest = append(dest, &v[i])
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			if _, dup := out[id]; dup {
				t.Fatalf("event %s stored in two tables", id)
			}
			out[id] = storedQI{day, kanon.QIFromValues(v)}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestKAnonymityOverStoredRowsIntegration is the acceptance test of
// privacy invariant 6: after a fleet in which one device is unique in its
// combination, and one is unique in a combination of values that are each
// common, has sent its events through gRPC, the spool and the release
// passes into a real ClickHouse, every stored combination of
// quasi-identifiers of the app and day is shared by the rows of at least
// k consents. The property is checked over the stored rows: the test
// knows which consent sent which event id. The top level (every
// quasi-identifier unknown) is exempt only as the whole app's day is:
// its rows match every consent of the app that day, and there are more
// than k. It runs with the spool, and with the writer alone.
func TestKAnonymityOverStoredRowsIntegration(t *testing.T) {
	for _, noSpool := range []bool{false, true} {
		t.Run(map[bool]string{false: "spool", true: "writer"}[noSpool], func(t *testing.T) { testKAnonymity(t, noSpool) })
	}
}

func testKAnonymity(t *testing.T, noSpool bool) {
	const k = 5
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	srv := server(t)
	// Classes are per app and UTC day: a fleet whose events fall on both
	// sides of midnight is two days' classes, neither of them at k. The
	// events are dated when sent, and sending takes seconds.
	chtest.ClearOfUTCMidnight(t, 2*time.Minute)
	h := newHarness(t, srv, func(c *Config) {
		c.NoSpool = noSpool
		c.Anonymizer.Generalize = kanon.Config{K: k, Delay: time.Hour, ReleaseInterval: time.Second, Settle: 200 * time.Millisecond,
			RefreshInterval: 200 * time.Millisecond, Now: func() time.Time { return time.Unix(0, clock.Load()) }}
	})
	ctx := context.Background()
	groups, devices := kanonFleet()
	consentOf := map[uuid.UUID]int{}
	gen := eventgen.New(eventgen.Config{AppID: testApp, Seed: 6})
	for i, dev := range devices {
		tok := h.token(t, testApp, time.Hour)
		for range 2 {
			req := gen.Batch(20, time.Now())
			req.ConsentToken, req.Device = tok, dev
			for _, e := range req.Events {
				// The generator dates events up to 10 minutes back: sent
				// just after midnight, they would fall on two days.
				var age int64
				e.AgeMs, e.CreatedAtUnixMs = &age, req.GetSentAtUnixMs()
			}
			resp, err := h.client.Ingest(ctx, req)
			if err != nil || resp.GetAccepted() != 20 {
				t.Fatalf("consent %d: %v, %v", i, resp, err)
			}
			for _, e := range req.Events {
				consentOf[uuid.UUID(h.app.StoredEventID(testApp, e.GetEventId()))] = i
			}
		}
	}
	h.shipped(t)

	// At once (within a release interval), the crowds are stored exactly;
	// the rest is held.
	exactGroups := map[string]bool{"crowd": true, "galaxy": true, "english": true, "styria": true}
	want := 0
	for id, c := range consentOf {
		if exactGroups[groups[c]] {
			want++
		}
		_ = id
	}
	waitFor(t, "the crowds' rows stored", func() bool { return len(h.storedRows(t)) >= want })
	for id, r := range h.storedRows(t) {
		if !exactGroups[groups[consentOf[id]]] {
			t.Errorf("a row of %s was stored before its class reached k: %+v", groups[consentOf[id]], r.qi)
		}
	}

	// After the delay, the held rows are released, generalized.
	clock.Add(int64(2 * time.Hour))
	waitFor(t, "no rows held", func() bool {
		n, err := h.app.Client().HeldRows(ctx, testApp)
		return err == nil && n == 0
	})
	stored := h.storedRows(t)
	if len(stored) != len(consentOf) {
		t.Fatalf("%d events stored, %d accepted", len(stored), len(consentOf))
	}
	classes := map[storedQI]map[int]bool{}
	days := map[string]map[int]bool{}
	for id, r := range stored {
		c, ok := consentOf[id]
		if !ok {
			t.Fatalf("stored event %s was never sent", id)
		}
		if classes[r] == nil {
			classes[r] = map[int]bool{}
		}
		classes[r][c] = true
		if days[r.day] == nil {
			days[r.day] = map[int]bool{}
		}
		days[r.day][c] = true
	}
	for cl, consents := range classes {
		min := k
		t.Logf("class %s %+v: %d consents", cl.day, cl.qi, len(consents))
		if cl.qi == kanon.TopQI() {
			// The top level's rows match every consent of the day.
			consents = days[cl.day]
		}
		if len(consents) < min {
			t.Errorf("stored combination %+v of %s is shared by %d consents, want at least %d", cl.qi, cl.day, len(consents), k)
		}
	}
	// What the rare devices sent is not stored as they sent it; the
	// crowd's device is.
	seen := map[string]bool{}
	for id, r := range stored {
		g := groups[consentOf[id]]
		switch {
		case g == "unique" && (r.qi.DeviceModel != kanon.Other || r.qi.OSVersion != kanon.Other || r.qi.AppVersion != kanon.Other):
			t.Errorf("the unique device's row is stored as %+v", r.qi)
		case g == "together" && r.qi.DeviceModel == "Galaxy S23" && r.qi.Locale == "en-US" && r.qi.Region == "AT-6":
			t.Errorf("the unique combination is stored: %+v", r.qi)
		}
		seen[g+" "+r.qi.DeviceModel+" "+r.qi.Locale+" "+r.qi.Region] = true
	}
	for _, w := range []string{"crowd Pixel 8 de-AT AT-9", "galaxy Galaxy S23 de-AT AT-9", "rare-model other  ", "together other  "} {
		if !seen[w] {
			t.Errorf("no row stored as %q; stored %v", w, seen)
		}
	}
	// Every stored combination is a class the release log publishes.
	logged := map[storedQI]bool{}
	for day := range days {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			t.Fatal(err)
		}
		log, _, err := h.app.Client().Releases(ctx, kanon.Unit{App: testApp, Day: d})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range log {
			logged[storedQI{day, r.QI}] = true
		}
	}
	for cl := range classes {
		if !logged[cl] {
			t.Errorf("stored combination %+v is not in the release log", cl.qi)
		}
	}
}

// TestKAnonymityAcrossRestartIntegration checks that held rows survive the
// collector: rows held by one collector are released by the next one,
// started on the same database after the delay.
func TestKAnonymityAcrossRestartIntegration(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	cfg := kanon.Config{K: 5, ReleaseInterval: time.Second, Settle: 200 * time.Millisecond, RefreshInterval: 200 * time.Millisecond,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }}
	first := newHarness(t, server(t), func(c *Config) { c.Anonymizer.Generalize = cfg })
	ctx := context.Background()
	tok := first.token(t, testApp, time.Hour)
	for seq := byte(1); seq <= 3; seq++ {
		if _, err := first.client.Ingest(ctx, gestureBatch(tok, kanonDevice(nil), "", seq)); err != nil {
			t.Fatal(err)
		}
	}
	first.shipped(t)
	first.shutdown()
	first.stopped = true
	if n := first.total(t); n != 0 {
		t.Fatalf("%d rows of one consent stored", n)
	}
	clock.Add(int64(2 * time.Hour))
	second := newHarness(t, server(t), func(c *Config) {
		first.replica()(c)
		c.Anonymizer.Generalize = cfg
	})
	waitFor(t, "the held rows released", func() bool { return second.total(t) == 3 })
	for _, r := range second.storedRows(t) {
		if r.qi != kanon.TopQI() {
			t.Errorf("a row of a single consent stored as %+v, want the top level", r.qi)
		}
	}
}

// TestKAnonymityDefaultsIntegration starts a collector with k-anonymity's
// defaults, as consentryd does, holds a row and stops.
func TestKAnonymityDefaultsIntegration(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.Anonymizer.Generalize = kanon.Config{K: kanon.DefaultK} })
	resp, err := h.client.Ingest(context.Background(), gestureBatch(h.token(t, testApp, time.Hour), kanonDevice(nil), "", 1))
	if err != nil || resp.GetAccepted() != 1 {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	h.shipped(t)
	if n, err := h.app.Client().HeldRows(context.Background(), testApp); err != nil || n != 1 || h.total(t) != 0 {
		t.Fatalf("held %d (%v), stored %d; want the row held", n, err, h.total(t))
	}
	// Holding a row is an insert like any other to whoever watches the
	// metrics.
	if m := scrape(t, h); m["consentry_clickhouse_insert_duration_seconds_count"] < 1 || m["consentry_clickhouse_insert_rows_sum"] < 1 {
		t.Errorf("insert metrics: %v inserts, %v rows; the held row's insert is missing",
			m["consentry_clickhouse_insert_duration_seconds_count"], m["consentry_clickhouse_insert_rows_sum"])
	}
	h.shutdown()
	h.stopped = true
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
