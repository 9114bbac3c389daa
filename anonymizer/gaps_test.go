package anonymizer

import (
	"net/netip"
	"testing"

	"github.com/consentry/consentry/pipeline"
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
		"\u00a00176-73219370\u00a0":  "[phone]", // a phone number is no version with a suffix
		"4.12.0-1":                   "4.12.0-1",
		"4.12.0-rc.2":                "4.12.0-rc.2",
		"\u00a0475.872.0274\u00a0":   "[phone]", // 3-3-4 digits: a North American number
		"475.872.2274":               "[phone]",
		"4.012.7":                    "4.012.7", // leading zeros: scrubbed as text, in which it is nothing
		"2023.01.15":                 "2023.01.15",
		"\u00a01615.2371.4124\u00a0": "[mac]",      // a MAC address in Cisco's notation
		"2026112901":                 "2026112901", // a build number, not a phone number
	} {
		if got := newArena(&pipeline.Rows{}, &pipeline.Arena{}, rowSizes{}, st.scrub).version(in); got != want {
			t.Errorf("version(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"2026112901": "2026112901", // a build of a date and a counter
		"4155552671": "[phone]",
		" 4120003 ":  "4120003",
	} {
		if got := newArena(&pipeline.Rows{}, &pipeline.Arena{}, rowSizes{}, st.scrub).build(in); got != want {
			t.Errorf("build(%q) = %q, want %q", in, got, want)
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

// TestNumberAttributesThatAreIdentifiers: an integer attribute (or an
// integral double) holding an IMEI, a payment card or a phone number is
// dropped and counted; counts, sizes, times and build numbers stay.
func TestNumberAttributesThatAreIdentifiers(t *testing.T) {
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}})
	num := func(v int64) *consentryv1.AttributeValue {
		return &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_IntValue{IntValue: v}}
	}
	dbl := func(v float64) *consentryv1.AttributeValue {
		return &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: v}}
	}
	attrs := map[string]*consentryv1.AttributeValue{
		// identifiers, as the probe planted them
		"pages":   num(490154203237518),  // IMEI
		"mode":    num(4111111111111111), // Visa
		"theme":   num(376697291903846),  // Amex
		"attempt": num(4366412345678),    // +43 664 1234567
		"retry":   num(14155552671),      // +1 415 555 2671
		"source":  num(919876543210),     // +91 98765 43210
		"variant": dbl(5511987654321),    // +55 11 98765-4321
		"step":    num(-4915112345678),   // +49 151 12345678
		"count":   num(15425956777140),   // IMEI 015425956777140 without its 0
		// what apps count and measure
		"items":          num(12),
		"created_at":     num(1733350123),
		"created_at_ms":  num(1733350123456),
		"size_bytes":     num(17179869184),
		"duration_ms":    num(86400000),
		"version_code":   num(2026112901),
		"build":          num(4120003),
		"latency":        dbl(12.5),
		"ratio":          dbl(0.25),
		"big":            dbl(1e300),
		"negative_count": num(-3),
	}
	req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{
		{EventId: eventID(1), Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "n", Attributes: attrs}}}}}
	b := batch(req, netip.Addr{}, "consent-1")
	if err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	r := b.Rows.Customs[0]
	for i, k := range r.NumberKeys {
		got[k] = r.NumberValues[i]
	}
	for _, k := range []string{"pages", "mode", "theme", "attempt", "retry", "source", "variant", "step", "count"} {
		if v, ok := got[k]; ok {
			t.Errorf("attribute %s = %v stored; it is an identifier", k, v)
		}
	}
	for _, k := range []string{"items", "created_at", "created_at_ms", "size_bytes", "duration_ms", "version_code", "build", "latency", "ratio", "big", "negative_count"} {
		if _, ok := got[k]; !ok {
			t.Errorf("attribute %s dropped", k)
		}
	}
	if n := st.NumbersDropped(); n != 9 {
		t.Errorf("NumbersDropped() = %d, want 9", n)
	}
}

// TestEventIDsAreRekeyed: the id an SDK sent is never stored: an
// advertising id used as event id (the adversarial test found them in
// every event table's event_id) becomes a keyed hash of it under the
// server's key and the app id, the same for the same id (so retries
// still merge), different for another app and another key.
func TestEventIDsAreRekeyed(t *testing.T) {
	key := EventIDKey([]byte("a server secret of at least 32 bytes!!"))
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}, EventIDKey: key})
	idfa := []byte{0x67, 0xdb, 0xdf, 0x71, 0xab, 0xa2, 0x4c, 0x74, 0x96, 0x79, 0x41, 0x57, 0xb5, 0xed, 0xa0, 0xd1}
	process := func(st *Stage, app string) [16]byte {
		req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{
			{EventId: idfa, Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}}}
		req.Device.AppId = app
		b := batch(req, netip.Addr{}, "consent-1")
		if err := st.Process(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		return b.Rows.Gestures[0].EventID
	}
	got := process(st, "com.example.notes")
	if got == [16]byte(idfa) {
		t.Fatal("the event id was stored as sent")
	}
	if again := process(st, "com.example.notes"); again != got {
		t.Errorf("the same id was stored as %x and %x: retries would not merge", got, again)
	}
	if other := process(st, "com.example.other"); other == got {
		t.Error("two apps store the same id alike: their events could be linked")
	}
	st2 := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}, EventIDKey: EventIDKey([]byte("another server secret of 32 bytes...."))})
	if other := process(st2, "com.example.notes"); other == got {
		t.Error("another key stores the same id alike")
	}
	if want := StoredEventID(key, "com.example.notes", idfa); got != want {
		t.Errorf("stored %x, StoredEventID says %x", got, want)
	}
}
