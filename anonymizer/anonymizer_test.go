package anonymizer

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/anonymizer/geo"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// fakeCoords resolves the coordinates of Vienna and of Paris, nothing else.
type fakeCoords struct{}

func (fakeCoords) Lookup(lat, lon float64) geo.Location {
	switch {
	case lat > 48 && lat < 48.4 && lon > 16.1 && lon < 16.6:
		return geo.Location{Country: "AT", Region: "AT-9"}
	case lat > 48.7 && lat < 49 && lon > 2.2 && lon < 2.5:
		return geo.Location{Country: "FR", Region: "FR-IDF"}
	}
	return geo.Location{}
}

// fakeIPs resolves 198.51.100.0/24 to Bavaria and fails for 192.0.2.66.
type fakeIPs struct{ seen *[]netip.Addr }

func (f fakeIPs) Lookup(ip netip.Addr) (geo.Location, error) {
	if f.seen != nil {
		*f.seen = append(*f.seen, ip)
	}
	switch {
	case netip.MustParsePrefix("198.51.100.0/24").Contains(ip):
		return geo.Location{Country: "DE", Region: "DE-BY"}, nil
	case ip == netip.MustParseAddr("192.0.2.66"):
		return geo.Location{}, errors.New("corrupt database")
	}
	return geo.Location{}, nil
}

// firstLevel knows a few first-level regions.
type firstLevel struct{}

func (firstLevel) KnownRegion(code string) bool {
	switch code {
	case "AT-9", "FR-IDF", "DE-BY", "US-CA":
		return true
	}
	return false
}

func newStage(t testing.TB, cfg Config) *Stage {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// batch returns a verified batch of req from peer, as the earlier stages
// leave it.
func batch(req *consentryv1.IngestRequest, peer netip.Addr, consentID string, scopes ...consentryv1.Scope) *pipeline.Batch {
	b := pipeline.NewBatch(req, now, peer)
	b.AppID, b.ConsentID = req.GetDevice().GetAppId(), consentID
	b.Scopes = scopes
	if len(scopes) == 0 {
		b.Scopes = []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}
	}
	b.EventTimes = make([]time.Time, len(req.GetEvents()))
	for i := range b.EventTimes {
		b.EventTimes[i] = now.Add(-90 * time.Second)
	}
	return b
}

