package sdk

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Every Record method, StartSession, EndSession and SetLocation does
// nothing and returns nil when the consent does not cover its scope
// (analytics, or crash_reports for crashes, or location): nothing is
// recorded, queued or sent. An argument the collector would refuse is
// reported with an error wrapping ErrInvalidArgument, and nothing is
// recorded either. After Close they return an error wrapping ErrClosed.

// maxSessionMs is the collector's bound on a session's length: 7 days.
const maxSessionMs = 7 * 24 * 60 * 60 * 1000

// StartSession starts an app session: it draws a random session id, held
// in memory only, that the events recorded until EndSession carry, and
// records the session's start. A session already running is ended first.
// The app state is "foreground" from then on (see SetAppState).
func (c *Client) StartSession() error {
	c.state.Store(int32(consentryv1.AppState_APP_STATE_FOREGROUND))
	id, err := randomID(16)
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("start session: %w", ErrClosed)
	}
	if !c.covers(ScopeAnalytics, c.now()) {
		c.mu.Unlock()
		return nil
	}
	prev := c.session
	c.session = session{id: id, start: time.Now()}
	c.mu.Unlock()
	if prev.id != nil {
		if err := c.recordSessionEnd(prev); err != nil {
			return err
		}
	}
	return c.record("start session", ScopeAnalytics, &consentryv1.Event{
		SessionId: id,
		Payload:   &consentryv1.Event_Session{Session: &consentryv1.Session{Phase: consentryv1.SessionPhase_SESSION_PHASE_START}},
	}, false)
}

// EndSession ends the session StartSession started, recording its
// duration (on the monotonic clock). Without a session it does nothing.
// The app state is "background" from then on (see SetAppState).
func (c *Client) EndSession() error {
	c.state.Store(int32(consentryv1.AppState_APP_STATE_BACKGROUND))
	if prev := c.takeSession(); prev.id != nil {
		return c.recordSessionEnd(prev)
	}
	return nil
}

// takeSession ends the current session in memory and returns it; its id
// is nil when there was none.
func (c *Client) takeSession() session {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.session
	c.session = session{}
	return prev
}

// EndSessionAfter ends the current session like EndSession, recording
// durationMs (0 to 7 days) as its length instead of the time since
// StartSession: for apps that measure the time in the foreground
// themselves. The app state is "background" from then on.
func (c *Client) EndSessionAfter(durationMs int64) error {
	if durationMs < 0 || durationMs > maxSessionMs {
		return fmt.Errorf("end session: %w: duration %d ms is not 0 to 7 days", ErrInvalidArgument, durationMs)
	}
	c.state.Store(int32(consentryv1.AppState_APP_STATE_BACKGROUND))
	if prev := c.takeSession(); prev.id != nil {
		return c.recordSessionEndAfter(prev, durationMs)
	}
	return nil
}

func (c *Client) recordSessionEnd(s session) error {
	return c.recordSessionEndAfter(s, min(time.Since(s.start).Milliseconds(), maxSessionMs))
}

func (c *Client) recordSessionEndAfter(s session, d int64) error {
	return c.record("end session", ScopeAnalytics, &consentryv1.Event{
		SessionId: s.id,
		Payload: &consentryv1.Event_Session{Session: &consentryv1.Session{
			Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: d,
		}},
	}, false)
}

// RecordSession records a session the app measured itself, of durationMs
// milliseconds (at most 7 days), as the end of a session with a fresh
// random id.
func (c *Client) RecordSession(durationMs int64) error {
	if durationMs < 0 || durationMs > maxSessionMs {
		return fmt.Errorf("record session: %w: duration %d ms is not 0 to 7 days", ErrInvalidArgument, durationMs)
	}
	id, err := randomID(16)
	if err != nil {
		return fmt.Errorf("record session: %w", err)
	}
	return c.record("record session", ScopeAnalytics, &consentryv1.Event{
		SessionId: id,
		Payload: &consentryv1.Event_Session{Session: &consentryv1.Session{
			Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: durationMs,
		}},
	}, false)
}

