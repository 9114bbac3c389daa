package spool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

var _ pipeline.Sink = (*Spool)(nil)

// Defaults for zero fields of Config.
const (
	// DefaultSegmentBytes is the size beyond which Write starts a new
	// segment file.
	DefaultSegmentBytes = 64 << 20
	// DefaultMaxBytes caps the bytes written and not yet shipped.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxBatchRows is the most rows the shipper puts in one insert.
	DefaultMaxBatchRows = 50_000
	// DefaultRetryMin is the shipper's first pause after a failed insert.
	DefaultRetryMin = 100 * time.Millisecond
	// DefaultRetryMax caps the shipper's pause between retries.
	DefaultRetryMax = 10 * time.Second
	// DefaultReserveDivisor sets the default free-space reserve: the
	// volume's size divided by it (1/16), at most SegmentBytes.
	DefaultReserveDivisor = 16
)

// volumeMaxAge is how long a free-space measurement is reused.
const volumeMaxAge = time.Second

// normalRecordBytes is the record size Accepting assumes before the first
// Write: a batch of some 60 events.
const normalRecordBytes = 4 << 10

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
	// MaxBatchRows is the most rows the shipper puts in one insert; default
	// 50000. A single record with more rows is inserted on its own.
	MaxBatchRows int
	// CommitDelay is how long a sync waits for more Writes to share it;
	// default 0: a sync starts as soon as the previous one ended, and every
	// Write that arrived meanwhile shares it (natural group commit).
	CommitDelay time.Duration
	// RetryMin and RetryMax bound the shipper's exponential backoff (with
	// jitter) after a failed insert; defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
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
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = DefaultMaxBatchRows
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
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

// group is the records appended since the previous sync started; one sync
// makes them all durable.
type group struct {
	seg       *segment
	startOff  int64
	startSeq  uint64
	startRow  uint64
	endOff    int64
	endSeq    uint64
	endRow    uint64
	firstTime int64
	done      chan struct{} // closed once err is set
	err       error
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

// volume is what the spool knows of the free space on its volume, guarded
// by Spool.mu.
type volume struct {
	unsupported bool      // statfs cannot tell on this platform
	at          time.Time // of the last measurement; zero forces a new one
	free, total int64
	since       int64 // bytes appended since the measurement
	reserve     int64
	warned      time.Time // of the last statfs failure logged
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

func (s *Spool) open(ctx context.Context) error {
	ck, ckf, found, err := openCheckpoint(s.fs, s.dir)
	if err != nil {
		return err
	}
	s.ckf = ckf
	if !found {
		if _, err := rand.Read(ck.id[:]); err != nil {
			return fmt.Errorf("spool id: %w", err)
		}
	}
	s.id = ck.id
	s.initVolume()
	if err := s.loadSegments(ctx, ck); err != nil {
		return err
	}
	s.sh = &shipper{s: s, ck: ck, ctx: ctx, punchOK: true}
	if err := s.sh.seek(ck, found); err != nil {
		return err
	}
	if !found {
		if s.unshipped > 0 {
			s.log.Warn("spool: no checkpoint; shipping every segment (rows shipped before may be stored twice)",
				zap.Int64("bytes", s.unshipped))
		}
		ck = checkpoint{id: s.id, shipped: s.sh.cur.seq, row: s.sh.cur.row, pos: s.sh.pos(), trusted: true}
		if s.ckf, err = createCheckpoint(s.fs, s.dir, ck); err != nil {
			return err
		}
		s.sh.ck = ck
	}
	s.shipped = s.sh.cur.seq
	return nil
}

// initVolume measures the volume and sets the reserve.
func (s *Spool) initVolume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshVolumeLocked(time.Now())
	switch {
	case s.cfg.ReserveBytes > 0:
		s.vol.reserve = s.cfg.ReserveBytes
	case s.vol.unsupported || s.vol.at.IsZero():
		s.vol.reserve = s.cfg.SegmentBytes
	default:
		s.vol.reserve = min(s.cfg.SegmentBytes, s.vol.total/DefaultReserveDivisor)
	}
}

// refreshVolumeLocked measures the free space now.
func (s *Spool) refreshVolumeLocked(now time.Time) {
	if s.vol.unsupported {
		return
	}
	free, total, err := s.fs.Statfs(s.dir)
	if errors.Is(err, errors.ErrUnsupported) {
		s.vol.unsupported = true
		s.log.Info("spool: free space cannot be measured here; only the byte cap applies", zap.Error(err))
		return
	}
	if err != nil {
		if now.Sub(s.vol.warned) > time.Minute {
			s.vol.warned = now
			s.log.Warn("spool: measure free space", zap.Error(err))
		}
		return
	}
	s.vol.at, s.vol.free, s.vol.total, s.vol.since = now, free, total, 0
}

// freeLocked returns the free space on the volume, measuring it again when
// the last measurement is over a second old or, with need > 0, when what
// is left after need bytes nears the reserve (so a Write is refused on a
// fresh measurement, and accepted as soon as space was freed). It returns
// false when the platform cannot tell.
func (s *Spool) freeLocked(need int64) (int64, bool) {
	if s.vol.unsupported {
		return 0, false
	}
	now := time.Now()
	est := s.vol.free - s.vol.since
	if s.vol.at.IsZero() || now.Sub(s.vol.at) > volumeMaxAge || (need > 0 && est-need < 2*s.vol.reserve) {
		s.refreshVolumeLocked(now)
		est = s.vol.free - s.vol.since
	}
	if s.vol.at.IsZero() {
		return 0, false // never measured
	}
	return est, true
}

// volumeChanged makes the next free-space check measure again (space was
// freed).
func (s *Spool) volumeChanged() {
	s.mu.Lock()
	s.vol.at = time.Time{}
	s.mu.Unlock()
}

// lowOnSpace reports whether less than twice the reserve is free.
func (s *Spool) lowOnSpace() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	free, ok := s.freeLocked(0)
	return ok && free < 2*s.vol.reserve
}

