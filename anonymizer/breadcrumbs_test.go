package anonymizer

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func crashWithCrumbs(id byte, crumbs ...*consentryv1.Breadcrumb) *consentryv1.Event {
	return &consentryv1.Event{EventId: eventID(id), Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
		ExceptionType: "java.lang.IllegalStateException", Message: "Fragment not attached",
		Frames: []*consentryv1.StackFrame{
			{Module: "com.example.notes", Function: "NoteEditor.save", InApp: true},
			{Module: "com.example.notes", Function: "NoteEditor.onPause", InApp: true},
		},
		Breadcrumbs: crumbs,
	}}}
}

func TestBreadcrumbs(t *testing.T) {
	const (
		screen  = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW
		gesture = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE
		custom  = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_CUSTOM
		tap     = consentryv1.GestureType_GESTURE_TYPE_TAP
	)
	crumbs := []*consentryv1.Breadcrumb{
		{Type: screen, Name: "editor", OffsetMs: 95_000},
		{Type: gesture, GestureType: tap, Name: "editor", OffsetMs: 30_000},
		{Type: gesture, Name: "editor", OffsetMs: 29_999},               // gesture of no known kind
		{Type: custom, Name: "export_pdf", OffsetMs: 12},                //
		{Type: 99, Name: "from a newer SDK", OffsetMs: 5},               // unknown type
		{Type: custom, Name: "call 0664 1234567", OffsetMs: 4},          // scrubbed
		{Type: screen, Name: "", OffsetMs: 3},                           // a screen may be unnamed
		{Type: custom, Name: "mail jane@example.com", OffsetMs: 2},      // not a name: left out
		{Type: screen, Name: "settings\uFFFD", OffsetMs: 2},             // repaired from invalid UTF-8: left out
		{Type: custom, Name: "later", OffsetMs: -1},                     // after the crash: left out
		{Type: custom, Name: "long ago", OffsetMs: 15 * 24 * 3_600_000}, // beyond any event's age: left out
	}
	for _, tc := range []struct {
		precision time.Duration
		offsets   []int64
	}{
		{time.Minute, []int64{120_000, 60_000, 0, 0, 0, 0, 0}},
		{time.Second, []int64{95_000, 30_000, 30_000, 0, 0, 0, 0}},
		{time.Millisecond, []int64{95_000, 30_000, 29_999, 12, 5, 4, 3}},
	} {
		t.Run(tc.precision.String(), func(t *testing.T) {
			st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}, TimePrecision: tc.precision})
			req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{crashWithCrumbs(1, crumbs...), crashWithCrumbs(2)}}
			b := batch(req, netip.Addr{}, "consent-1")
			if err := st.Process(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			got := b.Rows.Crashes[0].Breadcrumbs
			want := fmt.Sprint([]string{"screen_view:editor", "tap:editor", "gesture:editor", "custom:export_pdf", "unknown:from a newer SDK", "custom:call [phone]", "screen_view:"})
			var names []string
			var offsets []int64
			for _, c := range got {
				names = append(names, c.Type+":"+c.Name)
				offsets = append(offsets, c.OffsetMs)
			}
			if fmt.Sprint(names) != want || fmt.Sprint(offsets) != fmt.Sprint(tc.offsets) {
				t.Errorf("breadcrumbs %v %v,\nwant %s %v", names, offsets, want, tc.offsets)
			}
			// Breadcrumbs do not change the crash's group.
			if fp, fp2 := b.Rows.Crashes[0].Fingerprint, b.Rows.Crashes[1].Fingerprint; fp != fp2 || fp == 0 {
				t.Errorf("fingerprints %x and %x: breadcrumbs changed the group", fp, fp2)
			}
			if b.Rows.Crashes[1].Breadcrumbs != nil {
				t.Errorf("a crash without breadcrumbs has %v", b.Rows.Crashes[1].Breadcrumbs)
			}
		})
	}
	// Without the analytics scope, a crash's breadcrumbs are not stored.
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}})
	req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{crashWithCrumbs(1, crumbs...)}}
	b := batch(req, netip.Addr{}, "consent-1", consentryv1.ScopeCrashReports)
	if err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Rows.Crashes) != 1 || b.Rows.Crashes[0].Breadcrumbs != nil {
		t.Errorf("crashes %+v: want the crash without its breadcrumbs", b.Rows.Crashes)
	}
}

// TestNativeCrashOneGroupAcrossInstalls: Android names an app's install
// folders at random per install, and native frames' modules hold them;
// the same native crash on two installs was two groups, each stored with
// its install's names. The scrubbed modules are alike: one group.
func TestNativeCrashOneGroupAcrossInstalls(t *testing.T) {
	native := func(id byte, outer, inner string) *consentryv1.Event {
		module := "/data/app/~~" + outer + "==/com.example.notes-" + inner + "==/lib/arm64/libnotes.so"
		return &consentryv1.Event{EventId: eventID(id), Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
			ExceptionType: "SIGSEGV", Message: "Segmentation fault",
			Frames: []*consentryv1.StackFrame{
				{Module: module, Function: "notes::render::Canvas::drawPath", InApp: true},
				{Module: module, Function: "Java_com_example_notes_NativeBridge_render", InApp: true},
			},
		}}}
	}
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}})
	req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{
		native(1, "2zPOOUcyyxvkBKyf4ncyqA", "qh63ZqVw9GXQGEtiEHnmDg"),
		native(2, "Xk3mN8pQr2sT5vW7yZ1a4b", "Lm9nO0pQ1rS2tU3vW4xY5z"),
	}}
	b := batch(req, netip.Addr{}, "consent-1")
	if err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	c0, c1 := b.Rows.Crashes[0], b.Rows.Crashes[1]
	if c0.Fingerprint != c1.Fingerprint {
		t.Errorf("fingerprints %x and %x: one native crash, two groups", c0.Fingerprint, c1.Fingerprint)
	}
	if m := c0.Frames[0].Module; m != "/data/app/~~[device_id]/com.example.notes-[device_id]/lib/arm64/libnotes.so" {
		t.Errorf("module stored as %q", m)
	}
}
