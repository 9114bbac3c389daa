package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/atomicfile"
	"github.com/consentry/consentry/pipeline"
)

// OtherApp is the app_id under which Rejects counts the events of apps
// beyond RejectsConfig.MaxKeys, so that a flood of made-up app ids cannot
// grow its memory.
const OtherApp = "_other"

var _ pipeline.RejectCounter = (*Rejects)(nil)

// Rejects is the pipeline.RejectCounter that stores counts of events that
// were not stored in the rejects table. Counting is a map update under a
// mutex; the counts are stored every FlushInterval and on Close. A failed
// flush keeps its counts for the next one, within MaxKeys; with a
// SpillFile, the counts Close cannot store are kept there for the next
// run.
type Rejects struct {
	// counter holds the counts and runs the flush loop; its methods are
	// unexported, so embedding it adds nothing to Rejects' API.
	*counter[rejectKey, rejectRow]

	cfg    RejectsConfig
	logger *zap.Logger

	// spilled: counts loaded from SpillFile are not stored yet, so the
	// file stays until a flush succeeds.
	spilled atomic.Bool
}

// rejectKey is one counter: events of app rejected for reason in a minute.
type rejectKey struct {
	minute int64 // Unix minutes
	app    string
	reason pipeline.Reason
}

// NewRejects returns a Rejects that stores counts through c and starts its
// flush loop. Close it to store the last counts. logger may be nil.
func NewRejects(cfg RejectsConfig, c *Client, logger *zap.Logger) (*Rejects, error) {
	return newRejects(cfg, func(ctx context.Context, rows []rejectRow) error {
		return insertRows(ctx, c.conn, c.schema.rejects, rows)
	}, logger)
}

func newRejects(cfg RejectsConfig, insert func(context.Context, []rejectRow) error, logger *zap.Logger) (*Rejects, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	r := &Rejects{cfg: cfg.withDefaults(), logger: logger}
	r.counter = newCounter(counterConfig[rejectKey, rejectRow]{
		name:     "reject counts",
		maxKeys:  r.cfg.MaxKeys,
		interval: r.cfg.FlushInterval,
		overflow: func(k rejectKey) rejectKey { k.app = OtherApp; return k },
		row: func(k rejectKey, n uint64) rejectRow {
			return rejectRow{minute: time.Unix(k.minute*60, 0).UTC(), app: k.app, reason: string(k.reason), events: n}
		},
		insert:     insert,
		stored:     r.stored,
		reportLost: true,
		logger:     logger,
	})
	if err := r.loadSpill(); err != nil {
		return nil, err
	}
	r.start()
	return r, nil
}

// spillRow is one counter in SpillFile.
type spillRow struct {
	Minute int64  `json:"minute"` // Unix minutes
	App    string `json:"app"`
	Reason string `json:"reason"`
	Events uint64 `json:"events"`
}

// spillFile is SpillFile's contents: the rows and the CRC-32C of their
// JSON, so that a damaged byte is found rather than counted. Releases
// before it wrote the rows alone, which loadSpill still reads.
type spillFile struct {
	Rows   json.RawMessage `json:"rows"`
	CRC32C uint32          `json:"crc32c"`
}

// spillTable is the CRC-32C (Castagnoli) table of spillFile.
var spillTable = crc32.MakeTable(crc32.Castagnoli)

