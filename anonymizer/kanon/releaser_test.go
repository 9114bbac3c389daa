package kanon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// fleetEvent is one event of a simulated fleet: who sent it, with what
// device, when.
type fleetEvent struct {
	id      uint64
	consent int
	qi      QI
	at      time.Time
	member  uint64
}

// simFleet returns the events of a fleet over three hours from t0: a
// crowd sharing one device; devices whose model, locale and region are
// each common alone but unique together; a device unique in every way;
// and a few events whose day's salt was gone (no member).
func simFleet(seed uint64) []fleetEvent {
	r := newRand(seed)
	var devices []QI
	var consents []int
	add := func(q QI, n int) {
		for range n {
			devices = append(devices, q)
			consents = append(consents, len(consents)+1)
		}
	}
	add(dev(), 12)                                                 // the crowd
	add(dev("model=Galaxy S23"), 6)                                // a common model
	add(dev("locale=en-US"), 6)                                    // a common locale
	add(dev("region=AT-6"), 6)                                     // a common region
	add(dev("model=Galaxy S23", "locale=en-US", "region=AT-6"), 1) // all three: unique
	add(dev("model=Galaxy S23", "locale=en-US"), 2)
	add(dev("model=Jane's phone", "os=9", "app=1.0.0", "region=AT-2"), 1) // unique in every way
	var events []fleetEvent
	id := uint64(0)
	for i, q := range devices {
		for range 3 + r.IntN(8) {
			id++
			e := fleetEvent{id: id, consent: consents[i], qi: q, at: t0.Add(time.Duration(r.IntN(180)) * time.Minute), member: uint64(consents[i])}
			if r.IntN(20) == 0 {
				e.member = 0
			}
			events = append(events, e)
		}
	}
	slices.SortFunc(events, func(a, b fleetEvent) int { return a.at.Compare(b.at) })
	return events
}

func (e fleetEvent) row() pipeline.SessionRow {
	var s pipeline.SessionRow
	s.AppID, s.EventID, s.EventTime, s.Member = "app", eventID(e.id), t0, e.member
	e.qi.Apply(&s.Common)
	return s
}

// checkClasses checks the public rows of m against the log: every stored
// combination is a logged class and, the top aside, comes from at least k
// consents.
func checkClasses(t *testing.T, m *memStore, consentOf map[uint64]int, k int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	logged := map[Unit]map[QI]bool{}
	for u, rs := range m.log {
		logged[u] = map[QI]bool{}
		for _, r := range rs {
			logged[u][r.QI] = true
		}
	}
	classes := map[publicRow]map[int]bool{}
	for id, p := range m.public {
		if !logged[p.unit][p.qi] {
			t.Fatalf("row %d stored as %+v, a class the log does not publish", id, p.qi)
		}
		if classes[p] == nil {
			classes[p] = map[int]bool{}
		}
		classes[p][consentOf[id]] = true
	}
	for p, consents := range classes {
		if p.qi != TopQI() && len(consents) < k {
			t.Fatalf("stored class %+v holds %d consents, want at least %d", p.qi, len(consents), k)
		}
	}
}

// TestReleaseSimulation streams a fleet through a Router and a Releaser
// over three simulated hours: the rows the Router lets through are
// stored at once, the rest held; a pass runs every 30 s, some moves fail
// half-way, and the collector restarts (new Router and Releaser over the
// same store) in the middle. After every pass that completed, no stored
// row may be in a class the log does not publish or (the top aside) one
// with fewer than k consents; at the end every event is stored once.
func TestReleaseSimulation(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { simulate(t, seed) })
	}
}

