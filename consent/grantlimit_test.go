package consent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// fakeRegistry is a CounterRegistry that reads counters on demand.
type fakeRegistry struct {
	mu       sync.Mutex
	counters map[string]func() float64
}

func (r *fakeRegistry) Counter(name, _ string, f func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counters == nil {
		r.counters = make(map[string]func() float64)
	}
	r.counters[name] = f
}

func (r *fakeRegistry) value(name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.counters[name]; f != nil {
		return f()
	}
	return -1
}

// fromAddr returns a context whose gRPC peer is addr.
func fromAddr(addr string) context.Context {
	ap := netip.MustParseAddrPort(addr)
	return peer.NewContext(context.Background(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)})
}

func grantReq(app, key string) *consentryv1.GrantRequest {
	return &consentryv1.GrantRequest{AppId: app, AppKey: key, Scopes: []string{"analytics"}, ConsentTextVersion: "2026-11"}
}

// retryInfo returns the RetryInfo delay of err's status, 0 if none.
func retryInfo(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

const burstLog = "failed grants throttled: app keys may be being guessed"

// TestGrantKeyGuessingBurst is issue 13's report: 1,000 wrong keys from one
// client as fast as it can. After SourceBurst failures the client is
// throttled with RESOURCE_EXHAUSTED, RATE_LIMITED and a retry delay, even
// with the right key (it learns nothing while throttled); the failures
// are counted in the metrics and logged once per window without keys or
// addresses; a device granting from elsewhere is unaffected; the client
// may try again once its bucket refilled.
func TestGrantKeyGuessingBurst(t *testing.T) {
	reg := &fakeRegistry{}
	f := newFixture(t, nil, func(c *ServiceConfig) { c.Metrics = reg })
	attacker := fromAddr("198.51.100.7:40000")
	codesSeen := map[codes.Code]int{}
	start := time.Now()
	wrongKeys := make([]string, 1000)
	for i := range wrongKeys {
		wrongKeys[i] = fmt.Sprintf("guess-%04d-0123456789abcdef", i)
		_, err := f.svc.Grant(attacker, grantReq(erasableApp, wrongKeys[i]))
		codesSeen[status.Code(err)]++
		if status.Code(err) == codes.ResourceExhausted {
			wantStatus(t, err, codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED.String())
			if d := retryInfo(err); d < time.Second || d > DefaultGrantSourceRefill+time.Second {
				t.Fatalf("retry delay %v", d)
			}
		}
	}
	t.Logf("1,000 wrong keys in %v: %v", time.Since(start), codesSeen)
	if codesSeen[codes.Unauthenticated] != DefaultGrantSourceBurst || codesSeen[codes.ResourceExhausted] != 1000-DefaultGrantSourceBurst {
		t.Fatalf("codes %v; want %d UNAUTHENTICATED, the rest RESOURCE_EXHAUSTED", codesSeen, DefaultGrantSourceBurst)
	}
	if got := reg.value("consent_grants_failed_total"); got != DefaultGrantSourceBurst {
		t.Errorf("failed grants counted %v", got)
	}
	if got := reg.value("consent_grants_throttled_total"); got != 1000-DefaultGrantSourceBurst {
		t.Errorf("throttled grants counted %v", got)
	}

	// The right key from the throttled address: refused unchecked.
	_, err := f.svc.Grant(attacker, grantReq(erasableApp, appKey(erasableApp)))
	wantStatus(t, err, codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED.String())
	// A device elsewhere, of the same app and of another: unaffected.
	for _, app := range []string{erasableApp, anonymousApp} {
		if _, err := f.svc.Grant(fromAddr("203.0.113.9:5000"), grantReq(app, appKey(app))); err != nil {
			t.Fatalf("grant of %s from another address: %v", app, err)
		}
	}
	// One refill later the address may try once more.
	f.clk.Add(DefaultGrantSourceRefill)
	if _, err := f.svc.Grant(attacker, grantReq(erasableApp, appKey(erasableApp))); err != nil {
		t.Fatalf("after a refill: %v", err)
	}

	var bursts int
	for _, e := range f.logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if e.Message == burstLog {
			bursts++
		}
		for _, secret := range append([]string{"198.51.100.7", appKey(erasableApp)}, wrongKeys...) {
			if strings.Contains(line, secret) {
				t.Fatalf("log line %q holds a key or an address", line)
			}
		}
	}
	if bursts != 1 {
		t.Fatalf("%d burst log lines in one window; want 1", bursts)
	}
	// The next window logs the burst again, once.
	f.clk.Add(DefaultGrantLogWindow)
	for range 100 {
		_, _ = f.svc.Grant(attacker, grantReq(erasableApp, "another-wrong-key"))
	}
	if n := f.logs.FilterMessage(burstLog).Len(); n != 2 {
		t.Fatalf("%d burst log lines after two windows; want 2", n)
	}
}

