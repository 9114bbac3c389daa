package collector

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/geo/geotest"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// gestureBatch returns a one-gesture batch from dev under tok.
func gestureBatch(tok string, dev *consentryv1.DeviceContext, session string, seq byte) *consentryv1.IngestRequest {
	age := int64(1000)
	id := make([]byte, 16)
	id[0], id[1], id[15] = seq, 0x5a, 7
	e := &consentryv1.Event{EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
		Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: fmt.Sprint("screen-", seq)}}}
	if session != "" {
		e.SessionId = []byte(session)
	}
	return &consentryv1.IngestRequest{ConsentToken: tok, SentAtUnixMs: time.Now().UnixMilli(), Device: dev,
		Events: []*consentryv1.Event{e}}
}

// stored returns column of the gesture stored for screen-seq.
func (h *harness) stored(t *testing.T, column string, seq byte) string {
	t.Helper()
	h.shipped(t)
	var v string
	q := fmt.Sprintf("SELECT toString(%s) FROM %s.gestures WHERE screen = 'screen-%d'", column, h.db, seq)
	if err := h.ch.QueryRow(context.Background(), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// TestLocationEndToEnd derives the stored region from coordinates (the
// embedded boundaries), from the connection's address (an MMDB the test
// builds, which maps the loopback network the test connects from), and
// from nothing, through gRPC into ClickHouse.
func TestLocationEndToEnd(t *testing.T) {
	mmdb := filepath.Join(t.TempDir(), "test-city.mmdb")
	geotest.WriteMMDB(t, mmdb, []geotest.Record{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Country: "DE", Subdivision1: "BY", Subdivision2: "09162"},
	})
	h := newHarness(t, server(t), func(c *Config) {
		c.GeoIPFile, c.GeoIPIncludeNonPublic, c.GeoIPReload = mmdb, true, 50*time.Millisecond
	})
	ctx := context.Background()
	dev := func(loc *consentryv1.CoarseLocation) *consentryv1.DeviceContext {
		return &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_ANDROID,
			OsVersion: "14", DeviceModel: "Pixel 8", Location: loc}
	}
	all := h.token(t, testApp, time.Hour)
	noLocation := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics)
	tests := []struct {
		name    string
		tok     string
		loc     *consentryv1.CoarseLocation
		country string
		region  string
	}{
		{"coordinates in Vienna", all, &consentryv1.CoarseLocation{Latitude: ptr(48.2082), Longitude: ptr(16.3738)}, "AT", "AT-9"},
		{"coordinates in Munich", all, &consentryv1.CoarseLocation{Latitude: ptr(48.1372), Longitude: ptr(11.5756)}, "DE", "DE-BY"},
		{"coordinates at sea", all, &consentryv1.CoarseLocation{Latitude: ptr(40.0), Longitude: ptr(-30.0)}, "", ""},
		{"the connection's address", all, nil, "DE", "DE-BY"},
		{"codes finer than first level", all, &consentryv1.CoarseLocation{CountryCode: "FR", RegionCode: "FR-75"}, "FR", ""},
		{"no location scope", noLocation, &consentryv1.CoarseLocation{Latitude: ptr(48.2082), Longitude: ptr(16.3738)}, "", ""},
		{"no location scope, no address", noLocation, nil, "", ""},
	}
	for i, tt := range tests {
		seq := byte(i + 1)
		if resp, err := h.client.Ingest(ctx, gestureBatch(tt.tok, dev(tt.loc), "", seq)); err != nil || resp.GetAccepted() != 1 {
			t.Fatalf("%s: %v %v", tt.name, resp, err)
		}
		if c, r := h.stored(t, "country", seq), h.stored(t, "region", seq); c != tt.country || r != tt.region {
			t.Errorf("%s: stored %q %q, want %q %q", tt.name, c, r, tt.country, tt.region)
		}
	}

	// The operator replaces the database file: the collector reloads it.
	time.Sleep(20 * time.Millisecond) // a later modification time
	geotest.WriteMMDB(t, mmdb, []geotest.Record{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Country: "AT", Subdivision1: "9"},
	})
	deadline := time.Now().Add(5 * time.Second) // at most 100 tries: seq stays below 256
	for seq := byte(100); ; seq++ {
		if _, err := h.client.Ingest(ctx, gestureBatch(all, dev(nil), "", seq)); err != nil {
			t.Fatal(err)
		}
		if h.stored(t, "region", seq) == "AT-9" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced IP database was not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSessionKeysAcrossReplicasEndToEnd checks that two replicas re-key a
// session id to the same session_key (the day's salt is shared through
// ClickHouse), and that the key is neither the id nor stable across days.
func TestSessionKeysAcrossReplicasEndToEnd(t *testing.T) {
	a := newHarness(t, server(t), nil)
	b := newHarness(t, server(t), a.replica())
	ctx := context.Background()
	dev := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_IOS, OsVersion: "17.4"}
	const session = "session-0123456789"
	send := func(h *harness, seq byte) {
		t.Helper()
		if resp, err := h.client.Ingest(ctx, gestureBatch(h.token(t, testApp, time.Hour), dev, session, seq)); err != nil || resp.GetAccepted() != 1 {
			t.Fatalf("replica %d: %v %v", seq, resp, err)
		}
	}
	send(a, 1)
	send(b, 2)
	// A replica living a day ahead uses tomorrow's salt.
	tomorrow := newHarness(t, server(t), func(c *Config) {
		a.replica()(c)
		c.Anonymizer.Now = func() time.Time { return time.Now().Add(24 * time.Hour) }
	})
	send(tomorrow, 3)
	b.shipped(t)
	tomorrow.shipped(t)
	ka, kb, kt := a.stored(t, "session_key", 1), a.stored(t, "session_key", 2), a.stored(t, "session_key", 3)
	if ka != kb || ka == "0" {
		t.Errorf("replicas stored session keys %s and %s for one session", ka, kb)
	}
	if kt == ka {
		t.Error("the session key is the same on the next day")
	}
	var days uint64
	if err := a.ch.QueryRow(ctx, fmt.Sprintf("SELECT count(DISTINCT day) FROM %s_private.session_salts", a.db)).Scan(&days); err != nil {
		t.Fatal(err)
	}
	// Today's and tomorrow's (fetched ahead), and the day after tomorrow's
	// from the replica living a day ahead.
	if days > 3 {
		t.Errorf("%d days of salts stored", days)
	}
}

