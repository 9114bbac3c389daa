package anonymizer

import (
	"net/netip"
	"testing"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestAppVersionShapedLikeAnAddress: an app version that is a valid IPv4
// address is never stored as sent, also with generalization off (the
// adversarial privacy test found 10.1.2.3 stored in app_version with
// --generalize-k 1); its first three components are kept.
func TestAppVersionShapedLikeAnAddress(t *testing.T) {
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}})
	for in, want := range map[string]string{
		"10.1.2.3":                   "10.1.2",
		"192.168.206.126":            "192.168.206",
		"\u00a040.250.210.132\u00a0": "40.250.210",
		" 4.12.0.3 ":                 "4.12.0",
		"4.12.0":                     "4.12.0",
		"4.12.0.300":                 "4.12.0.300", // 300 is no octet
		"4.012.0.3":                  "4.012.0.3",  // nor is 012
		"v4.12.0.3":                  "v4.12.0.3",
		"4.12.0.3-beta":              "4.12.0.3-beta",
		"17":                         "17",
		"upload/10.1.2.3":            "upload/[ip]",
	} {
		if got := st.version(in); got != want {
			t.Errorf("version(%q) = %q, want %q", in, got, want)
		}
	}
	req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{
		{EventId: eventID(1), Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}}}
	req.Device.AppVersion = "10.1.2.3"
	b := batch(req, netip.Addr{}, "consent-1")
	if err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got := b.Rows.Gestures[0].AppVersion; got != "10.1.2" {
		t.Errorf("stored app version %q, want 10.1.2", got)
	}
}
