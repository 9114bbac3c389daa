package spool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

var _ pipeline.Sink = (*Spool)(nil)

// Stats are a Spool's gauges and counters, for metrics.
type Stats struct {
	// Bytes is the size of the records written and not yet shipped.
	Bytes int64
	// Segments is the number of segment files.
	Segments int
	// PendingRecords is the number of durable records not yet shipped
	// (records lost to corruption count until the shipper passes them).
	PendingRecords uint64
	// WrittenRecords and WrittenRows count what Writes made durable since
	// Open.
	WrittenRecords, WrittenRows uint64
	// ShippedRecords and ShippedRows count what the shipper stored since
	// Open (a record redone after a crash counts again).
	ShippedRecords, ShippedRows uint64
	// CorruptRecords counts the records lost to damage since Open: the
	// sequence numbers a damaged run of bytes swallowed (one for a flipped
	// bit in a payload), and records whose checksum held but whose
	// payload did not decode. CorruptEvents counts the events (rows) in
	// them, exactly for format v2 segments (not counted in v1 segments,
	// whose records do not say). CorruptBytes counts the bytes skipped.
	CorruptRecords, CorruptEvents, CorruptBytes uint64
	// GateDroppedRecords and GateDroppedEvents count the records, and
	// their events, that the Gate refused at ship time (revoked or
	// erased while they waited) since Open.
	GateDroppedRecords, GateDroppedEvents uint64
	// InsertErrors counts failed inserts (each is retried).
	InsertErrors uint64
	// Fsyncs counts segment syncs made for Writes; Fsyncs/WrittenRecords
	// shows how well group commit works.
	Fsyncs uint64
	// FreeBytes is the free space on the spool's volume as last measured
	// (at most a second old, less what was appended since); -1 where the
	// platform cannot tell. ReserveBytes is the free space Writes leave.
	FreeBytes, ReserveBytes int64
	// LastInsert is how long the last insert took.
	LastInsert time.Duration
	// ShipLag is the age of the oldest record not yet shipped, 0 when
	// everything is shipped.
	ShipLag time.Duration
}

// segment is one segment file's bookkeeping, guarded by Spool.mu.
type segment struct {
	num      uint64
	version  uint16
	firstSeq uint64
	firstRow uint64
	key      [segKeyBytes]byte
	// size is the file's length that counts: for the active segment, up to
	// the last appended record; for a sealed one, its final length.
	size int64
	// durable is the synced prefix of the active segment; records below it
	// may be shipped. Equal to size once sealed.
	durable int64
	// sealed segments are no longer written.
	sealed bool
}

func (seg *segment) header() segHeader {
	return segHeader{version: seg.version, num: seg.num, firstSeq: seg.firstSeq, firstRow: seg.firstRow, key: seg.key}
}

func (seg *segment) hdrSize() int64 { return seg.header().size() }

// start is the cursor at the segment's first record.
func (seg *segment) start() cursor {
	return cursor{off: seg.hdrSize(), seq: seg.firstSeq, row: seg.firstRow, rowKnown: seg.version != segV1}
}

