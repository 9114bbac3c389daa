package validate

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// placeholder marks the string a test makes invalid after encoding; bad
// replaces it byte for byte, so the encoding's lengths still hold.
const (
	placeholder = "ab@@BAD@@cd"
	bad         = "ab\xff\xfe\xfd\xc3(!!cd"
	repaired    = "ab\uFFFD(!!cd"
)

func init() {
	if len(placeholder) != len(bad) {
		panic("placeholder and bad differ in length")
	}
}

// decodeFunc decodes an encoded request into r: UnmarshalRequest,
// UnmarshalRequestJSON, or one of the runtime's strict decoders.
type decodeFunc func(b []byte, r *consentryv1.IngestRequest) error

// encoded is a request in one encoding and the decoder to read it with.
type encoded struct {
	name   string
	data   []byte
	decode decodeFunc
}

// strictProtobuf and strictJSON are the runtime's own decoders, which
// refuse a message with a string that is not UTF-8.
func strictProtobuf(b []byte, r *consentryv1.IngestRequest) error { return proto.Unmarshal(b, r) }
func strictJSON(b []byte, r *consentryv1.IngestRequest) error     { return jsonOptions.Unmarshal(b, r) }

// utf8Batch returns a valid batch of one event of every kind, all with
// valid strings.
func utf8Batch() *consentryv1.IngestRequest {
	age := int64(1000)
	ev := func(n byte, p any) *consentryv1.Event {
		e := &consentryv1.Event{EventId: id(n), AgeMs: &age}
		switch p := p.(type) {
		case *consentryv1.Gesture:
			e.Payload = &consentryv1.Event_Gesture{Gesture: p}
		case *consentryv1.Crash:
			e.Payload = &consentryv1.Event_Crash{Crash: p}
		case *consentryv1.CustomEvent:
			e.Payload = &consentryv1.Event_Custom{Custom: p}
		}
		return e
	}
	return &consentryv1.IngestRequest{
		ConsentToken: "token",
		SentAtUnixMs: now.UnixMilli(),
		Device:       &consentryv1.DeviceContext{AppId: "com.example.notes", DeviceModel: "Pixel 8", Locale: "de-AT"},
		Events: []*consentryv1.Event{
			ev(1, &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "home"}),
			ev(2, &consentryv1.Crash{ExceptionType: "java.lang.IllegalStateException", Message: "boom", Thread: "main",
				Fingerprint: "sync-timeout", Frames: []*consentryv1.StackFrame{{Module: "com.example", Function: "save", File: "Note.kt", Line: 4}},
				Breadcrumbs: []*consentryv1.Breadcrumb{{Type: consentryv1.BreadcrumbType_BREADCRUMB_TYPE_SCREEN_VIEW, Name: "editor"}}}),
			ev(3, &consentryv1.CustomEvent{Name: "export_pdf", Attributes: map[string]*consentryv1.AttributeValue{
				"format": {Value: &consentryv1.AttributeValue_StringValue{StringValue: "a4"}}}}),
			ev(4, &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_SWIPE, Screen: "settings"}),
		},
	}
}

