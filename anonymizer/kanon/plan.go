package kanon

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Unit is what a release pass decides for at once: classes are counted
// per app and UTC day.
type Unit struct {
	App string
	// Day is the UTC midnight of the event day.
	Day time.Time
}

// Group is the held rows of one exact combination and one member.
type Group struct {
	// QI is the rows' exact quasi-identifiers.
	QI QI
	// Member is the rows' member key (pipeline.Common.Member); 0 when
	// unknown, such as rows received after their day's salt was
	// destroyed. Rows without a member join classes but are never
	// counted as a consent.
	Member uint64
	// Rows is the number of held rows.
	Rows uint64
	// FirstHeld is when the oldest of them was held.
	FirstHeld time.Time
}

// Class is a published equivalence class: a level and the quasi-
// identifiers its rows are stored with.
type Class struct {
	Level int
	QI    QI
}

// Release is one entry of the release log: a class that received held
// rows in a release pass. The entries of a pass are written before its
// rows move, so a pass that failed half-way is completed by the next one
// exactly as it was decided.
type Release struct {
	// Pass is the random id of the pass.
	Pass uint64
	Class
	// Generalization is the rung each attribute reached in the class.
	Generalization Generalization
	// Consents is the number of distinct consents among the rows the pass
	// moved into the class. For a new class it is the class's size when
	// published, at least k (except at the top level); a published class
	// only grows.
	Consents uint64
	// Rows is the number of held rows the pass decided to move, as it
	// counted them (rows held while it ran may join).
	Rows uint64
	// New is set when the pass published the class.
	New bool
	// ExpiredBefore is the pass's hold limit: rows held before it had
	// waited the configured delay and could be published generalized.
	ExpiredBefore time.Time
	// ReleasedAt is when the pass ran.
	ReleasedAt time.Time
}

// Move is the exact combinations whose held rows a pass publishes at one
// level.
type Move struct {
	Level          int
	Generalization Generalization
	// Combos are the exact quasi-identifiers of the rows to move.
	Combos []QI
}

// Plan is what a release pass does for one Unit.
type Plan struct {
	// Releases are the log entries, one per class that receives rows.
	Releases []Release
	// Moves are the rows to publish, per level.
	Moves []Move
	// Recovered are the earlier passes whose decisions this plan
	// completes.
	Recovered []uint64
}

// Empty reports whether p moves nothing.
func (p Plan) Empty() bool { return len(p.Moves) == 0 }

// planInput is what plan decides from.
type planInput struct {
	k         int
	hierarchy Hierarchy
	delay     time.Duration
	now       time.Time
	pass      uint64
	// groups are the unit's held rows, without those already public.
	groups []Group
	// log is every release of the unit so far.
	log []Release
	// done holds the passes whose moves of the unit completed.
	done map[uint64]bool
}

// combo is the held rows of one exact combination.
type combo struct {
	qi       QI
	members  map[uint64]struct{}
	rows     uint64
	first    time.Time
	assigned bool
	class    Class
}

// plan decides which held rows of a unit to publish, and at which level:
//
//  0. It first completes the passes that logged their decisions but did
//     not finish moving (a crash, a failed insert): each combination goes
//     to the finest class such a pass logged that contains it, the top
//     only if its rows had waited the delay then.
//  1. A combination published exactly goes there; one whose held rows
//     come from at least k distinct consents is published exactly.
//  2. For each level from 1 up, the remaining combinations are grouped by
//     their generalization; a class that holds a combination held longer
//     than the delay is published, with every combination in it, if it is
//     published already or its combinations' consents reach k.
//  3. Combinations held longer than the delay that are left go to the
//     top level, where every quasi-identifier is unknown.
//
// Rows held for less than the delay stay held unless their class is
// published in steps 0 to 2. With k at most 1 everything is published
// exactly.
func plan(in planInput) Plan {
	h := in.hierarchy.orDefault()
	top := h.Top()
	combos := collect(in.groups)
	published := make(map[Class]bool, len(in.log))
	for _, r := range in.log {
		published[r.Class] = true
	}
	var p Plan
	assign := func(c *combo, cl Class) { c.assigned, c.class = true, cl }

	if in.k <= 1 {
		for _, c := range combos {
			assign(c, Class{0, c.qi})
		}
		return finish(in, h, combos, published, p)
	}

	// 0. Complete unfinished passes, oldest first.
	for _, u := range unfinished(in) {
		for _, c := range combos {
			if c.assigned {
				continue
			}
			for level := 0; level <= top; level++ {
				cl := Class{level, h.Generalize(c.qi, level)}
				if u.intents[cl] && (level < top || !c.first.After(u.expiredBefore)) {
					assign(c, cl)
					break
				}
			}
		}
		p.Recovered = append(p.Recovered, u.pass)
	}

	// 1. Exact classes.
	for _, c := range combos {
		if !c.assigned && (published[Class{0, c.qi}] || len(c.members) >= in.k) {
			assign(c, Class{0, c.qi})
		}
	}

	// 2. Up the hierarchy, for classes holding a combination that waited
	// the delay.
	expiredBefore := in.now.Add(-in.delay)
	expired := func(c *combo) bool { return !c.first.After(expiredBefore) }
	for level := 1; level < top; level++ {
		classes := make(map[QI][]*combo)
		for _, c := range combos {
			if !c.assigned {
				g := h.Generalize(c.qi, level)
				classes[g] = append(classes[g], c)
			}
		}
		for _, g := range slices.SortedFunc(maps.Keys(classes), compareQI) {
			members := classes[g]
			if !slices.ContainsFunc(members, expired) {
				continue
			}
			cl := Class{level, g}
			if published[cl] || countMembers(members) >= in.k {
				for _, c := range members {
					assign(c, cl)
				}
			}
		}
	}

	// 3. The top level.
	for _, c := range combos {
		if !c.assigned && expired(c) {
			assign(c, Class{top, TopQI()})
		}
	}
	return finish(in, h, combos, published, p)
}

