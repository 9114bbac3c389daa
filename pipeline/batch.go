package pipeline

import (
	"context"
	"crypto/sha256"
	"net/netip"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Stage is one step of the ingest pipeline. It inspects or transforms b,
// drops events with Batch.Drop, and returns an error only when the whole
// batch must be refused (the error is then mapped to a gRPC status once, at
// the edge).
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// EventScope returns the scope that must be granted for e to be stored, or
// "" if e has no known payload.
func EventScope(e *consentryv1.Event) consentryv1.Scope {
	switch e.GetPayload().(type) {
	case *consentryv1.Event_Session, *consentryv1.Event_Gesture,
		*consentryv1.Event_Custom, *consentryv1.Event_Diagnostic:
		return consentryv1.ScopeAnalytics
	case *consentryv1.Event_Crash:
		return consentryv1.ScopeCrashReports
	default:
		return ""
	}
}

// Batch is one ingest request on its way through the stages.
type Batch struct {
	// Request is the decoded request. Stages read it; only the anonymizer
	// derives stored values from it.
	Request *consentryv1.IngestRequest
	// Received is the server time the request arrived.
	Received time.Time
	// Peer is the client's address, used at most to derive a region and
	// never stored or logged. The anonymizer clears it.
	Peer netip.Addr
	// AppID is the app the batch's consent token was verified for; empty
	// until the consent stage succeeds.
	AppID string
	// Scopes are the scopes the verified consent covers.
	Scopes []consentryv1.Scope
	// ConsentKey is the pseudonym stored with every row when the app's
	// policy is erasable, else "" (see Common.ConsentKey). Set by the
	// consent stage.
	ConsentKey string
	// ConsentID is the verified consent's id, set by the consent stage. It
	// is held in memory only, never stored or logged: the anonymizer
	// derives each row's member key from it (see Common.Member).
	ConsentID string
	// ConsentState is the token's state as the consent stage saw it.
	ConsentState consentryv1.ConsentState
	// EventTimes holds each event's corrected time, set by the validate
	// stage (zero for dropped events).
	EventTimes []time.Time
	// Rows are the storage-ready rows, filled by the anonymizer.
	Rows Rows
	// Arena holds the slices inside Rows (frames, breadcrumbs,
	// attributes), which the anonymizer carves from it.
	Arena Arena

	drops   []consentryv1.DropReason
	dropped int
}

// NewBatch returns a Batch for req received at t from peer.
func NewBatch(req *consentryv1.IngestRequest, received time.Time, peer netip.Addr) *Batch {
	return &Batch{Request: req, Received: received, Peer: peer}
}

// Reuse makes b what NewBatch(req, received, peer) returns, but keeps the
// room of its slices (rows, their arena, event times, drop reasons) for a
// caller that handles one batch after another: nothing may use b's
// slices, rows taken from them or the slices inside those rows once b is
// reused (a sink that failed may still hold them: see Sink). The rows and
// the arena are cleared, so that their strings can be collected.
func (b *Batch) Reuse(req *consentryv1.IngestRequest, received time.Time, peer netip.Addr) {
	b.Rows.Recycle()
	b.Arena.reset()
	clear(b.EventTimes)
	*b = Batch{Request: req, Received: received, Peer: peer,
		EventTimes: b.EventTimes[:0], Rows: b.Rows, Arena: b.Arena, drops: b.drops[:0]}
}

// Arena is the storage a batch's rows take their slices from: a crash's
// frames and breadcrumbs, a custom event's attribute keys and values. The
// anonymizer sizes it for the batch and carves each row's slices from it
// (capped, so that appending to one cannot overwrite the next), so a
// batch costs a few allocations rather than several per event, and a
// reused batch none once its arena has grown.
type Arena struct {
	Frames      []Frame
	Breadcrumbs []Breadcrumb
	// Strings holds attribute keys and string values.
	Strings []string
	Numbers []float64
	Bools   []bool
}

// reset empties a, keeping its room, and clears what it held.
func (a *Arena) reset() {
	clear(a.Frames)
	clear(a.Breadcrumbs)
	clear(a.Strings)
	a.Frames, a.Breadcrumbs, a.Strings = a.Frames[:0], a.Breadcrumbs[:0], a.Strings[:0]
	a.Numbers, a.Bools = a.Numbers[:0], a.Bools[:0]
}

// EventTimesFor returns b.EventTimes sized for n events, zeroed, reusing
// its room.
func (b *Batch) EventTimesFor(n int) []time.Time {
	b.EventTimes = zeroed(b.EventTimes, n)
	return b.EventTimes
}

// zeroed returns s resized to n zero elements, in the room s has or else
// in one new slice (slices.Grow's append of a make allocates twice in
// -race builds, where the allocation tests run).
func zeroed[T any](s []T, n int) []T {
	if n > cap(s) {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Origin returns the origin of b's rows, once the consent stage has
// verified its token.
func (b *Batch) Origin() Origin {
	o := Origin{ConsentKey: b.ConsentKey, Received: b.Received}
	if b.ConsentID != "" {
		o.ConsentHash = sha256.Sum256([]byte(b.ConsentID))
	}
	return o
}

// HasScope reports whether the verified consent covers s.
func (b *Batch) HasScope(s consentryv1.Scope) bool {
	for _, g := range b.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// Drop marks event i as dropped for reason r. The first reason wins.
func (b *Batch) Drop(i int, r consentryv1.DropReason) {
	if len(b.drops) == 0 {
		b.drops = zeroed(b.drops, len(b.Request.GetEvents()))
	}
	if b.drops[i] != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
		return
	}
	b.drops[i] = r
	b.dropped++
}

// DropAll marks every event not yet dropped as dropped for reason r.
func (b *Batch) DropAll(r consentryv1.DropReason) {
	for i := range b.Request.GetEvents() {
		b.Drop(i, r)
	}
}

// Dropped reports whether event i was dropped.
func (b *Batch) Dropped(i int) bool {
	return len(b.drops) > 0 && b.drops[i] != consentryv1.DropReason_DROP_REASON_UNSPECIFIED
}

// DropReasonOf returns the reason event i was dropped, or UNSPECIFIED.
func (b *Batch) DropReasonOf(i int) consentryv1.DropReason {
	if len(b.drops) == 0 {
		return consentryv1.DropReason_DROP_REASON_UNSPECIFIED
	}
	return b.drops[i]
}

// DroppedCount returns how many events were dropped.
func (b *Batch) DroppedCount() int { return b.dropped }

// Live returns how many events are still to be stored.
func (b *Batch) Live() int { return len(b.Request.GetEvents()) - b.dropped }