// utf8Cases each put the placeholder in one string of utf8Batch: drop is
// the index of the event to drop, or -1 when the string is repaired; get
// returns the string after decoding.
var utf8Cases = []struct {
	name string
	set  func(r *consentryv1.IngestRequest)
	drop int
	get  func(r *consentryv1.IngestRequest) string
}{
	{"crash message", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Message = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetMessage() }},
	{"crash thread", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Thread = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetThread() }},
	{"frame module", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Frames[0].Module = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetFrames()[0].GetModule() }},
	{"frame function", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Frames[0].Function = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetFrames()[0].GetFunction() }},
	{"frame file", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Frames[0].File = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetFrames()[0].GetFile() }},
	{"attribute value", func(r *consentryv1.IngestRequest) {
		r.Events[2].GetCustom().Attributes["format"].Value = &consentryv1.AttributeValue_StringValue{StringValue: placeholder}
	}, -1, func(r *consentryv1.IngestRequest) string {
		return r.Events[2].GetCustom().GetAttributes()["format"].GetStringValue()
	}},
	// A breadcrumb's name is a name, but the breadcrumb is an aside of its
	// crash: it is repaired here, and the anonymizer leaves out the
	// breadcrumb (U+FFFD is no name's character), not the crash.
	{"breadcrumb name", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Breadcrumbs[0].Name = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.Events[1].GetCrash().GetBreadcrumbs()[0].GetName() }},
	{"device model", func(r *consentryv1.IngestRequest) { r.Device.DeviceModel = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.GetDevice().GetDeviceModel() }},
	{"consent token", func(r *consentryv1.IngestRequest) { r.ConsentToken = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.GetConsentToken() }},
	{"locale", func(r *consentryv1.IngestRequest) { r.Device.Locale = placeholder }, -1,
		func(r *consentryv1.IngestRequest) string { return r.GetDevice().GetLocale() }},
	{"gesture screen", func(r *consentryv1.IngestRequest) { r.Events[3].GetGesture().Screen = placeholder }, 3, nil},
	{"exception type", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().ExceptionType = placeholder }, 1, nil},
	{"crash fingerprint", func(r *consentryv1.IngestRequest) { r.Events[1].GetCrash().Fingerprint = placeholder }, 1, nil},
	{"custom event name", func(r *consentryv1.IngestRequest) { r.Events[2].GetCustom().Name = placeholder }, 2, nil},
	{"attribute key", func(r *consentryv1.IngestRequest) {
		a := r.Events[2].GetCustom().Attributes
		a[placeholder] = a["format"]
		delete(a, "format")
	}, 2, nil},
}

// corrupt returns the encodings of req with the placeholder made invalid:
// protobuf, JSON with raw bytes that are not UTF-8, and JSON with a lone
// surrogate escape.
func corrupt(t testing.TB, req *consentryv1.IngestRequest) (pb, jsRaw, jsEscape []byte) {
	t.Helper()
	pb, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pb, []byte(placeholder)) || !bytes.Contains(js, []byte(placeholder)) {
		t.Fatal("placeholder not encoded")
	}
	pb = bytes.ReplaceAll(pb, []byte(placeholder), []byte(bad))
	jsRaw = bytes.ReplaceAll(js, []byte(placeholder), []byte(bad))
	jsEscape = bytes.ReplaceAll(js, []byte(placeholder), []byte(`ab\ud800(!!cd`))
	return pb, jsRaw, jsEscape
}

// TestInvalidUTF8 decodes batches with one string that is not UTF-8, as
// protobuf and as JSON, and checks that free text is repaired, that only
// the event holding a bad name is dropped, and that the rest of the batch
// is decoded as sent.
func TestInvalidUTF8(t *testing.T) {
	st, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range utf8Cases {
		req := utf8Batch()
		tc.set(req)
		pb, jsRaw, jsEscape := corrupt(t, req)
		for _, enc := range []struct {
			encoded
			strict decodeFunc
		}{
			{encoded{"protobuf", pb, UnmarshalRequest}, strictProtobuf},
			{encoded{"JSON", jsRaw, UnmarshalRequestJSON}, strictJSON},
			{encoded{"JSON escape", jsEscape, UnmarshalRequestJSON}, strictJSON},
		} {
			t.Run(tc.name+"/"+enc.name, func(t *testing.T) {
				// The runtime's own decoder refuses the whole batch.
				if err := enc.strict(enc.data, &consentryv1.IngestRequest{}); err == nil {
					t.Fatal("the strict decoder accepted the batch; the test plants nothing")
				}
				var got consentryv1.IngestRequest
				if err := enc.decode(enc.data, &got); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if _, err := proto.Marshal(&got); err != nil {
					t.Fatalf("decoded request does not encode (strings not UTF-8?): %v", err)
				}
				b := pipeline.NewBatch(&got, now, netip.Addr{})
				if err := st.Process(context.Background(), b); err != nil {
					t.Fatalf("process: %v", err)
				}
				want := utf8Batch()
				for i := range want.Events {
					r := b.DropReasonOf(i)
					switch {
					case i == tc.drop && r != consentryv1.DropReason_DROP_REASON_INVALID_FIELD:
						t.Errorf("event %d: drop reason %v, want INVALID_FIELD", i, r)
					case i != tc.drop && r != 0:
						t.Errorf("event %d: dropped with %v, want kept", i, r)
					case i != tc.drop && tc.get == nil && !proto.Equal(got.Events[i], want.Events[i]):
						t.Errorf("event %d decoded as %v, want %v", i, got.Events[i], want.Events[i])
					}
				}
				if tc.get != nil {
					if s := tc.get(&got); s != repaired {
						t.Errorf("repaired to %q, want %q", s, repaired)
					}
				}
			})
		}
	}
}

