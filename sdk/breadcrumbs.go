package sdk

import (
	"fmt"
	"sync"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Breadcrumbs are what the user did in the app before a crash: the last
// Config.MaxBreadcrumbs screen views (RecordScreenView), gestures
// (RecordGesture), custom events (RecordCustom) and custom breadcrumbs
// (LeaveBreadcrumb). They describe the use of the app, so they are kept
// only while the consent covers analytics, in memory only, and leave the
// device only with a crash (which needs crash_reports), each with how
// long before the crash it happened. A purge (revocation, the consent
// ending) forgets them.

// crumb is one breadcrumb in memory.
type crumb struct {
	typ     consentryv1.BreadcrumbType
	name    string
	gesture consentryv1.GestureType
	at      time.Time // monotonic
}

// crumbRing holds the last breadcrumbs, oldest first. Its methods are
// safe for concurrent use; a ring of size 0 keeps none.
type crumbRing struct {
	mu   sync.Mutex
	buf  []crumb
	next int // where the next crumb goes once buf is full
}

func newCrumbRing(size int) *crumbRing {
	return &crumbRing{buf: make([]crumb, 0, max(size, 0))}
}

func (r *crumbRing) add(c crumb) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case cap(r.buf) == 0:
	case len(r.buf) < cap(r.buf):
		r.buf = append(r.buf, c)
	default:
		r.buf[r.next] = c
		r.next = (r.next + 1) % len(r.buf)
	}
}

// snapshot returns the breadcrumbs, oldest first, with their offsets
// before now; nil if there are none.
func (r *crumbRing) snapshot(now time.Time) []*consentryv1.Breadcrumb {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil
	}
	out := make([]*consentryv1.Breadcrumb, 0, len(r.buf))
	for i := range len(r.buf) {
		c := r.buf[(r.next+i)%len(r.buf)]
		out = append(out, &consentryv1.Breadcrumb{
			Type: c.typ, Name: c.name, GestureType: c.gesture, OffsetMs: max(now.Sub(c.at).Milliseconds(), 0),
		})
	}
	return out
}

func (r *crumbRing) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.buf)
	r.buf, r.next = r.buf[:0], 0
}

// crumbOf returns the breadcrumb an event leaves, if it leaves one.
func crumbOf(e *consentryv1.Event) (crumb, bool) {
	switch p := e.GetPayload().(type) {
	case *consentryv1.Event_Gesture:
		return crumb{typ: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_GESTURE, name: truncate(p.Gesture.GetScreen(), maxBreadcrumbBytes),
			gesture: p.Gesture.GetType()}, true
	case *consentryv1.Event_Custom:
		return crumb{typ: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_CUSTOM, name: truncate(p.Custom.GetName(), maxBreadcrumbBytes)}, true
	}
	return crumb{}, false
}

// RecordScreenView notes that the user opened a screen (the app's name
// for it, as in RecordGesture), as a breadcrumb for a later crash; it
// sends nothing by itself. It does nothing without the analytics scope.
func (c *Client) RecordScreenView(screen string) error {
	if !validName(screen, true) {
		return fmt.Errorf("record screen view: %w: screen name must be at most %d letters, digits, '.', '_', '-', '/', ':' or spaces", ErrInvalidArgument, maxNameBytes)
	}
	return c.leave("record screen view", crumb{typ: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW, name: screen})
}

// LeaveBreadcrumb notes something the app did, named as a custom event
// is (letters, digits, '.', '_' and '-', e.g. "sync_started"), as a
// breadcrumb for a later crash; it sends nothing by itself. Custom events
// (RecordCustom) leave one too. It does nothing without the analytics
// scope.
func (c *Client) LeaveBreadcrumb(name string) error {
	if !validName(name, false) {
		return fmt.Errorf("leave breadcrumb: %w: name must be 1-%d letters, digits, '.', '_' or '-'", ErrInvalidArgument, maxNameBytes)
	}
	return c.leave("leave breadcrumb", crumb{typ: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_CUSTOM, name: name})
}

// leave keeps cr if the consent covers analytics.
func (c *Client) leave(op string, cr crumb) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	if c.covers(ScopeAnalytics, c.now()) {
		cr.at = time.Now()
		c.crumbs.add(cr)
	}
	return nil
}

// App states, as SetAppState and CrashReport.AppState take them.
const (
	// AppStateForeground: the app is in the foreground. The default.
	AppStateForeground = "foreground"
	// AppStateBackground: the app runs in the background.
	AppStateBackground = "background"
	// AppStateLaunching: the app is starting up.
	AppStateLaunching = "launching"
	// AppStateTerminating: the app is shutting down.
	AppStateTerminating = "terminating"
)

// SetAppState reports what the app is doing now, which crashes recorded
// from then on carry: "foreground", "background", "launching" or
// "terminating" (Android: from a ProcessLifecycleOwner observer; iOS:
// from the scene phase). Without it, the state is "foreground", set by
// StartSession too, and "background" after EndSession: sessions are the
// app's time in the foreground.
func (c *Client) SetAppState(state string) error {
	v, err := appStateValue(state, false)
	if err != nil {
		return fmt.Errorf("set app state: %w", err)
	}
	c.state.Store(int32(v))
	return nil
}

// appState returns the current app state.
func (c *Client) appState() consentryv1.AppState {
	return consentryv1.AppState(c.state.Load())
}

// appStateValue parses an app state name; "" is UNSPECIFIED if optional.
func appStateValue(state string, optional bool) (consentryv1.AppState, error) {
	v, ok := enumValue(state, "APP_STATE_", consentryv1.AppState_value)
	if !ok || v == 0 && !optional {
		return 0, fmt.Errorf("%w: app state %q is not foreground, background, launching or terminating", ErrInvalidArgument, state)
	}
	return consentryv1.AppState(v), nil
}
