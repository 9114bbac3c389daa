package limits

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// FuzzScan feeds the scanner untrusted bytes as protobuf and as JSON: it
// must not panic, must not call malformed what decoding accepts, and must
// count the events decoding builds.
func FuzzScan(f *testing.F) {
	f.Add([]byte{0x22, 0x00, 0x22, 0x02, 0x62, 0x00}, false)
	f.Add([]byte(`{"device":{"appId":"a"},"events":[{"crash":{"frames":[{},{}]}},{"custom":{"attributes":{"k":{"stringValue":"v"}}}}]}`), true)
	f.Add([]byte(`{"events":[{},{}],"x":[1,2,{"a":"\"}"}]}`), true)
	f.Add([]byte{0x0a, 0x03, 'a', 'b', 'c', 0x12, 0x03, 0x0a, 0x01, 'x'}, false)
	s := newScanner(f)
	f.Fuzz(func(t *testing.T, b []byte, json bool) {
		format := FormatProto
		if json {
			format = FormatJSON
		}
		c, err := s.Scan(b, format)
		if c.Wire != int64(len(b)) || c.Decoded < 0 {
			t.Fatalf("cost %+v for %d bytes", c, len(b))
		}
		var req consentryv1.IngestRequest
		var derr error
		if json {
			derr = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, &req)
		} else {
			derr = proto.Unmarshal(b, &req)
		}
		if derr != nil {
			return
		}
		if errors.Is(err, ErrMalformed) {
			t.Fatalf("scan: %v; decoding accepted it", err)
		}
		if err == nil && !json && c.Events != len(req.GetEvents()) {
			t.Fatalf("scan counted %d events, decoding built %d", c.Events, len(req.GetEvents()))
		}
	})
}
