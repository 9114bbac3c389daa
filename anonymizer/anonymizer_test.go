package anonymizer

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestScrub(t *testing.T) {
	sc := NewScrubber()
	tests := []struct{ in, want string }{
		{"Upload failed for jane.doe@example.com", "Upload failed for [email]"},
		{"connect 203.0.113.7:443 refused", "connect [ip]:443 refused"},
		{"peer 2001:db8::1 gone", "peer [ip] gone"},
		{"install 3F2504E0-4F89-41D3-9A0C-0305E82C3301", "install [uuid]"},
		{"wifi 00:1A:2B:3C:4D:5E", "wifi [mac]"},
		{"open /Users/jane/Library/x.db", "open /Users/[user]/Library/x.db"},
		{`C:\Users\jane\AppData`, `C:\Users\[user]\AppData`},
		{"Authorization: Bearer abcdefghijklmnop", "Authorization: [token]"},
		{"call +43 664 1234567 now", "call [phone] now"},
		{"NoteEditor.kt:42", "NoteEditor.kt:42"},
		{"Segmentation fault at 0x0000000000000010", "Segmentation fault at 0x0000000000000010"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := sc.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsIdentifierKey(t *testing.T) {
	for _, k := range []string{"user_id", "UserID", "device-id", "E.Mail", "email", "IP", "idfa", "android_id", "phone_number", "user_email", "primaryPhoneNumber"} {
		if !IsIdentifierKey(k) {
			t.Errorf("%q not detected", k)
		}
	}
	for _, k := range []string{"pages", "format", "screen", "duration"} {
		if IsIdentifierKey(k) {
			t.Errorf("%q flagged", k)
		}
	}
}

func TestLocaleAndLocation(t *testing.T) {
	for in, want := range map[string]string{"de-AT": "de-AT", "de_at@currency=EUR": "de-AT", "en": "en", "zh-Hant-TW": "zh-TW", "es-419": "es-419", "x": "", "": ""} {
		if got := normalizeLocale(in); got != want {
			t.Errorf("normalizeLocale(%q) = %q, want %q", in, got, want)
		}
	}
	tests := []struct {
		loc             *consentryv1.CoarseLocation
		country, region string
	}{
		{&consentryv1.CoarseLocation{CountryCode: "at", RegionCode: "AT-9"}, "AT", "AT-9"},
		{&consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "DE-BY"}, "AT", ""},
		{&consentryv1.CoarseLocation{CountryCode: "Austria"}, "", ""},
		{&consentryv1.CoarseLocation{Latitude: ptr(48.2), Longitude: ptr(16.4)}, "", ""},
		{nil, "", ""},
	}
	for _, tt := range tests {
		c, r := coarseLocation(tt.loc)
		if c != tt.country || r != tt.region {
			t.Errorf("coarseLocation(%v) = %q %q, want %q %q", tt.loc, c, r, tt.country, tt.region)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSessionKeysRotateDaily(t *testing.T) {
	salts := NewMemorySalts()
	day1 := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	s1, _ := salts.Salt(day1)
	s1again, _ := salts.Salt(day1.Add(30 * time.Minute))
	s2, _ := salts.Salt(day1.Add(2 * time.Hour))
	if !bytes.Equal(s1, s1again) || bytes.Equal(s1, s2) {
		t.Fatal("salt must be stable within a day and change across days")
	}
	sid := []byte("0123456789abcdef")
	if sessionKey(s1, sid) == sessionKey(s2, sid) {
		t.Fatal("session key equal across days")
	}
	if sessionKey(s1, nil) != 0 {
		t.Fatal("no session id must give key 0")
	}
	salts.Salt(day1.Add(72 * time.Hour))
	if len(salts.salts) != 1 {
		t.Fatalf("old salts kept: %d", len(salts.salts))
	}
}

func TestProcess(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	st, err := New(Config{TimePrecision: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := &consentryv1.IngestRequest{
		Device: &consentryv1.DeviceContext{AppId: "com.example.notes", DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
			OsName: 77, DeviceModel: "Pixel 8", Locale: "de_AT", Location: &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"}},
		Events: []*consentryv1.Event{
			{EventId: bytes.Repeat([]byte{1}, 16), SessionId: []byte("session-aaaaaaaa"), Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "export", Attributes: map[string]*consentryv1.AttributeValue{
					"user_email": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "jane@example.com"}},
					"note":       {Value: &consentryv1.AttributeValue_StringValue{StringValue: "sent to jane@example.com"}},
					"pages":      {Value: &consentryv1.AttributeValue_IntValue{IntValue: 3}},
				}}}},
			{EventId: bytes.Repeat([]byte{2}, 16), Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "E", Message: "at 10.1.2.3", Frames: []*consentryv1.StackFrame{{File: "/home/jane/app.go", Line: 7, InApp: true}}}}},
		},
	}
	for _, scopes := range [][]pipeline.Scope{{pipeline.ScopeAnalytics, pipeline.ScopeCrashReports}, {pipeline.ScopeAnalytics, pipeline.ScopeCrashReports, pipeline.ScopeLocation}} {
		b := pipeline.NewBatch(req, now, netip.MustParseAddr("198.51.100.4"))
		b.AppID, b.Scopes = "com.example.notes", scopes
		b.EventTimes = []time.Time{now.Add(-90 * time.Second), now}
		if err := st.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if b.Peer.IsValid() {
			t.Error("peer address kept after anonymize")
		}
		if len(b.Rows.Customs) != 1 || len(b.Rows.Crashes) != 1 {
			t.Fatalf("rows = %+v", b.Rows)
		}
		cu, cr := b.Rows.Customs[0], b.Rows.Crashes[0]
		if strings.Join(cu.StringKeys, ",") != "note" || cu.StringValues[0] != "sent to [email]" || cu.NumberKeys[0] != "pages" {
			t.Errorf("custom attributes = %v %v %v", cu.StringKeys, cu.StringValues, cu.NumberKeys)
		}
		if cu.EventTime != now.Add(-2*time.Minute) {
			t.Errorf("event time %v not truncated to the minute", cu.EventTime)
		}
		if cu.SessionKey == 0 || cr.SessionKey != 0 {
			t.Errorf("session keys = %d, %d", cu.SessionKey, cr.SessionKey)
		}
		if cu.DeviceClass != "phone" || cu.OSName != "unknown" || cu.Locale != "de-AT" {
			t.Errorf("common = %+v", cu.Common)
		}
		if cr.Message != "at [ip]" || cr.Frames[0].File != "/home/[user]/app.go" {
			t.Errorf("crash = %q %q", cr.Message, cr.Frames[0].File)
		}
		hasLocation := len(scopes) == 3
		if (cu.Country == "AT" && cu.Region == "AT-9") != hasLocation || (!hasLocation && cu.Country != "") {
			t.Errorf("location %q %q with location scope %v", cu.Country, cu.Region, hasLocation)
		}
	}
}