func (s *Spool) segPath(num uint64) string {
	return filepath.Join(s.dir, segName(num))
}

// loadSegments validates the segment files, repairs the last one, and opens
// the active segment (reusing the last one when it is a version 2 segment
// whose sequences the checkpoint does not pass).
func (s *Spool) loadSegments(ctx context.Context, ck checkpoint) error {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var nums []uint64
	for _, name := range names {
		if num, ok := parseSegName(name); ok {
			nums = append(nums, num)
			s.maxNum = max(s.maxNum, num)
		}
	}
	slices.Sort(nums)
	var segs []*segment
	for i, num := range nums {
		seg, err := s.loadSegment(num, i == len(nums)-1)
		if err != nil {
			return err
		}
		if seg != nil {
			if len(segs) > 0 && seg.firstSeq < segs[len(segs)-1].firstSeq {
				return fmt.Errorf("segment %d starts at record %d, before segment %d (%d): segments out of order",
					seg.num, seg.firstSeq, segs[len(segs)-1].num, segs[len(segs)-1].firstSeq)
			}
			segs = append(segs, seg)
		}
	}

	// Sequences at or below what the checkpoint mentions may have been used
	// in a token; new records must never reuse them.
	minNext := ck.shipped
	if ck.intent {
		minNext = max(minNext, ck.intentEnd)
	}
	s.nextSeq = minNext
	if ck.trusted {
		s.nextRow = ck.row
	}
	if len(segs) > 0 {
		last := segs[len(segs)-1]
		end, err := s.scanLast(ctx, last, ck)
		if err != nil {
			return err
		}
		last.size, last.durable = end.off, end.off
		if last.version != segV1 && end.seq >= minNext {
			f, err := s.fs.OpenFile(s.segPath(last.num), os.O_RDWR, 0)
			if err != nil {
				return fmt.Errorf("open segment %d: %w", last.num, err)
			}
			s.w = f
			s.keyCRC = keyCRC(last.key)
			last.sealed = false
		}
		s.nextSeq = max(end.seq, minNext)
		s.nextRow = end.row
	}
	s.segs = segs
	if s.w == nil {
		num := s.maxNum + 1
		f, seg, err := s.createSegment(num, s.nextSeq, s.nextRow)
		if err != nil {
			return err
		}
		s.maxNum = num
		s.w = f
		s.keyCRC = keyCRC(seg.key)
		s.segs = append(s.segs, seg)
	}
	s.durableSeq, s.durableRow = s.nextSeq, s.nextRow

	drop := s.dropShippedLocked(ck.shipped, nil)
	s.removeSegments(drop)
	for _, seg := range s.segs {
		s.unshipped += seg.size - seg.hdrSize()
	}
	return nil
}

