package validate

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Errors for batches that are refused as a whole.
var (
	// ErrDeviceMissing: the batch has no device context.
	ErrDeviceMissing = pipeline.Refuse(codes.InvalidArgument, consentryv1.ErrorReason_DEVICE_MISSING, pipeline.ReasonBatchMalformed, 0, "device context missing")
	// ErrAppIDInvalid: the device context's app id is empty or malformed.
	ErrAppIDInvalid = pipeline.ErrAppIDInvalid
	// ErrSentAtMissing: the batch has no send time.
	ErrSentAtMissing = pipeline.Refuse(codes.InvalidArgument, consentryv1.ErrorReason_SENT_AT_MISSING, pipeline.ReasonBatchMalformed, 0, "sent_at missing")
)

// Stage is the validate stage.
type Stage struct {
	cfg Config
	// seen holds emptied sets of event ids, for finding a batch's
	// duplicates without a new map per batch.
	seen sync.Pool
}

// idSet is a set of event ids.
type idSet map[[16]byte]struct{}

// New returns the validate stage for cfg.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Stage{cfg: cfg.withDefaults()}, nil
}

// Process refuses b when its batch-level fields are missing or malformed,
// drops invalid events with a reason, and sets b.EventTimes. Coordinates
// out of range (NaN, infinite, beyond ±90 or ±180 degrees) drop every
// event of the batch with INVALID_FIELD.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	req := b.Request
	d := req.GetDevice()
	if d == nil {
		return ErrDeviceMissing
	}
	if !consentryv1.ValidAppID(d.GetAppId()) {
		return fmt.Errorf("%w: want 1-128 letters, digits, '.', '_' or '-'", ErrAppIDInvalid)
	}
	if req.GetSentAtUnixMs() <= 0 {
		return ErrSentAtMissing
	}
	events := req.GetEvents()
	b.EventTimesFor(len(events))
	if !validCoordinates(d.GetLocation()) {
		// The location is the batch's: every event would carry what is
		// derived from it.
		for i := range events {
			if !b.Dropped(i) {
				b.Drop(i, invalidField)
			}
		}
		return nil
	}
	offset := b.Received.Sub(time.UnixMilli(req.GetSentAtUnixMs()))
	seen, _ := s.seen.Get().(idSet)
	if seen == nil {
		seen = make(idSet, len(events))
	}
	defer func() {
		clear(seen)
		s.seen.Put(seen)
	}()
	for i, e := range events {
		if b.Dropped(i) {
			continue
		}
		if r := s.checkEvent(e); r != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
			b.Drop(i, r)
			continue
		}
		t, r := s.correctedTime(e, b.Received, offset)
		if r != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
			b.Drop(i, r)
			continue
		}
		id := [16]byte(e.GetEventId())
		if _, dup := seen[id]; dup {
			b.Drop(i, consentryv1.DropReason_DROP_REASON_DUPLICATE)
			continue
		}
		seen[id] = struct{}{}
		b.EventTimes[i] = t
	}
	return nil
}

// correctedTime returns the event's time on the server's clock.
func (s *Stage) correctedTime(e *consentryv1.Event, received time.Time, offset time.Duration) (time.Time, consentryv1.DropReason) {
	var t time.Time
	switch {
	case e.AgeMs != nil:
		if e.GetAgeMs() < 0 || e.GetAgeMs() > math.MaxInt64/int64(time.Millisecond) {
			return t, consentryv1.DropReason_DROP_REASON_INVALID_FIELD
		}
		t = received.Add(-time.Duration(e.GetAgeMs()) * time.Millisecond)
	case e.GetCreatedAtUnixMs() > 0:
		t = time.UnixMilli(e.GetCreatedAtUnixMs()).Add(offset)
	default:
		return t, consentryv1.DropReason_DROP_REASON_INVALID_FIELD
	}
	switch {
	case t.After(received.Add(s.cfg.FutureTolerance)):
		return t, consentryv1.DropReason_DROP_REASON_IN_FUTURE
	case t.Before(received.Add(-s.cfg.MaxAge)):
		return t, consentryv1.DropReason_DROP_REASON_TOO_OLD
	}
	return t.UTC(), consentryv1.DropReason_DROP_REASON_UNSPECIFIED
}

const (
	invalidEnum  = consentryv1.DropReason_DROP_REASON_INVALID_ENUM
	invalidField = consentryv1.DropReason_DROP_REASON_INVALID_FIELD
	ok           = consentryv1.DropReason_DROP_REASON_UNSPECIFIED
)

// checkEvent returns why e is invalid, or UNSPECIFIED.
func (s *Stage) checkEvent(e *consentryv1.Event) consentryv1.DropReason {
	if invalidText(e) {
		return invalidField // a name that was not UTF-8; see UnmarshalRequest
	}
	if id := e.GetEventId(); len(id) != 16 || allZero(id) {
		return invalidField
	}
	if sid := e.GetSessionId(); len(sid) != 0 && (len(sid) < 8 || len(sid) > 64) {
		return invalidField
	}
	switch p := e.GetPayload().(type) {
	case *consentryv1.Event_Session:
		return s.checkSession(p.Session)
	case *consentryv1.Event_Gesture:
		g := p.Gesture
		if !known(g.GetType()) || g.GetType() == 0 {
			return invalidEnum
		}
		if !validName(g.GetScreen(), true) {
			return invalidField
		}
	case *consentryv1.Event_Crash:
		c := p.Crash
		if !known(c.GetAppState()) {
			return invalidEnum
		}
		if c.GetExceptionType() == "" {
			return invalidField
		}
	case *consentryv1.Event_Custom:
		c := p.Custom
		if !validName(c.GetName(), false) {
			return invalidField
		}
		for k, v := range c.GetAttributes() {
			if !validName(k, false) || v.GetValue() == nil {
				return invalidField
			}
			if f, isFloat := v.GetValue().(*consentryv1.AttributeValue_DoubleValue); isFloat &&
				(math.IsNaN(f.DoubleValue) || math.IsInf(f.DoubleValue, 0)) {
				return invalidField
			}
		}
	case *consentryv1.Event_Diagnostic:
		d := p.Diagnostic
		if !known(d.GetKind()) || d.GetKind() == 0 || !known(d.GetStartType()) || !known(d.GetNetworkType()) {
			return invalidEnum
		}
	default:
		return consentryv1.DropReason_DROP_REASON_UNKNOWN_KIND
	}
	return ok
}

func (s *Stage) checkSession(v *consentryv1.Session) consentryv1.DropReason {
	if !known(v.GetPhase()) || v.GetPhase() == 0 {
		return invalidEnum
	}
	maxMs := s.cfg.MaxSessionDuration.Milliseconds()
	d, f := v.GetDurationMs(), v.GetForegroundMs()
	if d < 0 || f < 0 || d > maxMs || f > d {
		return invalidField
	}
	if v.GetPhase() == consentryv1.SessionPhase_SESSION_PHASE_START && (d != 0 || f != 0) {
		return invalidField
	}
	return ok
}

// enum is a generated protobuf enum.
type enum interface {
	~int32
	String() string
}

// known reports whether v is a value the collector's API version defines.
// Proto3 enums are open: a newer SDK may send values this server does not
// know, which decode as their number.
func known[E enum](v E) bool {
	n := v.String()
	return n != "" && (n[0] < '0' || n[0] > '9') && n[0] != '-'
}

// validName reports whether v is 1+ letters, digits, '.', '_', '-', '/',
// ':' or ' ' (screen names may hold '/', ':' and ' '); empty is allowed when
// optional.
func validName(v string, screen bool) bool {
	if v == "" {
		return screen
	}
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		case screen && (r == '/' || r == ':' || r == ' '):
		default:
			return false
		}
	}
	return true
}

// validCoordinates reports whether the coordinates of l, those it has,
// are a latitude in [-90, 90] and a longitude in [-180, 180]: not NaN,
// infinite or beyond, which no location can be derived from.
func validCoordinates(l *consentryv1.CoarseLocation) bool {
	if l == nil {
		return true
	}
	if l.Latitude != nil && !(l.GetLatitude() >= -90 && l.GetLatitude() <= 90) {
		return false
	}
	return l.Longitude == nil || l.GetLongitude() >= -180 && l.GetLongitude() <= 180
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
