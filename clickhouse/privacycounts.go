package clickhouse

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
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
	// counter holds the counts and runs the flush loop; its methods are
	// unexported, so embedding it adds nothing to PrivacyCounts' API.
	*counter[countKey, countRow]

	now func() time.Time
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
	cfg = cfg.withDefaults()
	p := &PrivacyCounts{
		counter: newCounter(counterConfig[countKey, countRow]{
			name:     "privacy counts",
			maxKeys:  cfg.MaxKeys,
			interval: cfg.FlushInterval,
			overflow: func(k countKey) countKey { k.app = OtherApp; return k },
			row: func(k countKey, n uint64) countRow {
				return countRow{day: time.Unix(k.day*86400, 0).UTC(), app: k.app, kind: k.kind, name: k.name, count: n}
			},
			insert: func(ctx context.Context, rows []countRow) error {
				return insertRows(ctx, c.conn, c.kanon.counts, rows)
			},
			logger: logger,
		}),
		now: time.Now,
	}
	p.start()
	return p, nil
}

// Count adds n events of kind and name for app, today (UTC). It never
// blocks on storage.
func (p *PrivacyCounts) Count(app, kind, name string, n int) {
	if n <= 0 {
		return
	}
	p.count(countKey{day: p.now().Unix() / 86400, app: app, kind: kind, name: name}, uint64(n))
}

// Flush stores the counts now; on error they are kept for the next flush.
func (p *PrivacyCounts) Flush(ctx context.Context) error {
	return p.flush(ctx)
}

// Close stops the flush loop and stores the remaining counts; counts
// added later are dropped.
func (p *PrivacyCounts) Close(ctx context.Context) error {
	if err := p.close(ctx); err != nil {
		return fmt.Errorf("close privacy counts: %w", err)
	}
	return nil
}
