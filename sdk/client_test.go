package sdk

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// recordAll records one event of every kind and sets a location.
func recordAll(t testing.TB, c *Client) {
	t.Helper()
	attrs := NewAttributes()
	attrs.PutString("format", "a4")
	attrs.PutInt("pages", 12)
	attrs.PutDouble("ratio", 0.5)
	attrs.PutBool("dark", true)
	for _, err := range []error{
		c.StartSession(),
		c.RecordGesture("tap", "settings.privacy", 1, 0),
		c.RecordCrash("java.lang.IllegalStateException", "boom", "\tat com.example.notes.NoteEditor.save(NoteEditor.kt:42)", true),
		c.RecordCustom("export_pdf", attrs),
		c.RecordDiagnostic("app_start", 830, "cold", "wifi", 0),
		c.RecordSession(120_000),
		c.SetLocation(48.20849, 16.37208),
		c.EndSession(),
	} {
		if err != nil {
			t.Fatalf("record: %v", err)
		}
	}
}

// segmentFiles returns the queue's segment files in dir.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, queueDirName, segPrefix+"*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestNothingRecordedOrSentBeforeConsent(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := newClient(t, testConfig(f, dir))
	if got := c.ConsentState(); got != StateNone {
		t.Fatalf("state %q, want none", got)
	}
	recordAll(t, c)
	if err := c.RecordCrash("panic", "x", "", false); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.RecordedEvents != 0 || st.QueuedEvents != 0 || st.QueuedBytes != 0 {
		t.Errorf("stats before consent: %+v", st)
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("segment files before consent: %v", files)
	}
	if n := len(f.attemptTimes()); n != 0 {
		t.Errorf("%d ingest calls before consent", n)
	}
	if c.Scopes() != "" {
		t.Errorf("scopes %q before consent", c.Scopes())
	}
}

func TestScopeFiltering(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "crash_reports")
	if got := c.Scopes(); got != "crash_reports" {
		t.Fatalf("scopes %q", got)
	}
	recordAll(t, c) // one crash; the rest is analytics, and a location
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 1 || got[0].GetCrash() == nil {
		t.Fatalf("accepted %v, want the crash only", got)
	}
	if loc := f.lastBatch().GetDevice().GetLocation(); loc != nil {
		t.Errorf("location %v sent without the location scope", loc)
	}
	if st := c.Stats(); st.RecordedEvents != 1 {
		t.Errorf("recorded %d, want 1", st.RecordedEvents)
	}
}

func TestGrantErrors(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.AppKey = "wrong"
	c := newClient(t, cfg)
	err := c.GrantConsent("analytics")
	if !errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("grant with a wrong key: %v", err)
	}
	if !strings.Contains(err.Error(), "APP_UNAUTHENTICATED") {
		t.Errorf("error %q does not name the reason", err)
	}
	if err := c.GrantConsent("analytics,advertising"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown scope: %v", err)
	}
	if err := c.GrantConsent(""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("no scope: %v", err)
	}
	f.setDown(true)
	if err := c.GrantConsent("analytics"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("grant while down: %v", err)
	}
	if c.ConsentState() != StateNone {
		t.Fatalf("state %q after failed grants", c.ConsentState())
	}
}

