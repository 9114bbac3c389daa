package validate

import (
	"context"
	"math"
	"net/netip"
	"testing"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestCoordinates: a location outside the ranges of latitude and
// longitude (NaN, infinities, 1e308, -90.0001, 180.0001) drops every
// event of its batch with INVALID_FIELD, before anything derives a
// location from it (issue 13); coordinates on the edges are valid.
func TestCoordinates(t *testing.T) {
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		lat, lon *float64
		valid    bool
	}{
		{"Vienna", f(48.2082), f(16.3738), true},
		{"poles and antimeridian", f(-90), f(180), true},
		{"other pole and side", f(90), f(-180), true},
		{"zero", f(0), f(0), true},
		{"latitude alone", f(48.2), nil, true},
		{"no coordinates", nil, nil, true},
		{"NaN latitude", f(math.NaN()), f(16.3738), false},
		{"NaN longitude", f(48.2082), f(math.NaN()), false},
		{"+Inf latitude", f(math.Inf(1)), f(16.3738), false},
		{"-Inf longitude", f(48.2082), f(math.Inf(-1)), false},
		{"1e308 latitude", f(1e308), f(16.3738), false},
		{"-1e308 longitude", f(48.2082), f(-1e308), false},
		{"latitude -90.0001", f(-90.0001), f(16.3738), false},
		{"latitude 90.0001", f(90.0001), f(16.3738), false},
		{"longitude 180.0001", f(48.2082), f(180.0001), false},
		{"longitude -180.0001", f(48.2082), f(-180.0001), false},
		{"NaN latitude alone", f(math.NaN()), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := pipeline.NewBatch(&consentryv1.IngestRequest{
				Device: &consentryv1.DeviceContext{AppId: "com.example.notes",
					Location: &consentryv1.CoarseLocation{Latitude: tt.lat, Longitude: tt.lon, CountryCode: "AT"}},
				SentAtUnixMs: now.UnixMilli(),
				Events: []*consentryv1.Event{
					{EventId: id(1), AgeMs: ptr(int64(0)), Payload: gesture()},
					{EventId: id(2), AgeMs: ptr(int64(0)), Payload: gesture()},
				},
			}, now, netip.Addr{})
			if err := st.Process(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				got := b.DropReasonOf(i)
				switch {
				case tt.valid && got != 0:
					t.Errorf("event %d dropped with %v", i, got)
				case !tt.valid && got != consentryv1.DropReason_DROP_REASON_INVALID_FIELD:
					t.Errorf("event %d: drop reason %v, want INVALID_FIELD", i, got)
				}
			}
		})
	}
}
