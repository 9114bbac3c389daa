package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestBreadcrumbsEndToEnd sends crashes with breadcrumbs over gRPC
// through every stage and the spool into ClickHouse: they are stored in
// order, names scrubbed, offsets rounded to the time precision, a
// breadcrumb that is not a name left out; a crash with more breadcrumbs
// than the limit is dropped as TOO_LARGE; and without the analytics scope
// a crash is stored without them.
func TestBreadcrumbsEndToEnd(t *testing.T) {
	for _, spool := range []bool{true, false} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) {
			h := newHarness(t, server(t), func(c *Config) {
				c.NoSpool = !spool
				c.Anonymizer.TimePrecision = time.Minute
			})
			ctx := context.Background()
			age := int64(1000)
			id := func(b byte) []byte { v := make([]byte, 16); v[0], v[6], v[15] = b, 0x40, 1; return v }
			crash := func(n byte, crumbs ...*consentryv1.Breadcrumb) *consentryv1.Event {
				return &consentryv1.Event{EventId: id(n), AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
					ExceptionType: "java.lang.IllegalStateException", Message: fmt.Sprintf("crash %d", n), Thread: "main",
					AppState: consentryv1.AppState_APP_STATE_FOREGROUND, Breadcrumbs: crumbs,
					Frames: []*consentryv1.StackFrame{{Module: "com.example.notes", Function: "NoteEditor.save", InApp: true}}}}}
			}
			const (
				screen  = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW
				gesture = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE
				custom  = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_CUSTOM
			)
			tooMany := make([]*consentryv1.Breadcrumb, consentryv1.DefaultMaxBreadcrumbs+1)
			for i := range tooMany {
				tooMany[i] = &consentryv1.Breadcrumb{Type: screen, Name: "home"}
			}
			device := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
				OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", DeviceModel: "Pixel 8", Locale: "de-AT"}
			send := func(tok string, events ...*consentryv1.Event) *consentryv1.IngestResponse {
				t.Helper()
				resp, err := h.client.Ingest(ctx, &consentryv1.IngestRequest{ConsentToken: tok, SentAtUnixMs: time.Now().UnixMilli(), Device: device, Events: events})
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			resp := send(h.token(t, testApp, time.Hour),
				crash(1,
					&consentryv1.Breadcrumb{Type: screen, Name: "editor", OffsetMs: 95_000},
					&consentryv1.Breadcrumb{Type: gesture, GestureType: consentryv1.GestureType_GESTURE_TYPE_TAP, Name: "editor", OffsetMs: 40_000},
					&consentryv1.Breadcrumb{Type: custom, Name: "mail jane@example.com", OffsetMs: 30_000},
					&consentryv1.Breadcrumb{Type: custom, Name: "call 0664 1234567", OffsetMs: 20_000},
					&consentryv1.Breadcrumb{Type: custom, Name: "export_pdf", OffsetMs: 1_000}),
				crash(2, tooMany...),
				crash(3))
			if resp.GetAccepted() != 2 || len(resp.GetDrops()) != 1 || resp.GetDrops()[0].GetReason() != consentryv1.DropReason_DROP_REASON_TOO_LARGE {
				t.Fatalf("response %v: want the crash with too many breadcrumbs dropped as too large", resp)
			}
			resp = send(h.token(t, testApp, time.Hour, consentryv1.ScopeCrashReports),
				crash(4, &consentryv1.Breadcrumb{Type: screen, Name: "settings", OffsetMs: 5_000}))
			if resp.GetAccepted() != 1 {
				t.Fatalf("response %v", resp)
			}
			h.shipped(t)
			var got []string
			for _, r := range queryRows(t, h.ch, fmt.Sprintf(`SELECT message, breadcrumb_types, breadcrumb_names, breadcrumb_offsets_ms
FROM %s.crashes ORDER BY message`, h.db)) {
				got = append(got, fmt.Sprint(r...))
			}
			want := []string{
				"crash 1[screen_view tap custom custom] [editor editor call [phone] export_pdf] [120000 60000 0 0]",
				"crash 3[] [] []",
				"crash 4[] [] []",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
