package clickhouse

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Defaults for zero fields of Config, SchemaOptions, WriterConfig and
// RejectsConfig.
const (
	// DefaultAddr is the server's native-protocol address.
	DefaultAddr = "127.0.0.1:9000"
	// DefaultDatabase holds Consentry's tables.
	DefaultDatabase = "consentry"
	// DefaultUsername is the ClickHouse user.
	DefaultUsername = "default"
	// DefaultDialTimeout bounds connecting, and waiting for a free pooled
	// connection.
	DefaultDialTimeout = 5 * time.Second
	// DefaultReadTimeout bounds one read from the server.
	DefaultReadTimeout = 30 * time.Second
	// DefaultMaxOpenConns bounds the connection pool. Without a spool the
	// writers insert up to five tables per flusher at once, for stored
	// and for held rows (k-anonymity): 2 × 2 × 5 = 20 at the default
	// flushers, and the refresh and release loops query meanwhile.
	DefaultMaxOpenConns = 32
	// DefaultCompression is the native-protocol block compression.
	DefaultCompression = "lz4"

	// DefaultEventRetentionDays is how long event tables keep rows.
	DefaultEventRetentionDays = 90
	// DefaultAggregateRetentionDays is how long the rejects table and the
	// aggregates keep rows.
	DefaultAggregateRetentionDays = 400
	// DefaultAuditRetentionDays is how long the erasures audit log keeps
	// rows: three years.
	DefaultAuditRetentionDays = 3 * 365

	// DefaultMaxBatchRows is the size at which the writer seals a group of
	// requests and inserts it.
	DefaultMaxBatchRows = 50_000
	// DefaultFlushInterval is how long the first request of a group waits
	// for company before the group is inserted.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultMaxPendingRows bounds the rows queued or being inserted.
	DefaultMaxPendingRows = 500_000
	// DefaultFlushers is the number of concurrent inserts.
	DefaultFlushers = 2
	// DefaultRetryBackoff is the pause before the first retry.
	DefaultRetryBackoff = 100 * time.Millisecond
	// DefaultMaxRetryBackoff caps the pause between retries.
	DefaultMaxRetryBackoff = 5 * time.Second
	// DefaultMaxRetries bounds the retries of one group.
	DefaultMaxRetries = 10

	// DefaultRejectsFlushInterval is how often reject counts are stored.
	DefaultRejectsFlushInterval = 10 * time.Second
	// DefaultRejectsMaxKeys bounds the (minute, app, reason) counters held in
	// memory; beyond it new apps are counted as OtherApp.
	DefaultRejectsMaxKeys = 10_000
)

// isIdent reports whether s is a name the schema accepts for databases and
// clusters: a plain identifier that needs no quoting on any server version.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Addr is the server's native-protocol address, host:port, or a
	// comma-separated list of them: the client connects to the first that
	// answers, and to the next when it cannot (the servers of a cluster,
	// for instance two replicas of a shard).
	Addr string
	// Database holds Consentry's tables; Open creates it if missing. It
	// must be a plain identifier. If Schema.Database is also set, the two
	// must agree.
	Database string
	// Username and Password authenticate to the server.
	Username, Password string
	// DialTimeout bounds connecting, and waiting for a free connection of
	// the pool.
	DialTimeout time.Duration
	// ReadTimeout bounds one read from the server, so a stalled server
	// fails an insert rather than hanging it.
	ReadTimeout time.Duration
	// MaxOpenConns bounds the connection pool; idle connections are kept up
	// to the same number.
	MaxOpenConns int
	// Compression is the block compression on the wire: "lz4", "zstd" or
	// "none".
	Compression string
	// Schema describes the tables; its Database defaults to Database.
	Schema SchemaOptions
	// OnInsert, if set, is told about every Insert and InsertHeld (rows
	// held back for k-anonymity): the rows, how long it
	// took and its error, for metrics. It must be quick.
	OnInsert func(rows int, took time.Duration, err error)
}

