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
// cannot be read or parsed, and secret files (the consent secret, the
// signing key, the managed ClickHouse's passwords, the dashboard's users)
// that exist but are unreadable, malformed, or readable by every user of
// the machine. Secret files that do not exist are fine: New creates them,
// owner-only. Call Validate first for the values themselves.
func (c Config) CheckFiles() error {
	c = c.withDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.ConsentSecret) > 0 {
		if len(c.ConsentSecret) < consent.MinSecretSize {
			add(fmt.Errorf("consent secret (environment): %d bytes, at least %d needed", len(c.ConsentSecret), consent.MinSecretSize))
		}
	} else {
		add(checkSecretFile(c.ConsentSecretFile, "consent secret", func(b []byte) error {
			if n := len(strings.TrimRight(string(b), "\r\n")); n < consent.MinSecretSize {
				return fmt.Errorf("%d bytes, at least %d needed", n, consent.MinSecretSize)
			}
			return nil
		}))
	}
	add(checkSecretFile(c.ConsentSigningKeyFile, "consent signing key", func([]byte) error {
		_, err := consent.ReadPrivateKeyFile(c.ConsentSigningKeyFile)
		return err
	}))
	add(checkSecretFile(c.DashboardCredentialsFile, "dashboard credentials", func([]byte) error {
		_, err := dashboard.LoadCredentials(c.DashboardCredentialsFile, false)
		return err
	}))
	if c.ClickHouse.Addr == "" {
		for _, f := range []struct{ path, what string }{
			{c.CollectorPasswordFile, "collector password"},
			{c.AnalystPasswordFile, "analyst password"},
		} {
			add(checkSecretFile(f.path, f.what, func(b []byte) error {
				if strings.TrimSpace(string(b)) == "" {
					return errors.New("empty")
				}
				return nil
			}))
		}
	}
	for _, path := range c.ConsentVerifyKeyFiles {
		if _, err := consent.ReadPublicKeyFile(path); err != nil {
			add(fmt.Errorf("consent verify key: %w", err))
		}
	}
	if c.AlertRulesFile != "" {
		if _, err := os.Stat(c.AlertRulesFile); err != nil {
			add(fmt.Errorf("alert rules: %w", err))
		} else {
			add(checkSecretFile(c.AlertRulesFile, "alert rules", func([]byte) error {
				_, err := alerts.LoadRules(c.AlertRulesFile)
				return err
			}))
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
		add(checkSecretFile(c.TLS.KeyFile, "TLS key", nil))
		if _, err := tlsconfig.Load(c.TLS); err != nil {
			add(fmt.Errorf("tls: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collector files: %w", err)
	}
	return nil
}

// secretModes reports the secret files c names (after defaults) that
// exist and that every user of the machine may read: New refuses to start
// with any (invariant 7: the secrets are the collector's alone).
func (c Config) secretModes() error {
	files := []struct{ path, what string }{
		{c.ConsentSigningKeyFile, "consent signing key"},
		{c.DashboardCredentialsFile, "dashboard credentials"},
		{c.AlertRulesFile, "alert rules"},
		{c.TLS.KeyFile, "TLS key"},
	}
	if len(c.ConsentSecret) == 0 {
		files = append(files, struct{ path, what string }{c.ConsentSecretFile, "consent secret"})
	}
	if c.ClickHouse.Addr == "" {
		files = append(files, struct{ path, what string }{c.CollectorPasswordFile, "collector password"},
			struct{ path, what string }{c.AnalystPasswordFile, "analyst password"})
	}
	var errs []error
	for _, f := range files {
		if f.path != "" {
			errs = append(errs, SecretMode(f.path, f.what))
		}
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
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s %s: readable by every user of the machine (mode %04o): make it readable by consentryd only, e.g. chmod 600", what, path, fi.Mode().Perm())
	}
	return nil
}

// checkSecretFile checks the secret file path, if it exists: that it is
// readable, not readable by every user of the machine, and, with a non-nil
// parse, that parse accepts its contents. what names it in errors.
func checkSecretFile(path, what string, parse func([]byte) error) error {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := SecretMode(path, what); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if parse != nil {
		if err := parse(b); err != nil {
			return fmt.Errorf("%s %s: %w", what, path, err)
		}
	}
	return nil
}
