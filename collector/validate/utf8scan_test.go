package validate

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/collector/limits"
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

// TestScanFindsUTF8 checks that the edge's scan (limits.Cost.UTF8), which
// the edge decodes on instead of RequestUTF8, finds what RequestUTF8
// finds, in every string the tests know to corrupt.
func TestScanFindsUTF8(t *testing.T) {
	sc := newLimitsScanner(t)
	good, err := proto.Marshal(utf8Batch())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := sc.Scan(good, limits.FormatProto); err != nil || !c.UTF8 {
		t.Fatalf("a valid request: UTF8 %v, err %v", c.UTF8, err)
	}
	for _, tc := range utf8Cases {
		req := utf8Batch()
		tc.set(req)
		pb, _, _ := corrupt(t, req)
		if c, err := sc.Scan(pb, limits.FormatProto); err != nil || c.UTF8 {
			t.Errorf("%s: UTF8 %v, err %v: invalid UTF-8 not found", tc.name, c.UTF8, err)
		}
	}
	if c, _ := sc.Scan([]byte(`{"events":[]}`), limits.FormatJSON); c.UTF8 {
		t.Error("JSON reported as checked")
	}
}

// FuzzScanUTF8 checks that wherever the edge's scan accepts a request,
// its UTF8 is what RequestUTF8 says, so the edge decodes exactly as
// UnmarshalRequest would.
func FuzzScanUTF8(f *testing.F) {
	addProtobufSeeds(f)
	sc := newLimitsScanner(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := sc.Scan(data, limits.FormatProto)
		if err != nil {
			if c.UTF8 {
				t.Fatalf("refused (%v), yet UTF8", err)
			}
			return
		}
		if want := RequestUTF8(data); c.UTF8 != want {
			t.Fatalf("scan says UTF8 %v, RequestUTF8 %v", c.UTF8, want)
		}
	})
}

func newLimitsScanner(t testing.TB) *limits.Scanner {
	t.Helper()
	sc, err := limits.NewScanner(limits.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