// Spool is a local write-ahead spool in front of an Inserter: Write makes a
// batch durable in an append-only segment file and returns, and a shipper
// goroutine inserts the spooled records in order, exactly once given an
// Inserter that honours deduplication tokens. See the package
// documentation for the format and guarantees. A Spool is safe for
// concurrent use.
type Spool struct {
	cfg  Config
	fs   fileSystem
	log  *zap.Logger
	dir  string
	id   [idBytes]byte
	lock io.Closer
	ckf  *ckFile // owned by the shipper once it runs

	encoders sync.Pool

	mu         sync.Mutex
	segs       []*segment // oldest first; the last one is the active segment
	w          file       // the active segment, open for writing
	keyCRC     uint32     // the active segment's frame key CRC
	maxNum     uint64     // highest segment number seen in Dir
	nextSeq    uint64     // sequence of the next appended record
	nextRow    uint64     // rows appended before the next record
	durableSeq uint64     // records below it are durable
	durableRow uint64     // rows in the durable records
	pending    *group     // appended, sync not started
	inflight   *group     // being synced
	rollers    int        // Writes waiting to start a new segment
	broken     error      // the active file may hold bytes past its size
	closed     bool
	unshipped  int64
	appended   int64         // bytes appended since Open, for the normal record size
	shipped    uint64        // records below it are shipped or lost
	shippedCh  chan struct{} // closed and replaced when shipped moves
	headTime   int64         // write time of the oldest unshipped record (Unix ns), 0 if unknown
	shipperOut bool          // the shipper goroutine has exited
	closeDone  chan struct{} // non-nil once Close started; closed when it ends
	closeErr   error
	vol        volume

	syncKick    chan struct{}
	shipKick    chan struct{}
	drain       chan struct{} // closed by Close: ship what is left, then stop
	syncerDone  chan struct{}
	shipperDone chan struct{}
	shipCtx     context.Context
	shipCancel  context.CancelFunc
	sh          *shipper

	written, writtenRows               atomic.Uint64
	shippedRecs, shipRows              atomic.Uint64
	corruptRecs, corruptEvs, corruptBy atomic.Uint64
	gateDropped, gateDroppedRows       atomic.Uint64
	insertErrors, fsyncs               atomic.Uint64
	lastInsert                         atomic.Int64
}

// Open opens the spool in cfg.Dir, creating it if needed: it validates the
// segments, truncates a torn record at the end of the last one (left by a
// crash), reads the checkpoint, and starts the goroutine that syncs Writes
// and the shipper, which first redoes an insert the checkpoint says may
// have been interrupted, then ships everything not yet shipped. Close the
// Spool to stop them. Open needs no free space on a volume the spool
// filled, unless the spool is new or its format is being upgraded.
func Open(ctx context.Context, cfg Config) (*Spool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Spool{
		cfg:         cfg,
		fs:          cfg.fsys,
		log:         cfg.Logger.With(zap.String("spool", cfg.Dir)),
		dir:         cfg.Dir,
		shippedCh:   make(chan struct{}),
		syncKick:    make(chan struct{}, 1),
		shipKick:    make(chan struct{}, 1),
		drain:       make(chan struct{}),
		syncerDone:  make(chan struct{}),
		shipperDone: make(chan struct{}),
	}
	s.encoders.New = func() any { return newEncoder() }
	if err := s.fs.MkdirAll(s.dir); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", s.dir, err)
	}
	// Make Dir's own entry durable, in case it was just created.
	if err := s.fs.SyncDir(filepath.Dir(filepath.Clean(s.dir))); err != nil {
		s.log.Warn("spool: sync the parent of the spool directory", zap.Error(err))
	}
	lock, err := s.fs.Lock(filepath.Join(s.dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.lock = lock
	if err := s.open(ctx); err != nil {
		if s.sh != nil {
			s.sh.closeFile()
		}
		if s.w != nil {
			_ = s.w.Close()
		}
		if s.ckf != nil {
			_ = s.ckf.close()
		}
		_ = s.lock.Close()
		return nil, fmt.Errorf("spool: open %s: %w", s.dir, err)
	}
	s.shipCtx, s.shipCancel = context.WithCancel(context.Background())
	s.sh.ctx = s.shipCtx
	go s.syncLoop()
	go s.sh.run()
	return s, nil
}

func (s *Spool) segPath(num uint64) string {
	return filepath.Join(s.dir, segName(num))
}

// Close stops accepting Writes (they fail with ErrClosed), lets the Writes
// already appended finish, lets the shipper ship what it can until ctx
// ends, persists the checkpoint and closes the files. What is not shipped
// stays in Dir and is shipped after the next Open. Close is idempotent:
// later calls wait for the first one and return its result.
func (s *Spool) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closeDone != nil {
		done := s.closeDone
		s.mu.Unlock()
		select {
		case <-done:
			return s.closeErr
		case <-ctx.Done():
			return fmt.Errorf("spool: close: %w", ctx.Err())
		}
	}
	s.closed = true
	s.closeDone = make(chan struct{})
	s.mu.Unlock()

	kick(s.syncKick)
	<-s.syncerDone
	close(s.drain)
	stop := context.AfterFunc(ctx, s.shipCancel)
	<-s.shipperDone
	stop()
	s.shipCancel()

	var errs []error
	s.mu.Lock()
	if err := s.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close segment: %w", err))
	}
	if err := s.ckf.close(); err != nil {
		errs = append(errs, fmt.Errorf("close checkpoint: %w", err))
	}
	if st := s.sh.err; st != nil {
		errs = append(errs, st)
	}
	s.mu.Unlock()
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("release lock: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		s.closeErr = fmt.Errorf("spool: close: %w", err)
	}
	close(s.closeDone)
	return s.closeErr
}