func simulate(t *testing.T, seed uint64) {
	ctx := context.Background()
	now := t0
	clock := func() time.Time { return now }
	m := newMemStore(clock)
	const k = 5
	cfg := Config{K: k, Delay: time.Hour, Now: clock}
	newParts := func() (*Router, *Releaser) {
		rel, err := NewReleaser(ReleaserConfig{Config: cfg, Store: m})
		if err != nil {
			t.Fatal(err)
		}
		return NewRouter(), rel
	}
	router, rel := newParts()
	var last time.Time
	events := simFleet(seed)
	consentOf := map[uint64]int{}
	r := newRand(seed + 100)
	next := 0
	restarted := false
	for step := 0; ; step++ {
		now = t0.Add(time.Duration(step) * 10 * time.Second)
		if !restarted && now.After(t0.Add(90*time.Minute)) {
			router, rel = newParts()
			last, restarted = time.Time{}, true
		}
		var err error
		if last, err = RefreshRouter(ctx, m, router, cfg, last); err != nil {
			t.Fatal(err)
		}
		var batch pipeline.Rows
		for ; next < len(events) && !events[next].at.After(now); next++ {
			e := events[next]
			consentOf[e.id] = e.consent
			batch.Sessions = append(batch.Sessions, e.row())
		}
		pub, held := router.Split(&batch)
		m.storePublic(pub)
		if held != nil {
			if err := m.InsertHeld(ctx, held, ""); err != nil {
				t.Fatal(err)
			}
		}
		if step%3 == 0 {
			if r.IntN(6) == 0 {
				m.failMoves = 1
			}
			if _, err := rel.Pass(ctx); err != nil {
				if !errors.Is(err, errInjected) {
					t.Fatal(err)
				}
			} else {
				checkClasses(t, m, consentOf, k)
			}
		}
		if next == len(events) && m.heldCount() == 0 && m.failMoves == 0 {
			break
		}
		if now.After(t0.Add(6 * time.Hour)) {
			t.Fatalf("%d rows still held after six hours", m.heldCount())
		}
	}
	checkClasses(t, m, consentOf, k)
	if len(m.public) != len(events) || m.conflicts != 0 {
		t.Fatalf("%d of %d events stored, %d stored twice differently", len(m.public), len(events), m.conflicts)
	}
	// The crowd is stored exactly; the device unique in every way is not.
	exact, unique := 0, 0
	for id, p := range m.public {
		switch consentOf[id] {
		case 1:
			if p.qi == pixel {
				exact++
			}
		case len(consentOf): // not a consent number; see below
		}
		if p.qi.DeviceModel == "Jane's phone" || p.qi.OSVersion == "9" || p.qi.AppVersion == "1.0.0" {
			unique++
		}
	}
	if exact == 0 {
		t.Error("the crowd's device was never stored exactly")
	}
	if unique != 0 {
		t.Errorf("%d rows show a value only the unique device has", unique)
	}
}

// TestRunClaimsSlots checks that Run passes only in the slots its
// replica wins.
func TestRunClaimsSlots(t *testing.T) {
	m := newMemStore(time.Now)
	cfg := Config{K: 2, ReleaseInterval: 200 * time.Millisecond, Settle: 50 * time.Millisecond}
	rel, err := NewReleaser(ReleaserConfig{Config: cfg, Store: m})
	if err != nil {
		t.Fatal(err)
	}
	won, err := rel.claim(context.Background(), 1)
	if err != nil || !won {
		t.Fatalf("first claim: %v %v, want won", won, err)
	}
	// Another replica's earlier claim wins the next slot.
	m.ClaimSlot(context.Background(), 2, "other")
	if won, err := rel.claim(context.Background(), 2); err != nil || won {
		t.Fatalf("second claim: %v %v, want lost", won, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := rel.Run(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.claims) < 4 {
		t.Errorf("Run claimed %d slots in 700ms at 200ms each", len(m.claims)-2)
	}
}

// TestRunHoldsSlotsForALongPass: a pass that takes longer than a slot (a
// large backlog, a slow database) was cut off at the end of its slot and
// started over in the next one it won, cut off again, so the held rows
// were never published. The winner now claims the next slots early while
// its pass runs: the pass completes, and the other replica, which claims
// every slot too, never runs a pass at the same time.
func TestRunHoldsSlotsForALongPass(t *testing.T) {
	m := newMemStore(time.Now)
	m.moveDelay = 450 * time.Millisecond // over two slots
	var rows pipeline.Rows
	for i := range 6 {
		e := fleetEvent{id: uint64(i + 1), qi: dev(), member: uint64(i%3 + 1)}
		rows.Sessions = append(rows.Sessions, e.row())
	}
	if err := m.InsertHeld(context.Background(), &rows, ""); err != nil {
		t.Fatal(err)
	}
	cfg := Config{K: 2, ReleaseInterval: 200 * time.Millisecond, Settle: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		rel, err := NewReleaser(ReleaserConfig{Config: cfg, Store: m})
		if err != nil {
			t.Fatal(err)
		}
		rel.lead = 20 * time.Millisecond // the memory store orders claims as they come
		go func() { errs <- rel.Run(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.public) != len(rows.Sessions) {
		t.Errorf("%d of %d held rows published: the pass never completed", len(m.public), len(rows.Sessions))
	}
	if m.maxMoving > 1 {
		t.Errorf("%d moves ran at once: two replicas passed in the same slot", m.maxMoving)
	}
}
