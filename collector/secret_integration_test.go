package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/eventgen"
)

// TestConsentSecretMustMatch: a replica whose consent secret is not the
// one the replicas storing into the same database use (one damaged byte,
// a file regenerated or never copied) refuses to start, saying how to
// fix it: with it, erasing a consent through another replica would miss
// the rows it stores. An operator can replace the secret on purpose,
// naming it by its fingerprint; a secret is adopted once.
func TestConsentSecretMustMatch(t *testing.T) {
	srv := server(t)
	a := newHarness(t, srv, nil)
	const app, key = "com.example.erasable", "ck_erasable-key-0123456789abcdefghijklmnopq"
	registerApp(t, a, app, key, consent.PolicyErasable)
	dir := t.TempDir()
	secretFile := func(name string, secret []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	original, err := os.ReadFile(a.app.cfg.ConsentSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	damagedSecret := []byte(string(original))
	damagedSecret[7] ^= 0x01 // one damaged byte
	damaged := secretFile("damaged", damagedSecret)
	copied := secretFile("copied", original)
	short := func(secret []byte) string {
		return consent.SecretFingerprint([]byte(strings.TrimRight(string(secret), "\n")))[:fingerprintDigits]
	}
	replica := func(secretFile, adopt string) (*harness, error) {
		return tryHarness(t, srv, func(c *Config) {
			a.replica()(c)
			c.ConsentSecretFile = secretFile
			c.AdoptConsentSecret = adopt
		})
	}

	// One damaged byte.
	h, err := replica(damaged, "")
	if err == nil {
		// What it breaks: rows stored through it escape an erasure
		// asked through the replica with the right secret.
		tok := grantHTTP(t, a, app, key)
		gen := eventgen.New(eventgen.Config{AppID: app, Token: tok, Seed: 1})
		if _, err := h.client.Ingest(context.Background(), gen.Batch(50, time.Now())); err != nil {
			t.Fatal(err)
		}
		stored := h.count(t, "gestures", fmt.Sprintf("app_id = '%s'", app))
		rc := a.revoke(t, tok, true).GetReceipt()
		left := h.count(t, "gestures", fmt.Sprintf("app_id = '%s'", app))
		t.Fatalf("a replica with a damaged consent secret started; erasing the consent through another replica deleted %d rows and left %d of its %d gestures", erasedRows(rc), left, stored)
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{"consent secret " + damaged, short(damagedSecret), short(original), "--consent-secret-adopt " + short(damagedSecret)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// A secret of its own: none was copied to the replica, so it made one.
	if _, err := replica(filepath.Join(dir, "missing"), ""); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("a replica with a secret of its own: %v", err)
	}
	// The same secret in another file, and from the environment.
	if _, err := replica(copied, ""); err != nil {
		t.Fatalf("a replica with the secret copied: %v", err)
	}
	if _, err := tryHarness(t, srv, func(c *Config) {
		c.ClickHouse.Database = a.db
		c.ConsentSigningKeyFile = a.app.cfg.ConsentSigningKeyFile
		c.ConsentSecret = []byte(strings.TrimRight(string(original), "\n"))
	}); err != nil {
		t.Fatalf("a replica with the secret from the environment: %v", err)
	}

	// Adopting a fingerprint that is not this replica's secret's.
	if _, err := replica(damaged, short(original)); err == nil || !strings.Contains(err.Error(), "has the fingerprint "+short(damagedSecret)) {
		t.Errorf("adopting another secret's fingerprint: %v", err)
	}
	// Replacing the secret on purpose: the new one starts, the old one
	// no longer does.
	if _, err := replica(damaged, strings.ToUpper(short(damagedSecret))); err != nil {
		t.Fatalf("adopting the new secret: %v", err)
	}
	if _, err := replica(damaged, ""); err != nil {
		t.Fatalf("the adopted secret after its adoption: %v", err)
	}
	if _, err := replica(copied, ""); err == nil {
		t.Fatal("the replaced secret still starts")
	}
	// Adopting a third, then the second again: a secret is adopted once,
	// so a replica left asking for the second cannot take it back.
	third := secretFile("third", []byte(strings.Repeat("3", 64)))
	if _, err := replica(third, short([]byte(strings.Repeat("3", 64)))); err != nil {
		t.Fatalf("adopting a third secret: %v", err)
	}
	if _, err := replica(damaged, short(damagedSecret)); err == nil {
		t.Fatal("a secret adopted before was adopted again")
	}
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE adopted = 1", a.app.Client().PrivateDatabase(), clickhouse.TableSecretFingerprints)
	if err := a.ch.QueryRow(context.Background(), q).Scan(&n); err != nil || n != 2 {
		t.Fatalf("adoptions recorded: %d, %v; want 2", n, err)
	}
}

// TestSigningKeyMustBeKnown: a replica whose signing key is not one the
// replicas storing into the database sign with, and which verifies none
// of theirs (one damaged byte that still parses, a key generated because
// none was copied), refuses to start: it would refuse every token they
// issued. A rotation, which keeps the old key's public key, starts, and
// so do replicas with either key afterwards.
func TestSigningKeyMustBeKnown(t *testing.T) {
	srv := server(t)
	a := newHarness(t, srv, nil)
	dir := t.TempDir()
	replica := func(keyFile string, verify ...string) (*harness, error) {
		return tryHarness(t, srv, func(c *Config) {
			a.replica()(c)
			c.ConsentSigningKeyFile = keyFile
			c.ConsentVerifyKeyFiles = verify
		})
	}
	pemKey, err := os.ReadFile(a.app.cfg.ConsentSigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	// One damaged byte in the seed: still an Ed25519 key, another one.
	damaged := filepath.Join(dir, "damaged.pem")
	b := []byte(string(pemKey))
	i := bytes.IndexByte(b, '\n') + 30
	b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := consent.ReadPrivateKeyFile(damaged); err != nil || k.Equal(mustKey(t, a.app.cfg.ConsentSigningKeyFile)) {
		t.Fatalf("the damaged key should parse as another key: %v", err)
	}
	_, err = replica(damaged)
	if err == nil {
		t.Fatal("a replica with a damaged signing key started")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{damaged, a.app.Keys().SigningKeyID(), "--consent-verify-key-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if _, err := replica(filepath.Join(dir, "generated.pem")); err == nil {
		t.Error("a replica that generated a key of its own started")
	}

	// A rotation: a new signing key, the old one's public key kept.
	pub, err := x509.MarshalPKIXPublicKey(mustKey(t, a.app.cfg.ConsentSigningKeyFile).Public())
	if err != nil {
		t.Fatal(err)
	}
	oldPub := filepath.Join(dir, "old.pub.pem")
	if err := os.WriteFile(oldPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := filepath.Join(dir, "rotated.pem")
	if _, err := replica(rotated, oldPub); err != nil {
		t.Fatalf("a rotation: %v", err)
	}
	if _, err := replica(rotated); err != nil {
		t.Fatalf("the new key once the old one is retired: %v", err)
	}
	if _, err := replica(a.app.cfg.ConsentSigningKeyFile); err != nil {
		t.Fatalf("the old key after the rotation: %v", err)
	}
}

// mustKey reads the private key file path.
func mustKey(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	k, err := consent.ReadPrivateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
