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

// checkSecretFile checks the secret file path, if it exists: that it is
// readable, not readable by every user of the machine, and, with a non-nil
// parse, that parse accepts its contents. what names it in errors.
func checkSecretFile(path, what string, parse func([]byte) error) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s %s: readable by every user of the machine (mode %04o): make it readable by consentryd only, e.g. chmod 600", what, path, fi.Mode().Perm())
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
