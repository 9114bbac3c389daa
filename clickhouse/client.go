// Package clickhouse stores Consentry's rows in ClickHouse.
//
// A Client connects over the native protocol with clickhouse-go/v2, detects
// the server's version and creates the schema that suits it (Migrate):
// servers from 21.8 on get LowCardinality strings, codecs, TTLs and table
// comments; older ones, down to Debian's 18.16, the same columns in plain
// types. Every query the project ships runs on both. Client.Insert stores
// rows with one column-oriented insert per table; a Writer groups concurrent
// requests into larger inserts, retries, and pushes back when ClickHouse
// falls behind; Rejects counts the events that were not stored. Retention
// is enforced by dropping day partitions (EnforceRetention), which works on
// every version. A Client is also the consent store (consent.Store): it
// keeps apps and revocations, and erases a revoked consent's rows by their
// consent_key. And it is the crash triage dashboard's storage
// (triage.Backend): it counts crash groups and sessions from the
// aggregates, reads one group's raw crashes, and records triage
// decisions.
//
// See README.md for the tables and example queries.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// Log field keys.
const (
	logKeyTable     = "table"
	logKeyPartition = "partition"
	logKeyVersion   = "version"
	logKeyName      = "name"
	logKeyStatement = "statement"
	logKeyServer    = "server"
	logKeyDatabase  = "database"
	logKeyRows      = "rows"
	logKeyAttempt   = "attempt"
	logKeyBackoff   = "backoff"
	logKeyKeys      = "keys"
	logKeyEvents    = "events"
	logKeyApp       = "app"
	logKeyDays      = "days"
	logKeyTook      = "took"
)

// Client stores rows in one ClickHouse database, on one server or a
// cluster. It is safe for concurrent use.
type Client struct {
	conn     driver.Conn
	cfg      Config // with defaults
	dialect  Dialect
	schema   *schema
	kanon    *kanonSchema
	logger   *zap.Logger
	onInsert func(rows int, took time.Duration, err error)
	// hosts are the servers of the cluster, nil without one.
	hosts *clusterHosts
}

// Open connects to the server cfg names, checks it answers, detects its
// version and creates cfg's database if missing. It does not create tables:
// call Migrate. logger may be nil.
func Open(ctx context.Context, cfg Config, logger *zap.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = zap.NewNop()
	}
	conn, err := clickhouse.Open(connOptions(cfg, cfg.Addrs(), cfg.MaxOpenConns))
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	c, err := newClient(ctx, conn, cfg, logger)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// connOptions returns the options of a connection pool of size conns to
// the servers at addrs (tried in order: the next when one cannot be
// dialled) for cfg, which has its defaults. On a cluster, inserts into
// Distributed tables are synchronous: an acknowledged insert is on a
// replica of every shard it touched, so the spool's acknowledgement
// means the same as on a single server and a repeated insert meets its
// first copy's deduplication.
func connOptions(cfg Config, addrs []string, conns int) *clickhouse.Options {
	methods := map[string]clickhouse.CompressionMethod{
		"lz4":  clickhouse.CompressionLZ4,
		"zstd": clickhouse.CompressionZSTD,
		"none": clickhouse.CompressionNone,
	}
	var settings clickhouse.Settings
	if cfg.Schema.Cluster != "" {
		settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	return &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     addrs,
		Auth: clickhouse.Auth{
			// The database may not exist yet: connect to "default" and
			// qualify every table with cfg.Database.
			Database: "default",
			Username: cfg.Username,
			Password: cfg.Password,
		},
		Settings:     settings,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		MaxOpenConns: conns,
		MaxIdleConns: conns,
		Compression:  &clickhouse.Compression{Method: methods[cfg.Compression]},
		// Shows in system.query_log's client name as
		// "clickhouse-go/2.x (consentry; ...)".
		ClientInfo: clickhouse.ClientInfo{Comment: []string{"consentry"}},
	}
}

// newClient finishes Open on an open connection.
func newClient(ctx context.Context, conn driver.Conn, cfg Config, logger *zap.Logger) (*Client, error) {
	if err := conn.Ping(ctx); err != nil {
		return nil, classify(fmt.Sprintf("ping clickhouse %s", cfg.Addr), err)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return nil, classify("query server version", err)
	}
	d, err := ParseVersion(version)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, cfg: cfg, dialect: d, schema: newSchema(cfg.Schema), logger: logger, onInsert: cfg.OnInsert}
	c.kanon = newKanonSchema(c.schema)
	o := c.schema.opts
	if o.Cluster != "" {
		if c.hosts, err = newClusterHosts(ctx, c); err != nil {
			return nil, err
		}
	}
	if err := c.createDatabase(ctx, o.Database); err != nil {
		c.hosts.close()
		return nil, classify("create database "+o.Database, err)
	}
	logger.Info("connected to clickhouse", zap.String(logKeyServer, d.String()), zap.String(logKeyDatabase, o.Database))
	return c, nil
}

// Dialect returns the server's version and schema flavour.
func (c *Client) Dialect() Dialect { return c.dialect }

// Ping checks that the server answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", err)
	}
	return nil
}

