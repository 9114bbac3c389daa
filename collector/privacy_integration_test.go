package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// planted are identifiers an app might leak into free text. None may reach
// any column of any table.
var planted = []string{
	"jane.doe@example.com",
	"203.0.113.77",
	"2001:db8:85a3::8a2e:370:7334",
	"3F2504E0-4F89-41D3-9A0C-0305E82C3301", // an IDFA-shaped id
	"00:1A:2B:3C:4D:5E",
	"+43 664 1234567",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXZhbHVl",
	"/Users/janedoe/",
	"u-829301-secret",
}

// TestNoIdentifiersStored sends a batch with identifiers planted in every
// free-text field and attribute, then scans every string column of every
// table for them (privacy invariant 2).
func TestNoIdentifiersStored(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	text := strings.Join([]string{
		"failed for jane.doe@example.com from 203.0.113.77 via 2001:db8:85a3::8a2e:370:7334",
		"idfa 3F2504E0-4F89-41D3-9A0C-0305E82C3301 mac 00:1A:2B:3C:4D:5E call +43 664 1234567",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXZhbHVl",
		"open /Users/janedoe/Library/notes.db",
	}, "; ")
	age := int64(1000)
	id := func(b byte) []byte { v := make([]byte, 16); v[0], v[15] = b, 9; return v }
	req := &consentryv1.IngestRequest{
		ConsentToken: h.token(t, testApp, time.Hour),
		SentAtUnixMs: time.Now().UnixMilli(),
		Device: &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0 jane.doe@example.com", DeviceModel: "Pixel 8 00:1A:2B:3C:4D:5E",
			OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", Locale: "de-AT",
			Location: &consentryv1.CoarseLocation{Latitude: ptr(48.2082), Longitude: ptr(16.3738), CountryCode: "AT", RegionCode: "AT-9"}},
		Events: []*consentryv1.Event{
			{EventId: id(1), AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "IOException", Message: text, Thread: "worker 203.0.113.77",
				Frames: []*consentryv1.StackFrame{{Module: "com.example", Function: "upload", File: "/Users/janedoe/src/Upload.kt", Line: 3, InApp: true}}}}},
			{EventId: id(2), AgeMs: &age, Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "sync",
				Attributes: map[string]*consentryv1.AttributeValue{
					"note":     {Value: &consentryv1.AttributeValue_StringValue{StringValue: text}},
					"user_id":  {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301-secret"}},
					"deviceId": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301-secret"}},
				}}}},
			{EventId: id(3), AgeMs: &age, Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
				Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "profile"}}},
		},
	}
	resp, err := h.client.Ingest(ctx, req)
	if err != nil || resp.GetAccepted() != 3 {
		t.Fatalf("ingest: %v %v", resp, err)
	}
	h.conn.Close()
	h.shutdown() // flush rejects too, so every table is scanned as stored
	rows, err := h.ch.Query(ctx, fmt.Sprintf(`SELECT table, name FROM system.columns
		WHERE database = '%s' AND (type LIKE '%%String%%')`, h.db))
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var tbl, col string
		if err := rows.Scan(&tbl, &col); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, [2]string{tbl, col})
	}
	rows.Close()
	if len(cols) < 50 {
		t.Fatalf("only %d string columns found", len(cols))
	}
	for _, c := range cols {
		for _, p := range planted {
			var n uint64
			q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE positionCaseInsensitive(toString(%s), '%s') > 0",
				h.db, c[0], c[1], strings.ReplaceAll(p, "'", "\\'"))
			if err := h.ch.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if n > 0 {
				t.Errorf("%s.%s holds %q", c[0], c[1], p)
			}
		}
	}
	// Nor any log line (privacy invariant 4): the harness logs at debug.
	for _, e := range h.logs.All() {
		line := e.Message + fmt.Sprint(e.Context)
		for _, p := range append(planted, req.GetConsentToken(), "48.2082") {
			if strings.Contains(line, p) {
				t.Errorf("log line holds %q: %s", p, line)
			}
		}
	}
	// Coordinates are never stored: no column holds the latitude.
	for _, c := range cols {
		var n uint64
		q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE position(toString(%s), '48.2') > 0", h.db, c[0], c[1])
		if err := h.ch.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Errorf("%s.%s holds a coordinate", c[0], c[1])
		}
	}
}

func ptr[T any](v T) *T { return &v }
