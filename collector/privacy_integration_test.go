package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// plantedIdentifier is an identifier an app might leak: value is planted
// on its own (an attribute value, an attribute key, a screen name), text
// is a sentence holding it, and leak is what must not be stored (value, if
// empty).
type plantedIdentifier struct {
	kind, value, text, leak string
}

func (p plantedIdentifier) needle() string {
	if p.leak != "" {
		return p.leak
	}
	return p.value
}

// identifierCorpus has one or more identifiers of every kind the scrubber
// knows, in the kind of text apps leak them in. None may reach any column
// of any table, nor any log line.
var identifierCorpus = []plantedIdentifier{
	{"email", "jane.doe@example.com", "Upload failed for jane.doe@example.com", ""},
	{"email", "j.smith+notes@mail.example.org", "user=j.smith+notes@mail.example.org rejected", ""},
	{"phone", "+43 664 1234567", "call +43 664 1234567 failed", ""},
	{"phone", "(415) 555-2671", "SMS to (415) 555-2671 not delivered", ""},
	{"phone", "0664 7654321", "Rückruf an 0664 7654321", ""},
	{"ipv4", "203.0.113.77", "connect to 203.0.113.77:443 timed out", ""},
	{"ipv6", "2001:db8:85a3::8a2e:370:7334", "peer [2001:db8:85a3::8a2e:370:7334] reset", ""},
	{"uuid", "3F2504E0-4F89-41D3-9A0C-0305E82C3301", "idfa=3F2504E0-4F89-41D3-9A0C-0305E82C3301", ""},
	{"uuid", "6fa459ea-ee8a-3ca4-894e-db77e160355e", "install 6fa459ea-ee8a-3ca4-894e-db77e160355e missing", ""},
	{"imei", "490154203237518", "IMEI 490154203237518 blocked", ""},
	{"mac", "00:1A:2B:3C:4D:5E", "wifi bssid 00:1A:2B:3C:4D:5E", ""},
	{"card", "4111 1111 1111 1111", "charge 4111 1111 1111 1111 declined", ""},
	{"iban", "DE89 3704 0044 0532 0130 00", "SEPA to DE89 3704 0044 0532 0130 00", ""},
	{"bearer", "Bearer dXNlcjpwYXNzd29yZDEyMw", "Authorization: Bearer dXNlcjpwYXNzd29yZDEyMw", "dXNlcjpwYXNzd29yZDEyMw"},
	{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXZhbHVl", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJlLXZhbHVl expired", ""},
	{"aws key", "AKIAIOSFODNN7EXAMPLE", "using key AKIAIOSFODNN7EXAMPLE", ""},
	{"stripe key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", ""},
	{"secret", "wJalrXUtnFEMI7K7MDENGbPxRfiCY9EXAMPLEKEY", "aws_secret_access_key=wJalrXUtnFEMI7K7MDENGbPxRfiCY9EXAMPLEKEY", ""},
	{"password", "password=hunter2-Sesame", "login with password=hunter2-Sesame failed", "hunter2-Sesame"},
	{"user path", "/Users/janedoe/Library", "open /Users/janedoe/Library/notes.db", "janedoe"},
	{"user path", `C:\Users\jsmith\AppData`, `C:\Users\jsmith\AppData\Local\notes.db`, "jsmith"},
	{"user path", "/home/mkowalski/.config", "/home/mkowalski/.config/notes", "mkowalski"},
	{"coordinates", "48.20849, 16.37208", "last fix 48.20849, 16.37208 stale", ""},
	{"key value", "user_id=u-829301-acct", "sync user_id=u-829301-acct done", "u-829301-acct"},
	{"android id", "9774d56d682e549c", "device 9774d56d682e549c registered", ""},
	{"email, non-ASCII", "jörg.müller@example.de", "Mail an jörg.müller@example.de fehlgeschlagen", "müller"},
	{"phone, national", "06641234567", "Rückruf 06641234567", ""},
}

// survivors are values that look like identifiers but are not, and that
// crash triage needs: each must still be stored as sent.
var survivors = []string{
	"NoteEditor.kt:42",
	"0x0000000100a8c000",
	"icon@2x.png",
	"3f2504e04f8941d39a0c0305e82c3301",
	"2026-11-29T12:30:45Z",
}