// Database returns the database that holds the tables.
func (c *Client) Database() string { return c.schema.opts.Database }

// PrivateDatabase returns the name of the database of the collector's
// secrets (SchemaOptions.PrivateDatabase), which analysts must not read.
func (c *Client) PrivateDatabase() string { return c.schema.opts.PrivateDatabase }

// Close closes the connection pools. Close the Writer and Rejects that
// use the Client first.
func (c *Client) Close() error {
	err := errors.Join(c.conn.Close(), c.hosts.close())
	if err != nil {
		return fmt.Errorf("close clickhouse: %w", err)
	}
	return nil
}

// Cluster returns the cluster's name (SchemaOptions.Cluster), "" for a
// single server.
func (c *Client) Cluster() string { return c.schema.opts.Cluster }

// tableSet is a set of event tables, one bit each.
type tableSet uint8

const (
	setSessions tableSet = 1 << iota
	setGestures
	setCrashes
	setCustoms
	setDiagnostics

	allTables = setSessions | setGestures | setCrashes | setCustoms | setDiagnostics
)

// Insert stores rows: one insert per table that has rows, the tables in
// parallel, or one after another if ctx is pipeline.Unhurried. An error
// wraps pipeline.ErrStorageUnavailable if it is worth retrying (the server
// is unreachable, overloaded or timed out); other errors, such as a schema
// that does not match, are permanent. On error some tables may have been
// stored.
func (c *Client) Insert(ctx context.Context, rows *pipeline.Rows) error {
	_, err := c.insert(ctx, rows, allTables)
	return err
}

// InsertDedup is Insert with a deduplication token: on servers that take
// tokens (Dialect.DedupTokens), repeating an insert of the same rows with
// the same token, in whole or in part, stores each table's rows once. On
// older servers the token is ignored, and repeated rows are merged away
// by event id in the background (count with FINAL or uniqExact(event_id)).
func (c *Client) InsertDedup(ctx context.Context, rows *pipeline.Rows, token string) error {
	_, err := c.insertToken(ctx, rows, allTables, token)
	return err
}

// insert stores rows of the tables in todo and returns the tables that
// failed, so a retry repeats only those.
func (c *Client) insert(ctx context.Context, rows *pipeline.Rows, todo tableSet) (tableSet, error) {
	return c.insertToken(ctx, rows, todo, "")
}

// observeInsert starts timing an insert of rows for Config.OnInsert: the
// function it returns reports it, with the insert's error. An insert of
// no rows is not reported.
func (c *Client) observeInsert(rows *pipeline.Rows) func(error) {
	if c.onInsert == nil || rows.Len() == 0 {
		return func(error) {}
	}
	start := time.Now()
	return func(err error) { c.onInsert(rows.Len(), time.Since(start), err) }
}

// insertToken is insert with a deduplication token, if not "", which is
// suffixed with each table's name.
func (c *Client) insertToken(ctx context.Context, rows *pipeline.Rows, todo tableSet, token string) (_ tableSet, err error) {
	done := c.observeInsert(rows)
	defer func() { done(err) }()
	return c.insertTables(ctx, rows, todo, token)
}

// tableContexts returns the context of each table's insert, by the
// table's name: ctx, with the deduplication token token (if not "" and
// the server takes tokens) suffixed with the table's name.
func (c *Client) tableContexts(ctx context.Context, token string) func(table string) context.Context {
	if token == "" || !c.dialect.DedupTokens() {
		return func(string) context.Context { return ctx }
	}
	return func(table string) context.Context {
		return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token + ":" + table}))
	}
}

// insertTables stores rows of the tables in todo, deduplicated by token
// (tableContexts), and returns the tables that failed.
func (c *Client) insertTables(ctx context.Context, rows *pipeline.Rows, todo tableSet, token string) (tableSet, error) {
	ctxFor := c.tableContexts(ctx, token)
	s := c.schema
	return insertJobs(pipeline.IsUnhurried(ctx), []tableJob{
		{setSessions, len(rows.Sessions), func() error {
			return insertRows(ctxFor(TableSessions), c.conn, s.sessions, rows.Sessions)
		}},
		{setGestures, len(rows.Gestures), func() error {
			return insertRows(ctxFor(TableGestures), c.conn, s.gestures, rows.Gestures)
		}},
		{setCrashes, len(rows.Crashes), func() error {
			return insertRows(ctxFor(TableCrashes), c.conn, s.crashes, rows.Crashes)
		}},
		{setCustoms, len(rows.Customs), func() error {
			return insertRows(ctxFor(TableCustomEvents), c.conn, s.customs, rows.Customs)
		}},
		{setDiagnostics, len(rows.Diagnostics), func() error {
			return insertRows(ctxFor(TableDiagnostics), c.conn, s.diagnostics, rows.Diagnostics)
		}},
	}, todo)
}

// tableJob is the insert of one table's rows.
type tableJob struct {
	set  tableSet
	rows int
	run  func() error
}