func TestEveryKindDelivered(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics,crash_reports,location")
	recordAll(t, c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 7 {
		t.Fatalf("accepted %d events, want 7", len(got))
	}
	var kinds []string
	var sid []byte
	for _, e := range got {
		kinds = append(kinds, fmt.Sprintf("%T", e.GetPayload()))
		if e.AgeMs == nil || e.GetCreatedAtUnixMs() == 0 {
			t.Errorf("event without age or time: %v", e)
		}
		if s := e.GetSession(); s != nil && s.GetPhase() == consentryv1.SessionPhase_SESSION_PHASE_START {
			sid = e.GetSessionId()
		}
	}
	if len(sid) != 16 {
		t.Fatalf("session id %x", sid)
	}
	// The gesture, crash, custom event and diagnostic were recorded in the
	// session; RecordSession's session has an id of its own.
	inSession := 0
	for _, e := range got {
		if bytes.Equal(e.GetSessionId(), sid) {
			inSession++
		}
	}
	if inSession != 6 {
		t.Errorf("%d events carry the session id, want 6 (kinds %v)", inSession, kinds)
	}
	req := f.lastBatch()
	d := req.GetDevice()
	if d.GetAppId() != testAppID || d.GetSdkVersion() != sdkName || d.GetDeviceClass() != consentryv1.DeviceClass_DEVICE_CLASS_PHONE ||
		d.GetOsName() != consentryv1.OsName_OS_NAME_ANDROID || d.GetLocale() != "de-AT" {
		t.Errorf("device %v", d)
	}
	crash := got[2].GetCrash()
	if crash == nil || len(crash.GetFrames()) != 1 || crash.GetFrames()[0].GetFunction() != "NoteEditor.save" ||
		crash.GetFrames()[0].GetModule() != "com.example.notes" || crash.GetFrames()[0].GetLine() != 42 || !crash.GetHandled() {
		t.Errorf("crash %v", crash)
	}
	custom := got[3].GetCustom()
	if custom.GetName() != "export_pdf" || len(custom.GetAttributes()) != 4 || custom.GetAttributes()["pages"].GetIntValue() != 12 {
		t.Errorf("custom %v", custom)
	}
	if st := c.Stats(); st.SentEvents != 7 || st.QueuedEvents != 0 || st.SentBatches != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCoordinatesRounded(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics,location")
	if err := c.SetLocation(48.20849, 16.37208); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	loc := f.lastBatch().GetDevice().GetLocation()
	if loc.GetLatitude() != 48.2 || loc.GetLongitude() != 16.4 {
		t.Fatalf("location %v, want 48.2, 16.4", loc)
	}
	for _, v := range [][2]float64{{-0.04, 0.04}, {-33.86785, 151.20732}, {90, -180}} {
		lat, lon := roundCoordinate(v[0]), roundCoordinate(v[1])
		if lat*10 != float64(int(lat*10)) || lon*10 != float64(int(lon*10)) || lat == 0 && 1/lat < 0 {
			t.Errorf("rounded %v to %v, %v", v, lat, lon)
		}
	}
	if err := c.SetLocation(91, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("latitude 91: %v", err)
	}
}

func TestBatchingByCount(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MaxBatchEvents = 10
	c := grantedClient(t, f, cfg, "analytics")
	recordScreens(t, c, names(0, 25)...)
	waitFor(t, 5*time.Second, "two full batches", func() bool { return len(f.batchSizes()) == 2 })
	time.Sleep(200 * time.Millisecond)
	if got := f.batchSizes(); !slices.Equal(got, []int{10, 10}) {
		t.Fatalf("batches %v before flush, want [10 10]", got)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := f.batchSizes(); !slices.Equal(got, []int{10, 10, 5}) {
		t.Fatalf("batches %v, want [10 10 5]", got)
	}
	if got := screensOf(f.accepted()); !slices.Equal(got, names(0, 25)) {
		t.Fatalf("screens %v, want s0 to s24 in order, each once", got)
	}
}

func TestBatchingByBytes(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MaxBatchBytes = 4096
	c := grantedClient(t, f, cfg, "analytics")
	for range 40 {
		a := NewAttributes()
		a.PutString("blob", strings.Repeat("x", 400))
		if err := c.RecordCustom("big", a); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "batches by size", func() bool { return len(f.batchSizes()) >= 3 })
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	total := 0
	for i, b := range f.batches {
		size := 0
		for _, e := range b.GetEvents() {
			size += proto.Size(e)
		}
		if size > cfg.MaxBatchBytes || (i < len(f.batches)-1 && len(b.GetEvents()) < 5) {
			t.Errorf("batch of %d events, %d bytes (max %d)", len(b.GetEvents()), size, cfg.MaxBatchBytes)
		}
		total += len(b.GetEvents())
	}
	if total != 40 {
		t.Errorf("%d events sent, want 40", total)
	}
}

func TestBatchingByTime(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.FlushIntervalMs = 200
	c := grantedClient(t, f, cfg, "analytics")
	for range 3 {
		if err := c.RecordGesture("swipe", "feed", 2, 300); err != nil {
			t.Fatal(err)
		}
	}
	// Neither a full batch (100) nor a Flush: only the interval sends.
	waitFor(t, 5*time.Second, "the interval's batch", func() bool { return len(f.accepted()) == 3 })
	if got := f.batchSizes(); !slices.Equal(got, []int{3}) {
		t.Errorf("batches %v", got)
	}
}

func TestGzipOnTheWire(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics")
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	comp := slices.Clone(f.compression)
	f.mu.Unlock()
	if len(comp) != 1 || comp[0] != "gzip" {
		t.Errorf("gRPC grpc-encoding %v, want [gzip]", comp)
	}

	cfg := testConfig(f, t.TempDir())
	cfg.Transport, cfg.Endpoint = TransportHTTP, f.httpSrv.URL
	hc := grantedClient(t, f, cfg, "analytics")
	if err := hc.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := hc.Flush(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	gz := 0
	for _, h := range f.httpHeaders {
		if h.Get("Content-Encoding") == "gzip" {
			gz++
		}
	}
	if gz != 1 {
		t.Errorf("%d gzip-encoded HTTP requests, want the ingest", gz)
	}
}

func TestHTTPTransport(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.Transport, cfg.Endpoint = TransportHTTP, f.httpSrv.URL
	c := grantedClient(t, f, cfg, "analytics,crash_reports")
	recordAll(t, c)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.accepted()); n != 7 {
		t.Fatalf("accepted %d events over HTTP, want 7", n)
	}
	if err := c.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	if c.ConsentState() != StateRevoked || f.revokeCount() != 1 {
		t.Fatalf("state %q, %d revokes", c.ConsentState(), f.revokeCount())
	}
	// Plaintext HTTP needs Insecure.
	cfg.Insecure = false
	cfg.StorageDir = t.TempDir()
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("http:// without Insecure: %v", err)
	}
}

func TestRetryHonoursRetryInfo(t *testing.T) {
	f := newFakeCollector(t)
	const pushback = 300 * time.Millisecond
	f.setIngest(func(n int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
		if n <= 3 {
			return nil, withReason(codes.ResourceExhausted, "OVERLOADED", pushback)
		}
		return &consentryv1.IngestResponse{Accepted: uint32(len(req.GetEvents()))}, nil
	})
	cfg := testConfig(f, t.TempDir())
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 10, 50 // far below the pushback
	c := grantedClient(t, f, cfg, "analytics")
	recordTaps(t, c, 5)
	err := c.Flush()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("flush during overload: %v", err)
	}
	// While the pushback lasts, Flush does not send.
	if err := c.Flush(); !errors.Is(err, ErrUnavailable) || len(f.attemptTimes()) != 1 {
		t.Fatalf("flush during pushback: %v after %d attempts", err, len(f.attemptTimes()))
	}
	waitFor(t, 5*time.Second, "delivery after the pushback", func() bool { return c.Stats().SentEvents == 5 })
	at := f.attemptTimes()
	if len(at) != 4 {
		t.Fatalf("%d attempts, want 4", len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < pushback-20*time.Millisecond {
			t.Errorf("retry %d after %v, before the %v pushback", i, gap, pushback)
		}
	}
	if st := c.Stats(); st.Retries < 3 || st.SentEvents != 5 || f.duplicates() != 0 {
		t.Errorf("stats %+v, %d duplicates", st, f.duplicates())
	}
}

func TestNoRetryStorm(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 50, 400
	c := grantedClient(t, f, cfg, "analytics")
	f.setDown(true) // UNAVAILABLE without RetryInfo: our own backoff
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	_ = c.Flush()
	time.Sleep(1500 * time.Millisecond)
	at := f.attemptTimes()
	// Exponential from 50ms to 400ms with jitter, at least 50ms apart:
	// about 6-10 attempts in 1.5s; never more than one per 50ms.
	if len(at) < 3 || len(at) > 20 {
		t.Fatalf("%d attempts in 1.5s", len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 45*time.Millisecond {
			t.Errorf("attempt %d only %v after the previous one", i, gap)
		}
	}
	t.Logf("%d attempts in 1.5s against a down collector", len(at))
	f.setDown(false)
	waitFor(t, 3*time.Second, "delivery once up", func() bool { return len(f.accepted()) == 1 })
}

func TestRetryAfterOverHTTP(t *testing.T) {
	f := newFakeCollector(t)
	f.setIngest(func(n int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
		if n == 1 {
			return nil, withReason(codes.Unavailable, "STORAGE_UNAVAILABLE", time.Second)
		}
		return &consentryv1.IngestResponse{Accepted: uint32(len(req.GetEvents()))}, nil
	})
	cfg := testConfig(f, t.TempDir())
	cfg.Transport, cfg.Endpoint = TransportHTTP, f.httpSrv.URL
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 10, 50
	c := grantedClient(t, f, cfg, "analytics")
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("flush: %v", err)
	}
	waitFor(t, 5*time.Second, "delivery after Retry-After", func() bool { return len(f.accepted()) == 1 })
	at := f.attemptTimes()
	if len(at) != 2 || at[1].Sub(at[0]) < 950*time.Millisecond {
		t.Fatalf("attempts at %v: want 2, a Retry-After second apart", at)
	}
}

func TestPermanentErrorNotRetried(t *testing.T) {
	for _, transport := range []string{TransportGRPC, TransportHTTP} {
		t.Run(transport, func(t *testing.T) {
			f := newFakeCollector(t)
			f.setIngest(func(int, *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
				return nil, withReason(codes.InvalidArgument, "BATCH_MALFORMED", 0)
			})
			cfg := testConfig(f, t.TempDir())
			if transport == TransportHTTP {
				cfg.Transport, cfg.Endpoint = TransportHTTP, f.httpSrv.URL
			}
			c := grantedClient(t, f, cfg, "analytics")
			recordTaps(t, c, 3)
			err := c.Flush()
			if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "BATCH_MALFORMED") {
				t.Fatalf("flush: %v", err)
			}
			time.Sleep(300 * time.Millisecond) // many backoffs
			if n := len(f.attemptTimes()); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
			if st := c.Stats(); st.DroppedPermanentError != 3 || st.QueuedEvents != 0 || st.Retries != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestTooLargeBatchIsSplit(t *testing.T) {
	for _, transport := range []string{TransportGRPC, TransportHTTP} {
		t.Run(transport, func(t *testing.T) {
			f := newFakeCollector(t)
			f.setIngest(func(_ int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
				if len(req.GetEvents()) > 4 {
					return nil, withReason(codes.ResourceExhausted, reasonBatchTooLarge, 0)
				}
				return &consentryv1.IngestResponse{Accepted: uint32(len(req.GetEvents()))}, nil
			})
			cfg := testConfig(f, t.TempDir())
			if transport == TransportHTTP {
				cfg.Transport, cfg.Endpoint = TransportHTTP, f.httpSrv.URL
			}
			c := grantedClient(t, f, cfg, "analytics")
			recordScreens(t, c, names(0, 13)...)
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			got := f.accepted()
			if len(got) != 13 || f.duplicates() != 0 {
				t.Fatalf("accepted %d events (%d duplicates), want 13 once each", len(got), f.duplicates())
			}
			if screens := screensOf(got); !slices.Equal(screens, names(0, 13)) {
				t.Fatalf("screens %v, want s0 to s12 in order", screens)
			}
			for _, n := range f.batchSizes() {
				if n > 4 {
					t.Errorf("batch of %d accepted", n)
				}
			}
			if st := c.Stats(); st.SentEvents != 13 || st.DroppedPermanentError != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestServerReportsRevoked(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	recordTaps(t, c, 5)
	// Revoked elsewhere (the app's web settings, a support request).
	token := consentToken(c)
	f.mu.Lock()
	f.revoked[token] = true
	f.mu.Unlock()
	err := c.Flush()
	if !errors.Is(err, ErrConsentEnded) {
		t.Fatalf("flush: %v", err)
	}
	if got := c.ConsentState(); got != StateRevoked {
		t.Fatalf("state %q, want revoked", got)
	}
	st := c.Stats()
	if st.QueuedEvents != 0 || st.DroppedPurged != 5 || st.SentEvents != 0 {
		t.Fatalf("stats %+v", st)
	}
	attempts := len(f.attemptTimes())
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.attemptTimes()); n != attempts || c.Stats().RecordedEvents != 5 {
		t.Fatalf("sent or recorded after the server reported the revocation: %d attempts, %+v", n, c.Stats())
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("segments left after purge: %v", files)
	}
	// The state survives a restart.
	c.Close()
	c2 := newClient(t, testConfig(f, dir))
	if got := c2.ConsentState(); got != StateRevoked {
		t.Errorf("state after restart %q", got)
	}
}

func TestRevokeOfflinePersistsAndDelivers(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics,crash_reports")
	recordTaps(t, c, 3)
	f.stop() // offline: connections refused
	if err := c.RevokeConsent(true); err != nil {
		t.Fatalf("revoke offline: %v", err)
	}
	if got := c.ConsentState(); got != StateRevokePending {
		t.Fatalf("state %q, want revoke_pending", got)
	}
	st := c.Stats()
	if st.QueuedEvents != 0 || st.DroppedPurged != 3 || st.PendingRevocations != 1 {
		t.Fatalf("stats after offline revoke %+v", st)
	}
	if files := segmentFiles(t, dir); len(files) != 0 {
		t.Errorf("segments left after revoke: %v", files)
	}
	if err := c.RecordCrash("panic", "x", "", false); err != nil || c.Stats().RecordedEvents != 3 {
		t.Fatalf("recorded after revoke: %v %+v", err, c.Stats())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart, still offline: still pending.
	c2 := newClient(t, testConfig(f, dir))
	if got := c2.ConsentState(); got != StateRevokePending {
		t.Fatalf("state after restart %q", got)
	}
	time.Sleep(100 * time.Millisecond) // a few failed retries
	f.restart()
	waitFor(t, 5*time.Second, "the revocation", func() bool { return c2.ConsentState() == StateRevoked })
	f.mu.Lock()
	revokes := slices.Clone(f.revokes)
	f.mu.Unlock()
	if len(revokes) != 1 || !revokes[0].GetErase() || !strings.HasPrefix(revokes[0].GetConsentToken(), "tok-1-") {
		t.Fatalf("revokes %v", revokes)
	}
	if st := c2.Stats(); st.PendingRevocations != 0 {
		t.Fatalf("stats %+v", st)
	}
	c2.Close()
	c3 := newClient(t, testConfig(f, dir))
	time.Sleep(100 * time.Millisecond)
	if c3.ConsentState() != StateRevoked || f.revokeCount() != 1 {
		t.Fatalf("after the confirmed revocation: state %q, %d revokes", c3.ConsentState(), f.revokeCount())
	}
}

func TestPendingRevocationNeverEvictedOrAged(t *testing.T) {
	f := newFakeCollector(t)
	refuse := func(*consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
		return nil, withReason(codes.Unavailable, "STORE_UNAVAILABLE", 0)
	}
	f.setRevoke(refuse)
	clock := &testClock{}
	cfg := testConfig(f, t.TempDir())
	cfg.MaxQueueBytes = minQueueBytes
	cfg.now = clock.now
	c := grantedClient(t, f, cfg, "analytics")
	if err := c.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	// The user opts in again; the collector stores nothing meanwhile, so
	// the queue overflows many times.
	if err := c.GrantConsent("analytics"); err != nil {
		t.Fatal(err)
	}
	f.setIngest(func(int, *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
		return nil, status503()
	})
	recordTaps(t, c, 1000)
	st := c.Stats()
	if st.DroppedEvicted == 0 || st.PendingRevocations != 1 {
		t.Fatalf("stats %+v: want evictions and the revocation pending", st)
	}
	// A month passes.
	clock.advance(30 * 24 * time.Hour)
	if err := c.Flush(); err == nil {
		t.Fatal("flush succeeded while the collector refuses")
	}
	if st := c.Stats(); st.PendingRevocations != 1 {
		t.Fatalf("revocation gone after a month: %+v", st)
	}
	f.setRevoke(nil)
	waitFor(t, 5*time.Second, "the revocation", func() bool { return c.Stats().PendingRevocations == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.revokes) != 1 || !strings.HasPrefix(f.revokes[0].GetConsentToken(), "tok-1-") {
		t.Fatalf("revokes %v", f.revokes)
	}
}

func status503() error { return withReason(codes.Unavailable, "STORAGE_UNAVAILABLE", 0) }

func TestRevokeConfirmedWhenTokenExpired(t *testing.T) {
	f := newFakeCollector(t)
	f.setRevoke(func(*consentryv1.RevokeRequest) (*consentryv1.RevokeResponse, error) {
		return nil, withReason(codes.InvalidArgument, reasonTokenExpired, 0)
	})
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics")
	if err := c.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	if got := c.ConsentState(); got != StateRevoked {
		t.Fatalf("state %q: an expired token needs no revocation", got)
	}
}

func TestQueueCapDropsOldestFirst(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testConfig(f, t.TempDir())
	cfg.MaxQueueBytes = minQueueBytes
	// One failed attempt when the first batch fills, then no retry until
	// Flush: a batch in flight when the collector comes back may still
	// deliver events the cap evicted from disk meanwhile (counted as sent
	// then, not evicted), which this test keeps out of the way.
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 60_000, 60_000
	c := grantedClient(t, f, cfg, "analytics")
	f.stop()
	const n = 600
	for i := range n {
		if err := recordSeq(c, i); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.DroppedEvicted == 0 || st.QueuedBytes > cfg.MaxQueueBytes || st.QueuedEvents+st.DroppedEvicted != n {
		t.Fatalf("stats %+v", st)
	}
	got := deliverQueued(t, f, c, st.QueuedEvents)
	checkNewest(t, got, n)
	t.Logf("cap %d bytes kept the newest %d of %d events", cfg.MaxQueueBytes, len(got), n)
	if st := c.Stats(); st.SentEvents+st.DroppedEvicted != n {
		t.Errorf("sent %d + evicted %d != %d", st.SentEvents, st.DroppedEvicted, n)
	}
}

func TestEventsOlderThanMaxAgeDropped(t *testing.T) {
	f := newFakeCollector(t)
	clock := &testClock{}
	cfg := testConfig(f, t.TempDir())
	cfg.now = clock.now
	c := grantedClient(t, f, cfg, "analytics")
	// The token lasts an hour; let it last the test.
	c.mu.Lock()
	c.st.ExpiresAtMs = time.Now().Add(30 * 24 * time.Hour).UnixMilli()
	c.mu.Unlock()
	f.setDown(true)
	for range 5 {
		if err := c.RecordGesture("tap", "old", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	clock.advance(13*24*time.Hour + time.Minute)
	for range 2 {
		if err := c.RecordGesture("tap", "new", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.setDown(false)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 2 || got[0].GetGesture().GetScreen() != "new" {
		t.Fatalf("accepted %v, want the 2 new events", got)
	}
	if st := c.Stats(); st.DroppedTooOld != 5 || st.QueuedEvents != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTokenExpiryPurges(t *testing.T) {
	f := newFakeCollector(t)
	clock := &testClock{}
	cfg := testConfig(f, t.TempDir())
	cfg.now = clock.now
	c := grantedClient(t, f, cfg, "analytics")
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour) // the fake's tokens last an hour
	if got := c.ConsentState(); got != StateExpired {
		t.Fatalf("state %q", got)
	}
	if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the purge", func() bool { return c.Stats().DroppedPurged == 1 })
	if st := c.Stats(); st.QueuedEvents != 0 || st.RecordedEvents != 1 || len(f.attemptTimes()) != 0 {
		t.Fatalf("stats %+v, %d attempts", st, len(f.attemptTimes()))
	}
}

func TestRestartResumesQueue(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	f.stop()
	recordScreens(t, c, names(0, 50)...)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordGesture("tap", "home", 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("record after close: %v", err)
	}
	f.restart()
	c2 := newClient(t, testConfig(f, dir))
	if got := c2.Stats().QueuedEvents; got != 50 {
		t.Fatalf("%d events queued after restart, want 50", got)
	}
	if err := c2.RecordGesture("tap", "after", 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := c2.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 51 || f.duplicates() != 0 {
		t.Fatalf("accepted %d (%d duplicates), want 51", len(got), f.duplicates())
	}
	for i, e := range got[:50] {
		// Recorded by another process: no age, the wall-clock time only.
		if e.GetGesture().GetScreen() != fmt.Sprintf("s%d", i) || e.AgeMs != nil || e.GetCreatedAtUnixMs() == 0 {
			t.Fatalf("event %d: %v", i, e)
		}
	}
	if got[50].AgeMs == nil {
		t.Errorf("an event of this process has no age")
	}
	// Acknowledged events are not sent again after another restart.
	c2.Close()
	c3 := newClient(t, testConfig(f, dir))
	if n := c3.Stats().QueuedEvents; n != 0 {
		t.Fatalf("%d events queued after everything was sent", n)
	}
}

func TestQueueEncryptedAtRest(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics,crash_reports")
	const marker = "PLAINTEXTMARKER7731"
	f.setDown(true)
	a := NewAttributes()
	a.PutString("note", marker)
	for range 20 {
		if err := c.RecordCustom("marker_event", a); err != nil {
			t.Fatal(err)
		}
		if err := c.RecordCrash("MarkerError", "message "+marker, "at "+marker, false); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		n := 0
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n++
			for _, m := range []string{marker, "SECRETTOKENMARKER", "marker_event", "MarkerError", testAppID} {
				if bytes.Contains(b, []byte(m)) {
					t.Errorf("%s: %s holds %q in plaintext", when, p, m)
				}
			}
			return nil
		})
		if err != nil || n < 3 {
			t.Fatalf("walk: %v (%d files)", err, n)
		}
	}
	check("while running")
	c.Close()
	check("after close")
}

func TestCorruptedSegmentSkipped(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	f.stop()
	recordScreens(t, c, names(0, 30)...)
	c.Close()
	segs := segmentFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x55                             // a flipped bit in a record
	data = append(data, []byte(magicQueue+"\x00\x00")...) // a torn header
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	f.restart()
	c2 := newClient(t, testConfig(f, dir))
	st := c2.Stats()
	if st.DroppedCorrupt != 2 || st.QueuedEvents != 29 {
		t.Fatalf("stats after reopening %+v: want 2 corrupt stretches, 29 events", st)
	}
	if err := c2.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := f.accepted(); len(got) != 29 {
		t.Fatalf("accepted %d, want 29", len(got))
	}
}

func TestStorageFolderLocked(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	newClient(t, testConfig(f, dir))
	if _, err := New(testConfig(f, dir)); !errors.Is(err, ErrStorageInUse) {
		t.Fatalf("second client on one folder: %v", err)
	}
}

func TestQueueKey(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	cfg := testConfig(f, dir)
	cfg.QueueKey = bytes.Repeat([]byte{7}, 32)
	c := grantedClient(t, f, cfg, "analytics")
	c.Close()
	for _, name := range []string{keyFileName, keyFileName + copySuffix} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was written although the app supplies the key: %v", name, err)
		}
	}
	cfg.QueueKey = bytes.Repeat([]byte{8}, 32)
	if _, err := New(cfg); !errors.Is(err, ErrStateUnreadable) {
		t.Fatalf("another key: %v", err)
	}
	cfg.QueueKey = bytes.Repeat([]byte{7}, 32)
	c2 := newClient(t, cfg)
	if c2.ConsentState() != StateGranted {
		t.Fatalf("state %q with the right key", c2.ConsentState())
	}
	c2.Close()
	if err := DeleteStorage(dir); err != nil {
		t.Fatal(err)
	}
	cfg.QueueKey = bytes.Repeat([]byte{8}, 32)
	c3 := newClient(t, cfg)
	if c3.ConsentState() != StateNone {
		t.Fatalf("state %q after DeleteStorage", c3.ConsentState())
	}
	cfg.QueueKey = []byte("short")
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("short key: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics,crash_reports")
	a := NewAttributes()
	a.PutDouble("nan", 0)
	a.PutString("user email", "x") // space: not a valid key
	for name, err := range map[string]error{
		"gesture kind":    c.RecordGesture("poke", "home", 1, 0),
		"screen":          c.RecordGesture("tap", "home<script>", 1, 0),
		"negative count":  c.RecordGesture("tap", "home", -1, 0),
		"custom name":     c.RecordCustom("export pdf", nil),
		"attribute key":   c.RecordCustom("export_pdf", a),
		"diagnostic kind": c.RecordDiagnostic("slow", 1, "", "", 0),
		"start type":      c.RecordDiagnostic("app_start", 1, "lukewarm", "", 0),
		"session":         c.RecordSession(-1),
		"exception type":  c.RecordCrash(" ", "m", "", true),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if st := c.Stats(); st.RecordedEvents != 0 {
		t.Errorf("recorded %d invalid events", st.RecordedEvents)
	}
	many := NewAttributes()
	for i := range maxAttributes + 1 {
		many.PutInt(fmt.Sprintf("k%d", i), 1)
	}
	if err := c.RecordCustom("many", many); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("65 attributes: %v", err)
	}
	// Over-long text is cut, not refused.
	if err := c.RecordCrash(strings.Repeat("T", 1000), strings.Repeat("é", 10000), "", true); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	crash := f.accepted()[0].GetCrash()
	if len(crash.GetExceptionType()) != maxNameBytes || len(crash.GetMessage()) > maxTextBytes || !strings.HasSuffix(crash.GetMessage(), "é") {
		t.Errorf("cut to %d and %d bytes", len(crash.GetExceptionType()), len(crash.GetMessage()))
	}
}

func TestConfigValidation(t *testing.T) {
	f := newFakeCollector(t)
	for name, mutate := range map[string]func(*Config){
		"no endpoint":      func(c *Config) { c.Endpoint = "" },
		"bad app id":       func(c *Config) { c.AppID = "-x" },
		"no key":           func(c *Config) { c.AppKey = "" },
		"no storage":       func(c *Config) { c.StorageDir = "" },
		"no text version":  func(c *Config) { c.ConsentTextVersion = "" },
		"transport":        func(c *Config) { c.Transport = "udp" },
		"device class":     func(c *Config) { c.DeviceClass = "fridge" },
		"os":               func(c *Config) { c.OSName = "beos" },
		"batch events":     func(c *Config) { c.MaxBatchEvents = 5000 },
		"max age":          func(c *Config) { c.MaxEventAgeMs = 15 * 24 * 3600 * 1000 },
		"backoff":          func(c *Config) { c.MinBackoffMs, c.MaxBackoffMs = 100, 10 },
		"queue cap":        func(c *Config) { c.MaxQueueBytes = 100 },
		"http endpoint":    func(c *Config) { c.Transport = TransportHTTP; c.Endpoint = "collector:443" },
		"long app version": func(c *Config) { c.AppVersion = strings.Repeat("1", 300) },
	} {
		cfg := testConfig(f, t.TempDir())
		mutate(cfg)
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(nil); !errors.Is(err, ErrInvalidConfig) && err == nil {
		t.Errorf("nil config: %v", err)
	}
}

func TestLogsHoldNoTokensOrPayloads(t *testing.T) {
	f := newFakeCollector(t)
	logs := &logRecorder{}
	cfg := testConfig(f, t.TempDir())
	cfg.Logger = logs
	c := grantedClient(t, f, cfg, "analytics,crash_reports")
	const marker = "PAYLOADMARKER9912"
	a := NewAttributes()
	a.PutString("note", marker)
	f.setIngest(func(n int, req *consentryv1.IngestRequest) (*consentryv1.IngestResponse, error) {
		if n == 1 {
			return nil, withReason(codes.InvalidArgument, "BATCH_MALFORMED", 0)
		}
		return nil, withReason(codes.Unavailable, "STORAGE_UNAVAILABLE", 10*time.Millisecond)
	})
	for range 3 {
		c.RecordCustom("e", a)
		c.RecordCrash("E", marker, marker, true)
		c.Flush()
	}
	f.stop()
	c.RevokeConsent(true)
	c.Close()
	msgs := logs.all()
	if len(msgs) < 3 {
		t.Fatalf("only %d log messages: %v", len(msgs), msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, marker) || strings.Contains(m, "SECRETTOKENMARKER") || strings.Contains(m, testAppKey) {
			t.Errorf("log message leaks: %q", m)
		}
	}
}

func TestCloseIsIdempotentAndStopsRecording(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics")
	if err := c.StartSession(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close ended the session and sent it.
	got := f.accepted()
	if len(got) != 2 || got[1].GetSession().GetPhase() != consentryv1.SessionPhase_SESSION_PHASE_END {
		t.Fatalf("accepted %v", got)
	}
	for name, err := range map[string]error{
		"flush": c.Flush(), "grant": c.GrantConsent("analytics"), "revoke": c.RevokeConsent(false),
		"gesture": c.RecordGesture("tap", "", 0, 0),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after close: %v", name, err)
		}
	}
}

func TestRegrantNarrowingScopesDropsUncovered(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics,crash_reports")
	f.setDown(true)
	c.RecordGesture("tap", "home", 1, 0)
	c.RecordCrash("E", "m", "", true)
	f.setDown(false)
	if err := c.GrantConsent("crash_reports"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if len(got) != 1 || got[0].GetCrash() == nil {
		t.Fatalf("accepted %v, want only the crash", got)
	}
	if st := c.Stats(); st.DroppedPurged != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTokenLifetime(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for tok, want := range map[string]time.Duration{
		enc(`{"alg":"EdDSA"}`) + "." + enc(`{"iat":1700000000,"exp":1700003600,"aud":"x"}`) + ".sig": time.Hour,
		enc(`{}`) + "." + enc(`{"iat":1700000000,"exp":1600000000}`) + ".sig":                        0,
		"tok-1-opaque": 0,
		"a.!!!.c":      0,
	} {
		got, ok := tokenLifetime(tok)
		if got != want || ok != (want > 0) {
			t.Errorf("tokenLifetime(%q) = %v, %v; want %v", tok, got, ok, want)
		}
	}
}

func TestHTTPErrorsFromMiddleboxesAreRetried(t *testing.T) {
	for _, tc := range []struct {
		status    int
		body      string
		permanent bool
		tooLarge  bool
	}{
		{403, "<html>Log in to the Wi-Fi</html>", false, false},
		{400, "", false, false},
		{403, `{"error":{"code":"PERMISSION_DENIED","reason":"SCOPE_NOT_ALLOWED","message":"x"}}`, true, false},
		{400, `{"error":{"code":"INVALID_ARGUMENT","reason":"BATCH_MALFORMED","message":"x"}}`, true, false},
		{413, "<html>Request Entity Too Large</html>", true, true},
		{429, `{"error":{"code":"RESOURCE_EXHAUSTED","reason":"OVERLOADED","message":"x"}}`, false, false},
		{503, "", false, false},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		ce := httpError("ingest", resp, []byte(tc.body))
		if ce.permanent() != tc.permanent || ce.tooLarge() != tc.tooLarge {
			t.Errorf("%d %q: permanent %v, too large %v; want %v, %v", tc.status, tc.body, ce.permanent(), ce.tooLarge(), tc.permanent, tc.tooLarge)
		}
	}
	if d := parseRetryAfter("3", time.Now()); d != 3*time.Second {
		t.Errorf("Retry-After 3: %v", d)
	}
	now := time.Now()
	if d := parseRetryAfter(now.Add(10*time.Second).UTC().Format(http.TimeFormat), now); d < 8*time.Second || d > 11*time.Second {
		t.Errorf("Retry-After date: %v", d)
	}
}

// TestGrantAgainRevokesTheReplacedToken checks that granting again (the
// user narrowed their choice) revokes the replaced token in the
// background, so the collector's records and its acceptance follow the
// current choice, and that recording goes on under the new token.
func TestGrantAgainRevokesTheReplacedToken(t *testing.T) {
	f := newFakeCollector(t)
	c := grantedClient(t, f, testConfig(f, t.TempDir()), "analytics,location")
	if err := c.GrantConsent("analytics"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the replaced token's revocation", func() bool { return f.revokeCount() == 1 })
	f.mu.Lock()
	revoked := f.revokes[0].GetConsentToken()
	f.mu.Unlock()
	if !strings.HasPrefix(revoked, "tok-1-") {
		t.Fatalf("revoked %q, want the first token", revoked)
	}
	if got := c.ConsentState(); got != StateGranted || c.Scopes() != "analytics" {
		t.Fatalf("state %q, scopes %q", got, c.Scopes())
	}
	recordTaps(t, c, 2)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if tok := f.lastBatch().GetConsentToken(); !strings.HasPrefix(tok, "tok-2-") {
		t.Fatalf("sent under %q, want the new token", tok)
	}
	if st := c.Stats(); st.PendingRevocations != 0 {
		t.Fatalf("stats %+v", st)
	}
}
