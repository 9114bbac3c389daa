package kanon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// Store holds the held rows, the public tables they move to and the
// release log; package clickhouse implements it over the private
// database (held rows, the log) and the analysts' database (the event
// tables).
type Store interface {
	// InsertHeld stores rows in the held tables. token, if not "", is an
	// insert deduplication token, as for the event tables.
	InsertHeld(ctx context.Context, rows *pipeline.Rows, token string) error
	// HeldUnits returns the apps and days that have held rows.
	HeldUnits(ctx context.Context) ([]Unit, error)
	// HeldGroups returns u's held rows grouped by exact combination and
	// member, leaving out rows already stored in the public tables (by
	// event id: a retried batch, a move whose deletion is pending) and
	// rows of erased consents, and counts the rows it left out.
	HeldGroups(ctx context.Context, u Unit) (groups []Group, stale uint64, err error)
	// Releases returns u's release log and the passes that completed
	// their moves of u.
	Releases(ctx context.Context, u Unit) (log []Release, done map[uint64]bool, err error)
	// LogReleases appends rs to u's release log.
	LogReleases(ctx context.Context, u Unit, rs []Release) error
	// Move copies u's held rows whose exact quasi-identifiers are among
	// m.Combos to the public tables, generalized as m.Generalization
	// says, leaving out rows already public and rows of erased consents.
	// It is idempotent.
	Move(ctx context.Context, u Unit, m Move) error
	// MarkDone records that passes completed their moves of u.
	MarkDone(ctx context.Context, u Unit, passes []uint64, at time.Time) error
	// DeleteStale deletes, in the background, the held rows of units that
	// are stored in the public tables, and every held row of an erased
	// consent.
	DeleteStale(ctx context.Context, units []Unit) error
	// ClaimSlot records holder's claim on a release slot; SlotHolder
	// returns the claim that wins it: the earliest, by the store's clock,
	// then the smallest holder.
	ClaimSlot(ctx context.Context, slot uint64, holder string) error
	SlotHolder(ctx context.Context, slot uint64) (string, error)
	// Published returns the classes published exactly, by passes that
	// completed their moves, for event days from since on, logged at or
	// after loggedAfter.
	Published(ctx context.Context, since, loggedAfter time.Time) ([]ExactClass, error)
}

// ExactClass is a combination published exactly for an app and day.
type ExactClass struct {
	App string
	Day time.Time
	QI  QI
}

// PassStats says what a release pass did.
type PassStats struct {
	// Units is the number of apps and days with held rows.
	Units int
	// Rows is the number of held rows it moved, as it counted them.
	Rows uint64
	// NewClasses is the number of classes it published; Top the rows it
	// published at the top level.
	NewClasses int
	Top        uint64
	// Recovered is the number of earlier, unfinished passes it completed.
	Recovered int
}

// ReleaserConfig configures a Releaser.
type ReleaserConfig struct {
	Config
	// Store holds the rows and the log. Required.
	Store Store
	// Logger logs passes with counts and app ids, never values; nil
	// logs nothing.
	Logger *zap.Logger
}

// Releaser runs release passes: it publishes held rows once their class
// reaches k consents, or generalized once they waited the delay (see
// plan), and logs what it published. Several replicas may run one each:
// Run claims a time slot per pass, and only the replica that wins the
// slot runs it.
type Releaser struct {
	cfg    Config
	store  Store
	log    *zap.Logger
	holder string
	// lead is how long before a slot starts a claim on it must have
	// been stored for a pass to run on into it (see holdSlots).
	lead time.Duration
}

// claimLead is Releaser.lead: a claim stored a second before the slot
// starts is earlier, by a store clock of whole seconds (ClickHouse's),
// than any other replica's claim on it.
const claimLead = time.Second