// TestNoIdentifiersStored sends batches with identifiers of every kind
// planted in every free-text field, device field and attribute, then scans
// every column of every table, and every log line, for them (privacy
// invariants 2, 3 and 4). Values that only look like identifiers survive.
func TestNoIdentifiersStored(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	var texts []string
	for _, p := range identifierCorpus {
		texts = append(texts, p.text)
	}
	all := strings.Join(texts, "; ")
	clean := "crash at NoteEditor.kt:42 pc 0x0000000100a8c000 loading icon@2x.png build 3f2504e04f8941d39a0c0305e82c3301 at 2026-11-29T12:30:45Z"
	age := int64(1000)
	seq := byte(0)
	id := func() []byte { seq++; v := make([]byte, 16); v[0], v[15] = seq, 9; return v }
	var events []*consentryv1.Event
	for _, p := range identifierCorpus {
		events = append(events,
			&consentryv1.Event{EventId: id(), AgeMs: &age, SessionId: []byte("session-" + p.kind), Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "IOException: " + p.text, Message: p.text + " | " + clean, Thread: "worker " + p.text,
				Frames: []*consentryv1.StackFrame{
					{Module: p.text, Function: "upload(" + p.text + ")", File: p.text, Line: 3, InApp: true},
					{Module: "libsystem_kernel.dylib", Function: "__pthread_kill", File: "", Line: 0},
				}}}},
			&consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "sync",
				Attributes: map[string]*consentryv1.AttributeValue{
					"note":   {Value: &consentryv1.AttributeValue_StringValue{StringValue: p.text}},
					"detail": {Value: &consentryv1.AttributeValue_StringValue{StringValue: p.value}},
					p.value:  {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}},
				}}}},
			&consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
				Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "profile " + p.value}}},
		)
	}
	// Attribute keys that name identifiers go with their values, whatever
	// the value looks like.
	events = append(events, &consentryv1.Event{EventId: id(), AgeMs: &age, Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
		Name: "profile", Attributes: map[string]*consentryv1.AttributeValue{
			"user_id":     {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301-acct"}},
			"deviceId":    {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301-acct"}},
			"Android-ID":  {Value: &consentryv1.AttributeValue_StringValue{StringValue: "u-829301-acct"}},
			"latitude":    {Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: 48.20849}},
			"clean":       {Value: &consentryv1.AttributeValue_StringValue{StringValue: clean}},
			"all at once": {Value: &consentryv1.AttributeValue_StringValue{StringValue: all}},
		}}}})
	req := &consentryv1.IngestRequest{
		ConsentToken: h.token(t, testApp, time.Hour),
		SentAtUnixMs: time.Now().UnixMilli(),
		Device: &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0.3", AppBuild: "4120003 jane.doe@example.com",
			SdkVersion: "consentry-go/0.1.0 (203.0.113.77)", DeviceModel: "Pixel 8 00:1A:2B:3C:4D:5E",
			OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14 3F2504E0-4F89-41D3-9A0C-0305E82C3301", Locale: "de-AT-u-jane",
			Location: &consentryv1.CoarseLocation{Latitude: ptr(48.20849), Longitude: ptr(16.37208)}},
		Events: events,
	}
	resp, err := h.client.Ingest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// Attribute keys and screen names are names: the validate stage drops
	// events whose names hold characters such as '@' (INVALID_FIELD); the
	// rest, every crash among them, is stored scrubbed.
	if resp.GetAccepted() < uint32(2*len(identifierCorpus)) {
		t.Fatalf("only %d of %d events accepted: %v", resp.GetAccepted(), len(events), resp)
	}
	for _, d := range resp.GetDrops() {
		if d.GetReason() != consentryv1.DropReason_DROP_REASON_INVALID_FIELD {
			t.Errorf("dropped %d events with %v", d.GetCount(), d.GetReason())
		}
	}
	if n := h.count(t, "crashes", ""); n != uint64(len(identifierCorpus)) {
		t.Fatalf("%d crashes stored, want %d", n, len(identifierCorpus))
	}
	h.conn.Close()
	h.shutdown() // flush rejects too, so every table is scanned as stored

	cols := allColumns(t, h)
	var needles []string
	for _, p := range identifierCorpus {
		needles = append(needles, p.needle())
	}
	needles = append(needles, "16.372", "48.208", "u-829301-acct") // coordinates and attribute values
	for _, p := range needles {
		for _, c := range h.holding(t, cols, p) {
			t.Errorf("%s.%s holds %q", c[0], c[1], p)
		}
	}
	for _, s := range survivors {
		if h.count(t, "crashes", fmt.Sprintf("position(message, '%s') > 0", s)) == 0 {
			t.Errorf("%q did not survive in crash messages", s)
		}
	}
	// An app version shaped like an IPv4 address keeps three components.
	if v := h.count(t, "crashes", "app_version = '4.12.0'"); v == 0 {
		t.Error("the app version 4.12.0.3 was not stored as 4.12.0")
	}
	if n := h.count(t, "gestures", "country = 'AT' AND region = 'AT-9'"); n == 0 {
		t.Error("the coordinates did not become AT / AT-9")
	}
	// Nor any log line (privacy invariant 4): the harness logs at debug.
	for _, e := range h.logs.All() {
		line := e.Message + fmt.Sprint(e.Context)
		for _, p := range append(needles, req.GetConsentToken()) {
			if strings.Contains(line, p) {
				t.Errorf("log line holds %q: %s", p, line)
			}
		}
	}
}

