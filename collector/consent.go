package collector

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"time"

	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/metrics"
	"github.com/consentry/consentry/consent"
)

// consentParts is the consent side of a running collector: the key ring,
// the verifier cache, the revocations and the app registry refreshed from
// ClickHouse, the ConsentService, and, with a spool, the gate that checks
// revocation and erasure again when spooled rows are shipped. Its refresh
// loops run until stop.
type consentParts struct {
	keys     *consent.KeyRing
	secret   []byte
	verifier *consent.Verifier
	revs     *consent.Revocations
	apps     *consent.Registry
	service  *consent.Service
	gate     *consent.Gate // nil without a spool
	loops    loops
}

// startConsent builds the consent side, starts its loops and waits until
// revocations, erased consents and apps are loaded: ingest must not run
// before it knows the revocations and the apps' erasure policies. counter
// counts grants and erasure receipts for the privacy report.
func startConsent(ctx context.Context, cfg Config, client *clickhouse.Client, m *metrics.Metrics, counter consent.EventCounter) (_ *consentParts, err error) {
	c := &consentParts{loops: loops{log: cfg.Logger}}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.keys, err = loadKeys(cfg); err != nil {
		return nil, err
	}
	if c.secret, err = loadSecret(cfg); err != nil {
		return nil, err
	}
	if err := agreeConsentSecret(ctx, cfg, client, c.secret); err != nil {
		return nil, err
	}
	if err := checkSigningKey(ctx, cfg, client, c.keys); err != nil {
		return nil, err
	}
	if c.verifier, err = consent.NewVerifier(consent.VerifierConfig{Keys: c.keys}); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if c.revs, err = consent.NewRevocations(consent.RevocationsConfig{
		Store: client, Interval: cfg.RevocationRefresh, Bound: cfg.RevocationBound,
		WriteTimeout: cfg.RevocationWriteTimeout, MaxClockSkew: cfg.MaxClockSkew, Logger: log.Named("revocations"),
	}); err != nil {
		return nil, err
	}
	if !cfg.NoSpool {
		if c.gate, err = consent.NewGate(consent.GateConfig{Revocations: c.revs, Store: client, Logger: log.Named("gate")}); err != nil {
			return nil, err
		}
	}
	if c.apps, err = consent.NewRegistry(consent.RegistryConfig{
		Store: client, Interval: cfg.AppRefresh, Logger: log.Named("apps"),
	}); err != nil {
		return nil, err
	}
	if c.service, err = consent.NewService(consent.ServiceConfig{
		Keys: c.keys, Verifier: c.verifier, Store: client, Apps: c.apps, Revocations: c.revs, Gate: c.gate,
		Secret: c.secret, Metrics: m, Counter: counter, Logger: log.Named("consent"),
	}); err != nil {
		return nil, err
	}
	c.loops.goLoop("revocations", c.revs.Run)
	c.loops.goLoop("apps", c.apps.Run)
	c.loops.goLoop("consent", c.service.Run) // erasure resweeps
	if c.gate != nil {
		c.loops.goLoop("gate", c.gate.Run)
		if err := c.gate.WaitLoaded(ctx); err != nil {
			return nil, fmt.Errorf("load revocations and erased consents: %w", err)
		}
	}
	if err := c.revs.WaitLoaded(ctx); err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	if err := c.apps.WaitLoaded(ctx); err != nil {
		return nil, fmt.Errorf("load apps: %w", err)
	}
	return c, nil
}

// filter returns the consent stage.
func (c *consentParts) filter() (*consent.Filter, error) {
	return consent.NewFilter(consent.FilterConfig{
		Verifier: c.verifier, Revocations: c.revs, Gate: c.gate, Apps: c.apps, Secret: c.secret,
	})
}

// register exposes the revocations' freshness, and the bound it must
// stay within.
func (c *consentParts) register(m *metrics.Metrics) {
	bound := c.revs.Bound()
	m.Gauge("revocation_bound_seconds", "The propagation bound (--revocation-bound): every replica refuses a revoked consent within it; revocations_refresh_age_seconds must stay below it.",
		func() float64 { return bound.Seconds() })
	m.Gauge("revocations_refresh_age_seconds", "Seconds since the last successful revocation refresh began; beyond --revocation-bound the spool ships nothing (without a spool, ingest is refused).",
		func() float64 {
			last, ok := c.revs.LastRefresh()
			if !ok {
				return math.Inf(1)
			}
			return time.Since(last).Seconds()
		})
}

// stop stops the refresh loops and waits for them.
func (c *consentParts) stop() { c.loops.stop() }

// close is stop for the cleanup stack.
func (c *consentParts) close(context.Context) error {
	c.stop()
	return nil
}

func loadKeys(cfg Config) (*consent.KeyRing, error) {
	priv, err := consent.LoadOrCreatePrivateKeyFile(cfg.ConsentSigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("consent signing key: %w", err)
	}
	var pubs []ed25519.PublicKey
	for _, f := range cfg.ConsentVerifyKeyFiles {
		pub, err := consent.ReadPublicKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("consent verify key: %w", err)
		}
		pubs = append(pubs, pub)
	}
	return consent.NewKeyRing(consent.KeyRingConfig{SigningKey: priv, VerifyKeys: pubs})
}
