package collector

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// utf8Placeholder is replaced, byte for byte, by utf8Bad after encoding,
// so the encoding's lengths still hold; latin1Placeholder by two Latin-1
// no-break spaces.
const (
	utf8Placeholder   = "@@NOT-UTF8@@"
	utf8Bad           = "\xff\xfeNOT-UTF8\xc3\xc3"
	latin1Placeholder = "~~"
	latin1NBSP        = "\xa0\xa0"
)

// utf8Batch returns a batch from transport tr with five gestures, one of
// them on a screen whose name is the placeholder, one crash whose message
// holds an e-mail address and the placeholder, and one whose message holds
// a phone number with Latin-1 no-break spaces.
func utf8Batch(tok, tr string) *consentryv1.IngestRequest {
	age := int64(1000)
	req := &consentryv1.IngestRequest{ConsentToken: tok, SentAtUnixMs: time.Now().UnixMilli(),
		Device: &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14"}}
	for i := range 7 {
		id := make([]byte, 16)
		id[0], id[1], id[2], id[15] = byte(i+1), tr[0], tr[len(tr)-1], 9
		e := &consentryv1.Event{EventId: id, AgeMs: &age, SessionId: []byte("session-utf8-" + tr)}
		switch i {
		case 6:
			e.Payload = &consentryv1.Event_Crash{Crash: &consentryv1.Crash{ExceptionType: "java.io.IOException",
				Message: "utf8-" + tr + " call +43" + latin1Placeholder + "664" + latin1Placeholder + "1234567"}}
		case 5:
			e.Payload = &consentryv1.Event_Crash{Crash: &consentryv1.Crash{ExceptionType: "java.io.IOException",
				Message: "utf8-" + tr + " sync for jane@example.com failed " + utf8Placeholder}}
		case 2:
			e.Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: utf8Placeholder}}
		default:
			e.Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP,
				Screen: fmt.Sprintf("utf8-%s-%d", tr, i)}}
		}
		req.Events = append(req.Events, e)
	}
	return req
}

// TestInvalidUTF8EndToEnd sends batches in which one screen name and one
// crash message are not UTF-8, over gRPC and over HTTP as protobuf and as
// JSON (raw bytes, and an escaped half surrogate pair): the event with the
// bad name is dropped with INVALID_FIELD and counted, the crash message is
// repaired and scrubbed, and the other events are stored.
func TestInvalidUTF8EndToEnd(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	tok := h.token(t, testApp, time.Hour)

	encode := func(t *testing.T, tr string, json bool, bad string) []byte {
		t.Helper()
		req := utf8Batch(tok, tr)
		var b []byte
		var err error
		if json {
			b, err = protojson.Marshal(req)
		} else {
			b, err = proto.Marshal(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(latin1Placeholder), []byte(latin1NBSP))
		return bytes.ReplaceAll(b, []byte(utf8Placeholder), []byte(bad))
	}
	for _, tc := range []struct {
		tr   string
		send func(t *testing.T) (*consentryv1.IngestResponse, error)
	}{
		{"grpc", func(t *testing.T) (*consentryv1.IngestResponse, error) {
			var out consentryv1.IngestResponse
			err := h.conn.Invoke(ctx, consentryv1.IngestService_Ingest_FullMethodName, encode(t, "grpc", false, utf8Bad), &out,
				grpc.ForceCodec(rawCodec{}))
			return &out, err
		}},
		{"http-pb", func(t *testing.T) (*consentryv1.IngestResponse, error) {
			return h.postIngest(t, contentTypeProtobuf, encode(t, "http-pb", false, utf8Bad)), nil
		}},
		{"http-json", func(t *testing.T) (*consentryv1.IngestResponse, error) {
			return h.postIngest(t, contentTypeJSON, encode(t, "http-json", true, utf8Bad)), nil
		}},
		{"http-json-escape", func(t *testing.T) (*consentryv1.IngestResponse, error) {
			return h.postIngest(t, contentTypeJSON, encode(t, "http-json-escape", true, `\ud800NOT-UTF8\udc00`)), nil
		}},
	} {
		t.Run(tc.tr, func(t *testing.T) {
			resp, err := tc.send(t)
			if err != nil {
				t.Fatalf("batch refused: %v", err)
			}
			if resp.GetAccepted() != 6 || resp.GetDropped() != 1 || len(resp.GetEventDrops()) != 1 ||
				resp.GetEventDrops()[0].GetIndex() != 2 || resp.GetEventDrops()[0].GetReason() != consentryv1.DropReason_DROP_REASON_INVALID_FIELD {
				t.Fatalf("response %v; want 6 accepted and event 2 dropped with INVALID_FIELD", resp)
			}
			if n := h.count(t, "gestures", fmt.Sprintf("screen LIKE 'utf8-%s-%%'", tc.tr)); n != 4 {
				t.Errorf("%d gestures stored, want 4", n)
			}
			for _, want := range []string{
				"utf8-" + tc.tr + " sync for [email] failed \uFFFDNOT-UTF8\uFFFD",
				// read through the repair: the phone number is found
				"utf8-" + tc.tr + " call [phone]",
			} {
				var n uint64
				q := fmt.Sprintf("SELECT count() FROM %s.crashes WHERE message = '%s'", h.db, want)
				if err := h.ch.QueryRow(ctx, q).Scan(&n); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if n != 1 {
					t.Errorf("no crash message stored as %q", want)
				}
			}
		})
	}
	if n := h.count(t, "gestures", "screen LIKE '%NOT-UTF8%'"); n != 0 {
		t.Errorf("%d gestures stored with the screen name that is not UTF-8", n)
	}
	h.conn.Close()
	h.shutdown() // flushes the rejects counter
	var invalid, malformed uint64
	q := fmt.Sprintf("SELECT sumIf(events, reason = 'invalid_field'), sumIf(events, reason = 'batch_malformed') FROM %s.rejects", h.db)
	if err := h.ch.QueryRow(ctx, q).Scan(&invalid, &malformed); err != nil {
		t.Fatal(err)
	}
	if invalid != 4 || malformed != 0 {
		t.Errorf("rejects: invalid_field %d, batch_malformed %d; want 4 and 0", invalid, malformed)
	}
}
