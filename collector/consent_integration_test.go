package collector

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/eventgen"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// registerApp stores an app with key in h's database and reloads h's
// registry.
func registerApp(t *testing.T, h *harness, id, key string, policy consent.Policy) {
	t.Helper()
	now := time.Now().UTC()
	a := consent.App{ID: id, KeyHash: consent.HashAppKey(key), Policy: policy, CreatedAt: now, UpdatedAt: now,
		Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation}}
	if err := h.app.Client().PutApp(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	h.app.consent.apps.Put(a)
}

// grantHTTP asks h's HTTP endpoint for a token.
func grantHTTP(t *testing.T, h *harness, app, key string) string {
	t.Helper()
	body := fmt.Sprintf(`{"appId": %q, "appKey": %q, "scopes": ["analytics", "crash_reports"], "consentTextVersion": "2026-11"}`, app, key)
	resp, err := http.Post("http://"+h.app.HTTPAddr()+consent.PathGrant, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("grant: %d %s", resp.StatusCode, b)
	}
	var out struct {
		ConsentToken string `json:"consentToken"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.ConsentToken == "" {
		t.Fatalf("grant response %s: %v", b, err)
	}
	return out.ConsentToken
}

// TestRevocationAcrossReplicas: two collectors on one ClickHouse; a consent
// revoked through one is refused by the other within the propagation bound.
func TestRevocationAcrossReplicas(t *testing.T) {
	srv := server(t)
	a := newHarness(t, srv, nil)
	// Replicas share the database, the signing key and the consent secret.
	b := newHarness(t, srv, a.replica())
	const key = "ck_test-key-0123456789abcdefghijklmnopqrstuv"
	registerApp(t, a, testApp, key, consent.PolicyAnonymous)
	if err := b.app.consent.apps.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := grantHTTP(t, a, testApp, key)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: 5})
	send := func(h *harness) *consentryv1.IngestResponse {
		t.Helper()
		return h.ingestAnalyticsAndCrashes(t, gen.Batch(10, time.Now()))
	}
	if r := send(b); r.GetAccepted() != 10 {
		t.Fatalf("before revoke: %v", r)
	}
	rev := a.revoke(t, tok, false)
	revoked := time.Now()
	bound := time.Duration(rev.GetPropagationBoundMs()) * time.Millisecond
	if bound != 5*time.Second {
		t.Fatalf("propagation bound %v", bound)
	}
	if r := send(a); r.GetConsentState() != consentryv1.ConsentState_CONSENT_STATE_REVOKED || r.GetAccepted() != 0 {
		t.Fatalf("revoking replica still accepts: %v", r)
	}
	var refusedAfter time.Duration
	for {
		r := send(b)
		if r.GetConsentState() == consentryv1.ConsentState_CONSENT_STATE_REVOKED {
			refusedAfter = time.Since(revoked)
			if r.GetAccepted() != 0 || r.GetDrops()[0].GetReason() != consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED {
				t.Fatalf("revoked batch: %v", r)
			}
			break
		}
		if time.Since(revoked) > bound {
			t.Fatalf("other replica still accepts %v after revocation (bound %v)", time.Since(revoked), bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("other replica refused the revoked consent %v after Revoke returned (bound %v)", refusedAfter, bound)
	// Revoking again is fine and reports the first time.
	again, err := consentryv1.NewConsentServiceClient(b.conn).Revoke(context.Background(), &consentryv1.RevokeRequest{ConsentToken: tok})
	if err != nil || again.GetRevokedAtUnixMs() != rev.GetRevokedAtUnixMs() {
		t.Fatalf("second revoke: %v %v (first %d)", again, err, rev.GetRevokedAtUnixMs())
	}
	st, err := consentryv1.NewConsentServiceClient(b.conn).Status(context.Background(), &consentryv1.StatusRequest{ConsentToken: tok})
	if err != nil || st.GetState() != consentryv1.ConsentState_CONSENT_STATE_REVOKED {
		t.Fatalf("status: %v %v", st, err)
	}
}

// TestErasure: revoking with erase deletes exactly the consent's rows, in
// every table, and returns a receipt that verifies; anonymous apps' rows
// carry no link to any consent.
func TestErasure(t *testing.T) {
	h := newHarness(t, server(t), nil)
	ctx := context.Background()
	const erasable, anonymous = "com.example.erasable", "com.example.anon"
	registerApp(t, h, erasable, "ck_erasable-key-0123456789abcdefghijklmnopq", consent.PolicyErasable)
	registerApp(t, h, anonymous, "ck_anon-key-0123456789abcdefghijklmnopqrstu", consent.PolicyAnonymous)
	tokX := grantHTTP(t, h, erasable, "ck_erasable-key-0123456789abcdefghijklmnopq")
	tokY := grantHTTP(t, h, erasable, "ck_erasable-key-0123456789abcdefghijklmnopq")
	tokAnon := grantHTTP(t, h, anonymous, "ck_anon-key-0123456789abcdefghijklmnopqrstu")
	stored := map[string]uint32{}
	for i, tc := range []struct{ app, tok string }{{erasable, tokX}, {erasable, tokY}, {anonymous, tokAnon}} {
		gen := eventgen.New(eventgen.Config{AppID: tc.app, Token: tc.tok, Seed: uint64(i)})
		for range 3 {
			resp, err := h.client.Ingest(ctx, gen.Batch(100, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			stored[tc.tok] += resp.GetAccepted()
		}
	}
	if n := h.count(t, "gestures", fmt.Sprintf("app_id = '%s' AND consent_key != ''", anonymous)); n != 0 {
		t.Fatalf("%d anonymous rows carry a consent key", n)
	}
	var keys uint64
	if err := h.ch.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(consent_key) FROM %s.gestures WHERE app_id = '%s'", h.db, erasable)).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 2 {
		t.Fatalf("erasable rows carry %d distinct consent keys, want 2", keys)
	}
	totalErasable := func() uint64 {
		var n uint64
		for _, tbl := range clickhouse.EventTables() {
			n += h.count(t, tbl, fmt.Sprintf("app_id = '%s'", erasable))
		}
		return n
	}
	before := totalErasable()
	rc := h.revoke(t, tokX, true).GetReceipt()
	deleted := erasedRows(rc)
	if rc.GetOutcome() != consent.OutcomeErased || deleted != uint64(stored[tokX]) {
		t.Fatalf("receipt %v: deleted %d, stored %d under the consent", rc, deleted, stored[tokX])
	}
	if after := totalErasable(); after != before-deleted || after != uint64(stored[tokY]) {
		t.Fatalf("after erasure %d rows remain, want %d (the other consent's)", after, stored[tokY])
	}
	if n := h.total(t); n != uint64(stored[tokY]+stored[tokAnon]) {
		t.Fatalf("total rows %d, want %d", n, stored[tokY]+stored[tokAnon])
	}
	if _, err := h.app.Keys().VerifyReceipt(rc.GetSignedReceipt()); err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	if _, err := h.app.Keys().VerifyReceipt(tamper(rc.GetSignedReceipt())); err == nil {
		t.Fatal("tampered receipt verifies")
	}
	// Anonymous: nothing to erase, and it says so.
	if resp := h.revoke(t, tokAnon, true); resp.GetReceipt().GetOutcome() != consent.OutcomeAnonymous {
		t.Fatalf("anonymous erase: %v", resp)
	}
	if n := h.count(t, "gestures", fmt.Sprintf("app_id = '%s'", anonymous)); n == 0 {
		t.Fatal("anonymous rows were deleted")
	}
}

// TestConsentHTTPErrors: bad JSON and bad credentials get clear HTTP errors.
func TestConsentHTTPErrors(t *testing.T) {
	h := newHarness(t, server(t), nil)
	registerApp(t, h, testApp, "ck_right-key-0123456789abcdefghijklmnopqrst", consent.PolicyAnonymous)
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{not json`, http.StatusBadRequest},
		{`{"appId": "com.example.notes", "appKey": "wrong", "scopes": ["analytics"], "consentTextVersion": "1"}`, http.StatusUnauthorized},
		{`{"appId": "com.example.notes", "appKey": "ck_right-key-0123456789abcdefghijklmnopqrst", "scopes": ["telepathy"], "consentTextVersion": "1"}`, http.StatusBadRequest},
	} {
		resp, err := http.Post("http://"+h.app.HTTPAddr()+consent.PathGrant, "application/json", bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !bytes.Contains(b, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d", tc.body, resp.StatusCode, b, tc.want)
		}
	}
}