// TestInvalidUTF8KeepsErrors checks that input that is malformed apart
// from its UTF-8 still fails, and that valid input decodes unmarked.
func TestInvalidUTF8KeepsErrors(t *testing.T) {
	req := utf8Batch()
	req.Events[1].GetCrash().Message = placeholder
	pb, js, _ := corrupt(t, req)
	for _, c := range []encoded{
		{"truncated protobuf", pb[:len(pb)-3], UnmarshalRequest},
		{"garbage protobuf", append([]byte{0x0a, 0x02, 0xff, 0xfe}, 0xff, 0xff), UnmarshalRequest},
		{"truncated JSON", js[:len(js)-3], UnmarshalRequestJSON},
		{"JSON array", []byte("[\"\xff\"]"), UnmarshalRequestJSON},
		{"JSON bad escape", []byte(`{"consentToken": "\x"}`), UnmarshalRequestJSON},
	} {
		if err := c.decode(c.data, &consentryv1.IngestRequest{}); err == nil {
			t.Errorf("%s: decoded", c.name)
		}
	}
	good := utf8Batch()
	pb, _ = proto.Marshal(good)
	js, _ = protojson.Marshal(good)
	for name, dec := range map[string]func() (*consentryv1.IngestRequest, error){
		"protobuf": func() (*consentryv1.IngestRequest, error) {
			var r consentryv1.IngestRequest
			return &r, UnmarshalRequest(pb, &r)
		},
		"JSON": func() (*consentryv1.IngestRequest, error) {
			var r consentryv1.IngestRequest
			return &r, UnmarshalRequestJSON(js, &r)
		},
	} {
		got, err := dec()
		if err != nil || !proto.Equal(got, good) {
			t.Errorf("%s: valid batch decoded as %v, %v", name, got, err)
		}
	}
}

// TestInvalidUTF8Marks checks the marks when several events hold a bad
// name, in a batch whose valid event carries an unknown field of a newer
// SDK.
func TestInvalidUTF8Marks(t *testing.T) {
	req := utf8Batch()
	req.Events[0].GetGesture().Screen = placeholder
	req.Events[3].GetGesture().Screen = placeholder
	// Field 111 as a varint: a field of a newer SDK (protobuf only).
	req.Events[2].ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01})
	pb, js, _ := corrupt(t, req)
	for _, c := range []encoded{{"protobuf", pb, UnmarshalRequest}, {"JSON", js, UnmarshalRequestJSON}} {
		var got consentryv1.IngestRequest
		if err := c.decode(c.data, &got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var marked []int
		for i, e := range got.GetEvents() {
			if invalidText(e) {
				marked = append(marked, i)
			}
		}
		if len(marked) != 2 || marked[0] != 0 || marked[1] != 3 {
			t.Errorf("%s: marked events %v, want [0 3]", c.name, marked)
		}
		if c.name == "protobuf" && len(got.Events[2].ProtoReflect().GetUnknown()) != 3 {
			t.Errorf("unknown field of event 2 not kept")
		}
	}
}