func device(loc *consentryv1.CoarseLocation) *consentryv1.DeviceContext {
	return &consentryv1.DeviceContext{AppId: "com.example.notes", AppVersion: "4.12.0.3", AppBuild: "4120003",
		SdkVersion: "consentry-go/0.1.0", DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
		OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14", DeviceModel: "Pixel 8", Locale: "de_AT", Location: loc}
}

func eventID(i byte) []byte { return bytes.Repeat([]byte{i}, 16) }

func TestProcess(t *testing.T) {
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}, Regions: firstLevel{}})
	req := &consentryv1.IngestRequest{
		Device: device(&consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"}),
		Events: []*consentryv1.Event{
			{EventId: eventID(1), SessionId: []byte("session-aaaaaaaa"), Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "export", Attributes: map[string]*consentryv1.AttributeValue{
					"user_email":       {Value: &consentryv1.AttributeValue_StringValue{StringValue: "jane@example.com"}},
					"note":             {Value: &consentryv1.AttributeValue_StringValue{StringValue: "sent to jane@example.com"}},
					"format":           {Value: &consentryv1.AttributeValue_StringValue{StringValue: "pdf"}},
					"pages":            {Value: &consentryv1.AttributeValue_IntValue{IntValue: 3}},
					"ratio":            {Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: 0.5}},
					"jane@example.com": {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}},
					"dark":             {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}},
					"DeviceId":         {Value: &consentryv1.AttributeValue_IntValue{IntValue: 42}},
				}}}},
			{EventId: eventID(2), Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: "E", Message: "at 10.1.2.3", Frames: []*consentryv1.StackFrame{
					{File: "/home/jane/app.go", Function: "main.run", Line: 7, InApp: true},
					{Module: "libc.so", Function: "abort", Line: 1}}}}},
			{EventId: eventID(3), SessionId: []byte("session-aaaaaaaa"), Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "open", Attributes: map[string]*consentryv1.AttributeValue{
					"screen": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "editor"}},
				}}}},
		},
	}
	b := batch(req, netip.MustParseAddr("198.51.100.4"), "consent-1")
	if err := st.Process(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if b.Peer.IsValid() {
		t.Error("peer address kept after anonymize")
	}
	if len(b.Rows.Customs) != 2 || len(b.Rows.Crashes) != 1 {
		t.Fatalf("rows = %+v", b.Rows)
	}
	cu, cr, cu2 := b.Rows.Customs[0], b.Rows.Crashes[0], b.Rows.Customs[1]
	got := fmt.Sprint(cu.StringKeys, cu.StringValues, cu.NumberKeys, cu.NumberValues, cu.BoolKeys, cu.BoolValues)
	if want := "[format note] [pdf sent to [email]] [pages ratio] [3 0.5] [dark] [true]"; got != want {
		t.Errorf("custom attributes = %s, want %s", got, want)
	}
	if got := fmt.Sprint(cu2.StringKeys, cu2.StringValues, cu2.NumberKeys, cu2.BoolKeys); got != "[screen] [editor] [] []" {
		t.Errorf("second custom event's attributes = %s", got)
	}
	// The batch-sized slices must not let one row's attributes run into
	// the next's.
	cu.StringKeys = append(cu.StringKeys, "x")
	if cu2.StringKeys[0] != "screen" {
		t.Error("appending to one row's keys overwrote the next row's")
	}
	if cu.EventTime != now.Add(-2*time.Minute) {
		t.Errorf("event time %v not truncated to the minute", cu.EventTime)
	}
	if cu.SessionKey == 0 || cr.SessionKey != 0 || cu.SessionKey != cu2.SessionKey {
		t.Errorf("session keys = %d, %d, %d", cu.SessionKey, cr.SessionKey, cu2.SessionKey)
	}
	if cu.DeviceClass != "phone" || cu.OSName != "android" || cu.Locale != "de-AT" || cu.AppVersion != "4.12.0" || cu.DeviceModel != "Pixel 8" {
		t.Errorf("common = %+v", cu.Common)
	}
	if cu.Country != "AT" || cu.Region != "AT-9" {
		t.Errorf("location = %q %q", cu.Country, cu.Region)
	}
	if cr.Message != "at [ip]" || cr.Frames[0].File != "/home/[user]/app.go" || cr.Frames[1].Module != "libc.so" || len(cr.Frames) != 2 {
		t.Errorf("crash = %q %+v", cr.Message, cr.Frames)
	}
}

func TestLocation(t *testing.T) {
	var lookedUp []netip.Addr
	st := newStage(t, Config{Generalize: GeneralizeConfig{K: 1}, Coordinates: fakeCoords{}, IPs: fakeIPs{seen: &lookedUp}, Regions: firstLevel{}})
	bavaria := netip.MustParseAddr("198.51.100.4")
	all := []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeLocation}
	tests := []struct {
		name            string
		loc             *consentryv1.CoarseLocation
		peer            netip.Addr
		scopes          []consentryv1.Scope
		country, region string
		usesIP          bool
	}{
		{"coordinates", &consentryv1.CoarseLocation{Latitude: ptr(48.2), Longitude: ptr(16.4)}, bavaria, all, "AT", "AT-9", false},
		{"coordinates win over codes", &consentryv1.CoarseLocation{Latitude: ptr(48.85), Longitude: ptr(2.35), CountryCode: "AT"}, bavaria, all, "FR", "FR-IDF", false},
		{"coordinates at sea are unknown, not the address", &consentryv1.CoarseLocation{Latitude: ptr(40.0), Longitude: ptr(-30.0)}, bavaria, all, "", "", false},
		{"latitude alone is unknown", &consentryv1.CoarseLocation{Latitude: ptr(48.2)}, bavaria, all, "", "", false},
		{"codes", &consentryv1.CoarseLocation{CountryCode: "at", RegionCode: "at-9"}, bavaria, all, "AT", "AT-9", false},
		{"region of another country", &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "DE-BY"}, bavaria, all, "AT", "", false},
		{"finer than first level", &consentryv1.CoarseLocation{CountryCode: "FR", RegionCode: "FR-75"}, bavaria, all, "FR", "", false},
		{"malformed country", &consentryv1.CoarseLocation{CountryCode: "Austria"}, bavaria, all, "", "", false},
		{"address", nil, bavaria, all, "DE", "DE-BY", true},
		{"IPv4-mapped address", nil, netip.MustParseAddr("::ffff:198.51.100.9"), all, "DE", "DE-BY", true},
		{"unknown address", nil, netip.MustParseAddr("203.0.113.1"), all, "", "", true},
		{"failing lookup", nil, netip.MustParseAddr("192.0.2.66"), all, "", "", true},
		{"no location scope", &consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"}, bavaria, []consentryv1.Scope{consentryv1.ScopeAnalytics}, "", "", false},
		{"no location scope, no address lookup", nil, bavaria, []consentryv1.Scope{consentryv1.ScopeAnalytics}, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookedUp = nil
			req := &consentryv1.IngestRequest{Device: device(tt.loc), Events: []*consentryv1.Event{
				{EventId: eventID(1), Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}}}
			b := batch(req, tt.peer, "consent-1", tt.scopes...)
			if err := st.Process(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			g := b.Rows.Gestures[0]
			if g.Country != tt.country || g.Region != tt.region {
				t.Errorf("location = %q %q, want %q %q", g.Country, g.Region, tt.country, tt.region)
			}
			if (len(lookedUp) > 0) != tt.usesIP {
				t.Errorf("address looked up: %v, want %v", lookedUp, tt.usesIP)
			}
			for _, a := range lookedUp {
				if !a.Is4() && a.Is4In6() {
					t.Errorf("looked up %v without unmapping it", a)
				}
			}
			if b.Peer.IsValid() {
				t.Error("peer address kept")
			}
		})
	}
	if st.IPLookupErrors() != 1 {
		t.Errorf("IPLookupErrors = %d, want 1", st.IPLookupErrors())
	}
}