// TestKeyRotation: a replica started with a new signing key and the old
// public key accepts tokens of both keys.
func TestKeyRotation(t *testing.T) {
	srv := server(t)
	old := newHarness(t, srv, nil)
	oldTok := old.token(t, testApp, time.Hour)
	priv, err := consent.ReadPrivateKeyFile(old.app.cfg.ConsentSigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "old.pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := newHarness(t, srv, func(c *Config) {
		c.ClickHouse.Database, c.ConsentSecretFile = old.db, old.app.cfg.ConsentSecretFile
		c.ConsentVerifyKeyFiles = []string{pubFile}
	})
	newTok := rotated.token(t, testApp, time.Hour)
	if rotated.app.Keys().SigningKeyID() == old.app.Keys().SigningKeyID() {
		t.Fatal("rotated replica signs with the old key")
	}
	for name, tok := range map[string]string{"old key": oldTok, "new key": newTok} {
		gen := eventgen.New(eventgen.Config{AppID: testApp, Token: tok, Seed: 9})
		resp, err := rotated.client.Ingest(context.Background(), gen.Batch(20, time.Now()))
		if err != nil || resp.GetAccepted() != 20 {
			t.Errorf("%s: %v %v", name, resp, err)
		}
	}
	// The old replica does not know the new key: its tokens are refused there.
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: newTok, Seed: 10})
	resp, err := old.client.Ingest(context.Background(), gen.Batch(5, time.Now()))
	if err != nil || resp.GetConsentState() != consentryv1.ConsentState_CONSENT_STATE_INVALID {
		t.Errorf("new token on the old replica: %v %v", resp, err)
	}
}

// ingestAnalyticsAndCrashes sends req through h for a token that covers
// analytics and crash reports only: its custom and diagnostic events are
// turned into taps first.
func (h *harness) ingestAnalyticsAndCrashes(t *testing.T, req *consentryv1.IngestRequest) *consentryv1.IngestResponse {
	t.Helper()
	for _, e := range req.GetEvents() {
		if e.GetCustom() != nil || e.GetDiagnostic() != nil {
			e.Payload = &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP}}
		}
	}
	resp, err := h.client.Ingest(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// revoke revokes the consent of tok through h, erasing its rows if
// erase, and fails t if the call fails.
func (h *harness) revoke(t *testing.T, tok string, erase bool) *consentryv1.RevokeResponse {
	t.Helper()
	resp, err := consentryv1.NewConsentServiceClient(h.conn).Revoke(context.Background(), &consentryv1.RevokeRequest{ConsentToken: tok, Erase: erase})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	return resp
}

// erasedRows is the number of rows rc reports deleted, over all tables.
func erasedRows(rc *consentryv1.ErasureReceipt) uint64 {
	var n uint64
	for _, d := range rc.GetDeletedRows() {
		n += d
	}
	return n
}
