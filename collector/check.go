package collector

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard"
	"github.com/consentry/consentry/dashboard/alerts"
	"github.com/consentry/consentry/internal/tlsconfig"
)

// CheckFiles reports, without creating or changing anything, what in the
// files c names would stop New or break a promise once it runs: files
// that must exist (TLS, alert rules, the IP database, verify keys) but
// cannot be read or parsed, and secret files (secretFiles) that exist but
// are unreadable, malformed, or readable by every user of the machine.
// Secret files that do not exist are fine unless required: New creates
// them, owner-only. Call Validate first for the values themselves.
func (c Config) CheckFiles() error {
	c = c.withDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.ConsentSecret) > 0 && len(c.ConsentSecret) < consent.MinSecretSize {
		add(fmt.Errorf("consent secret (environment): %d bytes, at least %d needed", len(c.ConsentSecret), consent.MinSecretSize))
	}
	for _, f := range c.secretFiles() {
		fi, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !f.required:
		case err != nil:
			add(fmt.Errorf("%s: %w", f.what, err))
		default:
			add(checkSecretFile(f, fi))
		}
	}
	add(c.checkAdopted())
	for _, path := range c.ConsentVerifyKeyFiles {
		if _, err := consent.ReadPublicKeyFile(path); err != nil {
			add(fmt.Errorf("consent verify key: %w", err))
		}
	}
	if c.GeoIPFile != "" {
		if f, err := os.Open(c.GeoIPFile); err != nil {
			add(fmt.Errorf("geoip database: %w", err))
		} else {
			_ = f.Close()
		}
	}
	if c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		if _, err := tlsconfig.Load(c.TLS); err != nil {
			add(fmt.Errorf("tls: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collector files: %w", err)
	}
	return nil
}

// secretFile is a file of secrets a Config names.
type secretFile struct {
	path, what string // what names it in errors
	// required: it must exist; New creates the others if missing.
	required bool
	// parse checks its contents; nil accepts any.
	parse func([]byte) error
}

// secretFiles returns the secret files c (after defaults) makes the
// collector read: the consent secret (unless the environment gives it),
// the signing key, the dashboard's users, the managed ClickHouse's
// passwords, the alert rules (webhook secrets) and the TLS key, if set.
func (c Config) secretFiles() []secretFile {
	files := []secretFile{
		{path: c.ConsentSigningKeyFile, what: "consent signing key", parse: func([]byte) error {
			_, err := consent.ReadPrivateKeyFile(c.ConsentSigningKeyFile)
			return err
		}},
		{path: c.DashboardCredentialsFile, what: "dashboard credentials", parse: func([]byte) error {
			_, err := dashboard.LoadCredentials(c.DashboardCredentialsFile, false)
			return err
		}},
	}
	if len(c.ConsentSecret) == 0 {
		files = append(files, secretFile{path: c.ConsentSecretFile, what: "consent secret", parse: func(b []byte) error {
			if n := len(strings.TrimRight(string(b), "\r\n")); n < consent.MinSecretSize {
				return fmt.Errorf("%d bytes, at least %d needed", n, consent.MinSecretSize)
			}
			return nil
		}})
	}
	if c.ClickHouse.Addr == "" {
		notEmpty := func(b []byte) error {
			if strings.TrimSpace(string(b)) == "" {
				return errors.New("empty")
			}
			return nil
		}
		files = append(files, secretFile{path: c.CollectorPasswordFile, what: "collector password", parse: notEmpty},
			secretFile{path: c.AnalystPasswordFile, what: "analyst password", parse: notEmpty})
	}
	if c.AlertRulesFile != "" {
		files = append(files, secretFile{path: c.AlertRulesFile, what: "alert rules", required: true, parse: func([]byte) error {
			_, err := alerts.LoadRules(c.AlertRulesFile)
			return err
		}})
	}
	if c.TLS.KeyFile != "" {
		files = append(files, secretFile{path: c.TLS.KeyFile, what: "TLS key"})
	}
	return files
}

// secretModes reports the secret files c names (after defaults) that
// exist and that every user of the machine may read: New refuses to start
// with any (invariant 7: the secrets are the collector's alone).
func (c Config) secretModes() error {
	var errs []error
	for _, f := range c.secretFiles() {
		errs = append(errs, SecretMode(f.path, f.what))
	}
	return errors.Join(errs...)
}

// SecretMode returns an error if the secret file path exists and every
// user of the machine may read it; what names the secret in the error.
func SecretMode(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // missing (New creates it owner-only) or unreadable: its reader says so
	}
	return modeError(path, what, fi)
}

// modeError returns an error if fi, the file path holding the secret
// what, is readable by every user of the machine.
func modeError(path, what string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s %s: readable by every user of the machine (mode %04o): make it readable by consentryd only, e.g. chmod 600", what, path, fi.Mode().Perm())
	}
	return nil
}

// checkSecretFile checks the secret file f, which exists (fi): that it
// is not readable by every user of the machine, that it can be read, and
// that f.parse, if any, accepts its contents.
func checkSecretFile(f secretFile, fi fs.FileInfo) error {
	if err := modeError(f.path, f.what, fi); err != nil {
		return err
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.what, err)
	}
	if f.parse != nil {
		if err := f.parse(b); err != nil {
			return fmt.Errorf("%s %s: %w", f.what, f.path, err)
		}
	}
	return nil
}

// checkAdopted reports an AdoptConsentSecret that names another secret
// than the consent secret c gives (from the environment, or a file that
// exists), which New would refuse.
func (c Config) checkAdopted() error {
	if c.AdoptConsentSecret == "" {
		return nil
	}
	secret := c.ConsentSecret
	if len(secret) == 0 {
		b, err := os.ReadFile(c.ConsentSecretFile)
		if err != nil {
			return nil // reported with the secret files, or created by New
		}
		secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if fp := consent.SecretFingerprint(secret)[:fingerprintDigits]; !strings.EqualFold(c.AdoptConsentSecret, fp) {
		return fmt.Errorf("adopt consent secret %s: the consent secret has the fingerprint %s", c.AdoptConsentSecret, fp)
	}
	return nil
}