func TestSaltsSharedAndDestroyed(t *testing.T) {
	store := NewMemorySaltStore()
	clock := now
	tick := func() time.Time { return clock }
	a := NewSalts(SaltsConfig{Store: store, Now: tick})
	b := NewSalts(SaltsConfig{Store: store, Now: tick})
	ctx := t.Context()
	sa, err := a.Salt(ctx, clock)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.Salt(ctx, clock.Add(3*time.Hour))
	if !bytes.Equal(sa, sb) || len(sa) != SaltSize {
		t.Fatal("replicas sharing a store got different salts for a day")
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Len() != 2 {
		t.Fatalf("after Refresh the store holds %d days, want today and tomorrow", store.Len())
	}
	tomorrow, _ := b.Salt(ctx, clock.Add(24*time.Hour))
	if bytes.Equal(tomorrow, sa) {
		t.Fatal("two days share a salt")
	}
	old := sa
	// Just after midnight, yesterday's salt is kept for DestroyGrace...
	clock = time.Date(2026, 11, 30, 0, 5, 0, 0, time.UTC)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Len() != 3 || bytes.Equal(old, make([]byte, SaltSize)) {
		t.Fatalf("5 minutes after midnight the store holds %d days, want 3 (yesterday's is kept for the grace period)", store.Len())
	}
	// ...and destroyed after it.
	clock = clock.Add(DestroyGrace)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if store.Len() != 2 {
		t.Fatalf("after midnight the store holds %d days, want 2 (today, tomorrow)", store.Len())
	}
	if !bytes.Equal(old, make([]byte, SaltSize)) {
		t.Fatal("yesterday's salt is still in memory after Refresh")
	}
	a.mu.RLock()
	n := len(a.cache)
	a.mu.RUnlock()
	if n != 2 {
		t.Fatalf("%d salts cached, want 2", n)
	}
}

type failingStore struct{}

func (failingStore) DailySalt(context.Context, time.Time, []byte) ([]byte, error) {
	return nil, errors.New("clickhouse is down")
}
func (failingStore) DestroySalts(context.Context, time.Time) error { return nil }

func TestSaltUnavailableRefusesBatch(t *testing.T) {
	st := newStage(t, Config{Salts: NewSalts(SaltsConfig{Store: failingStore{}})})
	req := &consentryv1.IngestRequest{Device: device(nil), Events: []*consentryv1.Event{
		{EventId: eventID(1), SessionId: []byte("session-aaaaaaaa"), Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{}}}}}
	err := st.Process(t.Context(), batch(req, netip.Addr{}, "c"))
	if !errors.Is(err, pipeline.ErrStorageUnavailable) {
		t.Fatalf("Process without a salt = %v, want ErrStorageUnavailable (retryable)", err)
	}
}

func TestKeyedIsHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		salt := make([]byte, SaltSize)
		id := make([]byte, r.IntN(200))
		for i := range salt {
			salt[i] = byte(r.Uint32())
		}
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		m := hmac.New(sha256.New, salt)
		m.Write(id)
		want := binary.LittleEndian.Uint64(m.Sum(nil))
		if want == 0 {
			want = 1
		}
		if len(id) == 0 {
			want = 0
		}
		if got := keyed(salt, id); got != want {
			t.Fatalf("keyed(%x, %x) = %x, want HMAC %x", salt, id, got, want)
		}
	}
	salt, id := make([]byte, SaltSize), []byte("session-aaaaaaaa")
	if a := testing.AllocsPerRun(100, func() { keyed(salt, id) }); a != 0 {
		t.Errorf("keyed allocates %v times", a)
	}
}

// TestMemberKeys checks the rows' member keys: the same for one consent
// within a UTC day, different across consents and days (nothing links
// them), keyed with the day of the event, not of the batch, and 0 when
// that day's salt is gone or k-anonymity is off.
func TestMemberKeys(t *testing.T) {
	salts := NewSalts(SaltsConfig{Now: func() time.Time { return now }})
	if err := salts.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := newStage(t, Config{Salts: salts, Regions: firstLevel{}, Generalize: GeneralizeConfig{K: 10}})
	members := func(consent string, times ...time.Time) []uint64 {
		t.Helper()
		req := cleanBatch(len(times))
		b := batch(req, netip.Addr{}, consent)
		copy(b.EventTimes, times)
		if err := st.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, r := range b.Rows.Gestures {
			out = append(out, r.Member)
		}
		for _, r := range b.Rows.Sessions {
			out = append(out, r.Member)
		}
		for _, r := range b.Rows.Customs {
			out = append(out, r.Member)
		}
		for _, r := range b.Rows.Crashes {
			out = append(out, r.Member)
		}
		return out
	}
	today, tomorrow, lastWeek := now.Add(-time.Hour), now.Add(13*time.Hour), now.AddDate(0, 0, -7)
	a := members("consent-a", today, today, tomorrow, lastWeek)
	again := members("consent-a", today, today, today, today)
	b := members("consent-b", today, today, today, today)
	switch {
	case a[0] == 0 || a[0] != a[1] || a[0] != again[0]:
		t.Errorf("one consent, one day: keys %x and %x, want one non-zero key", a, again)
	case a[0] == b[0]:
		t.Errorf("two consents share the key %x", a[0])
	case a[2] == 0 || a[2] == a[0]:
		t.Errorf("tomorrow's event: key %x, want a key of tomorrow's salt (today's is %x)", a[2], a[0])
	case a[3] != 0:
		t.Errorf("an event of a day whose salt is gone got key %x, want 0", a[3])
	}
	off := newStage(t, Config{Salts: salts, Regions: firstLevel{}, Generalize: GeneralizeConfig{K: 1}})
	bt := batch(cleanBatch(4), netip.Addr{}, "consent-a")
	if err := off.Process(context.Background(), bt); err != nil {
		t.Fatal(err)
	}
	if m := bt.Rows.Gestures[0].Member; m != 0 {
		t.Errorf("k-anonymity off: member key %x, want 0", m)
	}
}

// countDetections records CountDetections calls.
type countDetections map[string]int

func (c countDetections) CountDetections(app, detector string, n int) { c[app+"/"+detector] += n }

// TestDetectionsCounted checks that the stage counts, per batch and
// detector, the identifiers it replaced and the attributes it dropped for
// their key, and nothing for clean text.
func TestDetectionsCounted(t *testing.T) {
	counts := countDetections{}
	st := newStage(t, Config{Regions: firstLevel{}, Detections: counts})
	req := cleanBatch(8)
	if err := st.Process(context.Background(), batch(req, netip.Addr{}, "c")); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 0 {
		t.Fatalf("clean batch counted %v", counts)
	}
	for _, e := range req.Events {
		if c := e.GetCrash(); c != nil {
			c.Message += " for jane.doe@example.com and +43 664 1234567"
		}
		if c := e.GetCustom(); c != nil {
			c.Attributes["user_email"] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: "x"}}
		}
	}
	if err := st.Process(context.Background(), batch(req, netip.Addr{}, "c")); err != nil {
		t.Fatal(err)
	}
	want := countDetections{"com.example.notes/email": 2, "com.example.notes/phone": 2, "com.example.notes/" + IdentifierKey: 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counted %v, want %v", counts, want)
	}
}