// loadSegment reads and checks the header of segment num. It returns nil
// (and removes the file) for a segment whose header is damaged: the last
// segment's header may be torn by a crash while it was created, before it
// held any record; elsewhere a bad header is corruption, and the records
// the segment held are counted as lost when the shipper finds the gap in
// sequences it leaves.
func (s *Spool) loadSegment(num uint64, last bool) (*segment, error) {
	path := s.segPath(num)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", num, err)
	}
	size, err := f.Size()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat segment %d: %w", num, err)
	}
	hb := make([]byte, min(size, segHeaderSizeV2))
	var h segHeader
	herr := fmt.Errorf("%w: %d bytes", errBadHeader, size)
	if size >= segHeaderSizeV1 {
		if err := readFull(f, hb, 0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("read segment %d: %w", num, err)
		}
		h, herr = parseSegHeader(hb)
		if herr == nil && h.num != num {
			herr = fmt.Errorf("%w: number %d in file %d", errBadHeader, h.num, num)
		}
	}
	_ = f.Close()
	if herr == nil {
		return &segment{num: num, version: h.version, firstSeq: h.firstSeq, firstRow: h.firstRow, key: h.key,
			size: size, durable: size, sealed: true}, nil
	}
	if last && (size < segHeaderSizeV2 || isZero(hb)) {
		s.log.Info("spool: removing segment torn while being created", zap.Uint64("segment", num), zap.Int64("bytes", size))
	} else {
		s.corruptBy.Add(uint64(max(size-segHeaderSizeV1, 0)))
		s.log.Warn("spool: corrupt segment header; skipping the segment",
			zap.Uint64("segment", num), zap.Int64("bytes", size), zap.Error(herr))
	}
	if err := s.fs.Remove(path); err != nil {
		return nil, fmt.Errorf("remove segment %d: %w", num, err)
	}
	return nil, nil
}

// scanLast reads the records of the last segment — from the checkpoint's
// position when it is in this segment (the bytes before it are shipped
// and may have been punched out), else from the start — and returns the
// cursor after the last valid record. Damage followed by a valid record is
// left for the shipper to skip (and count). Invalid bytes with no valid
// record after them are a torn write from a crash — never acknowledged —
// and are truncated away.
func (s *Spool) scanLast(ctx context.Context, seg *segment, ck checkpoint) (cursor, error) {
	path := s.segPath(seg.num)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return cursor{}, fmt.Errorf("open segment %d: %w", seg.num, err)
	}
	defer f.Close()
	var r frameReader
	r.reset(f, seg.header())
	c := seg.start()
	if ck.trusted && ck.pos.seg == seg.num && ck.pos.off >= c.off && ck.pos.off <= seg.size {
		c = cursor{off: ck.pos.off, seq: ck.shipped, row: ck.row, rowKnown: c.rowKnown}
	}
	var damaged *cursor // where a run of damage began
	for c.off < seg.size {
		if err := ctx.Err(); err != nil {
			return cursor{}, err
		}
		fr, d, err := r.step(ctx, c, seg.size)
		if err != nil {
			return cursor{}, fmt.Errorf("read segment %d at %d: %w", seg.num, c.off, err)
		}
		if d == nil {
			if damaged != nil {
				s.log.Warn("spool: damaged records in the last segment; the shipper will skip them",
					zap.Uint64("segment", seg.num), zap.Int64("offset", damaged.off), zap.Int64("next_valid_offset", c.off))
				damaged = nil
			}
			c = c.after(fr, r.v2)
			continue
		}
		if damaged == nil {
			at := c
			damaged = &at
		}
		if d.toEnd {
			break
		}
		c = d.next
	}
	if damaged != nil {
		// The last records are damaged, with nothing valid after them.
		s.log.Info("spool: truncating a torn write left by a crash",
			zap.Uint64("segment", seg.num), zap.Int64("offset", damaged.off), zap.Int64("bytes", seg.size-damaged.off))
		if err := truncateFile(s.fs, path, damaged.off); err != nil {
			return cursor{}, fmt.Errorf("truncate segment %d: %w", seg.num, err)
		}
		return *damaged, nil
	}
	return c, nil
}