// NewReleaser returns a Releaser for cfg.
func NewReleaser(cfg ReleaserConfig) (*Releaser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, errors.New("new releaser: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+).
	return &Releaser{cfg: cfg.withDefaults(), store: cfg.Store, log: cfg.Logger, holder: hex.EncodeToString(id[:]), lead: claimLead}, nil
}

// Pass runs one release pass now, without claiming a slot: the caller
// makes sure no other pass runs at the same time (Run does, through the
// store). A pass that fails half-way leaves its decisions in the log, and
// the next pass completes them.
func (r *Releaser) Pass(ctx context.Context) (PassStats, error) {
	var st PassStats
	units, err := r.store.HeldUnits(ctx)
	if err != nil {
		return st, fmt.Errorf("release: %w", err)
	}
	st.Units = len(units)
	pass := randomPass()
	now := r.cfg.Now()
	var stale []Unit
	var errs []error
	for _, u := range units {
		moved, hadStale, err := r.unit(ctx, u, pass, now, &st)
		if err != nil {
			// Units are independent: one failing (say, a query too
			// large) does not hold the others back.
			errs = append(errs, fmt.Errorf("release %s %s: %w", u.App, u.Day.Format(time.DateOnly), err))
			if ctx.Err() != nil {
				break
			}
		}
		if moved || hadStale {
			stale = append(stale, u)
		}
	}
	if len(stale) > 0 {
		if err := r.store.DeleteStale(ctx, stale); err != nil {
			errs = append(errs, fmt.Errorf("release: delete moved rows: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	return st, nil
}

// unit runs the pass for one unit and reports whether it moved rows and
// whether stale held rows were seen.
func (r *Releaser) unit(ctx context.Context, u Unit, pass uint64, now time.Time, st *PassStats) (moved, stale bool, err error) {
	groups, nStale, err := r.store.HeldGroups(ctx, u)
	if err != nil {
		return false, false, err
	}
	log, done, err := r.store.Releases(ctx, u)
	if err != nil {
		return false, nStale > 0, err
	}
	p := plan(planInput{
		k: r.cfg.K, hierarchy: r.cfg.Hierarchy, delay: r.cfg.Delay, now: now, pass: pass,
		groups: groups, log: log, done: done,
	})
	if p.Empty() && len(p.Recovered) == 0 {
		return false, nStale > 0, nil
	}
	// Decisions first: if a move fails, the next pass completes them.
	if len(p.Releases) > 0 {
		if err := r.store.LogReleases(ctx, u, p.Releases); err != nil {
			return false, nStale > 0, err
		}
	}
	for _, m := range p.Moves {
		if err := r.store.Move(ctx, u, m); err != nil {
			return true, true, err
		}
	}
	if err := r.store.MarkDone(ctx, u, append(slices.Clone(p.Recovered), pass), now); err != nil {
		return true, true, err
	}
	top := r.cfg.Hierarchy.Top()
	for _, rl := range p.Releases {
		st.Rows += rl.Rows
		if rl.New {
			st.NewClasses++
		}
		if rl.Level == top {
			st.Top += rl.Rows
		}
	}
	st.Recovered += len(p.Recovered)
	r.log.Debug("released held rows", zap.String("app_id", u.App), zap.String("day", u.Day.Format(time.DateOnly)),
		zap.Int("classes", len(p.Releases)), zap.Int("recovered_passes", len(p.Recovered)))
	return len(p.Moves) > 0, true, nil
}

// Run runs a release pass every ReleaseInterval until ctx ends, on the
// replica that wins each slot: every replica claims the slot in the
// store, waits Settle, and reads the winner. A replica whose claim took
// longer than half of Settle sits the slot out, since another replica
// might have read the claims before its own was visible: with a store
// whose clock has whole seconds (ClickHouse), a Settle of at least two
// seconds then guarantees one winner per slot. The winner's pass ends
// with its slot, unless it holds the next ones too: while it runs, the
// winner claims the next slot early (see holdSlots), so that a pass
// longer than a slot (a large backlog, a slow database) completes
// instead of starting over, cut off, in every slot.
func (r *Releaser) Run(ctx context.Context) error {
	interval := r.cfg.ReleaseInterval
	for {
		next := time.Now().Truncate(interval).Add(interval)
		if !sleepUntil(ctx, nil, next) {
			return nil
		}
		slot := uint64(next.UnixNano() / int64(interval))
		won, err := r.claim(ctx, slot)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("claiming a release slot failed; trying the next", zap.Error(err))
			}
			continue
		}
		if !won {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		stop := r.holdSlots(pctx, cancel, slot, next.Add(interval))
		st, err := r.Pass(pctx)
		cancel()
		stop()
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("release pass failed; the next completes it", zap.Error(err))
		case st.Rows > 0 || st.Recovered > 0:
			r.log.Info("release pass", zap.Int("units", st.Units), zap.Uint64("rows", st.Rows),
				zap.Int("new_classes", st.NewClasses), zap.Uint64("top_rows", st.Top), zap.Int("recovered_passes", st.Recovered))
		}
	}
}

// claim claims slot and reports whether this replica won it.
func (r *Releaser) claim(ctx context.Context, slot uint64) (bool, error) {
	start := time.Now()
	if err := r.store.ClaimSlot(ctx, slot, r.holder); err != nil {
		return false, err
	}
	if took := time.Since(start); took > r.cfg.Settle/2 {
		r.log.Warn("sitting out a release slot: claiming it took more than half the settle time, so another replica may not have seen the claim",
			zap.Duration("took", took), zap.Duration("settle", r.cfg.Settle))
		return false, nil
	}
	if !sleepUntil(ctx, nil, time.Now().Add(r.cfg.Settle)) {
		return false, ctx.Err()
	}
	winner, err := r.store.SlotHolder(ctx, slot)
	if err != nil {
		return false, err
	}
	return winner == r.holder, nil
}

// holdSlots keeps the slots after slot for the pass that runs under
// ctx, whose own slot ends at end. While the pass runs it claims the next
// slot, at once and then at the start of each further slot it holds; a
// claim stored at least lead before its slot starts is, by the store's
// clock, earlier than any other replica's (they claim when it starts),
// so the pass holds that slot too and runs on. Once a claim fails or
// comes later, cancel is called when the last slot held ends, before
// another replica's pass can start (Settle after it). stop ends the
// holding; call it after the pass.
func (r *Releaser) holdSlots(ctx context.Context, cancel context.CancelFunc, slot uint64, end time.Time) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for claimAt := time.Now(); ; {
			if !sleepUntil(ctx, done, claimAt) {
				return
			}
			err := r.store.ClaimSlot(ctx, slot+1, r.holder)
			if err == nil && time.Until(end) >= r.lead {
				slot++
				claimAt, end = end, end.Add(r.cfg.ReleaseInterval)
				continue
			}
			if sleepUntil(ctx, done, end) {
				r.log.Warn("release pass cut off at the end of its slot: the next slot could not be claimed in time; the next pass completes it",
					zap.Error(err))
				cancel()
			}
			return
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// sleepUntil waits until t and reports true, or false if ctx ends or
// done (nil for none) is closed first.
func sleepUntil(ctx context.Context, done <-chan struct{}, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return false
	case <-timer.C:
		return true
	}
}

// randomPass returns a random, non-zero pass id.
func randomPass() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// RefreshRouter loads into router the classes published exactly since the
// previous refresh (last, zero for all), for event days within
// cfg.MaxAge, forgets older days, and returns the time to pass as last
// next time. Entries are read with a minute of overlap, so a replica
// whose clock is behind cannot hide one.
func RefreshRouter(ctx context.Context, store Store, router *Router, cfg Config, last time.Time) (time.Time, error) {
	cfg = cfg.withDefaults()
	now := cfg.Now()
	since := now.Add(-cfg.MaxAge - 24*time.Hour)
	after := time.Time{}
	if !last.IsZero() {
		after = last.Add(-time.Minute)
	}
	classes, err := store.Published(ctx, since, after)
	if err != nil {
		return last, fmt.Errorf("refresh published classes: %w", err)
	}
	for _, c := range classes {
		router.Add(c.App, c.Day, c.QI)
	}
	router.Prune(since)
	return now, nil
}
