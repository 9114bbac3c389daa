package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/consent"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

func TestCheckConsentKey(t *testing.T) {
	for _, k := range []string{"0a1b2c3d", strings.Repeat("f", 64), "aB-_.+/=:9"} {
		if err := checkConsentKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", "a'b", `a\b`, "a b", "ä", strings.Repeat("a", maxConsentKeyLen+1)} {
		if err := checkConsentKey(k); err == nil {
			t.Errorf("%q: no error", k)
		}
	}
}

func TestCheckRevocation(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	good := consent.Revocation{ConsentHash: consent.HashConsentID("c1"), AppID: "com.example.notes", RevokedAt: at, ExpiresAt: at.AddDate(0, 1, 0)}
	checkChanges(t, checkRevocation, good, map[string]func(*consent.Revocation){
		"consent id":   func(r *consent.Revocation) { r.ConsentHash = "c1" },
		"upper case":   func(r *consent.Revocation) { r.ConsentHash = strings.ToUpper(r.ConsentHash) },
		"short hash":   func(r *consent.Revocation) { r.ConsentHash = r.ConsentHash[:62] },
		"no app":       func(r *consent.Revocation) { r.AppID = "" },
		"zero revoked": func(r *consent.Revocation) { r.RevokedAt = time.Time{} },
		"beyond 2106":  func(r *consent.Revocation) { r.ExpiresAt = time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC) },
		"before 1970":  func(r *consent.Revocation) { r.RevokedAt = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) },
	})
}

func TestCheckApp(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	good := consent.App{ID: "com.example.notes", KeyHash: consent.HashAppKey("k"), Scopes: []consentryv1.Scope{consentryv1.ScopeAnalytics},
		Policy: consent.PolicyErasable, CreatedAt: at, UpdatedAt: at}
	checkChanges(t, checkApp, good, map[string]func(*consent.App){
		"no id":      func(a *consent.App) { a.ID = "" },
		"no key":     func(a *consent.App) { a.KeyHash = "" },
		"policy":     func(a *consent.App) { a.Policy = "forgetful" },
		"no created": func(a *consent.App) { a.CreatedAt = time.Time{} },
		"no updated": func(a *consent.App) { a.UpdatedAt = time.Time{} },
	})
}

// checkChanges fails t unless check accepts good and refuses good after
// each of changes, which are named for what they break.
func checkChanges[T any](t *testing.T, check func(T) error, good T, changes map[string]func(*T)) {
	t.Helper()
	if err := check(good); err != nil {
		t.Fatal(err)
	}
	for name, change := range changes {
		v := good
		change(&v)
		if err := check(v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRevocationVersion(t *testing.T) {
	first := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	if v1, v2 := revocationVersion(first), revocationVersion(first.Add(time.Second)); v1 <= v2 {
		t.Errorf("versions %d then %d: the first revocation must have the higher version", v1, v2)
	}
	if v := revocationVersion(time.Unix(1<<32-1, 0)); v != 0 {
		t.Errorf("version of the last DateTime = %d", v)
	}
}

func TestPartitionLastDay(t *testing.T) {
	s := newSchema(SchemaOptions{})
	for _, tc := range []struct {
		t    *tableDef
		id   string
		want string
	}{
		{s.sessions.def, "20251128", "2025-11-28"},
		{s.erasures.def, "202402", "2024-02-29"},
		{s.revocations.def, "202512", "2025-12-31"},
	} {
		got, err := partitionLastDay(tc.t, tc.id)
		if err != nil || got.Format(time.DateOnly) != tc.want {
			t.Errorf("%s %s: %v, %v; want %s", tc.t.name, tc.id, got, err, tc.want)
		}
	}
	for _, id := range []string{"202511", "tuple()", ""} {
		if _, err := partitionLastDay(s.sessions.def, id); err == nil {
			t.Errorf("sessions %q: no error", id)
		}
	}
}

func TestStoreQueryText(t *testing.T) {
	if got := dateTimeLiteral(time.Time{}); got != "toDateTime(0)" {
		t.Errorf("zero time: %s", got)
	}
	if got := dateTimeLiteral(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)); got != "toDateTime(4294967295)" {
		t.Errorf("2300: %s", got)
	}
	q := consentRowsQuery("db", []string{"sessions", "crashes"}, "", "it's", "k1")
	want := "SELECT 'sessions' AS table_name, count() AS consent_rows FROM db.sessions WHERE app_id = 'it\\'s' AND consent_key = 'k1'\n" +
		"UNION ALL\n" +
		"SELECT 'crashes' AS table_name, count() AS consent_rows FROM db.crashes WHERE app_id = 'it\\'s' AND consent_key = 'k1'"
	if q != want {
		t.Errorf("consentRowsQuery:\n got %s\nwant %s", q, want)
	}
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	q = revocationsQuery("db", since, since.Add(time.Hour))
	for _, w := range []string{"WHERE expires_at > toDateTime(1793494800)", "HAVING first_revoked_at >= toDateTime(1793491200)", "GROUP BY consent_hash"} {
		if !strings.Contains(q, w) {
			t.Errorf("revocationsQuery lacks %q:\n%s", w, q)
		}
	}
}