func truncateFile(fsys fileSystem, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// createSegment creates segment num, whose first record will be firstSeq
// after firstRow rows, with a fresh frame key, and makes its header and
// directory entry durable.
func (s *Spool) createSegment(num, firstSeq, firstRow uint64) (file, *segment, error) {
	seg := &segment{num: num, version: segV2, firstSeq: firstSeq, firstRow: firstRow, size: segHeaderSizeV2, durable: segHeaderSizeV2}
	if _, err := rand.Read(seg.key[:]); err != nil {
		return nil, nil, fmt.Errorf("create segment %d: frame key: %w", num, err)
	}
	path := s.segPath(num)
	f, err := s.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("create segment %d: %w", num, err)
	}
	err = writeFull(f, seg.header().marshal(), 0)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = s.fs.SyncDir(s.dir)
	}
	if err != nil {
		_ = f.Close()
		_ = s.fs.Remove(path)
		return nil, nil, fmt.Errorf("create segment %d: %w", num, err)
	}
	return f, seg, nil
}

func (s *Spool) active() *segment { return s.segs[len(s.segs)-1] }

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *Spool) getEncoder() *encoder { return s.encoders.Get().(*encoder) }
func (s *Spool) putEncoder(e *encoder) {
	if cap(e.buf) > keepBigRead {
		e.buf = nil
	}
	s.encoders.Put(e)
}

// Write makes rows durable in the spool, with their origin, and returns
// nil once they are: the encoded record is appended to the active
// segment, and Write waits for the sync that covers it, which concurrent
// Writes share. It fails with an error wrapping ErrFull when the record
// would take the unshipped bytes beyond Config.MaxBytes, ErrDiskFull
// (which wraps ErrFull) when it would leave less than the reserve free on
// the volume or the volume ran out of space, ErrClosed after Close, and a
// wrapped I/O error (and pipeline.ErrStorageUnavailable) when the disk
// fails otherwise; the spool then truncates what it had appended and
// stays usable. If ctx ends while Write waits for the sync, Write returns
// ctx's error and the rows may still be stored.
//
// Write does not keep rows after it returns.
func (s *Spool) Write(ctx context.Context, rows *pipeline.Rows, origin pipeline.Origin) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: write: %w", err)
	}
	n := 0
	if rows != nil {
		n = rows.Len()
	}
	if n == 0 {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return fmt.Errorf("spool: write: %w", ErrClosed)
		}
		return nil
	}

	enc := s.getEncoder()
	defer s.putEncoder(enc)
	var hdr [frameHeaderSizeV2]byte
	frame := append(enc.buf[:0], hdr[:]...)
	frame = appendOrigin(frame, origin)
	frame = enc.appendRows(frame, rows)
	enc.buf = frame
	if len(frame)-frameHeaderSizeV2 > maxPayload {
		return fmt.Errorf("spool: write: %d rows encode to %d bytes, more than a record holds (%d)",
			n, len(frame)-frameHeaderSizeV2, maxPayload)
	}
	payloadCRC := crc32.Checksum(frame[frameHeaderSizeV2:], castagnoli)
	size := int64(len(frame))

	s.mu.Lock()
	g, err := s.appendLocked(ctx, frame, payloadCRC, size, uint64(n))
	s.mu.Unlock()
	if err != nil {
		return err
	}
	kick(s.syncKick)
	select {
	case <-g.done:
		if g.err != nil {
			return fmt.Errorf("spool: sync segment %d: %w", g.seg.num, ioError(g.err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("spool: write: waiting for sync: %w", ctx.Err())
	}
}

// ioError wraps an I/O error of the spool's disk: as ErrDiskFull when the
// volume is out of space (or quota), so the collector refuses like for a
// full spool, and always as pipeline.ErrStorageUnavailable.
func ioError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w: %w", ErrDiskFull, pipeline.ErrStorageUnavailable, err)
	}
	return fmt.Errorf("%w: %w", pipeline.ErrStorageUnavailable, err)
}

