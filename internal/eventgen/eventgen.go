// Package eventgen builds realistic ingest batches for the demo, tests and
// benchmarks: a mix of sessions, gestures, crashes (with breadcrumbs),
// custom events and diagnostics from plausible devices.
package eventgen

import (
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/fakedata"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Config shapes generated batches.
type Config struct {
	// AppID is the app every batch is from.
	AppID string
	// Token is the consent token every batch carries.
	Token string
	// Seed makes the sequence reproducible.
	Seed uint64
	// Device, if set, is the device every batch is from (its app id is
	// AppID); nil draws one per batch.
	Device *consentryv1.DeviceContext
}

// Generator builds batches. It is not safe for concurrent use.
type Generator struct {
	cfg Config
	rnd *rand.Rand
	// crumbs draws the crashes' breadcrumbs, apart from rnd, so that the
	// rest of a seed's batches stays what it was before breadcrumbs.
	crumbs *rand.Rand
}

// New returns a Generator.
func New(cfg Config) *Generator {
	return &Generator{cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		crumbs: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x2545f4914f6cdd1d))}
}

// Devices, places, screens and releases are internal/fakedata's, drawn
// uniformly (a benchmark's batches should spread over all of them).
var (
	devices   = fakedata.Values(fakedata.Devices())
	places    = fakedata.Values(fakedata.Places())
	screens   = fakedata.Values(fakedata.Screens())
	releases  = fakedata.Releases()
	crashSigs = []struct{ typ, msg, fn string }{
		{"java.lang.IllegalStateException", "Fragment not attached to a context", "NoteEditor.save"},
		{"java.lang.NullPointerException", "Attempt to invoke virtual method on a null object reference", "SyncWorker.doWork"},
		{"SIGSEGV", "Segmentation fault at 0x0000000000000010", "ImageCache.decode"},
	}
)

// Batch returns a batch of n events sent at now.
func (g *Generator) Batch(n int, now time.Time) *consentryv1.IngestRequest {
	r := g.rnd
	dev := g.device()
	session := g.id()
	req := &consentryv1.IngestRequest{ConsentToken: g.cfg.Token, Device: dev, SentAtUnixMs: now.UnixMilli()}
	for i := 0; i < n; i++ {
		age := int64(r.IntN(600_000))
		e := &consentryv1.Event{
			EventId:         g.id(),
			CreatedAtUnixMs: now.UnixMilli() - age,
			AgeMs:           &age,
			SessionId:       session,
		}
		switch k := r.IntN(100); {
		case k < 15:
			e.Payload = &consentryv1.Event_Session{Session: &consentryv1.Session{
				Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: int64(30_000 + r.IntN(600_000)), ForegroundMs: 25_000,
			}}
		case k < 70:
			e.Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
				Type: consentryv1.GestureType(1 + r.IntN(6)), Screen: screens[r.IntN(len(screens))], Count: uint32(1 + r.IntN(5)),
			}}
		case k < 75:
			sig := crashSigs[r.IntN(len(crashSigs))]
			e.Payload = &consentryv1.Event_Crash{Crash: &consentryv1.Crash{
				ExceptionType: sig.typ, Message: sig.msg, Thread: "main", AppState: consentryv1.AppState_APP_STATE_FOREGROUND,
				Frames: []*consentryv1.StackFrame{
					{Module: "com.example.notes", Function: sig.fn, File: "NoteEditor.kt", Line: uint32(40 + r.IntN(200)), InApp: true},
					{Module: "com.example.notes", Function: "MainActivity.onResume", File: "MainActivity.kt", Line: 88, InApp: true},
					{Module: "android.app", Function: "Activity.performResume", File: "Activity.java", Line: 8422},
				},
				Breadcrumbs: g.breadcrumbs(),
			}}
		case k < 90:
			e.Payload = &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{
				Name: "export_pdf",
				Attributes: map[string]*consentryv1.AttributeValue{
					"pages":  {Value: &consentryv1.AttributeValue_IntValue{IntValue: int64(1 + r.IntN(40))}},
					"format": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "a4"}},
					"dark":   {Value: &consentryv1.AttributeValue_BoolValue{BoolValue: r.IntN(2) == 0}},
				},
			}}
		default:
			e.Payload = &consentryv1.Event_Diagnostic{Diagnostic: &consentryv1.Diagnostic{
				Kind: consentryv1.DiagnosticKind_DIAGNOSTIC_KIND_APP_START, DurationMs: uint32(300 + r.IntN(2000)),
				StartType: consentryv1.AppStartType_APP_START_TYPE_COLD, NetworkType: consentryv1.NetworkType_NETWORK_TYPE_WIFI,
			}}
		}
		req.Events = append(req.Events, e)
	}
	return req
}

// device returns the device of a batch: Config.Device, or one drawn.
func (g *Generator) device() *consentryv1.DeviceContext {
	if g.cfg.Device != nil {
		dev := proto.CloneOf(g.cfg.Device)
		dev.AppId = g.cfg.AppID
		return dev
	}
	r := g.rnd
	d := devices[r.IntN(len(devices))]
	p := places[r.IntN(len(places))]
	rel := releases[r.IntN(len(releases)-1)] // not the newest: it is rolling out
	dev := &consentryv1.DeviceContext{
		AppId:       g.cfg.AppID,
		AppVersion:  rel.Version,
		AppBuild:    rel.Build,
		SdkVersion:  fakedata.SDKVersion(d.OS),
		DeviceClass: consentryv1.DeviceClass_DEVICE_CLASS_PHONE,
		DeviceModel: d.Model,
		OsName:      consentryv1.OsName_OS_NAME_IOS,
		OsVersion:   fakedata.OSVersions(d.OS)[0].Value,
		Locale:      p.Locale,
		Location:    &consentryv1.CoarseLocation{CountryCode: p.Country, RegionCode: p.Region},
	}
	if d.OS == fakedata.OSAndroid {
		dev.OsName = consentryv1.OsName_OS_NAME_ANDROID
	}
	if d.Class == "tablet" {
		dev.DeviceClass = consentryv1.DeviceClass_DEVICE_CLASS_TABLET
	}
	return dev
}

// breadcrumbs returns what the user did before a crash: a few screens
// opened, gestures on them, perhaps an export, oldest first, within the
// last two minutes.
func (g *Generator) breadcrumbs() []*consentryv1.Breadcrumb {
	r := g.crumbs
	n := 2 + r.IntN(6)
	out := make([]*consentryv1.Breadcrumb, 0, n)
	offset := int64(20_000 + r.IntN(100_000))
	screen := screens[r.IntN(len(screens))]
	for i := range n {
		b := &consentryv1.Breadcrumb{Name: screen, OffsetMs: offset}
		switch k := r.IntN(10); {
		case i == 0 || k < 3:
			screen = screens[r.IntN(len(screens))]
			b.Type, b.Name = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW, screen
		case k < 9:
			b.Type, b.GestureType = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE, consentryv1.GestureType(1+r.IntN(6))
		default:
			b.Type, b.Name = consentryv1.BreadcrumbType_BREADCRUMB_TYPE_CUSTOM, "export_pdf"
		}
		out = append(out, b)
		offset -= min(offset, int64(r.IntN(20_000)))
	}
	return out
}

// id returns 16 random bytes shaped as a UUID version 4.
func (g *Generator) id() []byte {
	b := make([]byte, 16)
	for i := 0; i < 16; i += 8 {
		v := g.rnd.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}