// encodedCorpus holds identifiers in the contexts and encodings that once
// fooled the scrubber (issue 14): text is planted, none of its leaks may
// be stored in any form. A leak is no short run of hex digits: the
// stored event ids are hashes printed in hex, and "5500" stood in one of
// them now and then (a test that failed by chance).
var encodedCorpus = []struct {
	text  string
	leaks []string
}{
	{"tap on settings/192.0.2.10", []string{"192.0.2.10"}},
	{"GET /v1/users/jane.doe%40example.com/notes", []string{"jane.doe"}},
	{"host%3D198.51.100.23%26port%3D443", []string{"198.51.100.23"}},
	{`{"to":"jane.roe\u0040example.com"}`, []string{"jane.roe"}},
	{"<td>j.moe&#64;example.org</td>", []string{"j.moe"}},
	{"mail zoltan\u200b.quux@example.com", []string{"quux"}},
	{"ip １９２.０.２.１１", []string{"１９２"}},
	{"call +43\u00a0664\u00a07654321", []string{"7654321"}},
	{"هاتف ٠٦٦٤ ١٢٣٤٥٦٨", []string{"١٢٣٤٥٦٨"}},
	// the card's first and last groups, each with the separator the text
	// holds: a card cut anywhere keeps one of them
	{"card 5500\u00a00000\u00a00000\u00a00004 declined", []string{"5500\u00a0", "\u00a00004"}},
	{"mail björn@bücher.de", []string{"björn"}},
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
	cols := allColumns(t, h)
	for _, p := range encodedCorpus {
		for _, leak := range p.leaks {
			for _, c := range h.holding(t, cols, leak) {
				t.Errorf("%s.%s holds %q (planted as %q)", c[0], c[1], leak, p.text)
			}
		}
	}
}

// allColumns returns every (table, column) of the harness's database
// except the views'.
func allColumns(t *testing.T, h *harness) [][2]string {
	t.Helper()
	rows, err := h.ch.Query(context.Background(), fmt.Sprintf(`SELECT table, name FROM system.columns
		WHERE database = '%s' AND table NOT LIKE '%%_mv' ORDER BY table, name`, h.db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols [][2]string
	for rows.Next() {
		var tbl, col string
		if err := rows.Scan(&tbl, &col); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, [2]string{tbl, col})
	}
	if len(cols) < 100 {
		t.Fatalf("only %d columns found", len(cols))
	}
	return cols
}

// holding returns those of cols (see allColumns) whose values, as text,
// hold needle in any case.
func (h *harness) holding(t *testing.T, cols [][2]string, needle string) [][2]string {
	t.Helper()
	lit := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(needle)
	var out [][2]string
	for _, c := range cols {
		if h.countWhere(t, c, fmt.Sprintf("positionCaseInsensitive(toString(%s), '%s') > 0", c[1], lit)) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// countWhere counts the rows of table c[0] matching where.
func (h *harness) countWhere(t *testing.T, c [2]string, where string) uint64 {
	t.Helper()
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", h.db, c[0], where)
	if err := h.ch.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }
