package pipeline

import (
	"net/netip"
	"testing"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func request(events int) *consentryv1.IngestRequest {
	req := &consentryv1.IngestRequest{}
	for range events {
		req.Events = append(req.Events, &consentryv1.Event{})
	}
	return req
}

// TestBatchReuse checks that a reused batch is what NewBatch returns:
// nothing of the last request's drops, times, consent, rows or arena
// shows through, whether the next request has more events or fewer; that
// the slices' room is kept; and that the arena lets go of its strings.
func TestBatchReuse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	peer := netip.MustParseAddr("192.0.2.7")
	b := NewBatch(request(8), now, peer)
	for _, next := range []int{8, 3, 12, 0, 5} {
		// Use the batch as the stages do.
		times := b.EventTimesFor(len(b.Request.GetEvents()))
		for i := range times {
			times[i] = now.Add(time.Duration(i) * time.Second)
		}
		for i := 0; i < len(times); i += 2 {
			b.Drop(i, consentryv1.DropReason_DROP_REASON_INVALID_FIELD)
		}
		b.AppID, b.ConsentID, b.ConsentKey = "app", "consent", "key"
		b.Scopes = []consentryv1.Scope{consentryv1.ScopeAnalytics}
		b.Rows.Sessions = append(b.Rows.Sessions, SessionRow{Common: Common{AppID: "app"}})
		b.Arena.Frames = append(b.Arena.Frames, Frame{Function: "main"})
		b.Arena.Breadcrumbs = append(b.Arena.Breadcrumbs, Breadcrumb{Name: "editor"})
		b.Arena.Strings = append(b.Arena.Strings, "key", "value")
		b.Arena.Numbers = append(b.Arena.Numbers, 1)
		b.Arena.Bools = append(b.Arena.Bools, true)
		roomTimes, roomRows, roomStrings := cap(b.EventTimes), cap(b.Rows.Sessions), cap(b.Arena.Strings)
		held := b.Arena.Strings

		req := request(next)
		b.Reuse(req, now.Add(time.Minute), netip.Addr{})
		fresh := NewBatch(req, now.Add(time.Minute), netip.Addr{})
		if b.Request != fresh.Request || !b.Received.Equal(fresh.Received) || b.Peer != fresh.Peer ||
			b.AppID != "" || b.ConsentID != "" || b.ConsentKey != "" || b.Scopes != nil ||
			b.ConsentState != fresh.ConsentState || len(b.EventTimes) != 0 || b.Rows.Len() != 0 ||
			b.DroppedCount() != 0 || b.Live() != next {
			t.Fatalf("reused for %d events: %+v, want a fresh batch", next, b)
		}
		if a := b.Arena; len(a.Frames)+len(a.Breadcrumbs)+len(a.Strings)+len(a.Numbers)+len(a.Bools) != 0 {
			t.Fatalf("reused for %d events: the arena holds %+v", next, a)
		}
		if held[0] != "" || held[1] != "" {
			t.Fatalf("reused for %d events: the arena still references the last request's strings %q", next, held)
		}
		for i := range next {
			if b.Dropped(i) || b.DropReasonOf(i) != consentryv1.DropReason_DROP_REASON_UNSPECIFIED {
				t.Fatalf("reused for %d events: event %d dropped by the last request", next, i)
			}
		}
		for i, tm := range b.EventTimesFor(next) {
			if !tm.IsZero() {
				t.Fatalf("reused for %d events: event %d has the last request's time", next, i)
			}
		}
		if cap(b.EventTimes) < roomTimes || cap(b.Rows.Sessions) < roomRows || cap(b.Arena.Strings) < roomStrings {
			t.Fatalf("reused for %d events: the slices' room was dropped", next)
		}
		// Dropping one event of the new request drops no other.
		if next > 1 {
			b.Drop(1, consentryv1.DropReason_DROP_REASON_DUPLICATE)
			if b.DroppedCount() != 1 || b.Dropped(0) || !b.Dropped(1) {
				t.Fatalf("reused for %d events: drops %d", next, b.DroppedCount())
			}
		}
	}
}