// finish turns the assignments into log entries and moves.
func finish(in planInput, h Hierarchy, combos []*combo, published map[Class]bool, p Plan) Plan {
	type acc struct {
		members map[uint64]struct{}
		rows    uint64
		combos  []QI
	}
	byClass := make(map[Class]*acc)
	for _, c := range combos {
		if !c.assigned {
			continue
		}
		a := byClass[c.class]
		if a == nil {
			a = &acc{members: make(map[uint64]struct{})}
			byClass[c.class] = a
		}
		maps.Copy(a.members, c.members)
		a.rows += c.rows
		a.combos = append(a.combos, c.qi)
	}
	moves := make(map[int]*Move)
	for _, cl := range slices.SortedFunc(maps.Keys(byClass), compareClass) {
		a := byClass[cl]
		g := h.At(cl.Level)
		p.Releases = append(p.Releases, Release{
			Pass: in.pass, Class: cl, Generalization: g,
			Consents: uint64(len(a.members)), Rows: a.rows, New: !published[cl],
			ExpiredBefore: in.now.Add(-in.delay), ReleasedAt: in.now,
		})
		m := moves[cl.Level]
		if m == nil {
			m = &Move{Level: cl.Level, Generalization: g}
			moves[cl.Level] = m
		}
		m.Combos = append(m.Combos, a.combos...)
	}
	for _, level := range slices.Sorted(maps.Keys(moves)) {
		m := moves[level]
		slices.SortFunc(m.Combos, compareQI)
		p.Moves = append(p.Moves, *m)
	}
	return p
}

// collect merges groups into combinations, in a fixed order.
func collect(groups []Group) []*combo {
	byQI := make(map[QI]*combo)
	for _, g := range groups {
		c := byQI[g.QI]
		if c == nil {
			c = &combo{qi: g.QI, members: make(map[uint64]struct{}), first: g.FirstHeld}
			byQI[g.QI] = c
		}
		if g.Member != 0 {
			c.members[g.Member] = struct{}{}
		}
		c.rows += g.Rows
		if g.FirstHeld.Before(c.first) {
			c.first = g.FirstHeld
		}
	}
	out := slices.Collect(maps.Values(byQI))
	slices.SortFunc(out, func(a, b *combo) int { return compareQI(a.qi, b.qi) })
	return out
}

// countMembers returns the distinct members of cs.
func countMembers(cs []*combo) int {
	seen := make(map[uint64]struct{})
	for _, c := range cs {
		maps.Copy(seen, c.members)
	}
	return len(seen)
}

// unfinishedPass is a pass that logged decisions for the unit and did not
// mark them done.
type unfinishedPass struct {
	pass          uint64
	at            time.Time
	expiredBefore time.Time
	intents       map[Class]bool
}

// unfinished returns in's unfinished passes, oldest first.
func unfinished(in planInput) []unfinishedPass {
	byPass := make(map[uint64]*unfinishedPass)
	for _, r := range in.log {
		if in.done[r.Pass] || r.Pass == in.pass {
			continue
		}
		u := byPass[r.Pass]
		if u == nil {
			u = &unfinishedPass{pass: r.Pass, at: r.ReleasedAt, expiredBefore: r.ExpiredBefore, intents: make(map[Class]bool)}
			byPass[r.Pass] = u
		}
		u.intents[r.Class] = true
	}
	out := make([]unfinishedPass, 0, len(byPass))
	for _, u := range byPass {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b unfinishedPass) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.pass, b.pass))
	})
	return out
}

func compareQI(a, b QI) int {
	va, vb := a.Values(), b.Values()
	for i := range va {
		if c := cmp.Compare(va[i], vb[i]); c != 0 {
			return c
		}
	}
	return 0
}

func compareClass(a, b Class) int {
	return cmp.Or(cmp.Compare(a.Level, b.Level), compareQI(a.QI, b.QI))
}
