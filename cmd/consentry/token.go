package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/internal/cli"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// tokenFlags are the flags that issue a development token.
type tokenFlags struct {
	keyFile string
	appID   string
	scopes  string
	ttl     time.Duration
}

// register registers the flags; t.appID, if set, is the app id's default.
func (t *tokenFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.keyFile, "consent-signing-key-file", "", "the collector's Ed25519 signing key `file` (default <data-dir>/consent-signing-key.pem)")
	fs.StringVar(&t.appID, "app-id", cmp.Or(t.appID, "com.example.demo"), "the `app` the consent is for")
	fs.StringVar(&t.scopes, "scopes", "analytics,crash_reports,location", "comma-separated consented `scopes`")
	fs.DurationVar(&t.ttl, "ttl", 24*time.Hour, "how long the token is valid")
}

// issue signs a token with the key file.
func (t *tokenFlags) issue(dataDir string) (string, error) {
	toks, err := t.issueN(dataDir, 1)
	if err != nil {
		return "", err
	}
	return toks[0], nil
}

// issueN signs n tokens with the key file, each for a consent of its own.
func (t *tokenFlags) issueN(dataDir string, n int) ([]string, error) {
	priv, err := consent.ReadPrivateKeyFile(cmp.Or(t.keyFile, filepath.Join(dataDir, "consent-signing-key.pem")))
	if err != nil {
		return nil, err
	}
	ring, err := consent.NewKeyRing(consent.KeyRingConfig{SigningKey: priv})
	if err != nil {
		return nil, err
	}
	var scopes []consentryv1.Scope
	for _, s := range strings.Split(t.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, consentryv1.Scope(s))
		}
	}
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		if toks[i], err = ring.Sign(consent.Claims{AppID: t.appID, Scopes: scopes, TextVersion: "demo-1", IssuedAt: now, ExpiresAt: now.Add(t.ttl)}); err != nil {
			return nil, err
		}
	}
	return toks, nil
}

func runToken(_ context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := newFlagSet("token", `
Issues a consent token signed with the collector's signing key and prints
it. For development and demos: apps get their tokens from the consent
service when the user opts in.`, stderr)
	var t tokenFlags
	t.register(fs)
	dataDir := fs.String("data-dir", "consentry-data", "consentryd's data `dir`")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return err
	}
	tok, err := t.issue(*dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