// RecordGesture records count gestures of one kind ("tap", "double_tap",
// "long_press", "swipe", "pinch" or "scroll") on a screen (the app's name
// for it, e.g. "settings.privacy": letters, digits, '.', '_', '-', '/',
// ':' and spaces; never user content). count 0 means 1; durationMs is the
// total duration of long presses, swipes, pinches and scrolls.
func (c *Client) RecordGesture(kind string, screen string, count int, durationMs int64) error {
	t, ok := enumValue(kind, "GESTURE_TYPE_", consentryv1.GestureType_value)
	if !ok || t == 0 {
		return fmt.Errorf("record gesture: %w: kind %q is not tap, double_tap, long_press, swipe, pinch or scroll", ErrInvalidArgument, kind)
	}
	if !validName(screen, true) {
		return fmt.Errorf("record gesture: %w: screen name must be at most %d letters, digits, '.', '_', '-', '/', ':' or spaces", ErrInvalidArgument, maxNameBytes)
	}
	if count < 0 || int64(count) > math.MaxUint32 || durationMs < 0 || durationMs > math.MaxUint32 {
		return fmt.Errorf("record gesture: %w: count and duration must be 0 to 2^32-1", ErrInvalidArgument)
	}
	return c.record("record gesture", ScopeAnalytics, &consentryv1.Event{
		Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{
			Type: consentryv1.GestureType(t), Screen: screen, Count: uint32(count), DurationMs: uint32(durationMs),
		}},
	}, false)
}

// RecordCustom records an app-defined event: name is letters, digits,
// '.', '_' and '-' (e.g. "export_pdf"); attrs may be nil. Never put
// identifiers in attributes: the collector drops keys that name them and
// scrubs string values, but the SDK sends what it is given.
func (c *Client) RecordCustom(name string, attrs *Attributes) error {
	if !validName(name, false) {
		return fmt.Errorf("record custom event: %w: name must be 1-%d letters, digits, '.', '_' or '-'", ErrInvalidArgument, maxNameBytes)
	}
	ev := &consentryv1.CustomEvent{Name: name}
	if attrs != nil {
		if attrs.err != nil {
			return fmt.Errorf("record custom event: %w", attrs.err)
		}
		if len(attrs.m) > 0 {
			ev.Attributes = make(map[string]*consentryv1.AttributeValue, len(attrs.m))
			for k, v := range attrs.m {
				ev.Attributes[k] = &consentryv1.AttributeValue{Value: v.Value}
			}
		}
	}
	return c.record("record custom event", ScopeAnalytics, &consentryv1.Event{
		Payload: &consentryv1.Event_Custom{Custom: ev},
	}, false)
}

// RecordDiagnostic records a performance or health measurement. kind is
// "app_start" (durationMs: time to first frame; startType "cold", "warm"
// or "hot"), "memory_warning" (memoryBytes: the app's footprint), "hang"
// (durationMs: how long the main thread was blocked), "network_change",
// "low_storage" or "thermal". networkType ("none", "wifi", "cellular",
// "ethernet", "other") may accompany any kind; empty strings and zeros
// mean unknown.
func (c *Client) RecordDiagnostic(kind string, durationMs int64, startType, networkType string, memoryBytes int64) error {
	k, ok := enumValue(kind, "DIAGNOSTIC_KIND_", consentryv1.DiagnosticKind_value)
	if !ok || k == 0 {
		return fmt.Errorf("record diagnostic: %w: kind %q is not app_start, memory_warning, network_change, hang, low_storage or thermal", ErrInvalidArgument, kind)
	}
	st, ok := enumValue(startType, "APP_START_TYPE_", consentryv1.AppStartType_value)
	if !ok {
		return fmt.Errorf("record diagnostic: %w: start type %q is not cold, warm or hot", ErrInvalidArgument, startType)
	}
	nt, ok := enumValue(networkType, "NETWORK_TYPE_", consentryv1.NetworkType_value)
	if !ok {
		return fmt.Errorf("record diagnostic: %w: network type %q is not none, wifi, cellular, ethernet or other", ErrInvalidArgument, networkType)
	}
	if durationMs < 0 || durationMs > math.MaxUint32 || memoryBytes < 0 {
		return fmt.Errorf("record diagnostic: %w: duration must be 0 to 2^32-1 ms and memory not negative", ErrInvalidArgument)
	}
	return c.record("record diagnostic", ScopeAnalytics, &consentryv1.Event{
		Payload: &consentryv1.Event_Diagnostic{Diagnostic: &consentryv1.Diagnostic{
			Kind: consentryv1.DiagnosticKind(k), DurationMs: uint32(durationMs), StartType: consentryv1.AppStartType(st),
			NetworkType: consentryv1.NetworkType(nt), MemoryBytes: uint64(memoryBytes),
		}},
	}, false)
}

