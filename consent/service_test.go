package consent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

const (
	erasableApp  = "com.example.notes"
	anonymousApp = "com.example.anon"
)

// appKey is the key testApp registers for id.
func appKey(id string) string { return "key-" + id }

type fixture struct {
	svc   *Service
	store *fakeStore
	ring  *KeyRing
	clk   *clock
	revs  *Revocations
	apps  *Registry
	logs  *observer.ObservedLogs
}

// newFixture returns a Service over a fake store holding an erasable and
// an anonymous app, with revocations and apps loaded. revMod and svcMod,
// if not nil, adjust the configurations.
func newFixture(t testing.TB, revMod func(*RevocationsConfig), svcMod func(*ServiceConfig)) *fixture {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	f := &fixture{
		store: newFakeStore(testApp(erasableApp, PolicyErasable, t0), testApp(anonymousApp, PolicyAnonymous, t0)),
		ring:  mustRing(t, mustKey(t)),
		clk:   newClock(t0),
		logs:  logs,
	}
	f.store.now = f.clk.Now
	f.revs = newTestRevocations(t, f.store, f.clk, func(c *RevocationsConfig) {
		c.Logger = log
		if revMod != nil {
			revMod(c)
		}
	})
	var err error
	if f.apps, err = NewRegistry(RegistryConfig{Store: f.store, Logger: log}); err != nil {
		t.Fatal(err)
	}
	if err := f.revs.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.apps.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := ServiceConfig{
		Keys: f.ring, Store: f.store, Apps: f.apps, Revocations: f.revs, Secret: testSecret,
		Now: f.clk.Now, Logger: log,
	}
	if svcMod != nil {
		svcMod(&cfg)
	}
	if f.svc, err = NewService(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// grant returns a token for app with the given scopes.
func (f *fixture) grant(t testing.TB, app string, scopes ...string) string {
	t.Helper()
	resp, err := f.svc.Grant(context.Background(), &consentryv1.GrantRequest{
		AppId: app, AppKey: appKey(app), Scopes: scopes, ConsentTextVersion: "2026-11",
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConsentToken()
}

// wantStatus fails unless err is a gRPC status with code and, if reason
// is not empty, an ErrorInfo with that reason.
func wantStatus(t testing.TB, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("err = %v, want code %v", err, code)
	}
	var got string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			got = info.GetReason()
			if info.GetDomain() != ErrorDomain {
				t.Fatalf("ErrorInfo domain = %q", info.GetDomain())
			}
		}
	}
	if got != reason {
		t.Fatalf("reason = %q, want %q (%v)", got, reason, err)
	}
	return st
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

func TestGrant(t *testing.T) {
	f := newFixture(t, nil, nil)
	resp, err := f.svc.Grant(t.Context(), &consentryv1.GrantRequest{
		AppId: erasableApp, AppKey: appKey(erasableApp), ConsentTextVersion: "2026-11",
		Scopes: []string{"crash_reports", "analytics", "crash_reports"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"analytics", "crash_reports"}; !slices.Equal(resp.GetScopes(), want) {
		t.Fatalf("scopes = %v, want %v", resp.GetScopes(), want)
	}
	wantExp := t0.Add(DefaultTTL)
	if resp.GetExpiresAtUnixMs() != wantExp.UnixMilli() {
		t.Fatalf("expires at %v, want %v", time.UnixMilli(resp.GetExpiresAtUnixMs()), wantExp)
	}
	c, err := f.ring.Verify(resp.GetConsentToken(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.AppID != erasableApp || c.TextVersion != "2026-11" || !c.ExpiresAt.Equal(wantExp) ||
		!slices.Equal(c.Scopes, []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports}) {
		t.Fatalf("claims = %+v", c)
	}

	for _, tt := range []struct {
		ttl  int64
		want time.Duration
	}{{3600, time.Hour}, {1 << 62, DefaultMaxTTL}} {
		resp, err := f.svc.Grant(t.Context(), &consentryv1.GrantRequest{
			AppId: erasableApp, AppKey: appKey(erasableApp), Scopes: []string{"analytics"},
			ConsentTextVersion: "v1", TtlSeconds: tt.ttl,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.UnixMilli(resp.GetExpiresAtUnixMs()).Sub(t0); got != tt.want {
			t.Errorf("ttl %d: valid for %v, want %v", tt.ttl, got, tt.want)
		}
	}
}

func TestGrantErrors(t *testing.T) {
	f := newFixture(t, nil, nil)
	ok := func() *consentryv1.GrantRequest {
		return &consentryv1.GrantRequest{AppId: erasableApp, AppKey: appKey(erasableApp),
			Scopes: []string{"analytics"}, ConsentTextVersion: "2026-11"}
	}
	tests := []struct {
		name   string
		mod    func(*consentryv1.GrantRequest)
		code   codes.Code
		reason string
	}{
		{"malformed app id", func(r *consentryv1.GrantRequest) { r.AppId = "-bad id" }, codes.InvalidArgument, consentryv1.ErrorReason_APP_ID_INVALID.String()},
		{"empty app id", func(r *consentryv1.GrantRequest) { r.AppId = "" }, codes.InvalidArgument, consentryv1.ErrorReason_APP_ID_INVALID.String()},
		{"unknown app", func(r *consentryv1.GrantRequest) { r.AppId = "com.example.unknown" }, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String()},
		{"wrong key", func(r *consentryv1.GrantRequest) { r.AppKey = "wrong" }, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String()},
		{"empty key", func(r *consentryv1.GrantRequest) { r.AppKey = "" }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"unknown app without a key", func(r *consentryv1.GrantRequest) { r.AppId, r.AppKey = "com.example.unknown", "" }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"another app's key", func(r *consentryv1.GrantRequest) { r.AppKey = appKey(anonymousApp) }, codes.Unauthenticated, consentryv1.ErrorReason_APP_UNAUTHENTICATED.String()},
		{"no scopes", func(r *consentryv1.GrantRequest) { r.Scopes = nil }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"unknown scope", func(r *consentryv1.GrantRequest) { r.Scopes = []string{"analytics", "contacts"} }, codes.InvalidArgument, consentryv1.ErrorReason_SCOPE_UNKNOWN.String()},
		{"scope in wrong case", func(r *consentryv1.GrantRequest) { r.Scopes = []string{"Analytics"} }, codes.InvalidArgument, consentryv1.ErrorReason_SCOPE_UNKNOWN.String()},
		{"scope not allowed", func(r *consentryv1.GrantRequest) { r.Scopes = []string{"location"} }, codes.PermissionDenied, consentryv1.ErrorReason_SCOPE_NOT_ALLOWED.String()},
		{"no text version", func(r *consentryv1.GrantRequest) { r.ConsentTextVersion = "" }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"text version too long", func(r *consentryv1.GrantRequest) { r.ConsentTextVersion = strings.Repeat("v", 65) }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"text version with control", func(r *consentryv1.GrantRequest) { r.ConsentTextVersion = "v1\n" }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
		{"negative ttl", func(r *consentryv1.GrantRequest) { r.TtlSeconds = -1 }, codes.InvalidArgument, consentryv1.ErrorReason_REQUEST_INVALID.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ok()
			tt.mod(req)
			resp, err := f.svc.Grant(t.Context(), req)
			if resp != nil {
				t.Fatal("a response with an error")
			}
			wantStatus(t, err, tt.code, tt.reason)
		})
	}

	// An unknown app and a wrong key are indistinguishable.
	_, unknown := f.svc.Grant(t.Context(), &consentryv1.GrantRequest{AppId: "com.example.unknown", AppKey: "k", Scopes: []string{"analytics"}, ConsentTextVersion: "v"})
	_, wrong := f.svc.Grant(t.Context(), &consentryv1.GrantRequest{AppId: erasableApp, AppKey: "k", Scopes: []string{"analytics"}, ConsentTextVersion: "v"})
	if unknown.Error() != wrong.Error() {
		t.Fatalf("unknown app %q differs from wrong key %q", unknown, wrong)
	}

	// Before the apps are loaded, nothing is granted and the client is
	// told to retry.
	apps := newTestRegistry(t, f.store)
	svc, err := NewService(ServiceConfig{Keys: f.ring, Store: f.store, Apps: apps, Revocations: f.revs, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Grant(t.Context(), ok())
	if st := wantStatus(t, err, codes.Unavailable, consentryv1.ErrorReason_STORE_UNAVAILABLE.String()); !hasRetryInfo(st) {
		t.Fatal("no RetryInfo")
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t, nil, nil)
	tok := f.grant(t, erasableApp, "analytics")
	c, _ := f.ring.Verify(tok, t0)

	resp, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRevokedAtUnixMs() != t0.UnixMilli() || resp.GetPropagationBoundMs() != DefaultRevocationBound.Milliseconds() || resp.GetReceipt() != nil {
		t.Fatalf("response = %v", resp)
	}
	stored := f.store.storedRevocations()
	if len(stored) != 1 || stored[0].ConsentHash != HashConsentID(c.ConsentID) || stored[0].AppID != erasableApp ||
		!stored[0].ExpiresAt.Equal(c.ExpiresAt) || !stored[0].RevokedAt.Equal(t0) {
		t.Fatalf("stored %+v", stored)
	}
	if _, ok := f.revs.Revoked(c.ConsentID); !ok {
		t.Fatal("not revoked locally at once")
	}

	// Idempotent: the first time, no second record.
	f.clk.Add(time.Minute)
	again, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetRevokedAtUnixMs() != t0.UnixMilli() || f.store.puts != 1 {
		t.Fatalf("repeat: revoked at %v, %d records", time.UnixMilli(again.GetRevokedAtUnixMs()), f.store.puts)
	}
}

// TestRevokeTimeIsStable: the time reported is whole seconds, as the
// store keeps it, so it does not change once the store's copy is loaded.
func TestRevokeTimeIsStable(t *testing.T) {
	f := newFixture(t, nil, nil)
	tok := f.grant(t, anonymousApp, "analytics")
	f.clk.Set(t0.Add(1234 * time.Millisecond))
	var times []int64
	for range 2 {
		resp, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, resp.GetRevokedAtUnixMs())
		f.clk.Add(DefaultRevocationReload) // the next refresh reloads all.
		if err := f.revs.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if want := t0.Add(time.Second).UnixMilli(); times[0] != want || times[1] != want {
		t.Fatalf("revoked at %v; want %v twice", times, want)
	}
}

// TestRevokeByOtherReplica: a consent another replica revoked a moment
// ago is found in the store, so the first time is reported.
func TestRevokeByOtherReplica(t *testing.T) {
	f := newFixture(t, nil, nil)
	tok := f.grant(t, anonymousApp, "analytics")
	c, _ := f.ring.Verify(tok, t0)
	f.store.addRevocation(revocation(c.ConsentID, t0.Add(-time.Second)))
	f.clk.Add(time.Second)
	resp, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRevokedAtUnixMs() != t0.Add(-time.Second).UnixMilli() || f.store.puts != 0 {
		t.Fatalf("revoked at %v with %d new records", time.UnixMilli(resp.GetRevokedAtUnixMs()), f.store.puts)
	}
}

func TestRevokeErrors(t *testing.T) {
	f := newFixture(t, nil, nil)
	tok := f.grant(t, erasableApp, "analytics")
	foreign := mustSign(t, mustRing(t, mustKey(t)), claims())
	parts := strings.Split(tok, ".")
	tests := []struct {
		name   string
		token  string
		at     time.Time
		reason string
	}{
		{"missing", "", t0, consentryv1.ErrorReason_TOKEN_MISSING.String()},
		{"garbage", "not.a.token", t0, consentryv1.ErrorReason_TOKEN_INVALID.String()},
		{"forged", parts[0] + "." + parts[1] + "." + flip(parts[2]), t0, consentryv1.ErrorReason_TOKEN_INVALID.String()},
		{"unknown key", foreign, t0, consentryv1.ErrorReason_TOKEN_INVALID.String()},
		{"expired", tok, t0.Add(DefaultTTL + time.Second), consentryv1.ErrorReason_TOKEN_EXPIRED.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clk.Set(tt.at)
			_, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tt.token, Erase: true})
			st := wantStatus(t, err, codes.InvalidArgument, tt.reason)
			if tt.token != "" && strings.Contains(st.Message(), tt.token) {
				t.Fatal("the message quotes the token")
			}
		})
	}
	if f.store.puts != 0 || len(f.store.eraseCalls()) != 0 {
		t.Fatal("a refused revocation reached the store")
	}

	// The store is down: UNAVAILABLE with a retry, and nothing revoked
	// locally (it would not survive this replica).
	f.clk.Set(t0)
	f.store.setFail(true)
	_, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if st := wantStatus(t, err, codes.Unavailable, consentryv1.ErrorReason_STORE_UNAVAILABLE.String()); !hasRetryInfo(st) {
		t.Fatal("no RetryInfo")
	}
	c, _ := f.ring.Verify(tok, t0)
	if _, ok := f.revs.Revoked(c.ConsentID); ok {
		t.Fatal("revoked locally although the store did not record it")
	}
}

func TestRevokeErase(t *testing.T) {
	tests := []struct {
		app     string
		outcome string
		erases  int
	}{
		{erasableApp, OutcomeErased, 1},
		{anonymousApp, OutcomeAnonymous, 0},
	}
	for _, tt := range tests {
		t.Run(tt.outcome, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			tok := f.grant(t, tt.app, "analytics")
			c, _ := f.ring.Verify(tok, t0)
			resp, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
			if err != nil {
				t.Fatal(err)
			}
			key := ConsentKey(testSecret, c.ConsentID)
			calls := f.store.eraseCalls()
			if len(calls) != tt.erases || (tt.erases > 0 && calls[0] != (eraseCall{tt.app, key})) {
				t.Fatalf("Erase calls %+v", calls)
			}
			rc := resp.GetReceipt()
			wantRows := map[string]uint64{}
			if tt.outcome == OutcomeErased {
				wantRows = f.store.rows
			}
			if rc.GetOutcome() != tt.outcome || !maps.Equal(rc.GetDeletedRows(), wantRows) || rc.GetErasedAtUnixMs() != t0.UnixMilli() {
				t.Fatalf("receipt = %v", rc)
			}
			got, err := f.ring.VerifyReceipt(rc.GetSignedReceipt())
			if err != nil {
				t.Fatal(err)
			}
			want := Receipt{ConsentKey: key, AppID: tt.app, Outcome: tt.outcome, DeletedRows: wantRows,
				ErasedAt: t0, KeyID: f.ring.SigningKeyID()}
			if got.ConsentKey != want.ConsentKey || got.AppID != want.AppID || got.Outcome != want.Outcome ||
				!maps.Equal(got.DeletedRows, want.DeletedRows) || !got.ErasedAt.Equal(want.ErasedAt) || got.KeyID != want.KeyID {
				t.Fatalf("signed receipt states %+v, want %+v", got, want)
			}
			if strings.Contains(rc.GetSignedReceipt(), c.ConsentID) {
				t.Fatal("the receipt holds the consent id")
			}
		})
	}
}

func TestReceiptVerification(t *testing.T) {
	ring := mustRing(t, mustKey(t))
	signed, err := ring.SignReceipt(Receipt{ConsentKey: "k", AppID: erasableApp, Outcome: OutcomeErased,
		DeletedRows: map[string]uint64{"events": 2}, ErasedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(signed, ".")
	tampered := parts[0] + "." + strings.Replace(parts[1], parts[1][10:12], "AA", 1) + "." + parts[2]
	consentToken := mustSign(t, ring, claims())
	tests := []struct {
		name  string
		token string
		ring  *KeyRing
		ok    bool
	}{
		{"valid", signed, ring, true},
		{"tampered claims", tampered, ring, false},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), ring, false},
		{"another ring", signed, mustRing(t, mustKey(t)), false},
		{"a consent token", consentToken, ring, false},
		{"empty", "", ring, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ring.VerifyReceipt(tt.token)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrReceiptInvalid)) {
				t.Fatalf("VerifyReceipt: %v", err)
			}
		})
	}
	if _, err := ring.Verify(signed, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a receipt verified as a consent token: %v", err)
	}
	for _, bad := range []Receipt{
		{AppID: "a", Outcome: OutcomeErased, ErasedAt: t0},
		{ConsentKey: "k", AppID: "a", Outcome: "deleted", ErasedAt: t0},
		{ConsentKey: "k", AppID: "a", Outcome: OutcomeErased},
	} {
		if _, err := ring.SignReceipt(bad); err == nil {
			t.Errorf("SignReceipt(%+v) accepted", bad)
		}
	}
}

// runService runs f.svc until the test ends.
func runService(t *testing.T, f *fixture) (stop func()) { return runSvc(t, f.svc) }

func TestEraseStoreDown(t *testing.T) {
	f := newFixture(t, nil, nil)
	runService(t, f)
	tok := f.grant(t, erasableApp, "analytics")
	f.store.mu.Lock()
	f.store.failErase = 1
	f.store.mu.Unlock()
	_, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
	wantStatus(t, err, codes.Unavailable, consentryv1.ErrorReason_STORE_UNAVAILABLE.String())
	// The revocation stands, and a retry erases.
	c, _ := f.ring.Verify(tok, t0)
	if _, ok := f.revs.Revoked(c.ConsentID); !ok {
		t.Fatal("the revocation was lost with the erasure")
	}
	resp, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
	if err != nil || resp.GetReceipt().GetOutcome() != OutcomeErased {
		t.Fatalf("retry: %v, %v", resp, err)
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t, nil, nil)
	tok := f.grant(t, erasableApp, "analytics", "crash_reports")
	revokedTok := f.grant(t, erasableApp, "analytics")
	if _, err := f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: revokedTok}); err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(DefaultTTL).UnixMilli()
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  *consentryv1.StatusResponse
	}{
		{"valid", tok, t0, &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_VALID,
			AppId: erasableApp, Scopes: []string{"analytics", "crash_reports"}, ExpiresAtUnixMs: exp}},
		{"revoked", revokedTok, t0, &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_REVOKED,
			AppId: erasableApp, Scopes: []string{"analytics"}, ExpiresAtUnixMs: exp, RevokedAtUnixMs: t0.UnixMilli()}},
		{"expired", tok, t0.Add(DefaultTTL), &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_EXPIRED}},
		{"forged", tok + "A", t0, &consentryv1.StatusResponse{State: consentryv1.ConsentState_CONSENT_STATE_INVALID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clk.Set(tt.at)
			// Keep the revocations fresh at the test's time.
			if err := f.revs.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.Status(t.Context(), &consentryv1.StatusRequest{ConsentToken: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.String() {
				t.Fatalf("Status = %v, want %v", got, tt.want)
			}
		})
	}
	f.clk.Set(t0)
	_, err := f.svc.Status(t.Context(), &consentryv1.StatusRequest{})
	wantStatus(t, err, codes.InvalidArgument, consentryv1.ErrorReason_TOKEN_MISSING.String())

	f.clk.Add(time.Minute) // no refresh since: stale.
	_, err = f.svc.Status(t.Context(), &consentryv1.StatusRequest{ConsentToken: tok})
	wantStatus(t, err, codes.Unavailable, consentryv1.ErrorReason_REVOCATIONS_STALE.String())
}

