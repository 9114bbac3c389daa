package collector

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// checkIngest runs req through the service and checks the invariants that
// hold for any input: no panic, a refused batch stores nothing, an accepted
// one accounts for every event and stores exactly what it accepted.
func checkIngest(t *testing.T, f *fixture, req *consentryv1.IngestRequest) {
	before := f.sink.stored()
	resp, err := f.svc.Ingest(context.Background(), req)
	stored := f.sink.stored() - before
	if err != nil {
		switch status.Code(err) {
		case codes.InvalidArgument, codes.ResourceExhausted:
		default:
			t.Fatalf("unexpected status %v", err)
		}
		if stored != 0 {
			t.Fatalf("refused batch stored %d rows", stored)
		}
		return
	}
	if int(resp.GetAccepted()+resp.GetDropped()) != len(req.GetEvents()) {
		t.Fatalf("accepted %d + dropped %d != %d events", resp.GetAccepted(), resp.GetDropped(), len(req.GetEvents()))
	}
	if stored != int(resp.GetAccepted()) {
		t.Fatalf("stored %d rows, accepted %d", stored, resp.GetAccepted())
	}
}

// FuzzIngestBytes feeds random bytes to the ingest handler through the
// collector's codec, as the gRPC server would.
func FuzzIngestBytes(f *testing.F) {
	fx := newFixture(f)
	good, _ := proto.Marshal(fx.gen.Batch(3, time.Now()))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var req consentryv1.IngestRequest
		if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &req); err != nil {
			t.Fatalf("codec failed: %v", err)
		}
		checkIngest(t, fx, &req)
	})
}

// FuzzIngestBatches mutates valid batches field by field: enums out of
// range, odd times, ids, sizes and strings.
func FuzzIngestBatches(f *testing.F) {
	fx := newFixture(f)
	f.Add(uint8(5), uint8(0), int64(0), int32(0), "")
	f.Add(uint8(1), uint8(1), int64(-1), int32(99), "\x00")
	f.Add(uint8(9), uint8(4), int64(1<<62), int32(-7), "jane@example.com")
	f.Fuzz(func(t *testing.T, n, field uint8, num int64, enum int32, s string) {
		req := fx.gen.Batch(int(n%20), time.Now())
		for i, e := range req.GetEvents() {
			if i%2 == 1 {
				continue
			}
			switch field % 10 {
			case 0:
				e.AgeMs = &num
			case 1:
				e.CreatedAtUnixMs, e.AgeMs = num, nil
			case 2:
				e.EventId = []byte(s)
			case 3:
				e.SessionId = []byte(s)
			case 4:
				switch p := e.GetPayload().(type) {
				case *consentryv1.Event_Gesture:
					p.Gesture.Type = consentryv1.GestureType(enum)
					p.Gesture.Screen = s
				case *consentryv1.Event_Session:
					p.Session.Phase = consentryv1.SessionPhase(enum)
					p.Session.DurationMs = num
				case *consentryv1.Event_Crash:
					p.Crash.Message = s
					p.Crash.AppState = consentryv1.AppState(enum)
				case *consentryv1.Event_Custom:
					p.Custom.Name = s
					p.Custom.Attributes[s] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: s}}
				case *consentryv1.Event_Diagnostic:
					p.Diagnostic.Kind = consentryv1.DiagnosticKind(enum)
				}
			case 5:
				e.Payload = nil
			case 6:
				req.SentAtUnixMs = num
			case 7:
				req.Device.DeviceClass = consentryv1.DeviceClass(enum)
				req.Device.Locale = s
			case 8:
				req.Device.AppId = s
			case 9:
				req.ConsentToken = s
			}
		}
		// Round-trip through the wire format so the input is what a
		// client could send (e.g. invalid UTF-8 becomes a decode error).
		data, err := proto.Marshal(req)
		if err != nil {
			return
		}
		var got consentryv1.IngestRequest
		if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &got); err != nil {
			t.Fatal(err)
		}
		checkIngest(t, fx, &got)
	})
}