// SetLocation sets the device's approximate location, sent with the
// following batches if the consent covers "location". The coordinates are
// rounded to one decimal (about 11 km) at once; nothing more precise is
// kept, and the location is held in memory only. Without the location
// scope it does nothing.
func (c *Client) SetLocation(latitude, longitude float64) error {
	if math.IsNaN(latitude) || math.IsNaN(longitude) || latitude < -90 || latitude > 90 || longitude < -180 || longitude > 180 {
		return fmt.Errorf("set location: %w: latitude must be -90 to 90 and longitude -180 to 180", ErrInvalidArgument)
	}
	lat, lon := roundCoordinate(latitude), roundCoordinate(longitude)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("set location: %w", ErrClosed)
	}
	if !c.covers(ScopeLocation, c.now()) {
		return nil
	}
	c.location = &consentryv1.CoarseLocation{Latitude: &lat, Longitude: &lon}
	return nil
}

// roundCoordinate rounds a coordinate to one decimal.
func roundCoordinate(v float64) float64 {
	r := math.Round(v*10) / 10
	if r == 0 {
		return 0 // no negative zero
	}
	return r
}

// Attributes are a custom event's attributes: up to 64 scalar values by
// key. Build them with NewAttributes and the Put methods. Not safe for
// concurrent use.
type Attributes struct {
	m   map[string]*consentryv1.AttributeValue
	err error
}

// NewAttributes returns an empty attribute set.
func NewAttributes() *Attributes {
	return &Attributes{m: make(map[string]*consentryv1.AttributeValue)}
}

// PutString sets key to a string value (at most 8 KiB; longer values are
// cut). Keys are letters, digits, '.', '_' and '-'. An invalid key or too
// many attributes make RecordCustom fail.
func (a *Attributes) PutString(key, value string) {
	a.put(key, &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: truncate(value, maxTextBytes)}})
}

// PutInt sets key to an integer value.
func (a *Attributes) PutInt(key string, value int64) {
	a.put(key, &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_IntValue{IntValue: value}})
}

// PutDouble sets key to a floating-point value; NaN and infinities are
// invalid.
func (a *Attributes) PutDouble(key string, value float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		a.fail(fmt.Errorf("%w: attribute %q is NaN or infinite", ErrInvalidArgument, key))
		return
	}
	a.put(key, &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: value}})
}

// PutBool sets key to a boolean value.
func (a *Attributes) PutBool(key string, value bool) {
	a.put(key, &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_BoolValue{BoolValue: value}})
}

// Len returns the number of attributes.
func (a *Attributes) Len() int { return len(a.m) }

func (a *Attributes) put(key string, v *consentryv1.AttributeValue) {
	if a.m == nil {
		a.m = make(map[string]*consentryv1.AttributeValue)
	}
	switch _, exists := a.m[key]; {
	case !validName(key, false):
		a.fail(fmt.Errorf("%w: attribute key must be 1-%d letters, digits, '.', '_' or '-'", ErrInvalidArgument, maxNameBytes))
	case !exists && len(a.m) >= maxAttributes:
		a.fail(fmt.Errorf("%w: more than %d attributes", ErrInvalidArgument, maxAttributes))
	default:
		a.m[key] = v
	}
}

func (a *Attributes) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// validName reports whether v is at most maxNameBytes of letters, digits,
// '.', '_' and '-' (and, for screens, '/', ':' and spaces); empty is
// allowed only for screens.
func validName(v string, screen bool) bool {
	if v == "" {
		return screen
	}
	if len(v) > maxNameBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case isAlnum(b), b == '.', b == '_', b == '-':
		case screen && (b == '/' || b == ':' || b == ' '):
		default:
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes at a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
