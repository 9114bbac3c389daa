package triage

import (
	"cmp"
	"slices"
)

// Cell is one value of a breakdown: how many distinct sessions and crashes
// had it.
type Cell struct {
	// Value is the breakdown's value, e.g. "Pixel 8" or "AT-9", or for a
	// coarse cell the coarser value, e.g. "4.x" or "AT".
	Value string
	// Sessions is the number of distinct sessions; crashes without a
	// session count for none.
	Sessions uint64
	// Crashes is the number of crashes.
	Crashes uint64
	// Coarse marks a cell that stands for several values, each with
	// fewer than k sessions, under a coarser value (see Generalize);
	// Values is how many.
	Coarse bool
	Values int
}

// Breakdown is a distribution of a crash group or app over one dimension,
// in cells of at least k distinct sessions each.
type Breakdown struct {
	// Name is the dimension, e.g. "Device model".
	Name string
	// Cells are the shown cells, most sessions first: values, and coarse
	// cells that group smaller values.
	Cells []Cell
	// Hidden counts the values that are in no shown cell; Generalized
	// those shown only within a coarse cell.
	Hidden      int
	Generalized int
	// Other sums the hidden values, if that sum is itself shown (see
	// Generalize); else it is zero.
	Other Cell
	// K is the fewest sessions a cell has.
	K int
	// labels maps each value in a shown cell to that cell's Value.
	labels map[string]string
}

// Label returns the shown cell value v is counted in: v itself, a coarse
// value, or false if v is hidden.
func (b *Breakdown) Label(v string) (string, bool) {
	l, ok := b.labels[v]
	return l, ok
}

// Hierarchy makes coarser values for a breakdown: the app version's major
// version, the OS family of an OS version, the device class of a model,
// the country of a region.
type Hierarchy struct {
	// Label returns the name of the coarse cell of parent; partial says
	// that some of its values are shown on their own, so the cell holds
	// the others.
	Label func(parent string, partial bool) string
}

// Atom is a value to break down: its counts, and the coarser value it
// belongs to ("" for none).
type Atom struct {
	Cell
	// Parent is the coarser value, e.g. "4" for the app version 4.12.0.
	Parent string
	// Parts are the distinct sessions of the value in each crash group
	// of a merged group, keyed by fingerprint; nil for one group.
	Parts map[uint64]uint64
	// Hidden keeps the value out of every shown cell, as a value hidden
	// in a wider breakdown must be.
	Hidden bool
}

// Suppress hides the cells of fewer than k distinct sessions, so that a
// breakdown never singles out a device: it is Generalize without coarser
// values.
func Suppress(name string, cells []Cell, k int) Breakdown {
	atoms := make([]Atom, len(cells))
	for i, c := range cells {
		atoms[i] = Atom{Cell: c}
	}
	return Generalize(name, atoms, k, nil)
}