// insertJobs runs the jobs of the tables in todo that have rows, and
// returns the tables that failed. It runs them at once (each on a
// connection of its own: the server parses, sorts and writes one table's
// part while the others are being sent), or one after another if
// unhurried (pipeline.Unhurried): the client then encodes on one core,
// and the server writes one part at a time, leaving the machine's other
// cores to whatever else runs on it.
func insertJobs(unhurried bool, jobs []tableJob, todo tableSet) (tableSet, error) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed tableSet
		errs   []error
	)
	run := func(j tableJob) {
		if err := j.run(); err != nil {
			mu.Lock()
			failed |= j.set
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	for _, j := range jobs {
		switch {
		case todo&j.set == 0 || j.rows == 0:
		case unhurried:
			run(j)
		default:
			wg.Go(func() { run(j) })
		}
	}
	wg.Wait()
	return failed, errors.Join(errs...)
}

// insertRows stores rows in t with one column-oriented insert.
func insertRows[R any](ctx context.Context, conn driver.Conn, t *rowTable[R], rows []R) error {
	return insertColumns(ctx, conn, t, t.def.name, t.insertSQL, rows, nil)
}

// insertBlockRows is the most rows insertColumns sends in one block of
// an insert. The server squashes the blocks of one INSERT into blocks of
// min_insert_block_size_rows (about a million) before it writes parts, so
// an insert still makes one part per partition; the client reuses its
// column buffers from block to block instead of growing them to the
// insert's size (which cost a tenth of the collector's CPU in copies and
// zeroing when the shipper inserted 50,000 rows at once). clickhouse-go
// makes new buffers for every insert, so their growth to one block is
// allocated again each time: small blocks keep that small. A crash row
// with its frames and breadcrumbs holds hundreds of strings, so 2,048-row
// blocks still allocated ~700 bytes per row inserted; 512-row blocks
// allocate a third of that and cost the client a quarter less CPU, the
// server the same (BenchmarkInsert, rows=50000, five pairs).
const insertBlockRows = 512

// insertColumns stores rows with one column-oriented insert of statement
// sql into table, in blocks of at most insertBlockRows rows: t's columns,
// then the columns more appends for the block's rows, if more is not nil.
func insertColumns[R any](ctx context.Context, conn driver.Conn, t *rowTable[R], table, sql string, rows []R, more func(batch driver.Batch, rows []R) error) error {
	if len(rows) == 0 {
		return nil
	}
	enc := t.encoders.Get().(*encoder[R])
	defer func() {
		enc.reset()
		t.encoders.Put(enc)
	}()

	op := "insert into " + table
	batch, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		return classify(op, err)
	}
	defer batch.Close()
	for start := 0; start < len(rows); start += insertBlockRows {
		block := rows[start:min(len(rows), start+insertBlockRows)]
		enc.encode(block)
		if err := enc.appendTo(batch); err != nil {
			return classify(op, err)
		}
		enc.reset()
		// Encoding a large insert is background work: between blocks,
		// let the goroutines waiting to run (requests being acknowledged)
		// have the processor instead of waiting out a time slice.
		runtime.Gosched()
		if more != nil {
			if err := more(batch, block); err != nil {
				return classify(op, err)
			}
		}
		if start+insertBlockRows < len(rows) {
			if err := batch.Flush(); err != nil {
				return classify(op, err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return classify(op, err)
	}
	return nil
}

// retryableCode reports whether a server exception with code is worth
// retrying: the server is busy, short of memory, timed out, or lost its
// replicas or coordination service for a while.
func retryableCode(code int32) bool {
	switch code {
	case 3, // UNEXPECTED_END_OF_FILE
		159, // TIMEOUT_EXCEEDED
		160, // TOO_SLOW
		202, // TOO_MANY_SIMULTANEOUS_QUERIES
		203, // NO_FREE_CONNECTION
		209, // SOCKET_TIMEOUT
		210, // NETWORK_ERROR
		225, // NO_ZOOKEEPER
		236, // ABORTED
		241, // MEMORY_LIMIT_EXCEEDED
		242, // TABLE_IS_READ_ONLY: a replica lost its coordination session
		252, // TOO_MANY_PARTS
		285, // TOO_FEW_LIVE_REPLICAS
		286, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
		319, // UNKNOWN_STATUS_OF_INSERT
		394, // QUERY_WAS_CANCELLED
		425, // SYSTEM_ERROR
		439, // CANNOT_SCHEDULE_TASK
		999: // KEEPER_EXCEPTION
		return true
	}
	return false
}

// classify wraps err for op, adding pipeline.ErrStorageUnavailable when a
// retry may succeed. Context errors are the caller's and stay as they are.
func classify(op string, err error) error {
	if retryable(err) {
		return fmt.Errorf("%s: %w: %w", op, pipeline.ErrStorageUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Unavailable reports whether err is a transient failure of the server
// or the network, which retrying later may cure: an unreachable, busy or
// restarting server, a timeout on the wire.
func Unavailable(err error) bool {
	return errors.Is(err, pipeline.ErrStorageUnavailable) || retryable(err)
}

// retryable reports whether err is a transient failure of the server or the
// network.
func retryable(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return retryableCode(ex.Code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
}
