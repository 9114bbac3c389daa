package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/consentry/consentry/internal/grpcerr"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// postIngest posts body, of contentType, to h's HTTP ingest endpoint,
// fails t unless the answer is 200 OK, and returns the IngestResponse it
// decodes from the answer, in the encoding of contentType.
func (h *harness) postIngest(t *testing.T, contentType string, body []byte) *consentryv1.IngestResponse {
	t.Helper()
	resp, err := http.Post("http://"+h.app.HTTPAddr()+PathIngest, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", contentType, resp.StatusCode, b)
	}
	var ir consentryv1.IngestResponse
	if contentType == contentTypeJSON {
		err = protojson.Unmarshal(b, &ir)
	} else {
		err = proto.Unmarshal(b, &ir)
	}
	if err != nil {
		t.Fatalf("%s: response %q: %v", contentType, b, err)
	}
	return &ir
}

// TestHTTPIngestEndToEnd sends batches as JSON and as gzipped protobuf to
// POST /v1/ingest and checks they are stored like gRPC batches, and that
// bad requests get the errors an SDK can act on.
func TestHTTPIngestEndToEnd(t *testing.T) {
	h := newHarness(t, server(t), func(c *Config) { c.Limits.MaxMessageBytes = 64 << 10 })
	url := "http://" + h.app.HTTPAddr() + PathIngest
	dev := &consentryv1.DeviceContext{AppId: testApp, AppVersion: "4.12.0", OsName: consentryv1.OsName_OS_NAME_ANDROID, OsVersion: "14"}
	tok := h.token(t, testApp, time.Hour)

	post := func(contentType, encoding string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}

	// JSON, as a web view or a non-gRPC app sends it.
	js, err := protojson.Marshal(gestureBatch(tok, dev, "session-http-json", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post("application/json; charset=utf-8", "", js)
	var ir consentryv1.IngestResponse
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(body, &ir) != nil || ir.GetAccepted() != 1 {
		t.Fatalf("JSON ingest: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(string(body), `"consentState": "CONSENT_STATE_VALID"`) && !strings.Contains(string(body), `"consentState":"CONSENT_STATE_VALID"`) {
		t.Errorf("response lacks the consent state: %s", body)
	}
	// Gzipped protobuf.
	pb, _ := proto.Marshal(gestureBatch(tok, dev, "session-http-pb", 2))
	resp, body = post("application/x-protobuf", "gzip", gz(pb))
	ir.Reset()
	if resp.StatusCode != http.StatusOK || proto.Unmarshal(body, &ir) != nil || ir.GetAccepted() != 1 {
		t.Fatalf("protobuf ingest: %d %q", resp.StatusCode, body)
	}
	if n := h.count(t, "gestures", "screen IN ('screen-1', 'screen-2')"); n != 2 {
		t.Fatalf("%d HTTP batches stored, want 2", n)
	}

	// Unknown JSON fields are skipped, as over gRPC.
	withExtra := strings.Replace(string(js), "{", `{"fieldFromTheFuture": 1, `, 1)
	if resp, body := post("application/json", "", []byte(withExtra)); resp.StatusCode != http.StatusOK {
		t.Errorf("unknown field: %d %s", resp.StatusCode, body)
	}

	bomb := gz(bytes.Repeat([]byte{' '}, 1<<20)) // 1 MiB of spaces, a few KiB compressed
	for _, tt := range []struct {
		name, contentType, encoding string
		body                        []byte
		status                      int
		reason                      string
	}{
		{"malformed JSON", "application/json", "", []byte(`{"events": [`), http.StatusBadRequest, consentryv1.ErrorReason_BATCH_MALFORMED.String()},
		{"malformed protobuf", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest, consentryv1.ErrorReason_BATCH_MALFORMED.String()},
		{"broken gzip", "application/json", "gzip", []byte("not gzip"), http.StatusBadRequest, consentryv1.ErrorReason_BATCH_MALFORMED.String()},
		{"unknown encoding", "application/json", "br", js, http.StatusBadRequest, consentryv1.ErrorReason_BATCH_MALFORMED.String()},
		{"wrong content type", "text/plain", "", js, http.StatusUnsupportedMediaType, consentryv1.ErrorReason_CONTENT_TYPE_UNSUPPORTED.String()},
		{"too large", "application/json", "", bytes.Repeat([]byte{' '}, 65<<10), http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE.String()},
		{"gzip bomb", "application/json", "gzip", bomb, http.StatusRequestEntityTooLarge, consentryv1.ErrorReason_BATCH_TOO_LARGE.String()},
		{"no device", "application/json", "", []byte(`{"consentToken": "x", "sentAtUnixMs": "1"}`), http.StatusBadRequest, consentryv1.ErrorReason_DEVICE_MISSING.String()},
	} {
		resp, body := post(tt.contentType, tt.encoding, tt.body)
		var e grpcerr.HTTPError
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tt.status || e.Error.Reason != tt.reason {
			t.Errorf("%s: %d %s; want %d with reason %s", tt.name, resp.StatusCode, body, tt.status, tt.reason)
		}
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// The consent endpoints still answer on the same port.
	cresp, err := http.Post("http://"+h.app.HTTPAddr()+"/v1/consent/status", "application/json", strings.NewReader(`{"consentToken": "`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	if cresp.StatusCode != http.StatusOK {
		t.Errorf("consent status next to ingest: %d", cresp.StatusCode)
	}
}
