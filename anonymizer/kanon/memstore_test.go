package kanon

import (
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// memStore is a Store in memory for the release logic's tests: held rows
// and public rows by event id, the release log, done marks and slot
// claims. It can fail a move half-way.
type memStore struct {
	mu     sync.Mutex
	now    func() time.Time
	held   []heldRow
	public map[uint64]publicRow
	// conflicts counts rows stored twice with different values.
	conflicts int
	log       map[Unit][]Release
	done      map[Unit]map[uint64]bool
	claims    map[uint64][]string
	// failMoves makes the next failMoves moves copy half their rows and
	// fail.
	failMoves int
	// moveDelay makes every move take that long, or fail when its
	// context ends first; moving and maxMoving count the moves under
	// way and the most at once.
	moveDelay         time.Duration
	moving, maxMoving int
}

type heldRow struct {
	id     uint64
	unit   Unit
	qi     QI
	member uint64
	heldAt time.Time
}

type publicRow struct {
	unit Unit
	qi   QI
}

var errInjected = errors.New("injected failure")

func newMemStore(now func() time.Time) *memStore {
	return &memStore{now: now, public: map[uint64]publicRow{}, log: map[Unit][]Release{}, done: map[Unit]map[uint64]bool{}, claims: map[uint64][]string{}}
}

// eventID makes an event id from n; idOf reads it back.
func eventID(n uint64) [16]byte {
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:], n)
	return id
}

func idOf(c *pipeline.Common) uint64 { return binary.LittleEndian.Uint64(c.EventID[:]) }

func unitOf(c *pipeline.Common) Unit {
	return Unit{App: c.AppID, Day: time.Unix(DayNumber(c.EventTime)*86400, 0).UTC()}
}

// storePublic stores rows in the public tables, as the collector's
// inserter does for the rows the Router lets through.
func (m *memStore) storePublic(rows *pipeline.Rows) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range rows.Sessions {
		c := &rows.Sessions[i].Common
		m.putPublic(idOf(c), publicRow{unit: unitOf(c), qi: QIOf(c)})
	}
}

func (m *memStore) putPublic(id uint64, r publicRow) {
	if old, ok := m.public[id]; ok && old != r {
		m.conflicts++
	}
	m.public[id] = r
}

func (m *memStore) InsertHeld(_ context.Context, rows *pipeline.Rows, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range rows.Sessions {
		c := &rows.Sessions[i].Common
		m.held = append(m.held, heldRow{id: idOf(c), unit: unitOf(c), qi: QIOf(c), member: c.Member, heldAt: m.now()})
	}
	return nil
}

func (m *memStore) HeldUnits(context.Context) ([]Unit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[Unit]bool{}
	for _, r := range m.held {
		seen[r.unit] = true
	}
	return slices.SortedFunc(maps.Keys(seen), func(a, b Unit) int { return a.Day.Compare(b.Day) }), nil
}

func (m *memStore) HeldGroups(_ context.Context, u Unit) ([]Group, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	type key struct {
		qi     QI
		member uint64
	}
	groups := map[key]*Group{}
	var stale uint64
	for _, r := range m.held {
		if r.unit != u {
			continue
		}
		if _, ok := m.public[r.id]; ok {
			stale++
			continue
		}
		k := key{r.qi, r.member}
		g := groups[k]
		if g == nil {
			g = &Group{QI: r.qi, Member: r.member, FirstHeld: r.heldAt}
			groups[k] = g
		}
		g.Rows++
		if r.heldAt.Before(g.FirstHeld) {
			g.FirstHeld = r.heldAt
		}
	}
	var out []Group
	for _, g := range groups {
		out = append(out, *g)
	}
	return out, stale, nil
}

func (m *memStore) Releases(_ context.Context, u Unit) ([]Release, map[uint64]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log[u]), maps.Clone(m.done[u]), nil
}

func (m *memStore) LogReleases(_ context.Context, u Unit, rs []Release) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log[u] = append(m.log[u], rs...)
	return nil
}

func (m *memStore) Move(ctx context.Context, u Unit, mv Move) error {
	if err := m.slowMove(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var todo []heldRow
	for _, r := range m.held {
		if _, ok := m.public[r.id]; !ok && r.unit == u && slices.Contains(mv.Combos, r.qi) {
			todo = append(todo, r)
		}
	}
	fail := m.failMoves > 0
	if fail {
		m.failMoves--
		todo = todo[:len(todo)/2]
	}
	for _, r := range todo {
		m.putPublic(r.id, publicRow{unit: u, qi: mv.Generalization.Apply(r.qi)})
	}
	if fail {
		return errInjected
	}
	return nil
}

// slowMove waits moveDelay, or until ctx ends, counting the moves under
// way.
func (m *memStore) slowMove(ctx context.Context) error {
	m.mu.Lock()
	delay := m.moveDelay
	m.moving++
	m.maxMoving = max(m.maxMoving, m.moving)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.moving--
		m.mu.Unlock()
	}()
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (m *memStore) MarkDone(_ context.Context, u Unit, passes []uint64, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done[u] == nil {
		m.done[u] = map[uint64]bool{}
	}
	for _, p := range passes {
		m.done[u][p] = true
	}
	return nil
}

func (m *memStore) DeleteStale(_ context.Context, units []Unit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held = slices.DeleteFunc(m.held, func(r heldRow) bool {
		_, public := m.public[r.id]
		return public && slices.Contains(units, r.unit)
	})
	return nil
}

func (m *memStore) ClaimSlot(_ context.Context, slot uint64, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims[slot] = append(m.claims[slot], holder)
	return nil
}

func (m *memStore) SlotHolder(_ context.Context, slot uint64) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.claims[slot]) == 0 {
		return "", nil
	}
	return m.claims[slot][0], nil
}

func (m *memStore) Published(_ context.Context, since, after time.Time) ([]ExactClass, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ExactClass
	for u, rs := range m.log {
		if u.Day.Before(since.Truncate(24 * time.Hour)) {
			continue
		}
		for _, r := range rs {
			if r.Level == 0 && m.done[u][r.Pass] && !r.ReleasedAt.Before(after) {
				out = append(out, ExactClass{App: u.App, Day: u.Day, QI: r.QI})
			}
		}
	}
	return out, nil
}

// heldCount returns the held rows not yet public.
func (m *memStore) heldCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.held {
		if _, ok := m.public[r.id]; !ok {
			n++
		}
	}
	return n
}