// appendLocked appends frame to the active segment, starting a new segment
// first if needed, and returns the group whose sync will cover it. s.mu is
// held, and released while waiting.
func (s *Spool) appendLocked(ctx context.Context, frame []byte, payloadCRC uint32, size int64, rows uint64) (*group, error) {
	rolling := false
	defer func() {
		if rolling {
			s.rollers--
		}
	}()
	for {
		if s.closed {
			return nil, fmt.Errorf("spool: write: %w", ErrClosed)
		}
		if s.unshipped+size > s.cfg.MaxBytes {
			return nil, fmt.Errorf("spool: write: %d bytes unshipped, record of %d bytes, cap %d: %w",
				s.unshipped, size, s.cfg.MaxBytes, ErrFull)
		}
		if free, ok := s.freeLocked(size); ok && free-size < s.vol.reserve {
			return nil, fmt.Errorf("spool: write: %d bytes free on the spool's volume, record of %d bytes, reserve %d: %w",
				free, size, s.vol.reserve, ErrDiskFull)
		}
		seg := s.active()
		needRoll := seg.size > seg.hdrSize() && seg.size+size > s.cfg.SegmentBytes
		if (needRoll || s.rollers > 0) && s.inflight != nil {
			// A new segment starts only between syncs; others wait with
			// the roller so it is not starved.
			if needRoll && !rolling {
				rolling = true
				s.rollers++
			}
			done := s.inflight.done
			s.mu.Unlock()
			select {
			case <-done:
				s.mu.Lock()
			case <-ctx.Done():
				s.mu.Lock()
				return nil, fmt.Errorf("spool: write: waiting for a new segment: %w", ctx.Err())
			}
			continue
		}
		if needRoll {
			if err := s.rollLocked(); err != nil {
				return nil, err
			}
			continue
		}
		break
	}

	seg := s.active()
	if s.broken != nil {
		if err := s.w.Truncate(seg.size); err != nil {
			return nil, fmt.Errorf("spool: write: repair segment %d: %w", seg.num, ioError(err))
		}
		s.broken = nil
	}
	seq, row := s.nextSeq, s.nextRow
	now := time.Now().UnixNano()
	sealFrame(frame, s.keyCRC, payloadCRC, uint32(rows), seq, row, now)
	if err := writeFull(s.w, frame, seg.size); err != nil {
		// Take back whatever part of the record reached the file.
		if terr := s.w.Truncate(seg.size); terr != nil {
			s.broken = terr
		}
		s.vol.at = time.Time{} // measure again: the volume may be full
		return nil, fmt.Errorf("spool: append to segment %d: %w", seg.num, ioError(err))
	}
	g := s.pending
	if g == nil {
		g = &group{seg: seg, startOff: seg.size, startSeq: seq, startRow: row, firstTime: now, done: make(chan struct{})}
		s.pending = g
	}
	seg.size += size
	s.nextSeq++
	s.nextRow += rows
	s.unshipped += size
	s.appended += size
	s.vol.since += size
	g.endOff, g.endSeq, g.endRow = seg.size, s.nextSeq, s.nextRow
	return g, nil
}

// rollLocked seals the active segment and starts a new one. The caller
// holds s.mu and no sync is in flight; the pending group is synced here.
func (s *Spool) rollLocked() error {
	seg := s.active()
	if s.broken != nil {
		if err := s.w.Truncate(seg.size); err != nil {
			return fmt.Errorf("spool: repair segment %d: %w", seg.num, ioError(err))
		}
		s.broken = nil
	}
	if g := s.pending; g != nil {
		s.pending = nil
		err := s.w.Sync()
		s.fsyncs.Add(1)
		if err != nil {
			s.failLocked(g, err)
			return fmt.Errorf("spool: sync segment %d: %w", seg.num, ioError(err))
		}
		s.completeLocked(g)
	}
	num := s.maxNum + 1
	f, next, err := s.createSegment(num, s.nextSeq, s.nextRow)
	if err != nil {
		s.vol.at = time.Time{}
		return fmt.Errorf("spool: %w", ioError(err))
	}
	s.maxNum = num
	if err := s.w.Close(); err != nil {
		s.log.Warn("spool: close segment", zap.Uint64("segment", seg.num), zap.Error(err))
	}
	seg.sealed = true
	seg.durable = seg.size
	s.w = f
	s.keyCRC = keyCRC(next.key)
	s.segs = append(s.segs, next)
	return nil
}