// DatabaseName returns the database c's client uses: the analysts'
// database, after defaults.
func (c Config) DatabaseName() string { return c.withDefaults().Database }

// Addrs returns the addresses in Addr, after defaults.
func (c Config) Addrs() []string {
	var out []string
	for a := range strings.SplitSeq(c.withDefaults().Addr, ",") {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.Database = cmp.Or(c.Database, c.Schema.Database, DefaultDatabase)
	c.Schema.Database = cmp.Or(c.Schema.Database, c.Database)
	c.Username = cmp.Or(c.Username, DefaultUsername)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.MaxOpenConns = cmp.Or(c.MaxOpenConns, DefaultMaxOpenConns)
	c.Compression = cmp.Or(c.Compression, DefaultCompression)
	c.Schema = c.Schema.withDefaults()
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, a := range c.Addrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("Addr %q: %w", a, err))
		}
	}
	if c.Database != c.Schema.Database {
		errs = append(errs, fmt.Errorf("Database %q and Schema.Database %q differ", c.Database, c.Schema.Database))
	}
	if c.DialTimeout < 0 || c.ReadTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, errors.New("MaxOpenConns must be at least 1"))
	}
	switch c.Compression {
	case "lz4", "zstd", "none":
	default:
		errs = append(errs, fmt.Errorf("Compression %q: want lz4, zstd or none", c.Compression))
	}
	if err := c.Schema.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clickhouse config: %w", err)
	}
	return nil
}

// SchemaOptions describe the tables. Zero fields take the defaults above.
type SchemaOptions struct {
	// Database holds the tables analysts read; a plain identifier.
	Database string
	// PrivateDatabase holds the collector's secrets, which analysts must
	// not read: the daily session salts. Grant analysts Database only.
	// Default Database + "_private".
	PrivateDatabase string
	// RetentionDays maps a table name (see Tables) to the days it keeps
	// rows. Tables not named, or named with 0, keep the default: 90 days
	// for event tables, 400 for the rejects table and the aggregates, 1095
	// for the erasures audit log.
	RetentionDays map[string]int
	// Cluster, if set, names the cluster (from the servers' remote_servers
	// configuration, with internal_replication) the schema is created on:
	// DDL runs ON CLUSTER; sharded tables (events, held rows, counters,
	// aggregates) keep their rows in Replicated*MergeTree tables named
	// <table>_local and are queried and inserted through Distributed
	// tables with the plain names; apps, revocations, erasures, salts,
	// triage decisions, the migrations and k-anonymity's release log are
	// replicated to every server (see cluster.go). The servers need
	// {shard} and {replica} macros and ZooKeeper or Keeper, and the
	// client reaches each server at its remote_servers address (for
	// erasure, retention and the aggregates' fill).
	Cluster string
}

// withDefaults returns o with zero fields set to their defaults.
func (o SchemaOptions) withDefaults() SchemaOptions {
	o.Database = cmp.Or(o.Database, DefaultDatabase)
	o.PrivateDatabase = cmp.Or(o.PrivateDatabase, o.Database+"_private")
	return o
}

// Validate reports whether o, after defaults, is usable.
func (o SchemaOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if !isIdent(o.Database) {
		errs = append(errs, fmt.Errorf("database %q is not a plain identifier", o.Database))
	}
	if !isIdent(o.PrivateDatabase) {
		errs = append(errs, fmt.Errorf("private database %q is not a plain identifier", o.PrivateDatabase))
	} else if o.PrivateDatabase == o.Database {
		errs = append(errs, fmt.Errorf("private database %q must differ from the database", o.PrivateDatabase))
	}
	if o.Cluster != "" && !isIdent(o.Cluster) {
		errs = append(errs, fmt.Errorf("cluster %q is not a plain identifier", o.Cluster))
	}
	names := Tables()
	for table, days := range o.RetentionDays {
		if !slices.Contains(names, table) {
			errs = append(errs, fmt.Errorf("retention for unknown table %q (tables: %s)", table, strings.Join(names, ", ")))
		} else if days < 0 {
			errs = append(errs, fmt.Errorf("retention for %s: %d days is negative", table, days))
		}
	}
	return errors.Join(errs...)
}

