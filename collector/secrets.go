package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/atomicfile"
)

// AnalystUser is the read-only ClickHouse user a managed server gets.
const AnalystUser = "analyst"

// readOrCreate returns the contents of the secret file path without its
// line ending, creating it (and its directory, owner-only) with generate's
// value if it does not exist: whole or not at all (atomicfile.Create), so
// a full disk or a crash while it is written leaves no empty or cut file
// behind. what names the secret in errors.
func readOrCreate(path, what string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = atomicfile.Create(path, []byte(generate()+"\n"))
		if err != nil {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// LoadPassword returns the password in the file path, creating the file
// (owner-only, whole or not at all) with a random password if it does not
// exist; a file of blanks is an error. what names it in errors. The
// managed ClickHouse's passwords are made with it, and so are those of
// `consentry cluster`.
func LoadPassword(path, what string) (string, error) {
	p, err := readOrCreate(path, what, rand.Text)
	if err != nil {
		return "", err
	}
	if p = strings.TrimSpace(p); p == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	return p, nil
}

// loadAnalystPassword reads the analyst's password file, creating it with
// a random password if it does not exist.
func loadAnalystPassword(path string) (string, error) {
	return LoadPassword(path, "analyst password")
}

// loadSecret returns the configured consent secret, or reads the secret
// file, creating it with a random secret if it does not exist.
func loadSecret(cfg Config) ([]byte, error) {
	if len(cfg.ConsentSecret) > 0 {
		if len(cfg.ConsentSecret) < consent.MinSecretSize {
			return nil, fmt.Errorf("consent secret: at least %d bytes", consent.MinSecretSize)
		}
		return cfg.ConsentSecret, nil
	}
	secret, err := readOrCreate(cfg.ConsentSecretFile, "consent secret", func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
		return hex.EncodeToString(b)
	})
	if err != nil {
		return nil, err
	}
	if len(secret) < consent.MinSecretSize {
		return nil, fmt.Errorf("consent secret %s: at least %d bytes", cfg.ConsentSecretFile, consent.MinSecretSize)
	}
	return []byte(secret), nil
}

// fingerprintDigits is how many hex digits of a secret's fingerprint the
// collector prints and --consent-secret-adopt takes: 64 bits tell secrets
// apart.
const fingerprintDigits = 16

// fingerprintStore records the fingerprints of the secrets the replicas
// share (clickhouse.Client).
type fingerprintStore interface {
	AgreeFingerprint(ctx context.Context, secret, candidate string) (string, error)
	AdoptFingerprint(ctx context.Context, secret, fingerprint string) (bool, error)
	Fingerprints(ctx context.Context, secret string) ([]string, error)
	RecordFingerprint(ctx context.Context, secret, fingerprint string) error
}

// agreeConsentSecret checks that secret is the consent secret every
// replica storing into the same database has used, by its fingerprint
// (consent.SecretFingerprint) recorded in the store; the first replica
// records it. A replica with another secret (a damaged or regenerated
// secret file, or one never copied to it) would store event ids and
// consent pseudonyms keyed with it: a retried batch stored twice, and
// rows that erasing the consent through another replica misses. With
// cfg.AdoptConsentSecret naming this secret's fingerprint, the secret
// replaces the agreed one, once.
func agreeConsentSecret(ctx context.Context, cfg Config, store fingerprintStore, secret []byte) error {
	fp := consent.SecretFingerprint(secret)
	short := fp[:fingerprintDigits]
	source := "consent secret " + cfg.ConsentSecretFile
	if len(cfg.ConsentSecret) > 0 {
		source = "consent secret (environment)"
	}
	if adopt := cfg.AdoptConsentSecret; adopt != "" {
		if !strings.EqualFold(adopt, short) {
			return fmt.Errorf("adopt consent secret %s: this replica's %s has the fingerprint %s", adopt, source, short)
		}
		adopted, err := store.AdoptFingerprint(ctx, consent.SecretName, fp)
		if err != nil {
			return fmt.Errorf("consent secret: %w", err)
		}
		if adopted {
			cfg.Logger.Warn("adopted this replica's consent secret in place of the one the replicas agreed on: rows stored before can no longer be erased by consent",
				zap.String("fingerprint", short))
		}
	}
	agreed, err := store.AgreeFingerprint(ctx, consent.SecretName, fp)
	if err != nil {
		return fmt.Errorf("consent secret: %w", err)
	}
	if agreed != fp {
		return fmt.Errorf("%s has the fingerprint %s, but the replicas storing into this database agreed on %.*s: "+
			"it is not their secret (a damaged or regenerated secret file, or one never copied to this replica?). "+
			"Stored event ids and the consent pseudonyms that erasure deletes rows by are keyed with it, so erasing a consent would miss what this replica stores. "+
			"Give this replica the agreed secret (restore the file, or copy it from another replica); to replace the secret on purpose, start once with --consent-secret-adopt %s",
			source, short, fingerprintDigits, agreed, short)
	}
	return nil
}

// checkSigningKey checks that keys' signing key is one the replicas
// storing into the same database have signed with, or that keys
// verifies one of those (a rotation keeps the old key's public key), and
// records its key id. A replica whose key is neither (a damaged or
// regenerated key file, one never copied to it) would refuse every token
// the others issued, dropping their events, and issue tokens and erasure
// receipts they cannot verify. Only the first replicas to start, before
// any key is recorded, are not checked.
func checkSigningKey(ctx context.Context, cfg Config, store fingerprintStore, keys *consent.KeyRing) error {
	id := keys.SigningKeyID()
	recorded, err := store.Fingerprints(ctx, consent.SigningKeyName)
	if err != nil {
		return fmt.Errorf("consent signing key: %w", err)
	}
	if len(recorded) > 0 && !slices.ContainsFunc(recorded, keys.Verifies) {
		return fmt.Errorf("consent signing key %s (key id %s) is not a key the replicas storing into this database sign with (%s), "+
			"and verifies none of theirs: a damaged or regenerated key file, or one never copied to this replica? "+
			"It would refuse every token they issued and issue tokens they refuse. "+
			"Give this replica their key (restore the file, or copy it from another replica); to rotate to a new key, "+
			"give it the current key's public key with --consent-verify-key-file",
			cfg.ConsentSigningKeyFile, id, strings.Join(recorded, ", "))
	}
	if !slices.Contains(recorded, id) {
		if err := store.RecordFingerprint(ctx, consent.SigningKeyName, id); err != nil {
			return fmt.Errorf("consent signing key: %w", err)
		}
	}
	return nil
}
