package anonymizer

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Stage is the anonymizer stage.
type Stage struct {
	cfg   Config
	scrub *Scrubber
}

// New returns the anonymizer stage for cfg.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg.withDefaults(), scrub: NewScrubber()}, nil
}

// Process fills b.Rows from the events not dropped, and forgets b.Peer.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	defer func() { b.Peer = netip.Addr{} }()
	salt, err := s.cfg.Salts.Salt(s.cfg.Now())
	if err != nil {
		return fmt.Errorf("anonymize: session salt: %w", err)
	}
	common := s.common(b)
	for i, e := range b.Request.GetEvents() {
		if b.Dropped(i) {
			continue
		}
		c := common
		c.EventID = [16]byte(e.GetEventId())
		c.EventTime = b.EventTimes[i].Truncate(s.cfg.TimePrecision)
		c.SessionKey = sessionKey(salt, e.GetSessionId())
		s.appendRow(&b.Rows, c, e)
	}
	return nil
}

// common returns the columns every row of b shares.
func (s *Stage) common(b *pipeline.Batch) pipeline.Common {
	d := b.Request.GetDevice()
	c := pipeline.Common{
		AppID:       b.AppID,
		AppVersion:  s.short(d.GetAppVersion()),
		AppBuild:    s.short(d.GetAppBuild()),
		SDKVersion:  s.short(d.GetSdkVersion()),
		DeviceClass: enumName(d.GetDeviceClass(), "DEVICE_CLASS_"),
		DeviceModel: s.short(d.GetDeviceModel()),
		OSName:      enumName(d.GetOsName(), "OS_NAME_"),
		OSVersion:   s.short(d.GetOsVersion()),
		Locale:      normalizeLocale(d.GetLocale()),
		ConsentKey:  b.ConsentKey,
	}
	if b.HasScope(pipeline.ScopeLocation) {
		c.Country, c.Region = coarseLocation(d.GetLocation())
	}
	return c
}

// short scrubs a short device field.
func (s *Stage) short(v string) string { return s.scrub.Scrub(strings.TrimSpace(v)) }

func (s *Stage) appendRow(rows *pipeline.Rows, c pipeline.Common, e *consentryv1.Event) {
	switch p := e.GetPayload().(type) {
	case *consentryv1.Event_Session:
		v := p.Session
		rows.Sessions = append(rows.Sessions, pipeline.SessionRow{
			Common:       c,
			Phase:        enumName(v.GetPhase(), "SESSION_PHASE_"),
			DurationMs:   uint64(v.GetDurationMs()),
			ForegroundMs: uint64(v.GetForegroundMs()),
		})
	case *consentryv1.Event_Gesture:
		v := p.Gesture
		n := v.GetCount()
		if n == 0 {
			n = 1
		}
		rows.Gestures = append(rows.Gestures, pipeline.GestureRow{
			Common:     c,
			Type:       enumName(v.GetType(), "GESTURE_TYPE_"),
			Screen:     s.scrub.Scrub(v.GetScreen()),
			Count:      n,
			DurationMs: v.GetDurationMs(),
		})
	case *consentryv1.Event_Crash:
		v := p.Crash
		frames := make([]pipeline.Frame, len(v.GetFrames()))
		for i, f := range v.GetFrames() {
			frames[i] = pipeline.Frame{
				Module:   s.scrub.Scrub(f.GetModule()),
				Function: s.scrub.Scrub(f.GetFunction()),
				File:     s.scrub.Scrub(f.GetFile()),
				Line:     f.GetLine(),
				InApp:    f.GetInApp(),
			}
		}
		rows.Crashes = append(rows.Crashes, pipeline.CrashRow{
			Common:        c,
			ExceptionType: s.scrub.Scrub(v.GetExceptionType()),
			Message:       s.scrub.Scrub(v.GetMessage()),
			Frames:        frames,
			Thread:        s.scrub.Scrub(v.GetThread()),
			Handled:       v.GetHandled(),
			AppState:      enumName(v.GetAppState(), "APP_STATE_"),
		})
	case *consentryv1.Event_Custom:
		rows.Customs = append(rows.Customs, s.customRow(c, p.Custom))
	case *consentryv1.Event_Diagnostic:
		v := p.Diagnostic
		rows.Diagnostics = append(rows.Diagnostics, pipeline.DiagnosticRow{
			Common:      c,
			Kind:        enumName(v.GetKind(), "DIAGNOSTIC_KIND_"),
			DurationMs:  v.GetDurationMs(),
			StartType:   enumName(v.GetStartType(), "APP_START_TYPE_"),
			NetworkType: enumName(v.GetNetworkType(), "NETWORK_TYPE_"),
			MemoryBytes: v.GetMemoryBytes(),
		})
	}
}

func (s *Stage) customRow(c pipeline.Common, v *consentryv1.CustomEvent) pipeline.CustomRow {
	r := pipeline.CustomRow{Common: c, Name: s.scrub.Scrub(v.GetName())}
	keys := make([]string, 0, len(v.GetAttributes()))
	for k := range v.GetAttributes() {
		if !IsIdentifierKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch a := v.GetAttributes()[k].GetValue().(type) {
		case *consentryv1.AttributeValue_StringValue:
			r.StringKeys = append(r.StringKeys, k)
			r.StringValues = append(r.StringValues, s.scrub.Scrub(a.StringValue))
		case *consentryv1.AttributeValue_IntValue:
			r.NumberKeys = append(r.NumberKeys, k)
			r.NumberValues = append(r.NumberValues, float64(a.IntValue))
		case *consentryv1.AttributeValue_DoubleValue:
			r.NumberKeys = append(r.NumberKeys, k)
			r.NumberValues = append(r.NumberValues, a.DoubleValue)
		case *consentryv1.AttributeValue_BoolValue:
			r.BoolKeys = append(r.BoolKeys, k)
			r.BoolValues = append(r.BoolValues, a.BoolValue)
		}
	}
	return r
}

// enumName returns the lower-case name of v without prefix, e.g. "phone"
// for DEVICE_CLASS_PHONE, and "unknown" for UNSPECIFIED or a value this
// version does not know.
func enumName[E interface{ String() string }](v E, prefix string) string {
	n, ok := strings.CutPrefix(v.String(), prefix)
	if !ok || n == "UNSPECIFIED" {
		return "unknown"
	}
	return strings.ToLower(n)
}

// normalizeLocale keeps a BCP 47 tag's language and region subtags, e.g.
// "de-AT" from "de_AT@currency=EUR"; anything else becomes "".
func normalizeLocale(v string) string {
	v, _, _ = strings.Cut(v, "@")
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == '_' })
	if len(parts) == 0 || !isAlpha(parts[0], 2, 3) {
		return ""
	}
	out := strings.ToLower(parts[0])
	for _, p := range parts[1:] {
		if isAlpha(p, 2, 2) || isDigits(p, 3) {
			return out + "-" + strings.ToUpper(p)
		}
	}
	return out
}

// coarseLocation returns the country and region codes the client gave, if
// well-formed; coordinates are never used here (see docs/privacy.md).
func coarseLocation(l *consentryv1.CoarseLocation) (country, region string) {
	cc := strings.ToUpper(strings.TrimSpace(l.GetCountryCode()))
	if !isAlpha(cc, 2, 2) {
		return "", ""
	}
	rc := strings.ToUpper(strings.TrimSpace(l.GetRegionCode()))
	sub, ok := strings.CutPrefix(rc, cc+"-")
	if !ok || len(sub) < 1 || len(sub) > 3 || !isAlnum(sub) {
		rc = ""
	}
	return cc, rc
}

func isAlpha(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
