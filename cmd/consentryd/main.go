// Command consentryd is the Consentry collector: it accepts consented
// diagnostic events over gRPC, drops what consent does not cover, strips
// identifiers, coarsens location, and stores the rest in ClickHouse.
//
// Started without --clickhouse-addr it runs a ClickHouse server of its own
// under --data-dir, on loopback, and stops it on exit. Run
// `consentryd --help` for every flag; each flag can also be set with the
// CONSENTRY_* environment variable its help names.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"github.com/consentry/consentry/anonymizer"
	"github.com/consentry/consentry/anonymizer/deobfuscate"
	"github.com/consentry/consentry/anonymizer/kanon"
	"github.com/consentry/consentry/anonymizer/scrub"
	"github.com/consentry/consentry/clickhouse"
	"github.com/consentry/consentry/collector"
	"github.com/consentry/consentry/collector/limits"
	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/collector/validate"
	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/dashboard/alerts"
	"github.com/consentry/consentry/dashboard/triage"
	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/cli"
	"github.com/consentry/consentry/internal/grpclogz"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// gRPC's own logs can hold peer addresses: scrub them like payloads.
	// grpclog's logger must be set before any gRPC activity, hence here.
	installGRPCLog := func(log *zap.Logger) {
		grpclog.SetLoggerV2(grpclogz.New(log.Named("grpc"), scrub.New(scrub.Config{}).String))
	}
	if err := run(ctx, os.Args[1:], os.Stderr, os.Environ(), installGRPCLog); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // --help was asked for and printed.
		}
		fmt.Fprintln(os.Stderr, "consentryd:", err)
		os.Exit(exitCode(err))
	}
}

// Exit statuses other than 0.
const (
	// exitError: a bad flag, a failed start, or an error while running
	// or shutting down.
	exitError = 2
	// exitClickHouseFailed: the managed ClickHouse failed too often; the
	// collector shut down gracefully so that a supervisor (systemd,
	// Kubernetes) restarts it.
	exitClickHouseFailed = 3
)

// exitCode returns the exit status for run's error.
func exitCode(err error) int {
	if errors.Is(err, collector.ErrClickHouseFailed) {
		return exitClickHouseFailed
	}
	return exitError
}

// options are the parsed flags.
type options struct {
	cfg              collector.Config
	rateOverrides    string
	spool            bool
	passwordFile     string
	verifyKeyFiles   string
	corsOrigins      string
	analystNetworks  string
	scrubDisabled    string
	hierarchy        string
	generalizeWindow time.Duration
	logLevel, logFmt string
	checkConfig      bool
	// variables are the environment variables that set flags or hold
	// secrets: every other CONSENTRY_* variable is a mistake.
	variables map[string]bool
	// deprecatedInflight is --max-inflight-requests, which no longer
	// does anything.
	deprecatedInflight int
}

