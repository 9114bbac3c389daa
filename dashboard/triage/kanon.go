package triage

import (
	"cmp"
	"slices"
)

// Cell is one value of a breakdown: how many distinct sessions and crashes
// had it.
type Cell struct {
	// Value is the breakdown's value, e.g. "Pixel 8" or "AT-9".
	Value string
	// Sessions is the number of distinct sessions; crashes without a
	// session count for none.
	Sessions uint64
	// Crashes is the number of crashes.
	Crashes uint64
}

// Breakdown is a distribution of a crash group or app over one dimension,
// with every cell of fewer than k distinct sessions hidden.
type Breakdown struct {
	// Name is the dimension, e.g. "Device model".
	Name string
	// Cells are the shown values, most sessions first.
	Cells []Cell
	// Hidden counts the values that are not shown.
	Hidden int
	// Other sums the hidden values, if that sum is itself shown (see
	// Suppress); else it is zero.
	Other Cell
}

// Suppress hides the cells of fewer than k distinct sessions, so that a
// breakdown never singles out a device. It also hides cells that would
// give a hidden one away by subtraction from the total: while the hidden
// cells together have fewer than k sessions (but some), the smallest shown
// cell is hidden too. The hidden cells' sum is reported in Other only when
// it reaches k sessions. Cells are returned most sessions first.
func Suppress(name string, cells []Cell, k int) Breakdown {
	cells = slices.Clone(cells)
	slices.SortFunc(cells, func(a, b Cell) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes), cmp.Compare(a.Value, b.Value))
	})
	kk := uint64(max(k, 1))
	shown := len(cells)
	for shown > 0 && cells[shown-1].Sessions < kk {
		shown--
	}
	var other Cell
	for _, c := range cells[shown:] {
		other.Sessions += c.Sessions
		other.Crashes += c.Crashes
	}
	// A hidden remainder below k could be read off as total minus the
	// shown cells: hide more until it cannot.
	for shown > 0 && shown < len(cells) && other.Sessions < kk {
		shown--
		other.Sessions += cells[shown].Sessions
		other.Crashes += cells[shown].Crashes
	}
	b := Breakdown{Name: name, Cells: cells[:shown], Hidden: len(cells) - shown}
	if other.Sessions >= kk {
		other.Value = "other"
		b.Other = other
	}
	return b
}
