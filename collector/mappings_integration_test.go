package collector

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/deobfuscate"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestDeobfuscationEndToEnd uploads a release's R8 mapping while the
// collector runs: once it is loaded, an obfuscated crash of that release
// is stored with the original class, method, file and line; a crash of a
// release without a mapping is stored as it came.
func TestDeobfuscationEndToEnd(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.MappingRefresh = 100 * time.Millisecond })
	ctx := context.Background()
	mapping, err := os.ReadFile("../anonymizer/deobfuscate/testdata/notes-4.12.0-mapping.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Client().UploadMapping(ctx, deobfuscate.Key{AppID: testApp, AppVersion: "4.12.0"}, "", mapping); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); h.app.mappings.cache.Len() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the uploaded mapping was not loaded")
		}
	}
	age := int64(1000)
	send := func(version string, n byte) {
		t.Helper()
		id := make([]byte, 16)
		id[0], id[6], id[15] = n, 0x40, 1
		device := &consentryv1.DeviceContext{AppId: testApp, AppVersion: version, DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
			OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", DeviceModel: "Pixel 8", Locale: "de-AT"}
		resp, err := h.client.Ingest(ctx, &consentryv1.IngestRequest{ConsentToken: h.token(t, testApp, time.Hour), SentAtUnixMs: time.Now().UnixMilli(), Device: device,
			Events: []*consentryv1.Event{{EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "c3.a", Message: "conflict on note 42", Thread: "main",
				Frames: []*consentryv1.StackFrame{
					{Module: "c3", Function: "d.b", File: "SourceFile", Line: 10, InApp: true},
					{Module: "androidx.work", Function: "Worker$1.run", File: "Worker.java", Line: 82},
				}}}}}})
		if err != nil || resp.GetAccepted() != 1 {
			t.Fatalf("ingest: %v, %v", resp, err)
		}
	}
	send("4.12.0", 1)
	send("4.11.0", 2)
	h.shipped(t)
	var got []string
	for _, r := range queryRows(t, h.ch, fmt.Sprintf("SELECT app_version, exception_type, frame_function[1], frame_file[1], frame_line[1] FROM %s.crashes ORDER BY app_version", h.db)) {
		got = append(got, fmt.Sprintf("%s %s %s(%s:%d)", r...))
	}
	want := []string{
		"4.11.0 c3.a d.b(SourceFile:10)",
		"4.12.0 com.example.notes.sync.SyncConflictException SyncWorker.checkConflict(SyncWorker.kt:70)",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored\n%q\nwant\n%q", got, want)
	}
}