// TestCrashFingerprintsEndToEnd stores one bug from two app versions,
// with different addresses, line numbers and scrubbed messages, under one
// fingerprint; another bug under another; and a crash with the app's own
// grouping key under that key.
func TestCrashFingerprintsEndToEnd(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	tok := h.token(t, testApp, time.Hour)
	age := int64(1000)
	crash := func(seq byte, version, message string, line uint32, fn, custom string) {
		t.Helper()
		id := make([]byte, 16)
		id[0], id[1], id[15] = seq, 0xc7, 1
		dev := &consentryv1.DeviceContext{AppId: testApp, AppVersion: version, OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14"}
		req := &consentryv1.IngestRequest{ConsentToken: tok, SentAtUnixMs: time.Now().UnixMilli(), Device: dev, Events: []*consentryv1.Event{{
			EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "java.lang.IllegalStateException", Message: message, Thread: fmt.Sprint("t", seq), Fingerprint: custom,
				Frames: []*consentryv1.StackFrame{
					{Module: "com.example.notes", Function: fn, File: "NoteEditor.kt", Line: line, InApp: true},
					{Module: "com.example.notes", Function: "com.example.notes.NoteEditor$onPause$1.invokeSuspend", Line: line + 9, InApp: true},
					{Module: "androidx.fragment", Function: "androidx.fragment.app.Fragment.performPause", Line: 3174},
				}}}}}}
		if resp, err := h.client.Ingest(ctx, req); err != nil || resp.GetAccepted() != 1 {
			t.Fatalf("crash %d: %v %v", seq, resp, err)
		}
	}
	crash(1, "4.12.0", "Fragment{a1b2} not attached, user jane@example.com", 42, "com.example.notes.NoteEditor.save", "")
	crash(2, "4.13.1", "Fragment{ffee} not attached, user joe@example.org", 57, "com.example.notes.NoteEditor.save", "")
	crash(3, "4.12.0", "Fragment{a1b2} not attached", 42, "com.example.notes.NoteEditor.load", "")
	crash(4, "4.12.0", "timeout", 42, "com.example.notes.NoteEditor.save", "sync-timeout")
	h.shipped(t)
	fp := func(seq byte) string {
		var v uint64
		q := fmt.Sprintf("SELECT fingerprint FROM %s.crashes WHERE thread = 't%d'", h.db, seq)
		if err := h.ch.QueryRow(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if v == 0 {
			t.Fatalf("crash %d stored without a fingerprint", seq)
		}
		return fmt.Sprintf("%016x", v)
	}
	if fp(1) != fp(2) {
		t.Error("one bug in two versions got two fingerprints")
	}
	if fp(3) == fp(1) || fp(4) == fp(1) || fp(4) == fp(3) {
		t.Errorf("different bugs share a fingerprint: %s %s %s", fp(1), fp(3), fp(4))
	}
}
