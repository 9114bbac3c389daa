package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/internal/every"
)

// TablePrivacyCounts counts, per UTC day and app, what the privacy report
// shows and no other table holds: identifiers the scrubber replaced, by
// detector; attributes dropped for an identifier-named key; consents
// granted; erasure receipts issued. Counts only, never values.
const TablePrivacyCounts = "privacy_counts"

// Kinds of privacy counts.
const (
	// CountScrub counts identifiers the scrubber replaced; the name is the
	// detector (scrub.Kind's name, e.g. "email"), or "identifier_key" for
	// custom attributes dropped for their key.
	CountScrub = "scrub"
	// CountConsent counts consent events: "granted", "receipt_erased",
	// "receipt_anonymous".
	CountConsent = "consent"
)

// countRow is one row of the privacy counts table.
type countRow struct {
	day   time.Time
	app   string
	kind  string
	name  string
	count uint64
}

func privacyCountsTable(database string) *rowTable[countRow] {
	return newRowTable(database,
		&tableDef{
			name:    TablePrivacyCounts,
			comment: "Privacy-relevant events counted per UTC day and app: identifiers scrubbed by detector, attributes dropped for an identifier-named key, consents granted, erasure receipts; no payload. Aggregate with sum(events).",
			// Rows with the same key are summed in the background.
			engine:    "SummingMergeTree",
			day:       "day",
			monthly:   true,
			orderBy:   []string{"app_id", "day", "kind", "name"},
			retention: DefaultAggregateRetentionDays,
			shardKey:  "rand()",
		},
		[]field[countRow]{
			dateCol("day", "UTC day the events were counted on (for scrub counts, the day the batch was received).",
				func(r *countRow) time.Time { return r.day }),
			lowCardCol("app_id", "App the events belong to.", func(r *countRow) string { return r.app }),
			lowCardCol("kind", "scrub (identifiers replaced, by detector) or consent (grants and erasure receipts).",
				func(r *countRow) string { return r.kind }),
			lowCardCol("name", "For scrub: the detector, e.g. email, or identifier_key for attributes dropped with their key; for consent: granted, receipt_erased or receipt_anonymous.",
				func(r *countRow) string { return r.name }),
			uint64Col("events", "Number of events: always aggregate with sum(events).", func(r *countRow) uint64 { return r.count }),
		})
}

// countKey is one counter.
type countKey struct {
	day             int64 // UTC day number
	app, kind, name string
}

// PrivacyCounts stores privacy counts (TablePrivacyCounts) like Rejects
// stores reject counts: adding is a map update under a mutex; the counts
// are stored every FlushInterval and on Close, and a failed flush keeps
// them for the next, within MaxKeys (then apps are counted as OtherApp).
type PrivacyCounts struct {
	cfg    RejectsConfig
	insert func(context.Context, []countRow) error
	logger *zap.Logger
	now    func() time.Time

	stop context.CancelFunc // ends the flush loop; Close calls it
	done chan struct{}      // closed when the flush loop has exited

	mu     sync.Mutex
	counts map[countKey]uint64
	closed bool
}

// NewPrivacyCounts returns PrivacyCounts that stores through c and starts
// its flush loop; Close it to store the last counts. logger may be nil.
func NewPrivacyCounts(cfg RejectsConfig, c *Client, logger *zap.Logger) (*PrivacyCounts, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	p := &PrivacyCounts{
		cfg: cfg.withDefaults(),
		insert: func(ctx context.Context, rows []countRow) error {
			return insertRows(ctx, c.conn, c.kanon.counts, rows)
		},
		logger: logger,
		now:    time.Now,
		done:   make(chan struct{}),
		counts: make(map[countKey]uint64),
	}
	loop, stop := context.WithCancel(context.Background())
	p.stop = stop
	go p.run(loop)
	return p, nil
}

// Count adds n events of kind and name for app, today (UTC). It never
// blocks on storage.
func (p *PrivacyCounts) Count(app, kind, name string, n int) {
	if n <= 0 {
		return
	}
	k := countKey{day: p.now().Unix() / 86400, app: app, kind: kind, name: name}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.add(k, uint64(n))
}

// add adds n to counter k, or to k's OtherApp counter once MaxKeys
// counters exist; beyond twice MaxKeys the count is dropped. Called with
// mu held.
func (p *PrivacyCounts) add(k countKey, n uint64) {
	if _, ok := p.counts[k]; !ok && len(p.counts) >= p.cfg.MaxKeys {
		k.app = OtherApp
		if _, ok := p.counts[k]; !ok && len(p.counts) >= 2*p.cfg.MaxKeys {
			return
		}
	}
	p.counts[k] += n
}

func (p *PrivacyCounts) run(loop context.Context) {
	defer close(p.done)
	every.Tick(loop, p.cfg.FlushInterval, false, func(context.Context) {
		// A flush Close waits for is not cut short by the loop's end.
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.FlushInterval)
		defer cancel()
		if err := p.Flush(ctx); err != nil {
			p.logger.Warn("storing privacy counts failed; kept for the next flush", zap.Error(err))
		}
	})
}

// Flush stores the counts now; on error they are kept for the next flush.
func (p *PrivacyCounts) Flush(ctx context.Context) error {
	p.mu.Lock()
	counts := p.counts
	p.counts = make(map[countKey]uint64, len(counts))
	p.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	rows := make([]countRow, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, countRow{day: time.Unix(k.day*86400, 0).UTC(), app: k.app, kind: k.kind, name: k.name, count: n})
	}
	if err := p.insert(ctx, rows); err != nil {
		p.mu.Lock()
		for k, n := range counts {
			p.add(k, n)
		}
		p.mu.Unlock()
		return fmt.Errorf("flush privacy counts: %w", err)
	}
	return nil
}

// Close stops the flush loop and stores the remaining counts; counts
// added later are dropped.
func (p *PrivacyCounts) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.stop()
	<-p.done
	if err := p.Flush(ctx); err != nil {
		return fmt.Errorf("close privacy counts: %w", err)
	}
	return nil
}
