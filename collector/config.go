// Package collector is Consentry's ingest service: the gRPC IngestService
// over the stage pipeline (limits → consent → validate → anonymize → sink),
// and App, which wires it to ClickHouse, health checks and reflection, and
// shuts it all down gracefully.
package collector

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/ratelimit"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/tlsconfig"
)

// Defaults of Config's zero fields.
const (
	// DefaultGRPCAddr is where gRPC (ingest, consent, health) listens.
	DefaultGRPCAddr = "127.0.0.1:4790"
	// DefaultHTTPAddr is where HTTP ingest and the consent endpoints
	// listen.
	DefaultHTTPAddr = "127.0.0.1:4791"
	// DefaultAdminAddr is where the dashboard, metrics and probes listen.
	DefaultAdminAddr = "127.0.0.1:4792"
	// DefaultDataDir holds the managed ClickHouse, the spool, keys and
	// secrets.
	DefaultDataDir = "consentry-data"
	// DefaultClickHouseNativePort and DefaultClickHouseHTTPPort are the
	// managed ClickHouse's ports consentryd uses unless told otherwise:
	// fixed, so BI tools are configured once, and not ClickHouse's usual
	// 9000 and 8123, where a system ClickHouse may listen.
	DefaultClickHouseNativePort = 4793
	DefaultClickHouseHTTPPort   = 4794
	// DefaultShutdownTimeout bounds a graceful shutdown.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultClickHouseStartTimeout is how long a starting collector
	// retries a ClickHouse that does not answer.
	DefaultClickHouseStartTimeout = 2 * time.Minute
)