// loadSpill counts the contents of SpillFile, if there is one. A file
// that does not read whole (a crash while an older release wrote it, a
// damaged byte) is moved aside to SpillFile.damaged and its counts are
// lost, with an error logged: a start is not refused for counts.
func (r *Rejects) loadSpill() error {
	if r.cfg.SpillFile == "" {
		return nil
	}
	b, err := os.ReadFile(r.cfg.SpillFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rejects: load spilled counts: %w", err)
	}
	rows, err := parseSpill(b)
	if err != nil {
		aside := r.cfg.SpillFile + ".damaged"
		if rerr := os.Rename(r.cfg.SpillFile, aside); rerr != nil {
			aside = r.cfg.SpillFile
			err = errors.Join(err, rerr)
		}
		r.logger.Error("reject counts a previous run kept are damaged: not counted", zap.String("file", aside), zap.Error(err))
		return nil
	}
	counts := make(map[rejectKey]uint64, len(rows))
	var events uint64
	for _, row := range rows {
		counts[rejectKey{minute: row.Minute, app: row.App, reason: pipeline.Reason(row.Reason)}] += row.Events
		events += row.Events
	}
	r.restore(counts)
	r.spilled.Store(true)
	r.logger.Info("loaded reject counts a previous run could not store", zap.Int(logKeyKeys, len(rows)), zap.Uint64(logKeyEvents, events))
	return nil
}

// parseSpill returns the rows of a SpillFile's contents b, checked
// against their CRC (or, as older releases wrote them, a bare array).
func parseSpill(b []byte) ([]spillRow, error) {
	raw := b
	if trimmed := bytes.TrimSpace(b); len(trimmed) == 0 || trimmed[0] != '[' {
		var f spillFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, err
		}
		if got := crc32.Checksum(f.Rows, spillTable); got != f.CRC32C || len(f.Rows) == 0 {
			return nil, fmt.Errorf("checksum %08x, want %08x", got, f.CRC32C)
		}
		raw = f.Rows
	}
	var rows []spillRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// spill writes the counts not yet stored to SpillFile, replacing it
// whole or not at all, and forgets them.
func (r *Rejects) spill() error {
	counts := r.snapshot()
	if len(counts) == 0 {
		return nil
	}
	rows := make([]spillRow, 0, len(counts))
	var events uint64
	for k, n := range counts {
		rows = append(rows, spillRow{Minute: k.minute, App: k.app, Reason: string(k.reason), Events: n})
		events += n
	}
	raw, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	b, err := json.Marshal(spillFile{Rows: raw, CRC32C: crc32.Checksum(raw, spillTable)})
	if err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	if err := atomicfile.Replace(r.cfg.SpillFile, b); err != nil {
		return fmt.Errorf("spill reject counts: %w", err)
	}
	r.logger.Warn("storage unavailable: kept reject counts for the next run", zap.String("file", r.cfg.SpillFile),
		zap.Int(logKeyKeys, len(rows)), zap.Uint64(logKeyEvents, events))
	return nil
}

// CountRejects adds n events of app rejected for reason in the current
// minute. It never blocks on storage.
func (r *Rejects) CountRejects(app string, reason pipeline.Reason, n int) {
	if n <= 0 {
		return
	}
	r.count(rejectKey{minute: time.Now().Unix() / 60, app: app, reason: reason}, uint64(n))
}

// Flush stores the counts now. On error the counts are kept for the next
// flush.
func (r *Rejects) Flush(ctx context.Context) error {
	return r.flush(ctx)
}

// stored logs a successful flush of keys counters and, if the counts
// loaded from SpillFile were in it, removes the file.
func (r *Rejects) stored(keys int) error {
	r.logger.Debug("stored reject counts", zap.Int(logKeyKeys, keys))
	if r.spilled.Swap(false) {
		// The spilled counts were in this flush.
		if err := os.Remove(r.cfg.SpillFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", r.cfg.SpillFile, err)
		}
	}
	return nil
}

// Close stops the flush loop and stores the remaining counts. Counts added
// after Close are dropped. If they cannot be stored before ctx ends, they
// are written to SpillFile if set (and Close returns nil once they are);
// else they are lost and Close returns an error.
func (r *Rejects) Close(ctx context.Context) error {
	err := r.close(ctx)
	if err != nil && r.cfg.SpillFile != "" {
		serr := r.spill()
		if serr == nil {
			return nil
		}
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("close rejects: %w", err)
	}
	return nil
}