// TestGrantLimitAppUnderAttack: guessing spread over many addresses
// empties the app's bucket; then every address that failed is throttled
// after its first failure, while a device that never failed still gets
// its token.
func TestGrantLimitAppUnderAttack(t *testing.T) {
	f := newFixture(t, nil, func(c *ServiceConfig) { c.GrantLimits = GrantLimitConfig{AppBurst: 5} })
	addr := func(i int) context.Context { return fromAddr("198.51.100." + strconv.Itoa(i) + ":1") }
	for i := range 5 { // drain the app's bucket, one failure per address
		_, err := f.svc.Grant(addr(i), grantReq(erasableApp, "wrong"))
		wantStatus(t, err, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String())
	}
	for i := 5; i < 50; i++ {
		_, err := f.svc.Grant(addr(i), grantReq(erasableApp, "wrong"))
		wantStatus(t, err, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String()) // a fresh address gets one guess
		_, err = f.svc.Grant(addr(i), grantReq(erasableApp, "wrong"))
		wantStatus(t, err, codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED.String())
	}
	if _, err := f.svc.Grant(fromAddr("203.0.113.9:5000"), grantReq(erasableApp, appKey(erasableApp))); err != nil {
		t.Fatalf("a device that never failed: %v", err)
	}
	// Another app is not under attack: an address that failed once may
	// still grant for it.
	if _, err := f.svc.Grant(addr(7), grantReq(anonymousApp, appKey(anonymousApp))); err != nil {
		t.Fatalf("another app from an address that failed: %v", err)
	}
}

// TestGrantLimitIPv6Prefix: addresses of one /64 share a bucket, those of
// another /64 do not.
func TestGrantLimitIPv6Prefix(t *testing.T) {
	f := newFixture(t, nil, func(c *ServiceConfig) { c.GrantLimits = GrantLimitConfig{SourceBurst: 3} })
	for i := range 3 {
		_, _ = f.svc.Grant(fromAddr(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)), grantReq(erasableApp, "wrong"))
	}
	_, err := f.svc.Grant(fromAddr("[2001:db8:1:2:ffff::9]:1"), grantReq(erasableApp, appKey(erasableApp)))
	wantStatus(t, err, codes.ResourceExhausted, consentryv1.ErrorReason_RATE_LIMITED.String())
	if _, err := f.svc.Grant(fromAddr("[2001:db8:1:3::1]:1"), grantReq(erasableApp, appKey(erasableApp))); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

// TestGrantLimitBoundedMemory: the limiter tracks at most MaxSources
// addresses and MaxApps app ids, whatever a client invents.
func TestGrantLimitBoundedMemory(t *testing.T) {
	l, err := newGrantLimiter(GrantLimitConfig{MaxSources: 10, MaxApps: 3}, zapNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		src := sourcePrefix(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		l.fail(src, "com.example.app"+strconv.Itoa(i), t0)
	}
	if l.sources.len() != 10 || l.apps.len() != 3 {
		t.Fatalf("tracking %d sources and %d apps; want 10 and 3", l.sources.len(), l.apps.len())
	}
	// The most recent are kept.
	if l.sources.get(sourcePrefix(netip.AddrFrom4([4]byte{10, 0, 3, 231}))) == nil {
		t.Fatal("the most recent source was forgotten")
	}
}

// TestGrantLimitHTTP: the same burst over HTTPS+JSON, by the connection's
// address (a forwarded-for header changes nothing): 429 with Retry-After
// and reason RATE_LIMITED; another address is unaffected.
func TestGrantLimitHTTP(t *testing.T) {
	f := newFixture(t, nil, nil)
	h := newTestHandler(t, f)
	post := func(remote, key string) *httptest.ResponseRecorder {
		body := fmt.Sprintf(`{"appId": %q, "appKey": %q, "scopes": ["analytics"], "consentTextVersion": "v1"}`, erasableApp, key)
		r := httptest.NewRequest(http.MethodPost, PathGrant, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", len(key)%250))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	statuses := map[int]int{}
	var last *httptest.ResponseRecorder
	for i := range 1000 {
		last = post("198.51.100.7:40000", fmt.Sprintf("guess-%d", i))
		statuses[last.Code]++
	}
	if statuses[http.StatusUnauthorized] != DefaultGrantSourceBurst || statuses[http.StatusTooManyRequests] != 1000-DefaultGrantSourceBurst {
		t.Fatalf("statuses %v", statuses)
	}
	if ra, err := strconv.Atoi(last.Header().Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", last.Header().Get("Retry-After"))
	}
	if !strings.Contains(last.Body.String(), `"reason":"RATE_LIMITED"`) {
		t.Fatalf("body %s", last.Body.String())
	}
	if w := post("203.0.113.9:5000", appKey(erasableApp)); w.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", w.Code, w.Body.String())
	}
}

// TestGrantLimitDisabled: a negative SourceBurst turns throttling off;
// failures are still counted.
func TestGrantLimitDisabled(t *testing.T) {
	reg := &fakeRegistry{}
	f := newFixture(t, nil, func(c *ServiceConfig) {
		c.GrantLimits = GrantLimitConfig{SourceBurst: -1}
		c.Metrics = reg
	})
	for range 100 {
		_, err := f.svc.Grant(fromAddr("198.51.100.7:1"), grantReq(erasableApp, "wrong"))
		wantStatus(t, err, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String())
	}
	if got := reg.value("consent_grants_failed_total"); got != 100 {
		t.Fatalf("failed grants counted %v", got)
	}
}
