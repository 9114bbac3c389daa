package validate

import (
	"testing"

	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestRequestUTF8(t *testing.T) {
	good, err := proto.Marshal(utf8Batch())
	if err != nil {
		t.Fatal(err)
	}
	if !RequestUTF8(good) {
		t.Error("a valid request reported invalid")
	}
	for _, tc := range utf8Cases {
		req := utf8Batch()
		tc.set(req)
		pb, _, _ := corrupt(t, req)
		if RequestUTF8(pb) {
			t.Errorf("%s: invalid UTF-8 not found", tc.name)
		}
	}
}

// FuzzRequestUTF8 checks what the gRPC codec relies on: where RequestUTF8
// says yes and the generated UnmarshalVT succeeds, proto.Unmarshal (which
// checks UTF-8) succeeds and decodes the same message.
func FuzzRequestUTF8(f *testing.F) {
	addProtobufSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict, fast consentryv1.IngestRequest
		strictErr := proto.Unmarshal(data, &strict)
		if strictErr == nil && !RequestUTF8(data) {
			t.Fatalf("proto.Unmarshal accepts what RequestUTF8 refuses")
		}
		if !RequestUTF8(data) || fast.UnmarshalVT(data) != nil {
			return
		}
		if strictErr != nil {
			t.Fatalf("UnmarshalVT accepts what proto.Unmarshal refuses: %v", strictErr)
		}
		// Unknown fields may keep their bytes differently (an overlong
		// tag); the collector reads none but its own marks, by number.
		if !proto.Equal(withoutUnknown(t, &strict), withoutUnknown(t, &fast)) {
			t.Fatalf("UnmarshalVT decodes\n%v\nproto.Unmarshal\n%v", &fast, &strict)
		}
	})
}

// withoutUnknown returns m without its unknown fields, at any depth.
func withoutUnknown(t *testing.T, m *consentryv1.IngestRequest) *consentryv1.IngestRequest {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out consentryv1.IngestRequest
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
