package spool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// Defaults for zero fields of Config.
const (
	// DefaultSegmentBytes is the size beyond which Write starts a new
	// segment file.
	DefaultSegmentBytes = 64 << 20
	// DefaultMaxBytes caps the bytes written and not yet shipped.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxBatchRows is the most rows the shipper puts in one insert
	// round (one INSERT per table). ClickHouse writes a part per INSERT
	// and merges parts in the background: with rounds of 50,000 mixed
	// rows (parts of 2,500 to 27,000 rows per table) it merged every
	// stored row about 8 times over and spent twice the CPU per stored
	// row that the rounds of 200,000 cost (docs/benchmarks.md). The
	// shipper holds a round's rows decoded, about 1 KiB of memory each.
	DefaultMaxBatchRows = 200_000
	// DefaultRetryMin is the shipper's first pause after a failed insert.
	DefaultRetryMin = 100 * time.Millisecond
	// DefaultRetryMax caps the shipper's pause between retries.
	DefaultRetryMax = 10 * time.Second
	// DefaultReserveDivisor sets the default free-space reserve: the
	// volume's size divided by it (1/16), at most SegmentBytes.
	DefaultReserveDivisor = 16
)

// FullRetryDelay is the delay suggested to clients refused for a full
// spool: ClickHouse has been away for a while, so retrying every second
// would only add load.
const FullRetryDelay = 5 * time.Second

var (
	// ErrFull is returned by Write when the spool can take no more until
	// it ships: the bytes not yet shipped would exceed Config.MaxBytes, or
	// (ErrDiskFull, which wraps it) its volume's free space would fall
	// below the reserve. It specializes pipeline.ErrOverloaded: the
	// collector answers RESOURCE_EXHAUSTED (OVERLOADED) with a retry delay
	// of FullRetryDelay, and counts the batch as spool_full.
	ErrFull = pipeline.ErrOverloaded.Specialize("spool full", pipeline.ReasonSpoolFull, FullRetryDelay)
	// ErrDiskFull is returned by Write when storing the rows would leave
	// less than Config.ReserveBytes free on the spool's volume, or the
	// volume ran out of space while appending. It wraps ErrFull: to a
	// client it is the same condition, and it ends the same way, as the
	// shipper frees what it ships.
	ErrDiskFull = ErrFull.Specialize("spool volume below its free-space reserve", pipeline.ReasonSpoolFull, FullRetryDelay)
	// ErrClosed is returned by Write after Close, and by WaitShipped once
	// the shipper stopped short of its target. It wraps pipeline.ErrClosed.
	ErrClosed = pipeline.ErrClosed.Specialize("spool closed", pipeline.ReasonStorageUnavailable, pipeline.ErrClosed.RetryAfter)
)

// Inserter stores rows; token, when not "", is an insert deduplication
// token: an insert repeated with the same token and the same rows must not
// store them twice (ClickHouse's insert_deduplication_token on servers that
// support it). Insert must not keep rows, or anything in them, after it
// returns: the spool reuses them.
type Inserter interface {
	Insert(ctx context.Context, rows *pipeline.Rows, token string) error
}

// Gate is the consent check the shipper applies to every record just
// before its rows are stored (package consent implements it), so that
// revocation and erasure hold for data that waited in the spool, however
// stale the collector's view of revocations was when it accepted the
// batch. It must be safe for concurrent use.
//
// The shipper waits, before a record, until Horizon has passed the
// record's Origin.Received (shipping the records it already gathered
// first, then polling every 10–250 ms), and then asks Admit; a refused
// record is not stored, is counted (Stats.GateDroppedRecords and
// GateDroppedEvents) and is passed like a stored one: the checkpoint moves
// beyond it.
type Gate interface {
	// Horizon returns the time up to which the gate knows every
	// revocation and erasure (the start of its last successful refresh),
	// and false before the first. A record received after the horizon
	// waits until the horizon passes it: only then could a revocation
	// made before the record was received be missed no more.
	Horizon() (time.Time, bool)
	// Admit reports whether rows from origin may still be stored: false
	// when the consent was revoked at or before origin.Received, or when
	// the rows of origin.ConsentKey were erased.
	Admit(origin pipeline.Origin) bool
}

// Config configures a Spool. Dir and Inserter are required; zero values of
// the other fields take the defaults above.
type Config struct {
	// Dir holds the spool's files; created if missing. One Spool at a time
	// may use it (a lock file enforces this).
	Dir string
	// Inserter stores the shipped rows.
	Inserter Inserter
	// Gate, if set, is consulted for every record before it is shipped;
	// records it refuses are dropped and counted, never stored. Nil ships
	// every record.
	Gate Gate
	// SegmentBytes is the size beyond which a new segment file is started;
	// default 64 MiB. A record larger than it gets a segment of its own.
	SegmentBytes int64
	// MaxBytes caps the bytes of records written and not yet shipped, over
	// all segments; default 1 GiB. Write beyond it fails with ErrFull.
	MaxBytes int64
	// ReserveBytes is the free space Write leaves on the spool's volume,
	// whatever MaxBytes says: a Write that would leave less fails with
	// ErrDiskFull, so the volume never fills up (checkpoints, new
	// segments and whatever else shares the volume keep room). Default: a
	// sixteenth of the volume, at most SegmentBytes. Free space is
	// measured with statfs (at most a second old, less what was appended
	// since); where the platform cannot tell, only MaxBytes applies.
	ReserveBytes int64
	// MaxBatchRows is the most rows the shipper puts in one insert round
	// (one INSERT per table); default 200000. A single record with more
	// rows is inserted on its own.
	MaxBatchRows int
	// CommitDelay is how long a sync waits for more Writes to share it;
	// default 0: a sync starts as soon as the previous one ended, and every
	// Write that arrived meanwhile shares it (natural group commit).
	CommitDelay time.Duration
	// RetryMin and RetryMax bound the shipper's exponential backoff (with
	// jitter) after a failed insert; defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// OnSync, if set, is told how long each sync of the active segment
	// took (a sync covers every Write appended before it began: their
	// acknowledgement waited for it) and whether it failed.
	OnSync func(took time.Duration, err error)
	// Logger receives warnings about corruption, failed inserts and I/O
	// errors; nil logs nothing. Row contents and origins are never logged.
	Logger *zap.Logger

	// fsys replaces the operating system's file system in tests.
	fsys fileSystem
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("spool: Config.Dir is required")
	}
	if c.Inserter == nil {
		return c, errors.New("spool: Config.Inserter is required")
	}
	if c.SegmentBytes < 0 || c.MaxBytes < 0 || c.ReserveBytes < 0 || c.MaxBatchRows < 0 || c.CommitDelay < 0 ||
		c.RetryMin < 0 || c.RetryMax < 0 {
		return c, errors.New("spool: Config fields must not be negative")
	}
	c.SegmentBytes = cmp.Or(c.SegmentBytes, DefaultSegmentBytes)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	c.MaxBatchRows = cmp.Or(c.MaxBatchRows, DefaultMaxBatchRows)
	c.RetryMin = cmp.Or(c.RetryMin, DefaultRetryMin)
	c.RetryMax = cmp.Or(c.RetryMax, DefaultRetryMax)
	if c.RetryMax < c.RetryMin {
		return c, fmt.Errorf("spool: Config.RetryMax %v is below RetryMin %v", c.RetryMax, c.RetryMin)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.fsys == nil {
		c.fsys = osFS{}
	}
	return c, nil
}
