package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// TableSecretFingerprints records a fingerprint of each secret that every
// collector replica must share (the consent secret: it keys the stored
// event ids and the consent pseudonyms that erasure deletes by; the
// consent signing key, by its key id), so that a replica started with
// another secret, or with a damaged or regenerated secret file, is refused
// before it stores rows nobody could erase or refuses tokens the others
// issued. Only the collector's user may read it.
const TableSecretFingerprints = "secret_fingerprints"

// fingerprintRow is one recorded fingerprint of a secret.
type fingerprintRow struct {
	secret      string
	fingerprint string
	recordedAt  time.Time
	adopted     bool
}

// secretFingerprintsTable returns the definition of
// TableSecretFingerprints.
func secretFingerprintsTable(database string) *rowTable[fingerprintRow] {
	return newRowTable(database,
		&tableDef{
			name:    TableSecretFingerprints,
			comment: "Fingerprints of the secrets every collector replica must share (an HMAC under the secret, not the secret): a replica whose secret has another fingerprint refuses to start. Not for analysts.",
			engine:  "MergeTree",
			orderBy: []string{"secret", "version", "fingerprint"},
			// Every collector checks its secret against its own server
			// (after catching up: AgreeFingerprint).
			placement: everywhere,
			quorum:    quorumTwo,
		},
		[]field[fingerprintRow]{
			stringCol("secret", "Which secret: consent_secret (one agreed fingerprint), consent_signing_key (the key ids replicas have signed with).",
				func(r *fingerprintRow) string { return r.secret }),
			stringCol("fingerprint", "Hex fingerprint of the secret (consent.SecretFingerprint). Replicas that raced to record the first agree on the earliest version, then the smallest fingerprint; the latest adopted one replaces it.",
				func(r *fingerprintRow) string { return r.fingerprint }),
			timeCol("recorded_at", "When it was recorded (UTC).",
				func(r *fingerprintRow) time.Time { return r.recordedAt }),
			uint64Col("version", "recorded_at in Unix nanoseconds: orders the records.",
				func(r *fingerprintRow) uint64 { return uint64(r.recordedAt.UnixNano()) }),
			boolCol("adopted", "1 if an operator adopted this secret in place of the one before (consentryd --consent-secret-adopt); 0 for the first secret a replica recorded.",
				func(r *fingerprintRow) bool { return r.adopted }),
		})
}

// secretFingerprintsMigration creates secret_fingerprints. It is
// numbered by its caller, so it can move when branches merge.
func secretFingerprintsMigration(version int) Migration {
	return Migration{
		Version:    version,
		Name:       "secret_fingerprints: the fingerprint of the consent secret every replica must share, in the private database",
		Statements: createPrivateTables(func(s *schema) []*tableDef { return []*tableDef{s.fingerprints.def} }),
	}
}

// AgreeFingerprint returns the fingerprint every replica's copy of the
// secret named secret must have: the one an operator adopted last
// (AdoptFingerprint), or else the one recorded first. If none is recorded
// yet, candidate is recorded first; replicas that race agree on the
// earliest, then smallest, so the answer only changes while that race is
// undecided or when an operator adopts another.
func (c *Client) AgreeFingerprint(ctx context.Context, secret, candidate string) (string, error) {
	if secret == "" || candidate == "" {
		return "", errors.New("agree on a secret's fingerprint: no secret name or fingerprint")
	}
	if fp, err := c.agreedFingerprint(ctx, secret); err != nil || fp != "" {
		return fp, err
	}
	if err := c.insertFingerprint(ctx, secret, candidate, false); err != nil {
		return "", err
	}
	fp, err := c.agreedFingerprint(ctx, secret)
	if err == nil && fp == "" {
		err = fmt.Errorf("agree on the %s's fingerprint: the recorded fingerprint is not readable", secret)
	}
	return fp, err
}