// completeLocked marks g durable and wakes its Writes and the shipper.
func (s *Spool) completeLocked(g *group) {
	g.seg.durable = g.endOff
	s.durableSeq, s.durableRow = g.endSeq, g.endRow
	s.written.Add(g.endSeq - g.startSeq)
	s.writtenRows.Add(g.endRow - g.startRow)
	if s.headTime == 0 {
		s.headTime = g.firstTime
	}
	close(g.done)
	kick(s.shipKick)
}

// failLocked fails g, whose sync failed, and the group appended after it:
// their records are truncated away so the segment ends at its last durable
// record, and their Writes get err.
func (s *Spool) failLocked(g *group, err error) {
	seg := g.seg
	if terr := s.w.Truncate(g.startOff); terr != nil {
		s.broken = terr
	}
	s.unshipped -= seg.size - g.startOff
	seg.size = g.startOff
	s.nextSeq, s.nextRow = g.startSeq, g.startRow
	s.vol.at = time.Time{}
	g.err = err
	close(g.done)
	if p := s.pending; p != nil {
		p.err = err
		close(p.done)
		s.pending = nil
	}
	s.log.Warn("spool: sync failed; the Writes it covered failed", zap.Uint64("segment", seg.num), zap.Error(err))
}

// syncLoop syncs the active segment whenever records were appended, one
// sync covering every record appended before it started.
func (s *Spool) syncLoop() {
	defer close(s.syncerDone)
	for {
		s.mu.Lock()
		if s.pending == nil {
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.syncKick
			continue
		}
		if d := s.cfg.CommitDelay; d > 0 && !s.closed {
			s.mu.Unlock()
			time.Sleep(d)
			s.mu.Lock()
			if s.pending == nil || s.inflight != nil {
				s.mu.Unlock()
				continue
			}
		}
		g := s.pending
		s.pending = nil
		s.inflight = g
		w := s.w
		s.mu.Unlock()

		err := w.Sync()

		s.mu.Lock()
		s.inflight = nil
		s.fsyncs.Add(1)
		if err != nil {
			s.failLocked(g, err)
		} else {
			s.completeLocked(g)
		}
		s.mu.Unlock()
	}
}

// sealActive makes sure seg is no longer written, starting a new segment if
// it is the active one: the shipper seals a segment it found damaged to
// its end, so that what follows the damage is known (it starts the next
// segment). With onlyIfCaughtUp, seg is sealed only if it is the active
// segment, holds records, and every one of them is durable; it reports
// whether it sealed.
func (s *Spool) sealActive(ctx context.Context, seg *segment, onlyIfCaughtUp bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if onlyIfCaughtUp && (seg.sealed || s.closed || seg != s.active() || seg.size == seg.hdrSize() ||
		s.pending != nil || s.inflight != nil || seg.durable != seg.size) {
		return false, nil
	}
	for !seg.sealed {
		if s.closed {
			// No more appends: what is durable is all there is.
			seg.sealed = true
			seg.size = seg.durable
			return true, nil
		}
		if s.inflight != nil {
			done := s.inflight.done
			s.mu.Unlock()
			select {
			case <-done:
				s.mu.Lock()
			case <-ctx.Done():
				s.mu.Lock()
				return false, ctx.Err()
			}
			continue
		}
		if err := s.rollLocked(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// dropShippedLocked removes from s.segs the segments whose records are all
// below shipped, except keep, and returns them for removal.
func (s *Spool) dropShippedLocked(shipped uint64, keep *segment) []*segment {
	var drop []*segment
	for len(s.segs) > 1 && s.segs[0] != keep && s.segs[1].firstSeq <= shipped {
		drop = append(drop, s.segs[0])
		s.segs = s.segs[1:]
	}
	return drop
}

func (s *Spool) removeSegments(drop []*segment) {
	if len(drop) == 0 {
		return
	}
	for _, seg := range drop {
		if err := s.fs.Remove(s.segPath(seg.num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("spool: remove shipped segment", zap.Uint64("segment", seg.num), zap.Error(err))
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		s.log.Warn("spool: sync directory", zap.Error(err))
	}
	s.volumeChanged()
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