// parseFlags parses args and the environment into options.
func parseFlags(args []string, stderr io.Writer, lookup func(string) (string, bool)) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("consentryd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: consentryd [flags]

consentryd is the Consentry collector. It serves consentry.v1.IngestService,
gRPC health checking and server reflection on --grpc-addr, and stores
consented, anonymized events in ClickHouse. Without --clickhouse-addr it
starts and manages a local ClickHouse server under --data-dir; with
--clickhouse-cluster it stores into a sharded, replicated ClickHouse
cluster, where any number of collectors run side by side.

An accepted batch is fsynced to a local write-ahead spool (--spool-dir)
before it is acknowledged, then shipped to ClickHouse, so ClickHouse being
away stops ingest only once the spool is full: --spool-max-bytes unshipped,
or less than --spool-reserve-bytes free on its volume (docs/operations.md).
SIGINT or SIGTERM shut it down gracefully: it reports not ready and, for
--shutdown-delay, goes on serving while load balancers take it out; then
in-flight batches finish, and the spool ships what it can within
--shutdown-timeout; the rest is shipped at the next start. If ClickHouse
does not answer then, nothing waits for it: the spool keeps its backlog
and the reject counts are kept in --data-dir for the next start.

It also serves consentry.v1.ConsentService on --grpc-addr and the same
operations as HTTPS+JSON on --http-addr, where POST /v1/ingest takes the
ingest batch as JSON or protobuf for apps that cannot use gRPC.

On --admin-addr it serves the crash triage dashboard (docs/dashboard.md),
for the users of --dashboard-credentials, and Prometheus metrics at
/metrics.

With --alert-rules it tells webhooks when a crash group is new, regresses
or escalates; replicas sharing a ClickHouse send each alert once.

The managed ClickHouse is locked down (docs/operations.md): it listens on
--clickhouse-listen-host (loopback) only, has no password-less user and
no user "default"; the collector connects as "collector" with the
password in --collector-password-file, the only user that may write or
read the session salts; the read-only user "analyst" (docs/analysts.md)
may read the analysts' database only, from --analyst-networks, with the
password in --analyst-password-file. It is supervised: if it dies it is
restarted on the same data and ports, with backoff, and the spool ships
once it is back; after --clickhouse-max-failures failures within
--clickhouse-failure-window the collector shuts down and exits with
status 3, for systemd or Kubernetes to restart it.

What a client can cost before it proves anything is bounded
(docs/operations.md, "Threat model"). Each ingest port admits
--max-connections, --max-connections-per-address from one address;
headers must arrive within --header-timeout and requests at
--min-receive-rate after --receive-grace. Requests being received hold
what they sent (and what the collector inflates of them), at most
--max-receiving-bytes per transport and --max-receiving-per-address per
address; a request received is counted on the wire before anything is
decoded, refused if over the batch limits (a small request of millions of
empty events costs nothing), and charged its wire bytes and decoded
estimate in the --max-inflight-bytes budget while it is processed; gzip
stops at --max-message-bytes and --max-decompression-ratio. Together
these bound the memory requests and connections take to
  --max-inflight-bytes + 2 × --max-receiving-bytes
    + 2 × --max-connections × %d KiB
which is %d MiB at the defaults, on top of the collector's baseline.

Exit status: 0 after a clean shutdown, 3 when the managed ClickHouse
failed repeatedly, 2 on any other error.

Secrets are read only from the environment or files:
  CONSENTRY_CLICKHOUSE_PASSWORD, or --clickhouse-password-file;
  CONSENTRY_CONSENT_SECRET, or --consent-secret-file.

Flags:
`, limits.ConnectionCost>>10, limits.DefaultEdgeConfig().MemoryBound()>>20)
		fs.PrintDefaults()
	}
	lim, val := limits.DefaultConfig(), validate.DefaultConfig()
	fs.StringVar(&c.GRPCAddr, "grpc-addr", collector.DefaultGRPCAddr, "`host:port` the gRPC server listens on (port 0 picks a free port)")
	fs.StringVar(&c.HTTPAddr, "http-addr", collector.DefaultHTTPAddr, "`host:port` of the HTTP endpoints: POST /v1/ingest (JSON or protobuf batches) and the consent endpoints POST /v1/consent/grant, /revoke, /status")
	fs.StringVar(&c.AdminAddr, "admin-addr", collector.DefaultAdminAddr, "`host:port` of the admin HTTP server: the crash triage dashboard and Prometheus metrics at /metrics (for staff; keep it off the public network)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's profiling endpoints under /debug/pprof/ on --admin-addr")
	fs.StringVar(&c.DashboardCredentialsFile, "dashboard-credentials", "", "`file` of dashboard users, one user:password per line (passwords >= 12 characters); created with user admin and a random password if missing (default <data-dir>/dashboard-credentials)")
	fs.IntVar(&c.DashboardK, "dashboard-k", triage.DefaultK, "dashboard breakdown cells and filter values need `k` distinct sessions; smaller values are grouped under a coarser one or hidden")
	fs.DurationVar(&c.MappingRefresh, "mapping-refresh", collector.DefaultMappingRefresh, "how often R8/ProGuard mapping files uploaded with consentry mappings upload are looked for; crashes of a build are deobfuscated with its mapping before they are grouped (docs/dashboard.md)")
	fs.Int64Var(&c.MappingMaxBytes, "mapping-max-bytes", deobfuscate.DefaultMaxBytes, "memory `bytes` the parsed mapping files may hold, the latest uploads first; crashes of builds whose mapping is left out stay obfuscated")
	fs.StringVar(&c.AlertRulesFile, "alert-rules", "", "JSON `file` of crash alert rules (docs/dashboard.md): webhooks (Slack or signed JSON) told when a crash group is new, regresses or escalates; keep it readable by consentryd only, webhook URLs and secrets are in it")
	fs.DurationVar(&c.AlertInterval, "alert-interval", alerts.DefaultInterval, "how often crash groups are checked for --alert-rules")
	fs.StringVar(&c.AnalystPasswordFile, "analyst-password-file", "", "`file` with the password of the managed ClickHouse's read-only user analyst, who may read the analysts' database only; created if missing (default <data-dir>/clickhouse-analyst-password)")
	fs.StringVar(&o.analystNetworks, "analyst-networks", "", "comma-separated IP addresses or CIDR `prefixes` the managed ClickHouse's analyst may connect from (default loopback: 127.0.0.1,::1); see --clickhouse-listen-host")
	fs.StringVar(&c.CollectorPasswordFile, "collector-password-file", "", "`file` with the password of the managed ClickHouse's user collector, which the collector and the consentry CLI connect as (the only user that may write or read the session salts); created if missing (default <data-dir>/"+collector.CollectorPasswordFileName+")")
	fs.StringVar(&c.TLS.CertFile, "tls-cert", "", "PEM certificate chain `file`: serve gRPC, HTTP and the admin port over TLS (reloaded when it changes)")
	fs.StringVar(&c.TLS.KeyFile, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.TLS.ClientCAFile, "tls-client-ca", "", "PEM CA bundle `file`: gRPC and HTTP clients must present a certificate it signed (mutual TLS)")
	fs.Float64Var(&c.RateLimit.EventsPerSecond, "rate-limit", 0, "`events` per second each app may send (0: unlimited); excess batches get RESOURCE_EXHAUSTED (RATE_LIMITED) with the delay after which they fit")
	fs.IntVar(&c.RateLimit.Burst, "rate-limit-burst", 0, "`events` an app may send at once above its rate (0: twice the rate, at least --max-batch-events)")
	fs.StringVar(&o.rateOverrides, "rate-limit-overrides", "", "per-app rates as comma-separated `app=events/s` pairs (0: unlimited), e.g. com.example.big=5000")
	fs.StringVar(&o.corsOrigins, "cors-origins", "", "comma-separated web `origins` (scheme://host[:port]) allowed to call the HTTP endpoints from a browser: consent (web consent pages) and ingest (web apps' SDK)")
	fs.StringVar(&c.ConsentSecretFile, "consent-secret-file", "", "`file` with the server secret (>= 32 bytes, shared by all replicas) keying consent pseudonyms of erasable apps and the stored event ids; created if missing (default <data-dir>/consent-secret; or set CONSENTRY_CONSENT_SECRET)")
	fs.StringVar(&c.AdoptConsentSecret, "consent-secret-adopt", "", "`fingerprint` (16 hex digits, as a refusal prints it) of this replica's consent secret, to adopt it in place of the one the replicas agreed on: consentryd refuses a consent secret that differs from the one recorded in ClickHouse by the first replica (a damaged, regenerated or uncopied file), unless this names it; each secret is adopted once. Rows stored before can no longer be erased by consent")
	fs.DurationVar(&c.RevocationRefresh, "revocation-refresh", consent.DefaultRevocationInterval, "how often revocations and erased consents are reloaded from ClickHouse")
	fs.DurationVar(&c.RevocationBound, "revocation-bound", consent.DefaultRevocationBound, "propagation bound: every replica refuses a revoked consent at ingest within it; while a replica cannot refresh revocations for longer, its spool ships nothing (ingest goes on, revocation is checked again at ship time), or without a spool it refuses ingest (UNAVAILABLE)")
	fs.StringVar(&c.DataDir, "data-dir", collector.DefaultDataDir, "`dir` for the managed ClickHouse's files and the generated consent signing key and secret")
	fs.StringVar(&c.ClickHouse.Addr, "clickhouse-addr", "", "ClickHouse native-protocol `host:port`, or a comma-separated list tried in order (e.g. the replicas of a cluster's shard); empty starts a managed local server under --data-dir")
	fs.StringVar(&c.ClickHouse.Schema.Cluster, "clickhouse-cluster", "", "ClickHouse `cluster` (from the servers' remote_servers, with internal_replication; needs --clickhouse-addr): migrations run ON CLUSTER, event tables are Replicated*MergeTree on each shard behind Distributed tables, apps, revocations, erasures and salts are replicated to every server (docs/operations.md, Scale out)")
	fs.StringVar(&c.ClickHouse.Database, "clickhouse-database", clickhouse.DefaultDatabase, "ClickHouse `database` for Consentry's tables (created if missing)")
	fs.StringVar(&c.ClickHouse.Username, "clickhouse-user", clickhouse.DefaultUsername, "ClickHouse `user` of an external ClickHouse (--clickhouse-addr); consentryd refuses to start while a user who logs in without a password can read the private database")
	fs.StringVar(&o.passwordFile, "clickhouse-password-file", "", "`file` holding the ClickHouse password (or set CONSENTRY_CLICKHOUSE_PASSWORD)")
	fs.StringVar(&c.ClickHouseBinary, "clickhouse-binary", "", "ClickHouse server `binary` for the managed server; empty finds clickhouse-server or clickhouse on PATH")
	fs.StringVar(&c.ClickHouseListenHost, "clickhouse-listen-host", chserver.DefaultListenHost, "`address` the managed ClickHouse's native and HTTP ports listen on (its only ports); a wildcard (0.0.0.0, ::) exposes them to the network, where only the analyst may log in, from --analyst-networks")
	fs.IntVar(&c.ClickHouseMaxFailures, "clickhouse-max-failures", chserver.DefaultMaxFailures, "the managed ClickHouse is restarted when it dies, until it has failed this many `times` within --clickhouse-failure-window; then consentryd shuts down and exits with status 3")
	fs.DurationVar(&c.ClickHouseFailureWindow, "clickhouse-failure-window", chserver.DefaultFailureWindow, "window in which --clickhouse-max-failures failures of the managed ClickHouse end consentryd")
	fs.IntVar(&c.ClickHouseNativePort, "clickhouse-native-port", collector.DefaultClickHouseNativePort, "`port` of the managed ClickHouse's native protocol (clickhouse-client, Grafana's native mode), kept across restarts so BI tools are configured once; 0 picks a free port at each start. Not ClickHouse's usual 9000, where a system ClickHouse may listen")
	fs.IntVar(&c.ClickHouseHTTPPort, "clickhouse-http-port", collector.DefaultClickHouseHTTPPort, "`port` of the managed ClickHouse's HTTP interface (BI tools: Grafana, Metabase, curl), kept across restarts; 0 picks a free port at each start. Not ClickHouse's usual 8123, where a system ClickHouse may listen")
	fs.DurationVar(&c.AnalystLimits.MaxExecutionTime, "analyst-max-query-time", chserver.DefaultMaxExecutionTime, "longest one query of the managed ClickHouse's analyst may run (whole seconds); the analyst cannot lift it")
	fs.Int64Var(&c.AnalystLimits.MaxMemoryUsage, "analyst-max-query-memory", chserver.DefaultMaxMemoryUsage, "`bytes` of memory one analyst query may use")
	fs.Int64Var(&c.AnalystLimits.MaxRowsToRead, "analyst-max-rows-to-read", chserver.DefaultMaxRowsToRead, "`rows` one analyst query may read (use the aggregate tables for long ranges)")
	fs.Int64Var(&c.AnalystLimits.MaxResultRows, "analyst-max-result-rows", chserver.DefaultMaxResultRows, "`rows` an analyst query's result may have (a result is never silently cut: the query fails)")
	fs.Int64Var(&c.AnalystLimits.QueriesPerHour, "analyst-queries-per-hour", chserver.DefaultQueriesPerHour, "analyst `queries` per hour (the hour's quota also caps query time at an hour)")
	fs.StringVar(&c.ConsentSigningKeyFile, "consent-signing-key-file", "", "Ed25519 private key `file` (PKCS #8 PEM) that signs and verifies consent tokens; created if missing (default <data-dir>/consent-signing-key.pem)")
	fs.StringVar(&o.verifyKeyFiles, "consent-verify-key-files", "", "comma-separated Ed25519 public key `files` (PKIX PEM) whose tokens are also accepted: rotated-out keys, an external consent platform")
	fs.IntVar(&c.Limits.MaxEvents, "max-batch-events", lim.MaxEvents, "most `events` one batch may hold; larger batches get RESOURCE_EXHAUSTED (BATCH_TOO_LARGE)")
	fs.IntVar(&c.Limits.MaxMessageBytes, "max-message-bytes", lim.MaxMessageBytes, "largest encoded request in `bytes`")
	ed := limits.DefaultEdgeConfig()
	e := &c.Edge
	fs.Int64Var(&e.MaxInflightBytes, "max-inflight-bytes", ed.MaxInflightBytes, "byte budget of ingest requests being decoded and processed (gRPC and HTTP together): each is charged its wire `bytes` plus an estimate of its decoded form, counted before it is decoded; a request that does not fit gets RESOURCE_EXHAUSTED (OVERLOADED, retry after 1s), one that never could BATCH_TOO_LARGE")
	fs.Int64Var(&e.MaxReceivingBytes, "max-receiving-bytes", ed.MaxReceivingBytes, "`bytes` of requests being received, per transport: what has arrived of them and what is being inflated (a slow sender holds what it sent); while full, new requests get RESOURCE_EXHAUSTED (OVERLOADED) and if gRPC reads pass it, the connection holding the most is closed")
	fs.IntVar(&e.MaxReceivingPerAddress, "max-receiving-per-address", ed.MaxReceivingPerAddress, "`requests` one client address may have being received at once, per transport")
	fs.Int64Var(&e.MinReceiveRate, "min-receive-rate", ed.MinReceiveRate, "slowest a request may arrive after --receive-grace, in `bytes/s`: slower HTTP bodies are cut off (408, RECEIVE_TOO_SLOW), slower gRPC connections closed")
	fs.DurationVar(&e.ReceiveGrace, "receive-grace", ed.ReceiveGrace, "time every request gets before --min-receive-rate applies")
	fs.IntVar(&e.MaxConnections, "max-connections", ed.MaxConnections, "open `connections` per ingest port (gRPC, HTTP); more are closed as they are accepted")
	fs.IntVar(&e.MaxConnectionsPerAddress, "max-connections-per-address", ed.MaxConnectionsPerAddress, "open `connections` from one client address per ingest port (raise it for many devices behind one NAT)")
	fs.DurationVar(&e.HeaderTimeout, "header-timeout", ed.HeaderTimeout, "how long a new ingest connection may take to send its TLS handshake and first headers (HTTP) or HTTP/2 preface (gRPC)")
	fs.DurationVar(&e.IdleTimeout, "idle-timeout", ed.IdleTimeout, "ingest connections without a request for this long are closed")
	fs.IntVar(&e.MaxDecompressionRatio, "max-decompression-ratio", ed.MaxDecompressionRatio, "how many `times` its compressed size a gzip HTTP body may inflate to (real batches: 2-10); beyond, BATCH_TOO_LARGE")
	fs.IntVar(&o.deprecatedInflight, "max-inflight-requests", 0, "deprecated and ignored: the in-flight bound is --max-inflight-bytes")
	fs.IntVar(&c.Limits.MaxTextBytes, "max-text-bytes", lim.MaxTextBytes, "longest crash message or attribute value in `bytes`; longer events are dropped (TOO_LARGE)")
	fs.DurationVar(&c.Limits.MaxDeadline, "max-request-time", lim.MaxDeadline, "longest one request may take")
	fs.DurationVar(&c.Validation.MaxAge, "max-event-age", val.MaxAge, "oldest event accepted after clock-skew correction: the window for events queued offline")
	fs.DurationVar(&c.Validation.FutureTolerance, "future-tolerance", val.FutureTolerance, "how far in the future a corrected event time may lie")
	fs.DurationVar(&c.Anonymizer.TimePrecision, "time-precision", anonymizer.DefaultTimePrecision, "precision stored event times are truncated to (docs/privacy.md)")
	fs.StringVar(&c.GeoIPFile, "geoip-db", "", "MMDB `file` (GeoLite2-City/-Country, DB-IP City/Country Lite) mapping the connection's address to a country and region when a device sends no location; reloaded when it changes. Empty: addresses are not used")
	fs.IntVar(&c.Anonymizer.Generalize.K, "generalize-k", kanon.DefaultK, "k-anonymity: every stored combination of app version, device model, OS version, locale and region is shared by at least `k` distinct consents of its app and UTC day; rows of rarer combinations are held back, then stored generalized (1 turns this off; docs/privacy.md)")
	fs.DurationVar(&c.Anonymizer.Generalize.Delay, "generalize-delay", kanon.DefaultDelay, "longest a row waits for k consents to share its exact combination before it is stored generalized, at the finest level of --generalize-hierarchy that k consents share")
	fs.DurationVar(&o.generalizeWindow, "generalize-window", 0, "deprecated: the old name of --generalize-delay")
	fs.StringVar(&o.hierarchy, "generalize-hierarchy", kanon.DefaultHierarchy, "order in which a combination with fewer than k consents is generalized, least useful first: comma-separated `steps` from model (→ other), locale (→ language → unknown), location (region → country → unknown), os (→ major → other), app (version → major.minor → other)")
	fs.DurationVar(&c.Anonymizer.Generalize.ReleaseInterval, "generalize-release-interval", kanon.DefaultReleaseInterval, "how often a pass releases held rows (on one replica at a time; a pass that needs longer runs on through the next slots)")
	fs.StringVar(&o.scrubDisabled, "scrub-disable", "", "comma-separated free-text `detectors` to switch off (e.g. coordinates,phone); all are on by default, see docs/privacy.md")
	fs.BoolVar(&o.spool, "spool", true, "fsync accepted batches to a local write-ahead spool before acknowledging them, and ship them to ClickHouse from there (false: acknowledge once ClickHouse has them)")
	fs.StringVar(&c.Spool.Dir, "spool-dir", "", "`dir` of the spool (default <data-dir>/spool)")
	fs.Int64Var(&c.Spool.MaxBytes, "spool-max-bytes", spool.DefaultMaxBytes, "`bytes` of batches not yet shipped the spool holds at most; beyond, ingest gets RESOURCE_EXHAUSTED with a retry delay")
	fs.Int64Var(&c.Spool.ReserveBytes, "spool-reserve-bytes", 0, "`bytes` the spool leaves free on its volume, whatever --spool-max-bytes says: below, ingest gets RESOURCE_EXHAUSTED with a retry delay while shipping goes on (0: a sixteenth of the volume, at most 64 MiB)")
	fs.IntVar(&c.Spool.MaxBatchRows, "spool-max-batch-rows", spool.DefaultMaxBatchRows, "most `rows` the spool ships to ClickHouse in one insert round (one insert per table)")
	fs.IntVar(&c.Writer.MaxBatchRows, "writer-max-batch-rows", clickhouse.DefaultMaxBatchRows, "most `rows` one ClickHouse insert groups together")
	fs.DurationVar(&c.Writer.FlushInterval, "writer-flush-interval", 0, "longest a batch waits to be grouped with others before its insert (0 = the writer's default, 100ms)")
	fs.IntVar(&c.Writer.MaxPendingRows, "writer-max-pending-rows", clickhouse.DefaultMaxPendingRows, "`rows` waiting for ClickHouse beyond which ingest gets RESOURCE_EXHAUSTED (backpressure)")
	fs.DurationVar(&c.ClickHouseStartTimeout, "clickhouse-start-timeout", collector.DefaultClickHouseStartTimeout, "how long a starting collector retries a ClickHouse that is unreachable or too busy to answer before it exits (a wrong password ends the start at once)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", collector.DefaultShutdownTimeout, "longest a graceful shutdown waits for in-flight batches and flushes")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", 0, "on SIGINT or SIGTERM, how long to report not ready and go on serving before the listeners close, so load balancers stop sending first (e.g. 5s behind Kubernetes Services); added to --shutdown-timeout")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error (logs never hold payloads, tokens or identifiers)")
	fs.StringVar(&o.logFmt, "log-format", "json", "log `format`: json or console")
	fs.BoolVar(&o.checkConfig, "check-config", false, "check the flags, the CONSENTRY_* environment and the files they name, print what is wrong or \"configuration OK\", and exit (0 when OK, 2 when not) without starting anything; for deployment pipelines, systemd's ExecStartPre and container images")
	if err := cli.Parse(fs, args, lookup); err != nil {
		return nil, err
	}
	o.variables = map[string]bool{cli.EnvPrefix + "CLICKHOUSE_PASSWORD": true, cli.EnvPrefix + "CONSENT_SECRET": true}
	fs.VisitAll(func(f *flag.Flag) { o.variables[cli.EnvName(f.Name)] = true })
	if o.corsOrigins != "" {
		c.CORSOrigins = strings.Split(o.corsOrigins, ",")
	}
	if o.analystNetworks != "" {
		for n := range strings.SplitSeq(o.analystNetworks, ",") {
			c.AnalystNetworks = append(c.AnalystNetworks, strings.TrimSpace(n))
		}
	}
	c.NoSpool = !o.spool
	if o.rateOverrides != "" {
		c.RateLimit.Overrides = make(map[string]float64)
		for _, pair := range strings.Split(o.rateOverrides, ",") {
			app, rate, ok := strings.Cut(strings.TrimSpace(pair), "=")
			r, err := strconv.ParseFloat(rate, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("--rate-limit-overrides: %q is not app=events/s", pair)
			}
			c.RateLimit.Overrides[app] = r
		}
	}
	if o.verifyKeyFiles != "" {
		c.ConsentVerifyKeyFiles = strings.Split(o.verifyKeyFiles, ",")
	}
	h, err := kanon.ParseHierarchy(o.hierarchy)
	if err != nil {
		return nil, fmt.Errorf("--generalize-hierarchy: %w", err)
	}
	c.Anonymizer.Generalize.Hierarchy = h
	if o.generalizeWindow != 0 && !isSet(fs, "generalize-delay") {
		c.Anonymizer.Generalize.Delay = o.generalizeWindow
	}
	if o.scrubDisabled != "" {
		for name := range strings.SplitSeq(o.scrubDisabled, ",") {
			k, err := scrub.ParseKind(strings.TrimSpace(name))
			if err != nil {
				return nil, fmt.Errorf("--scrub-disable: %w", err)
			}
			c.Anonymizer.Scrub.Disabled = append(c.Anonymizer.Scrub.Disabled, k)
		}
	}
	return o, nil
}

// run runs the collector until ctx ends, configured by args and the
// environment environ ("KEY=value" entries, as os.Environ returns them).
// onLogger, if not nil, is called with the logger before anything else
// starts.
func run(ctx context.Context, args []string, stderr io.Writer, environ []string, onLogger func(*zap.Logger)) error {
	lookup := lookupIn(environ)
	o, err := parseFlags(args, stderr, lookup)
	if err != nil {
		return err
	}
	if secret, ok := lookup(cli.EnvPrefix + "CONSENT_SECRET"); ok {
		o.cfg.ConsentSecret = []byte(secret)
	}
	unknown := o.unknownVariables(environ)
	if o.checkConfig {
		return checkConfig(o, unknown, stderr)
	}
	log, err := cli.NewLogger(o.logLevel, o.logFmt)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	for _, name := range unknown {
		log.Warn("environment variable ignored: it names no flag of consentryd (a typo?)", zap.String("variable", name))
	}
	if o.cfg.ClickHouse.Password, err = o.clickHousePassword(); err != nil {
		return err
	}
	o.cfg.Logger = log
	if o.generalizeWindow != 0 {
		log.Warn("--generalize-window is deprecated: it is now --generalize-delay, how long rows of rare combinations wait before they are stored generalized",
			zap.Duration("generalize_delay", o.cfg.Anonymizer.Generalize.Delay))
	}
	if onLogger != nil {
		onLogger(log)
	}
	if o.deprecatedInflight != 0 {
		log.Warn("--max-inflight-requests is ignored: the in-flight bound is now --max-inflight-bytes")
	}
	app, err := collector.New(ctx, o.cfg)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Serve() }()
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.String("signal", "received"))
	case err = <-serveErr:
		log.Error("server failed", zap.Error(err))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.ShutdownDelay+o.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, app.Shutdown(sctx))
}

// clickHousePassword returns the ClickHouse password from the
// environment or --clickhouse-password-file, and refuses that file if
// every user of the machine may read it.
func (o *options) clickHousePassword() (string, error) {
	pw, err := cli.Secret(cli.EnvPrefix+"CLICKHOUSE_PASSWORD", o.passwordFile)
	if err != nil {
		return "", err
	}
	if o.passwordFile != "" {
		if err := collector.SecretMode(o.passwordFile, "ClickHouse password"); err != nil {
			return "", err
		}
	}
	return pw, nil
}

// isSet reports whether flag name was set on the command line or from
// the environment.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