// Config configures an App. The zero value, after defaults, runs a
// collector on 127.0.0.1:4790 with a managed ClickHouse under
// ./consentry-data.
type Config struct {
	// GRPCAddr is the address the gRPC server listens on; port 0 picks a
	// free port. Default "127.0.0.1:4790".
	GRPCAddr string
	// HTTPAddr is the address the HTTPS+JSON consent endpoints
	// (/v1/consent/grant, revoke, status) listen on; port 0 picks a free
	// port. Default "127.0.0.1:4791".
	HTTPAddr string
	// AdminAddr is the address of the admin HTTP server, which serves the
	// crash triage dashboard and Prometheus metrics (/metrics); port 0
	// picks a free port. It is meant for
	// staff, not devices: keep it off the public network. Default
	// "127.0.0.1:4792".
	AdminAddr string
	// DashboardCredentialsFile holds the dashboard's users, one
	// user:password per line; created with a user "admin" and a random
	// password if missing. Default DataDir/dashboard-credentials.
	DashboardCredentialsFile string
	// Pprof serves Go's profiling endpoints under /debug/pprof/ on the
	// admin port. Off by default: profiles show code paths, not payloads,
	// but cost CPU while they run.
	Pprof bool
	// DashboardK is the fewest distinct sessions a dashboard breakdown
	// cell or filter value needs to be shown. Default 10.
	DashboardK int
	// MappingRefresh is how often uploaded R8/ProGuard mapping files are
	// looked for; default DefaultMappingRefresh. MappingMaxBytes bounds
	// the memory of the parsed mappings, the latest uploads first;
	// default deobfuscate.DefaultMaxBytes (1 GiB).
	MappingRefresh  time.Duration
	MappingMaxBytes int64
	// AlertRulesFile, if set, is the JSON file of crash alert rules
	// (package dashboard/alerts, docs/dashboard.md): the collector then
	// sends webhooks when a crash group is new, regresses or escalates.
	AlertRulesFile string
	// AlertInterval is how often crash groups are checked for alerts.
	// Default alerts.DefaultInterval (a minute).
	AlertInterval time.Duration
	// AnalystPasswordFile holds the password of the read-only "analyst"
	// user that a managed ClickHouse gets (it may read the analysts'
	// database only, not the private one); created with a random password
	// if missing. Default DataDir/clickhouse-analyst-password. Unused with
	// an external ClickHouse, whose users are its operator's.
	AnalystPasswordFile string
	// AnalystNetworks are the IP addresses or CIDR prefixes the managed
	// ClickHouse's analyst user may connect from. Default loopback
	// (127.0.0.1, ::1); widen it with ClickHouseListenHost.
	AnalystNetworks []string
	// AnalystLimits bound the managed ClickHouse analyst's queries, each
	// and per hour; zero fields take chserver's defaults (see
	// chserver.Limits). The analyst cannot lift them.
	AnalystLimits chserver.Limits
	// CollectorPasswordFile holds the password of CollectorUser, the
	// managed ClickHouse's user the collector connects as: the only user
	// that may write or read the private database of the session salts,
	// and only from loopback. Created with a random password if missing;
	// the consentry CLI reads it from the data dir. Default
	// DataDir/clickhouse-collector-password. Unused with an external
	// ClickHouse.
	CollectorPasswordFile string
	// ConsentSecretFile holds the server secret (at least 32 bytes) that
	// keys consent pseudonyms for erasable apps and, through a key derived
	// from it, the event ids stored (anonymizer.EventIDKey); created with
	// a random secret if missing. Every replica must share it. Default
	// DataDir/consent-secret. ConsentSecret, if set, is used instead.
	ConsentSecretFile string
	// ConsentSecret is the server secret itself (e.g. from the
	// environment); it overrides ConsentSecretFile.
	ConsentSecret []byte
	// AdoptConsentSecret, if set, is the fingerprint of this replica's
	// consent secret (the first 16 hex digits of consent.SecretFingerprint,
	// as New's refusal prints them), to adopt it in place of the secret
	// the replicas agreed on. New refuses a consent secret whose
	// fingerprint differs from the agreed one (recorded in ClickHouse by
	// the first replica), unless this names it; a secret is adopted once,
	// so naming an old one later does not take it back. For an operator
	// who replaces the secret on purpose: rows stored before can then no
	// longer be erased by consent, nor retried batches recognised.
	AdoptConsentSecret string
	// RevocationRefresh is how often revocations are reloaded from
	// ClickHouse. Default 2s.
	RevocationRefresh time.Duration
	// RevocationBound is the documented propagation bound. A replica whose
	// last successful refresh of revocations (or erased consents) is older
	// ships nothing from its spool, and without a spool refuses ingest.
	// Default 5s.
	RevocationBound time.Duration
	// RevocationWriteTimeout bounds recording a revocation in ClickHouse
	// (Revoke answers UNAVAILABLE beyond it), and so how long after its
	// time a revocation may become visible to other replicas: the spool
	// ships a batch only once every revocation stamped before it was
	// received is known, so shipping trails ingest by about this plus
	// MaxClockSkew plus RevocationRefresh. Default 3s.
	RevocationWriteTimeout time.Duration
	// MaxClockSkew is the largest difference assumed between the clocks of
	// the collector replicas. Default 1s.
	MaxClockSkew time.Duration
	// AppRefresh is how often the app registry is reloaded. Default 10s.
	AppRefresh time.Duration
	// CORSOrigins are the web origins allowed to call the HTTP endpoints
	// from a browser (the consent endpoints from a web consent page, ingest
	// from a web app's SDK), e.g. "https://example.com"; none by default.
	CORSOrigins []string
	// DataDir holds the managed ClickHouse server's files and the
	// generated consent signing key. Default "consentry-data".
	DataDir string
	// ClickHouse is the ClickHouse to store into. An empty Addr starts a
	// managed local server under DataDir/clickhouse.
	ClickHouse clickhouse.Config
	// ClickHouseBinary is the server binary for the managed server; empty
	// auto-detects clickhouse-server or clickhouse.
	ClickHouseBinary string
	// ClickHouseStartTimeout is how long a starting collector retries,
	// with backoff, a ClickHouse that is unreachable or too busy to
	// answer (restarted during an outage, or under load) before it gives
	// up and exits; errors that retrying cannot cure (a wrong password)
	// end the start at once. At start the collector needs ClickHouse: the
	// schema, the day's salt and the app registry are there. Default
	// DefaultClickHouseStartTimeout.
	ClickHouseStartTimeout time.Duration
	// ClickHouseListenHost is the one address the managed ClickHouse's
	// ports (native and HTTP; it opens no other) listen on. Default
	// "127.0.0.1"; a wildcard ("0.0.0.0", "::") exposes them, though even
	// then only the analyst may connect from elsewhere (from
	// AnalystNetworks), and the collector's user from loopback only.
	ClickHouseListenHost string
	// ClickHouseNativePort and ClickHouseHTTPPort are the managed
	// ClickHouse's native-protocol and HTTP ports, kept across restarts
	// so BI tools are configured once; 0 picks free ports at each start
	// (tests). consentryd's flags default to DefaultClickHouseNativePort
	// and DefaultClickHouseHTTPPort.
	ClickHouseNativePort, ClickHouseHTTPPort int
	// ClickHouseMaxFailures and ClickHouseFailureWindow bound the
	// supervision of the managed ClickHouse: after it exits unexpectedly
	// it is restarted on the same data and ports, after
	// ClickHouseRestartBackoff doubling per failure (up to 30s), until it
	// has failed ClickHouseMaxFailures times within
	// ClickHouseFailureWindow; then Serve returns an error wrapping
	// ErrClickHouseFailed. Defaults 5, 10 minutes and 1s.
	ClickHouseMaxFailures    int
	ClickHouseFailureWindow  time.Duration
	ClickHouseRestartBackoff time.Duration
	// Writer configures batching of inserts when there is no spool.
	Writer clickhouse.WriterConfig
	// Spool configures the write-ahead spool: every accepted batch is
	// fsynced to it before it is acknowledged, and shipped to ClickHouse
	// from there, so ClickHouse being down stops ingest only once the
	// spool is full. Its Dir defaults to DataDir/spool; the collector sets
	// its Inserter and Logger.
	Spool spool.Config
	// NoSpool acknowledges batches once ClickHouse has them instead
	// (through the Writer), without a spool: less disk, and ingest stops
	// whenever ClickHouse does.
	NoSpool bool
	// Rejects configures the rejects counter.
	Rejects clickhouse.RejectsConfig
	// ConsentSigningKeyFile is the Ed25519 key (PKCS #8 PEM) that signs and
	// verifies consent tokens; created if missing. Default
	// DataDir/consent-signing-key.pem.
	ConsentSigningKeyFile string
	// ConsentVerifyKeyFiles are further public keys (PKIX PEM) whose tokens
	// are accepted: rotated-out keys, an external consent platform's.
	ConsentVerifyKeyFiles []string
	// GeoIPFile is an MMDB database (GeoLite2-City or -Country, DB-IP City
	// or Country Lite, ...) that maps the connection's address to a country
	// and region when a device sends no location; it is reloaded when the
	// file changes. Empty means addresses are not used.
	GeoIPFile string
	// GeoIPReload is how often GeoIPFile is checked for changes. Default
	// one minute.
	GeoIPReload time.Duration
	// GeoIPIncludeNonPublic looks up private and loopback addresses too,
	// for databases that map an organization's own networks (and tests).
	GeoIPIncludeNonPublic bool
	// TLS, if its CertFile is set, serves gRPC, HTTP and the admin port
	// over TLS from certificate files, reloaded when they change. A
	// ClientCAFile requires client certificates (mutual TLS) on gRPC and
	// HTTP; the admin port takes TLS without client certificates.
	TLS tlsconfig.Config
	// RateLimit limits each app's events per second (after its consent
	// token is verified, so nobody can spend another app's budget);
	// unlimited by default.
	RateLimit ratelimit.Config
	// Edge bounds what a client can cost the collector before its request
	// is processed: connections, bytes being received and how slowly, and
	// the in-flight byte budget of requests being decoded and processed
	// (limits.EdgeConfig; its MemoryBound is the resulting bound).
	Edge limits.EdgeConfig
	// Limits, Validation and Anonymizer configure the stages. The
	// collector sets Anonymizer's Salts (shared through ClickHouse), IPs,
	// Coordinates and Regions itself.
	Limits     limits.Config
	Validation validate.Config
	Anonymizer anonymizer.Config
	// MutationCheckInterval is how often the collector looks for
	// deletions (erasures) ClickHouse has not finished and for detached
	// parts (consentry_clickhouse_detached_parts), and
	// StalledMutationAge how long after it was made a deletion counts as
	// stalled (the metric consentry_clickhouse_stalled_mutations, and an
	// error logged with the damaged parts to blame). Defaults
	// DefaultMutationCheckInterval (1m) and DefaultStalledMutationAge
	// (10m).
	MutationCheckInterval time.Duration
	StalledMutationAge    time.Duration
	// HealthInterval is how often readiness (gRPC health, /readyz,
	// consentry_ready) is re-evaluated. Default 1s.
	HealthInterval time.Duration
	// ShutdownTimeout bounds a graceful shutdown. Default 30s.
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long Shutdown says not ready (gRPC health,
	// /readyz) and goes on serving before it closes the listeners, so
	// that load balancers and Kubernetes' endpoints stop sending first.
	// It ends early when Shutdown's context does. Default 0: no delay.
	ShutdownDelay time.Duration
	// Logger logs; nil means no logging.
	Logger *zap.Logger
}

// withDefaults returns c with defaults applied.
func (c Config) withDefaults() Config {
	c.GRPCAddr = cmp.Or(c.GRPCAddr, DefaultGRPCAddr)
	c.HTTPAddr = cmp.Or(c.HTTPAddr, DefaultHTTPAddr)
	c.AdminAddr = cmp.Or(c.AdminAddr, DefaultAdminAddr)
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir)
	inData := func(name string) string { return filepath.Join(c.DataDir, name) }
	c.Spool.Dir = cmp.Or(c.Spool.Dir, inData("spool"))
	c.DashboardCredentialsFile = cmp.Or(c.DashboardCredentialsFile, inData("dashboard-credentials"))
	c.AnalystPasswordFile = cmp.Or(c.AnalystPasswordFile, inData("clickhouse-analyst-password"))
	c.CollectorPasswordFile = cmp.Or(c.CollectorPasswordFile, inData(CollectorPasswordFileName))
	c.ConsentSecretFile = cmp.Or(c.ConsentSecretFile, inData("consent-secret"))
	c.ConsentSigningKeyFile = cmp.Or(c.ConsentSigningKeyFile, inData("consent-signing-key.pem"))
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.ClickHouseStartTimeout = cmp.Or(c.ClickHouseStartTimeout, DefaultClickHouseStartTimeout)
	c.GeoIPReload = cmp.Or(c.GeoIPReload, time.Minute)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	maxMessage := cmp.Or(c.Limits.MaxMessageBytes, limits.DefaultConfig().MaxMessageBytes)
	if err := c.Edge.Validate(maxMessage); err != nil {
		errs = append(errs, err)
	}
	if err := c.Validation.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Anonymizer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.RateLimit.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ClientCAFile != "" {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MappingRefresh < 0 || c.MappingMaxBytes < 0 {
		errs = append(errs, errors.New("mapping refresh and max bytes must not be negative"))
	}
	if c.AlertInterval < 0 {
		errs = append(errs, errors.New("alert interval must not be negative"))
	}
	if c.MutationCheckInterval < 0 || c.StalledMutationAge < 0 {
		errs = append(errs, errors.New("the mutation check interval and the stalled mutation age must not be negative"))
	}
	if c.DashboardK < 0 {
		errs = append(errs, errors.New("dashboard k must not be negative"))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("shutdown timeout must not be negative"))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("shutdown delay must not be negative"))
	}
	if a := c.AdoptConsentSecret; a != "" {
		if _, err := hex.DecodeString(a); err != nil || len(a) != fingerprintDigits {
			errs = append(errs, fmt.Errorf("adopt consent secret %q: want the %d hex digits of its fingerprint, as a refusal prints them", a, fingerprintDigits))
		}
	}
	if err := c.ClickHouse.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ClickHouse.Addr == "" && c.ClickHouse.Schema.Cluster != "" {
		errs = append(errs, errors.New("a ClickHouse cluster needs the address of its servers: the managed ClickHouse is a single server"))
	}
	if c.ClickHouse.Addr == "" {
		mc := c.managedConfig(c.ClickHouse.DatabaseName())
		mc.ReadOnlyPassword = "checked when it is read"
		if err := mc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("managed clickhouse: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collector config: %w", err)
	}
	return nil
}