// WaitShipped blocks until every record made durable before the call is
// shipped (or skipped as corrupt, or refused by the Gate), ctx ends, or
// the shipper stops.
func (s *Spool) WaitShipped(ctx context.Context) error {
	s.mu.Lock()
	target := s.durableSeq
	for s.shipped < target {
		if s.shipperOut {
			s.mu.Unlock()
			return fmt.Errorf("spool: wait shipped: %w", ErrClosed)
		}
		ch := s.shippedCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("spool: wait shipped: %w", ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// Accepting reports whether a Write of a normal batch (the mean record
// size so far) would be accepted now: nil, or why not — an error wrapping
// ErrClosed, ErrFull (the byte cap) or ErrDiskFull (the volume's free
// space is below the reserve). It measures free space at most once a
// second, so it is cheap enough for every health check.
func (s *Spool) Accepting() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("spool: %w", ErrClosed)
	}
	normal := int64(normalRecordBytes)
	if n := s.written.Load(); n > 0 {
		normal = max(s.appended/int64(n), 1)
	}
	if s.unshipped+normal > s.cfg.MaxBytes {
		return fmt.Errorf("spool: %d bytes unshipped, cap %d: %w", s.unshipped, s.cfg.MaxBytes, ErrFull)
	}
	if free, ok := s.freeLocked(0); ok && free-normal < s.vol.reserve {
		return fmt.Errorf("spool: %d bytes free on the spool's volume, reserve %d: %w", free, s.vol.reserve, ErrDiskFull)
	}
	return nil
}

// Stats returns the spool's gauges and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{Bytes: s.unshipped, Segments: len(s.segs), FreeBytes: -1, ReserveBytes: s.vol.reserve}
	if s.durableSeq > s.shipped {
		st.PendingRecords = s.durableSeq - s.shipped
		if s.headTime != 0 {
			st.ShipLag = max(time.Since(time.Unix(0, s.headTime)), 0)
		}
	}
	if free, ok := s.freeLocked(0); ok {
		st.FreeBytes = max(free, 0)
	}
	s.mu.Unlock()
	st.WrittenRecords = s.written.Load()
	st.WrittenRows = s.writtenRows.Load()
	st.ShippedRecords = s.shippedRecs.Load()
	st.ShippedRows = s.shipRows.Load()
	st.CorruptRecords = s.corruptRecs.Load()
	st.CorruptEvents = s.corruptEvs.Load()
	st.CorruptBytes = s.corruptBy.Load()
	st.GateDroppedRecords = s.gateDropped.Load()
	st.GateDroppedEvents = s.gateDroppedRows.Load()
	st.InsertErrors = s.insertErrors.Load()
	st.Fsyncs = s.fsyncs.Load()
	st.LastInsert = time.Duration(s.lastInsert.Load())
	return st
}

// ID returns the spool's id, which prefixes its deduplication tokens.
func (s *Spool) ID() string { return hex.EncodeToString(s.id[:]) }