func TestIsVersion(t *testing.T) {
	for in, want := range map[string]bool{"4.12.0.3": true, "v4.12.0-beta.2": true, "4.12.0+build5": true, "17": true,
		"1.2.3.4.5": false, "jane@example.com": false, "": false, "4.12 (jane)": false, "4..1": false} {
		if got := isVersion(in); got != want {
			t.Errorf("isVersion(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNormalizeLocale(t *testing.T) {
	for in, want := range map[string]string{"de-AT": "de-AT", "de_at@currency=EUR": "de-AT", "en": "en", "zh-Hant-TW": "zh-TW",
		"es-419": "es-419", "x": "", "": "", "EN_us": "en-US"} {
		if got := normalizeLocale(in); got != want {
			t.Errorf("normalizeLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

// cleanBatch returns a batch of n events, nothing in them to scrub: the
// mix of a realistic batch (gestures, sessions, a custom event, a crash).
func cleanBatch(n int) *consentryv1.IngestRequest {
	req := &consentryv1.IngestRequest{Device: device(&consentryv1.CoarseLocation{CountryCode: "AT", RegionCode: "AT-9"})}
	for i := range n {
		e := &consentryv1.Event{EventId: eventID(byte(i + 1)), SessionId: []byte("session-aaaaaaaa")}
		switch i % 4 {
		case 0:
			e.Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "editor"}}
		case 1:
			e.Payload = &consentryv1.Event_Session{Session: &consentryv1.Session{Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: 60_000}}
		case 2:
			e.Payload = &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "export", Attributes: map[string]*consentryv1.AttributeValue{
				"format": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "pdf"}},
				"pages":  {Value: &consentryv1.AttributeValue_IntValue{IntValue: 3}},
				"dark":   {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}},
			}}}
		case 3:
			e.Payload = &consentryv1.Event_Crash{Crash: &consentryv1.Crash{ExceptionType: "java.lang.IllegalStateException",
				Message: "Fragment NoteEditor not attached to a context", Thread: "main", Frames: []*consentryv1.StackFrame{
					{Module: "com.example.notes", Function: "com.example.notes.NoteEditor.save", File: "NoteEditor.kt", Line: 42, InApp: true},
					{Module: "libc.so", Function: "abort+164", File: "", Line: 0},
				}}}
		}
		req.Events = append(req.Events, e)
	}
	return req
}