// retention returns the days table t keeps rows, or 0 if it keeps them
// forever.
func (o SchemaOptions) retention(t *tableDef) int {
	if t.retention == 0 {
		return 0
	}
	if days := o.RetentionDays[t.name]; days > 0 {
		return days
	}
	return t.retention
}

// WriterConfig configures a Writer. Zero fields take the defaults above.
type WriterConfig struct {
	// MaxBatchRows seals a group of requests once it holds this many rows,
	// so a busy writer inserts large blocks without waiting.
	MaxBatchRows int
	// FlushInterval is how long a group stays open for more requests after
	// its first one arrived: the most a lone request waits for company.
	// Requests arriving while the flushers are busy are grouped anyway.
	FlushInterval time.Duration
	// MaxPendingRows bounds the rows accepted but not yet stored. Write
	// waits for room beyond it, and fails with pipeline.ErrOverloaded when
	// its context ends first.
	MaxPendingRows int
	// Flushers is the number of groups inserted at once.
	Flushers int
	// RetryBackoff is the pause before the first retry of a failed insert;
	// it doubles on each retry, with jitter, up to MaxRetryBackoff.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the pause between retries.
	MaxRetryBackoff time.Duration
	// MaxRetries bounds the retries of one group; a negative value disables
	// retries. Retries also stop once every request of the group has given
	// up.
	MaxRetries int
}

// withDefaults returns c with zero fields set to their defaults.
func (c WriterConfig) withDefaults() WriterConfig {
	c.MaxBatchRows = cmp.Or(c.MaxBatchRows, DefaultMaxBatchRows)
	c.MaxPendingRows = cmp.Or(c.MaxPendingRows, DefaultMaxPendingRows)
	c.Flushers = cmp.Or(c.Flushers, DefaultFlushers)
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.MaxRetryBackoff = cmp.Or(c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c WriterConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.MaxBatchRows < 1 || c.MaxPendingRows < 1 {
		errs = append(errs, errors.New("MaxBatchRows and MaxPendingRows must be at least 1"))
	}
	if c.Flushers < 1 || c.Flushers > 64 {
		errs = append(errs, fmt.Errorf("Flushers %d: want 1 to 64", c.Flushers))
	}
	if c.FlushInterval < 0 || c.RetryBackoff < 0 || c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, errors.New("intervals must be positive, and MaxRetryBackoff at least RetryBackoff"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clickhouse writer config: %w", err)
	}
	return nil
}

// RejectsConfig configures Rejects. Zero fields take the defaults above.
type RejectsConfig struct {
	// FlushInterval is how often the counts are stored.
	FlushInterval time.Duration
	// MaxKeys bounds the distinct (minute, app, reason) counters held in
	// memory. Beyond it, new apps are counted under OtherApp; counts that
	// find no room even there (after long storage outages) are dropped
	// and logged.
	MaxKeys int
	// SpillFile, if set, keeps the counts across a restart while
	// ClickHouse is away: the counts Close cannot store are written to
	// it (owner-only), and NewRejects counts what it finds there again,
	// so a later flush stores them; the file is removed once they are
	// stored. Empty: Close drops them and reports it.
	SpillFile string
}

// withDefaults returns c with zero fields set to their defaults.
func (c RejectsConfig) withDefaults() RejectsConfig {
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultRejectsFlushInterval)
	c.MaxKeys = cmp.Or(c.MaxKeys, DefaultRejectsMaxKeys)
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c RejectsConfig) Validate() error {
	c = c.withDefaults()
	if c.FlushInterval < 0 || c.MaxKeys < 1 {
		return errors.New("clickhouse rejects config: FlushInterval must be positive and MaxKeys at least 1")
	}
	return nil
}
