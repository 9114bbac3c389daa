package collector

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// TestInvalidCoordinatesEndToEnd sends batches whose device location is
// out of range (issue 13: NaN and ±1e308 were accepted), over gRPC and
// over HTTP with JSON: every event of such a batch is dropped with
// INVALID_FIELD and nothing is stored, while a batch with valid
// coordinates is stored with the region derived from them.
func TestInvalidCoordinatesEndToEnd(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	tok := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeLocation)
	batch := func(name string, lat, lon float64) *consentryv1.IngestRequest {
		age := int64(1000)
		req := &consentryv1.IngestRequest{ConsentToken: tok, SentAtUnixMs: time.Now().UnixMilli(),
			Device: &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.1",
				Location: &consentryv1.CoarseLocation{Latitude: &lat, Longitude: &lon}}}
		for i := range 3 {
			id := make([]byte, 16)
			copy(id, name)
			id[15] = byte(i + 1)
			req.Events = append(req.Events, &consentryv1.Event{EventId: id, AgeMs: &age, Payload: &consentryv1.Event_Gesture{
				Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: fmt.Sprintf("coords-%s", name)}}})
		}
		return req
	}
	postJSON := func(t *testing.T, req *consentryv1.IngestRequest) *consentryv1.IngestResponse {
		t.Helper()
		body, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return h.postIngest(t, contentTypeJSON, body)
	}
	send := map[string]func(t *testing.T, req *consentryv1.IngestRequest) *consentryv1.IngestResponse{
		"grpc": func(t *testing.T, req *consentryv1.IngestRequest) *consentryv1.IngestResponse {
			resp, err := h.client.Ingest(ctx, req)
			if err != nil {
				t.Fatalf("batch refused: %v", err)
			}
			return resp
		},
		"json": postJSON,
	}
	for _, tr := range []string{"grpc", "json"} {
		for i, c := range []struct {
			name     string
			lat, lon float64
		}{
			{"nan-lat", math.NaN(), 16.3738},
			{"nan-lon", 48.2082, math.NaN()},
			{"inf-lat", math.Inf(1), 16.3738},
			{"-inf-lon", 48.2082, math.Inf(-1)},
			{"1e308-lat", 1e308, 16.3738},
			{"-1e308-lon", 48.2082, -1e308},
			{"-90.0001", -90.0001, 16.3738},
			{"180.0001", 48.2082, 180.0001},
		} {
			name := fmt.Sprintf("%s-%d", tr, i)
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				resp := send[tr](t, batch(name, c.lat, c.lon))
				if resp.GetAccepted() != 0 || resp.GetDropped() != 3 || len(resp.GetEventDrops()) != 3 {
					t.Fatalf("response %v; want all 3 events dropped", resp)
				}
				for _, d := range resp.GetEventDrops() {
					if d.GetReason() != consentryv1.DropReason_DROP_REASON_INVALID_FIELD {
						t.Errorf("event %d dropped with %v, want INVALID_FIELD", d.GetIndex(), d.GetReason())
					}
				}
			})
		}
		t.Run(tr+"/valid", func(t *testing.T) {
			name := tr + "-ok"
			if resp := send[tr](t, batch(name, 48.2082, 16.3738)); resp.GetAccepted() != 3 {
				t.Fatalf("response %v; want 3 accepted", resp)
			}
			if n := h.count(t, "gestures", fmt.Sprintf("screen = 'coords-%s' AND country = 'AT' AND region = 'AT-9'", name)); n != 3 {
				t.Errorf("%d gestures stored in AT-9, want 3", n)
			}
		})
	}
	if n := h.count(t, "gestures", "screen LIKE 'coords-%' AND screen NOT LIKE '%-ok'"); n != 0 {
		t.Errorf("%d gestures of batches with invalid coordinates stored", n)
	}
}