// TestServiceLogsNoSecrets: nothing the service logs holds a token, a
// consent id, its hash or pseudonym, or an app key.
func TestServiceLogsNoSecrets(t *testing.T) {
	f := newFixture(t, nil, nil)
	stop := runService(t, f)
	tok := f.grant(t, erasableApp, "analytics")
	c, _ := f.ring.Verify(tok, t0)
	_, _ = f.svc.Grant(t.Context(), &consentryv1.GrantRequest{AppId: erasableApp, AppKey: "wrong-key", Scopes: []string{"analytics"}, ConsentTextVersion: "v"})
	f.store.mu.Lock()
	f.store.failErase = 1
	f.store.mu.Unlock()
	_, _ = f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
	_, _ = f.svc.Revoke(t.Context(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: true})
	stop()
	secrets := []string{tok, c.ConsentID, HashConsentID(c.ConsentID), ConsentKey(testSecret, c.ConsentID), appKey(erasableApp), "wrong-key"}
	if f.logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range f.logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Fatalf("log line %q holds a secret", line)
			}
		}
	}
}

func TestNewServiceConfig(t *testing.T) {
	f := newFixture(t, nil, nil)
	verifyOnly := mustRing(t, KeyRingConfig{VerifyKeys: []ed25519PublicKey{f.ring.signing.priv.Public().(ed25519PublicKey)}})
	base := func() ServiceConfig {
		return ServiceConfig{Keys: f.ring, Store: f.store, Apps: f.apps, Revocations: f.revs, Secret: testSecret}
	}
	tests := []struct {
		name string
		mod  func(*ServiceConfig)
	}{
		{"no keys", func(c *ServiceConfig) { c.Keys = nil }},
		{"verify-only keys", func(c *ServiceConfig) { c.Keys = verifyOnly }},
		{"verifier of another ring", func(c *ServiceConfig) { c.Verifier = mustVerifier(t, verifyOnly, 0) }},
		{"no store", func(c *ServiceConfig) { c.Store = nil }},
		{"no apps", func(c *ServiceConfig) { c.Apps = nil }},
		{"no revocations", func(c *ServiceConfig) { c.Revocations = nil }},
		{"short secret", func(c *ServiceConfig) { c.Secret = []byte("short") }},
		{"default ttl above max", func(c *ServiceConfig) { c.DefaultTTL = 2 * DefaultMaxTTL }},
		{"gate over other revocations", func(c *ServiceConfig) {
			c.Gate = newTestGate(t, newTestRevocations(t, f.store, f.clk, nil), f.store, f.clk)
		}},
		{"resweep within the bound", func(c *ServiceConfig) { c.ResweepAfter = DefaultRevocationBound }},
		{"negative", func(c *ServiceConfig) { c.EraseTimeout = -time.Second }},
	}
	for _, tt := range tests {
		cfg := base()
		tt.mod(&cfg)
		if _, err := NewService(cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if _, err := NewService(base()); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
