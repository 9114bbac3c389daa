package collector

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/consentry/consentry/consent"
)

// AnalystUser is the read-only ClickHouse user a managed server gets.
const AnalystUser = "analyst"

// readOrCreate returns the contents of the secret file path without its
// line ending, creating it (and its directory, owner-only) with generate's
// value if it does not exist. what names the secret in errors.
func readOrCreate(path, what string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		v := generate()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("create %s: %w", what, err)
		}
		return v, nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// loadAnalystPassword reads the analyst's password file, creating it with
// a random password if it does not exist.
func loadAnalystPassword(path string) (string, error) {
	return loadPassword(path, "analyst password")
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