// FuzzUnmarshalRequest checks the lenient protobuf decoder on any input:
// it never panics, agrees with proto.Unmarshal where that succeeds, and
// what it decodes holds only UTF-8 strings.
func FuzzUnmarshalRequest(f *testing.F) {
	addProtobufSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { checkLenient(t, data, strictProtobuf, UnmarshalRequest) })
}

// addProtobufSeeds adds to f's corpus the protobuf encoding of a batch
// with each of utf8Cases, of a valid batch, of a string field that is
// not UTF-8, and nothing.
func addProtobufSeeds(f *testing.F) {
	for _, tc := range utf8Cases {
		req := utf8Batch()
		tc.set(req)
		pb, _, _ := corrupt(f, req)
		f.Add(pb)
	}
	good, _ := proto.Marshal(utf8Batch())
	f.Add(good)
	f.Add([]byte{0x0a, 0x02, 0xff, 0xfe})
	f.Add([]byte{})
}

// FuzzUnmarshalRequestJSON does the same for the JSON decoder.
func FuzzUnmarshalRequestJSON(f *testing.F) {
	for _, tc := range utf8Cases {
		req := utf8Batch()
		tc.set(req)
		_, js, esc := corrupt(f, req)
		f.Add(js)
		f.Add(esc)
	}
	good, _ := protojson.Marshal(utf8Batch())
	f.Add(good)
	f.Add([]byte("{\"events\": [{\"gesture\": {\"screen\": \"\xff\"}}, {\"custom\": {\"attributes\": {\"\xfe\": {}}}}]}"))
	f.Add([]byte(`{"consentToken": "\udc00\ud800\u0041"}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkLenient(t, data, strictJSON, UnmarshalRequestJSON) })
}

// checkLenient checks the lenient decode of data against the strict one.
func checkLenient(t *testing.T, data []byte, strictDecode, lenientDecode decodeFunc) {
	t.Helper()
	var strict, got consentryv1.IngestRequest
	strictErr := strictDecode(data, &strict)
	err := lenientDecode(data, &got)
	if strictErr == nil {
		// Unknown fields may keep their bytes differently (an overlong
		// tag) once UnmarshalVT decoded them; the collector reads none
		// but its own marks, by number.
		if err != nil || !proto.Equal(withoutUnknown(t, &strict), withoutUnknown(t, &got)) {
			t.Fatalf("strict decode gives %v, lenient %v (%v)", &strict, &got, err)
		}
		return
	}
	if err != nil {
		return
	}
	// Every string is UTF-8 now: the encoder checks.
	if _, err := proto.Marshal(&got); err != nil {
		t.Fatalf("lenient decode holds strings that are not UTF-8: %v", err)
	}
}

// BenchmarkUnmarshal compares the lenient decoders with the runtime's on a
// valid batch of the size SDKs send, and times the lenient path on a batch
// with one crash message that is not UTF-8.
func BenchmarkUnmarshal(b *testing.B) {
	req := utf8Batch()
	for len(req.Events) < 400 {
		req.Events = append(req.Events, utf8Batch().Events...)
	}
	pb, _ := proto.Marshal(req)
	js, _ := protojson.Marshal(req)
	req.Events[1].GetCrash().Message = placeholder
	badPB, badJS, _ := corrupt(b, req)
	for _, c := range []encoded{
		{"protobuf/runtime", pb, strictProtobuf},
		{"protobuf/lenient", pb, UnmarshalRequest},
		{"protobuf/lenient-invalid", badPB, UnmarshalRequest},
		{"json/runtime", js, strictJSON},
		{"json/lenient", js, UnmarshalRequestJSON},
		{"json/lenient-invalid", badJS, UnmarshalRequestJSON},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				var r consentryv1.IngestRequest
				if err := c.decode(c.data, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
