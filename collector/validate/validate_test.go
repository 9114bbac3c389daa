package validate

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func id(b byte) []byte {
	v := make([]byte, 16)
	v[0], v[15] = b, 1
	return v
}

func ptr[T any](v T) *T { return &v }

func gesture() *consentryv1.Event_Gesture {
	return &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "home"}}
}

func TestEvents(t *testing.T) {
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	sentAt := now.Add(-time.Hour) // device clock one hour behind
	tests := []struct {
		name     string
		event    *consentryv1.Event
		want     consentryv1.DropReason
		wantTime time.Time
	}{
		{"age corrects", &consentryv1.Event{EventId: id(1), AgeMs: ptr(int64(60_000)), CreatedAtUnixMs: 1, Payload: gesture()},
			0, now.Add(-time.Minute)},
		{"offset corrects skew", &consentryv1.Event{EventId: id(2), CreatedAtUnixMs: sentAt.Add(-2 * time.Minute).UnixMilli(), Payload: gesture()},
			0, now.Add(-2 * time.Minute)},
		{"offline for days kept", &consentryv1.Event{EventId: id(3), AgeMs: ptr(int64(10 * 24 * time.Hour / time.Millisecond)), Payload: gesture()},
			0, now.Add(-10 * 24 * time.Hour)},
		{"too old", &consentryv1.Event{EventId: id(4), AgeMs: ptr(int64(15 * 24 * time.Hour / time.Millisecond)), Payload: gesture()},
			consentryv1.DropReason_DROP_REASON_TOO_OLD, time.Time{}},
		{"in future", &consentryv1.Event{EventId: id(5), CreatedAtUnixMs: sentAt.Add(time.Hour).UnixMilli(), Payload: gesture()},
			consentryv1.DropReason_DROP_REASON_IN_FUTURE, time.Time{}},
		{"negative age", &consentryv1.Event{EventId: id(6), AgeMs: ptr(int64(-1)), Payload: gesture()},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"no time", &consentryv1.Event{EventId: id(7), Payload: gesture()},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"short event id", &consentryv1.Event{EventId: []byte{1, 2}, AgeMs: ptr(int64(0)), Payload: gesture()},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"no payload", &consentryv1.Event{EventId: id(8), AgeMs: ptr(int64(0))},
			consentryv1.DropReason_DROP_REASON_UNKNOWN_KIND, time.Time{}},
		{"unknown gesture enum", &consentryv1.Event{EventId: id(9), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: 99}}},
			consentryv1.DropReason_DROP_REASON_INVALID_ENUM, time.Time{}},
		{"unspecified session phase", &consentryv1.Event{EventId: id(10), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Session{Session: &consentryv1.Session{}}},
			consentryv1.DropReason_DROP_REASON_INVALID_ENUM, time.Time{}},
		{"foreground over duration", &consentryv1.Event{EventId: id(11), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Session{Session: &consentryv1.Session{Phase: consentryv1.SessionPhase_SESSION_PHASE_END, DurationMs: 10, ForegroundMs: 20}}},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"NaN attribute", &consentryv1.Event{EventId: id(12), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "x", Attributes: map[string]*consentryv1.AttributeValue{
				"v": {Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: nan()}}}}}},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"bad custom name", &consentryv1.Event{EventId: id(13), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Custom{Custom: &consentryv1.CustomEvent{Name: "a b"}}},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"crash without type", &consentryv1.Event{EventId: id(14), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Crash{Crash: &consentryv1.Crash{Message: "boom"}}},
			consentryv1.DropReason_DROP_REASON_INVALID_FIELD, time.Time{}},
		{"unknown diagnostic network", &consentryv1.Event{EventId: id(15), AgeMs: ptr(int64(0)),
			Payload: &consentryv1.Event_Diagnostic{Diagnostic: &consentryv1.Diagnostic{Kind: consentryv1.DiagnosticKind_DIAGNOSTIC_KIND_HANG, NetworkType: 42}}},
			consentryv1.DropReason_DROP_REASON_INVALID_ENUM, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := pipeline.NewBatch(&consentryv1.IngestRequest{
				Device:       &consentryv1.DeviceContext{AppId: "com.example.notes"},
				SentAtUnixMs: sentAt.UnixMilli(),
				Events:       []*consentryv1.Event{tt.event},
			}, now, netip.Addr{})
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if got := b.DropReasonOf(0); got != tt.want {
				t.Fatalf("drop reason = %v, want %v", got, tt.want)
			}
			if tt.want == 0 && !b.EventTimes[0].Equal(tt.wantTime) {
				t.Fatalf("time = %v, want %v", b.EventTimes[0], tt.wantTime)
			}
		})
	}
}

func nan() float64 {
	z := 0.0
	return z / z
}

func TestDuplicateEventIDs(t *testing.T) {
	st, _ := New(Config{})
	e := func() *consentryv1.Event {
		return &consentryv1.Event{EventId: id(1), AgeMs: ptr(int64(0)), Payload: gesture()}
	}
	b := pipeline.NewBatch(&consentryv1.IngestRequest{
		Device: &consentryv1.DeviceContext{AppId: "a"}, SentAtUnixMs: now.UnixMilli(), Events: []*consentryv1.Event{e(), e()},
	}, now, netip.Addr{})
	if err := st.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Dropped(0) || b.DropReasonOf(1) != consentryv1.DropReason_DROP_REASON_DUPLICATE {
		t.Fatalf("drops = %v, %v", b.DropReasonOf(0), b.DropReasonOf(1))
	}
	// Only ids of the same batch are duplicates: the next batch, with
	// the same id, keeps its event (the server's tables merge retries).
	for range 3 {
		next := pipeline.NewBatch(&consentryv1.IngestRequest{
			Device: &consentryv1.DeviceContext{AppId: "a"}, SentAtUnixMs: now.UnixMilli(), Events: []*consentryv1.Event{e()},
		}, now, netip.Addr{})
		if err := st.Process(context.Background(), next); err != nil {
			t.Fatal(err)
		}
		if next.Dropped(0) {
			t.Fatalf("a later batch's event dropped as %v", next.DropReasonOf(0))
		}
	}
}

func TestBatchErrors(t *testing.T) {
	st, _ := New(Config{})
	tests := []struct {
		name string
		req  *consentryv1.IngestRequest
		want error
	}{
		{"no device", &consentryv1.IngestRequest{SentAtUnixMs: 1}, ErrDeviceMissing},
		{"empty app", &consentryv1.IngestRequest{Device: &consentryv1.DeviceContext{}, SentAtUnixMs: 1}, ErrAppIDInvalid},
		{"app with slash", &consentryv1.IngestRequest{Device: &consentryv1.DeviceContext{AppId: "a/b"}, SentAtUnixMs: 1}, ErrAppIDInvalid},
		{"no sent_at", &consentryv1.IngestRequest{Device: &consentryv1.DeviceContext{AppId: "a"}}, ErrSentAtMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Process(context.Background(), pipeline.NewBatch(tt.req, now, netip.Addr{}))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