// Generalize splits atoms into shown cells of at least k distinct
// sessions each, so that a breakdown never singles out a device, and
// shows as much as it can:
//
//  1. a value with at least k sessions is a cell of its own;
//  2. with h, the smaller values that share a coarser value (Atom.Parent)
//     form a coarse cell if they have k sessions together, so a small app
//     sees "4.x: 25 sessions" instead of nothing;
//  3. the rest is hidden. While the hidden values together have fewer
//     than k sessions (but some), the smallest shown cell is hidden too:
//     else the hidden sum could be read off as the total minus the cells
//     shown. The hidden values are summed in Other when that sum reaches
//     k.
//
// Every value is counted in one cell or in the hidden rest, so what a
// reader can subtract from the cells shown is the rest, never a part of
// it. For a merged group (Atom.Parts set), a cell is shown only if each
// group's part in it is 0 or at least k: else the merged cell, less the
// part another group's own page shows, would give a small one away.
func Generalize(name string, atoms []Atom, k int, h *Hierarchy) Breakdown {
	atoms = slices.Clone(atoms)
	slices.SortFunc(atoms, func(a, b Atom) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes), cmp.Compare(a.Value, b.Value))
	})
	kk := uint64(max(k, 1))
	// fits reports whether the atoms idx may be shown as one cell.
	fits := func(idx []int) bool {
		var total uint64
		parts := make(map[uint64]uint64)
		for _, i := range idx {
			total += atoms[i].Sessions
			for fp, n := range atoms[i].Parts {
				parts[fp] += n
			}
		}
		if total < kk {
			return false
		}
		for _, n := range parts {
			if n > 0 && n < kk {
				return false
			}
		}
		return true
	}
	type cell struct {
		Cell
		atoms  []int
		parent string // of a coarse cell
	}
	sum := func(label string, idx []int, coarse bool) cell {
		c := cell{Cell: Cell{Value: label, Coarse: coarse, Values: len(idx)}, atoms: idx}
		for _, i := range idx {
			c.Sessions += atoms[i].Sessions
			c.Crashes += atoms[i].Crashes
		}
		return c
	}
	var shown []cell
	var rest []int
	for i := range atoms {
		if !atoms[i].Hidden && fits([]int{i}) {
			shown = append(shown, sum(atoms[i].Value, []int{i}, false))
		} else {
			rest = append(rest, i)
		}
	}
	// regroup forms coarse cells of the hidden values that share a
	// coarser value and fit together; with need, only cells that take in
	// one of those values.
	regroup := func(need []int) {
		if h == nil {
			return
		}
		var parents []string
		byParent := make(map[string][]int)
		var left []int
		for _, i := range rest {
			p := atoms[i].Parent
			if p == "" || atoms[i].Hidden {
				left = append(left, i)
				continue
			}
			if _, ok := byParent[p]; !ok {
				parents = append(parents, p)
			}
			byParent[p] = append(byParent[p], i)
		}
		for _, p := range parents {
			idx := byParent[p]
			if !fits(idx) || need != nil && !slices.ContainsFunc(idx, func(i int) bool { return slices.Contains(need, i) }) {
				left = append(left, idx...)
				continue
			}
			c := sum(p, idx, true)
			c.parent = p
			shown = append(shown, c)
		}
		rest = left
		slices.SortStableFunc(shown, func(a, b cell) int {
			return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes))
		})
	}
	regroup(nil)
	restSessions := func() uint64 {
		var n uint64
		for _, i := range rest {
			n += atoms[i].Sessions
		}
		return n
	}
	// A hidden remainder below k could be read off as the total minus the
	// shown cells: hide more until it cannot. A cell hidden so may form a
	// coarse cell with the hidden values of its coarser value (4.13.0 with
	// the rare 4.11.2 as "4.x"), if that takes some of them in: else the
	// same cell would form again. After a bound of rounds, cells are only
	// hidden, which ends the loop.
	for round := 0; len(rest) > 0 && len(shown) > 0 && restSessions() < kk; round++ {
		hidden := slices.Clone(rest)
		last := shown[len(shown)-1]
		shown = shown[:len(shown)-1]
		rest = append(rest, last.atoms...)
		if round < 2*len(atoms) {
			regroup(hidden)
		}
	}
	for i, c := range shown {
		if c.Coarse {
			partial := slices.ContainsFunc(shown, func(o cell) bool { return !o.Coarse && atoms[o.atoms[0]].Parent == c.parent })
			shown[i].Value = h.Label(c.parent, partial)
		}
	}
	b := Breakdown{Name: name, K: k, Hidden: len(rest), labels: make(map[string]string)}
	for _, c := range shown {
		b.Cells = append(b.Cells, c.Cell)
		for _, i := range c.atoms {
			b.labels[atoms[i].Value] = c.Value
		}
		if c.Coarse {
			b.Generalized += len(c.atoms)
		}
	}
	if len(rest) > 0 && fits(rest) {
		b.Other = sum("other", rest, false).Cell
	}
	return b
}
