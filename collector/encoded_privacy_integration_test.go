package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// encodedCorpus holds identifiers in the contexts and encodings that once
// fooled the scrubber (issue 14): text is planted, leak must not be
// stored in any form.
var encodedCorpus = []struct{ text, leak string }{
	{"tap on settings/192.0.2.10", "192.0.2.10"},
	{"GET /v1/users/jane.doe%40example.com/notes", "jane.doe"},
	{"host%3D198.51.100.23%26port%3D443", "198.51.100.23"},
	{`{"to":"jane.roe\u0040example.com"}`, "jane.roe"},
	{"<td>j.moe&#64;example.org</td>", "j.moe"},
	{"mail zoltan\u200b.quux@example.com", "quux"},
	{"ip １９２.０.２.１１", "１９２"},
	{"call +43\u00a0664\u00a07654321", "7654321"},
	{"هاتف ٠٦٦٤ ١٢٣٤٥٦٨", "١٢٣٤٥٦٨"},
	{"card 5500\u00a00000\u00a00000\u00a00004 declined", "5500"},
	{"mail björn@bücher.de", "björn"},
}

// TestEncodedIdentifiersNotStored sends those identifiers in crash
// messages, stack frames, attribute values and a screen name through gRPC
// and scans every column of every table for them; versions that only look
// like addresses are stored as sent.
func TestEncodedIdentifiersNotStored(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	age := int64(1000)
	seq := byte(0)
	id := func() []byte { seq++; v := make([]byte, 16); v[0], v[1], v[15] = seq, 0xe7, 9; return v }
	kept := "UA okhttp/4.12.0.3 and MyApp/4.12.0.3 (Android 14)"
	var events []*consentryv1.Event
	for _, p := range encodedCorpus {
		events = append(events,
			&consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "java.io.IOException", Message: p.text + " | " + kept, Thread: "worker",
				Frames: []*consentryv1.StackFrame{{Module: "com.example", Function: "upload(" + p.text + ")", File: p.text, Line: 3}}}}},
			&consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "sync", Attributes: map[string]*consentryv1.AttributeValue{
					"detail": {Value: &consentryv1.AttributeValue_StringValue{StringValue: p.text}}}}}},
		)
	}
	events = append(events, &consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
		Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "settings/192.0.2.10"}}})
	resp, err := h.client.Ingest(ctx, &consentryv1.IngestRequest{
		ConsentToken: h.token(t, testApp, time.Hour), SentAtUnixMs: time.Now().UnixMilli(),
		Device: &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14"},
		Events: events,
	})
	if err != nil {
		t.Fatal(err)
	}
	if int(resp.GetAccepted()) != len(events) {
		t.Fatalf("accepted %d of %d events: %v", resp.GetAccepted(), len(events), resp)
	}
	if n := h.count(t, "gestures", "screen = 'settings/[ip]'"); n != 1 {
		t.Errorf("screen settings/192.0.2.10 not stored as settings/[ip]")
	}
	if n := h.count(t, "crashes", fmt.Sprintf("position(message, '%s') > 0", kept)); n != uint64(len(encodedCorpus)) {
		t.Errorf("%q kept in %d crash messages, want %d", kept, n, len(encodedCorpus))
	}
	for _, c := range allColumns(t, h) {
		for _, p := range encodedCorpus {
			leak := strings.ReplaceAll(p.leak, `'`, `\'`)
			if n := h.countWhere(t, c, fmt.Sprintf("positionCaseInsensitive(toString(%s), '%s') > 0", c[1], leak)); n > 0 {
				t.Errorf("%s.%s holds %q (planted as %q)", c[0], c[1], p.leak, p.text)
			}
		}
	}
}