// TestCleanEventsDoNotAllocate checks that the allocations of Process do
// not grow with the events of a batch when nothing needs scrubbing: a
// batch of 101 events allocates what a batch of 1 does.
func TestCleanEventsDoNotAllocate(t *testing.T) {
	st := newStage(t, Config{Regions: firstLevel{}})
	allocs := func(n int) float64 {
		req := cleanBatch(n)
		return testing.AllocsPerRun(50, func() {
			b := batch(req, netip.Addr{}, "consent-1")
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := allocs(4), allocs(404)
	if many > one {
		t.Errorf("a batch of 404 clean events allocates %v times, one of 4 %v times: %.3f allocations per extra event",
			many, one, (many-one)/400)
	}
}

// BenchmarkCleanEvent reports the time and allocations per event of
// anonymizing realistic batches of 100 events with nothing to scrub.
func BenchmarkCleanEvent(b *testing.B) {
	st := newStage(b, Config{Regions: firstLevel{}})
	req := cleanBatch(100)
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		bt := batch(req, netip.Addr{}, "consent-1")
		if err := st.Process(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
		events += 100
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkDirtyEvent is BenchmarkCleanEvent with an email in every
// crash message and attribute.
func BenchmarkDirtyEvent(b *testing.B) {
	st := newStage(b, Config{Regions: firstLevel{}})
	req := cleanBatch(100)
	for _, e := range req.Events {
		if c := e.GetCrash(); c != nil {
			c.Message += " for jane.doe@example.com"
		}
	}
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		if err := st.Process(context.Background(), batch(req, netip.Addr{}, "consent-1")); err != nil {
			b.Fatal(err)
		}
		events += 100
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkGeneratedBatch anonymizes the load generator's mixed batches
// of 200 events (the ghz benchmark's), whose text varies more from event
// to event than BenchmarkCleanEvent's.
func BenchmarkGeneratedBatch(b *testing.B) {
	st := newStage(b, Config{Regions: firstLevel{}})
	gen := eventgen.New(eventgen.Config{AppID: "com.example.notes", Token: "token", Seed: 5})
	reqs := make([]*consentryv1.IngestRequest, 16)
	for i := range reqs {
		reqs[i] = gen.Batch(200, now)
	}
	b.ReportAllocs()
	events := 0
	for i := 0; b.Loop(); i++ {
		if err := st.Process(context.Background(), batch(reqs[i%len(reqs)], netip.Addr{}, "consent-1")); err != nil {
			b.Fatal(err)
		}
		events += 200
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// TestRepeatedTextStillScrubbed checks the batch's cache of clean text:
// a value that only looks like a clean one seen before (same length,
// same first, middle and last bytes: the same slot) is scrubbed, and a
// clean value seen before is stored as it is, however the two alternate.
func TestRepeatedTextStillScrubbed(t *testing.T) {
	st := newStage(t, Config{Regions: firstLevel{}})
	// twin returns clean text with dirty's length and first, middle and
	// last bytes.
	twin := func(dirty string) string {
		b := []byte(strings.Repeat("x", len(dirty)))
		for _, i := range []int{0, len(dirty) / 2, len(dirty) - 1} {
			b[i] = dirty[i]
		}
		return string(b)
	}
	var pairs []struct{ clean, dirty string }
	for _, dirty := range []string{"settings jane.doe@example.com z", "a 192.168.10.20 and 10.0.0.1 xxb", "call +43 664 1234567 now"} {
		pairs = append(pairs, struct{ clean, dirty string }{twin(dirty), dirty})
	}
	pairs = append(pairs, struct{ clean, dirty string }{"s", "s"}) // always clean
	for _, p := range pairs {
		var c cleanCache
		if c.slot(p.clean) != c.slot(p.dirty) {
			t.Fatalf("%q and %q do not share a slot: the test tests nothing", p.clean, p.dirty)
		}
		if st.Scrubber().String(p.clean) != p.clean || (p.dirty != p.clean && st.Scrubber().String(p.dirty) == p.dirty) {
			t.Fatalf("%q is not clean, or %q not dirty", p.clean, p.dirty)
		}
		req := &consentryv1.IngestRequest{Device: device(nil)}
		for i, s := range []string{p.clean, p.dirty, p.clean, p.clean, p.dirty, p.dirty, p.clean} {
			req.Events = append(req.Events, &consentryv1.Event{EventId: eventID(byte(i + 1)),
				Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: s}}})
		}
		b := batch(req, netip.Addr{}, "consent-1")
		if err := st.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Rows.Gestures {
			sent := req.Events[i].GetGesture().GetScreen()
			if want := st.Scrubber().String(sent); r.Screen != want {
				t.Errorf("event %d: %q stored as %q, want %q", i, sent, r.Screen, want)
			}
		}
	}
}

// TestEnumNames checks the stored name of every value of every enum of
// the ingest API, and "unknown" for UNSPECIFIED and numbers this version
// does not know (negative, between values, past the last one).
func TestEnumNames(t *testing.T) {
	names := newEnumNames()
	enums := consentryv1.File_consentry_v1_ingest_proto.Enums()
	if enums.Len() == 0 {
		t.Fatal("no enums")
	}
	for i := range enums.Len() {
		e := enums.Get(i)
		typ, err := protoregistry.GlobalTypes.FindEnumByName(e.FullName())
		if err != nil {
			t.Fatal(err)
		}
		vals := e.Values()
		prefix := strings.TrimSuffix(string(vals.ByNumber(0).Name()), "UNSPECIFIED")
		for j := range vals.Len() {
			v := vals.Get(j)
			want := strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix))
			if v.Number() == 0 {
				want = "unknown"
			}
			if got := names.of(typ.New(v.Number())); got != want {
				t.Errorf("%s: got %q, want %q", v.FullName(), got, want)
			}
		}
		for _, k := range []protoreflect.EnumNumber{-1, 1 << 20, protoreflect.EnumNumber(vals.Len() + 1000)} {
			if vals.ByNumber(k) != nil {
				continue
			}
			if got := names.of(typ.New(k)); got != "unknown" {
				t.Errorf("%s %d: got %q, want unknown", e.FullName(), k, got)
			}
		}
	}
	if a := testing.AllocsPerRun(100, func() { names.of(consentryv1.DeviceClass_DEVICE_CLASS_PHONE) }); a != 0 {
		t.Errorf("a lookup allocates %.0f times", a)
	}
}