// AdoptFingerprint records fingerprint as the one every replica's copy of
// the secret named secret must have from now on, in place of the one
// agreed before: for an operator who replaces the secret on purpose. A
// fingerprint is adopted once: if it was adopted before, AdoptFingerprint
// records nothing and returns false, so a replica that keeps asking to
// adopt an old secret cannot take it back from a newer one.
func (c *Client) AdoptFingerprint(ctx context.Context, secret, fingerprint string) (bool, error) {
	if secret == "" || fingerprint == "" {
		return false, errors.New("adopt a secret's fingerprint: no secret name or fingerprint")
	}
	t := c.schema.fingerprints.def
	if err := c.syncReplica(ctx, t); err != nil {
		return false, fmt.Errorf("adopt the %s's fingerprint: %w", secret, err)
	}
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE secret = %s AND fingerprint = %s AND adopted = 1",
		t.database, t.name, quote(secret), quote(fingerprint))
	if err := c.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return false, classify(fmt.Sprintf("adopt the %s's fingerprint", secret), err)
	}
	if n > 0 {
		return false, nil
	}
	if err := c.insertFingerprint(ctx, secret, fingerprint, true); err != nil {
		return false, err
	}
	return true, nil
}

// agreedFingerprint returns the agreed fingerprint of the secret named
// secret, or "" if none is recorded. On a cluster it reads the connected
// server's replica once it caught up with the records acknowledged
// elsewhere.
func (c *Client) agreedFingerprint(ctx context.Context, secret string) (string, error) {
	t := c.schema.fingerprints.def
	if err := c.syncReplica(ctx, t); err != nil {
		return "", fmt.Errorf("read the %s's fingerprint: %w", secret, err)
	}
	// The latest adopted, else the earliest recorded.
	q := fmt.Sprintf("SELECT fingerprint FROM %s.%s WHERE secret = %s "+
		"ORDER BY adopted DESC, if(adopted = 1, -toInt64(version), toInt64(version)), fingerprint LIMIT 1",
		t.database, t.name, quote(secret))
	var fp string
	err := c.conn.QueryRow(ctx, q).Scan(&fp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", classify(fmt.Sprintf("read the %s's fingerprint", secret), err)
	}
	return fp, nil
}

// Fingerprints returns every fingerprint recorded for the secret named
// secret (RecordFingerprint, AgreeFingerprint), each once, the earliest
// first.
func (c *Client) Fingerprints(ctx context.Context, secret string) ([]string, error) {
	t := c.schema.fingerprints.def
	if err := c.syncReplica(ctx, t); err != nil {
		return nil, fmt.Errorf("read the %s's fingerprints: %w", secret, err)
	}
	q := fmt.Sprintf("SELECT fingerprint FROM %s.%s WHERE secret = %s GROUP BY fingerprint ORDER BY min(version), fingerprint",
		t.database, t.name, quote(secret))
	fps, err := (connRunner{c: c}).column(ctx, q)
	if err != nil {
		return nil, classify(fmt.Sprintf("read the %s's fingerprints", secret), err)
	}
	return fps, nil
}

// RecordFingerprint records fingerprint for the secret named secret.
// Recording one twice is harmless (Fingerprints lists it once); callers
// that read Fingerprints first record only what is missing.
func (c *Client) RecordFingerprint(ctx context.Context, secret, fingerprint string) error {
	if secret == "" || fingerprint == "" {
		return errors.New("record a secret's fingerprint: no secret name or fingerprint")
	}
	return c.insertFingerprint(ctx, secret, fingerprint, false)
}

// insertFingerprint records fingerprint for the secret named secret, as
// adopted or not, on every server.
func (c *Client) insertFingerprint(ctx context.Context, secret, fingerprint string, adopted bool) error {
	row := fingerprintRow{secret: secret, fingerprint: fingerprint, recordedAt: time.Now().UTC(), adopted: adopted}
	if err := insertEverywhere(ctx, c, c.schema.fingerprints, []fingerprintRow{row}); err != nil {
		return fmt.Errorf("record the %s's fingerprint: %w", secret, err)
	}
	return nil
}
