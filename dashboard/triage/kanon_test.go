package triage

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSuppress(t *testing.T) {
	c := func(v string, sessions uint64) Cell { return Cell{Value: v, Sessions: sessions, Crashes: 2 * sessions} }
	tests := []struct {
		name      string
		cells     []Cell
		k         int
		shown     string
		hidden    int
		otherSess uint64
	}{
		{"all large", []Cell{c("a", 10), c("b", 30)}, 10, "b a", 0, 0},
		{"none", nil, 10, "", 0, 0},
		// One small cell alone would be total minus the rest: the
		// smallest shown cell is hidden with it.
		{"one small cell", []Cell{c("a", 50), c("b", 20), c("rare", 1)}, 10, "a", 2, 21},
		{"small cells sum to k", []Cell{c("a", 50), c("x", 6), c("y", 5)}, 10, "a", 2, 11},
		{"everything small", []Cell{c("x", 3), c("y", 2)}, 10, "", 2, 0},
		{"all but one small, sum below k", []Cell{c("a", 12), c("x", 1)}, 10, "", 2, 13},
		{"k of 1 hides only empty cells", []Cell{c("a", 1), c("none", 0)}, 1, "", 2, 1},
		// The example of docs/privacy.md.
		{"privacy.md example", []Cell{c("Pixel 8", 120), c("Galaxy S23", 40), c("rare", 2)}, 10, "Pixel 8", 2, 42},
		{"ties keep a stable order", []Cell{c("b", 10), c("a", 10)}, 10, "a b", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Suppress("Model", tt.cells, tt.k)
			got := ""
			for i, cell := range b.Cells {
				if i > 0 {
					got += " "
				}
				got += cell.Value
				if cell.Sessions < uint64(tt.k) {
					t.Errorf("shown cell %v has fewer than %d sessions", cell, tt.k)
				}
			}
			if got != tt.shown || b.Hidden != tt.hidden || b.Other.Sessions != tt.otherSess {
				t.Errorf("Suppress = shown %q, hidden %d, other %d sessions; want %q, %d, %d", got, b.Hidden, b.Other.Sessions, tt.shown, tt.hidden, tt.otherSess)
			}
			if b.Other.Sessions != 0 && b.Other.Sessions < uint64(tt.k) {
				t.Errorf("other shows %d sessions, fewer than k", b.Other.Sessions)
			}
		})
	}
}

// TestSuppressNeverRevealsASmallCell checks, over many random breakdowns,
// that no hidden cell below k can be worked out from what is shown: when
// any cell is shown, the total minus the shown cells is 0 or at least k.
// (With every cell hidden, no value is named at all.)
func TestSuppressNeverRevealsASmallCell(t *testing.T) {
	for seed := range 2000 {
		var cells []Cell
		for i := range 1 + seed%7 {
			cells = append(cells, Cell{Value: fmt.Sprint(i), Sessions: uint64((seed*7919 + i*104729) % 25)})
		}
		var total uint64
		for _, c := range cells {
			total += c.Sessions
		}
		b := Suppress("x", cells, 10)
		rest := total
		for _, c := range b.Cells {
			rest -= c.Sessions
		}
		if len(b.Cells) > 0 && rest != 0 && rest < 10 {
			t.Fatalf("cells %v: shown %v leave %d hidden sessions, which singles out fewer than k", cells, b.Cells, rest)
		}
		if b.Hidden > 0 && b.Other.Sessions == 0 && len(b.Cells) > 0 && rest >= 10 {
			t.Fatalf("cells %v: %d hidden sessions (>= k) not summed in other", cells, rest)
		}
	}
}

// versions is the hierarchy of app versions the tests use.
var versions = &Hierarchy{Label: func(p string, partial bool) string {
	if partial {
		return "other " + p + ".x"
	}
	return p + ".x"
}}

func TestGeneralize(t *testing.T) {
	v := func(value string, sessions uint64) Atom {
		return Atom{Cell: Cell{Value: value, Sessions: sessions, Crashes: sessions}, Parent: MajorVersion(value)}
	}
	tests := []struct {
		name   string
		atoms  []Atom
		shown  string // value:sessions of the shown cells, in order
		hidden int
		other  uint64
		labels map[string]string // value: cell shown in ("" hidden)
	}{
		{"small app: a major version instead of nothing", []Atom{v("4.12.0", 4), v("4.12.1", 3), v("4.13.0", 5)}, "4.x:12", 0, 0,
			map[string]string{"4.12.0": "4.x", "4.13.0": "4.x"}},
		{"large versions alone, the rest by major version", []Atom{v("4.12.0", 40), v("4.13.0", 30), v("4.11.2", 6), v("4.10.0", 5), v("3.9.0", 12)},
			"4.12.0:40 4.13.0:30 3.9.0:12 other 4.x:11", 0, 0, map[string]string{"4.11.2": "other 4.x", "3.9.0": "3.9.0"}},
		{"a major version too small: hidden, and the smallest cell with it", []Atom{v("4.12.0", 40), v("4.13.0", 30), v("3.9.0", 2)},
			"4.12.0:40", 2, 32, map[string]string{"3.9.0": "", "4.13.0": ""}},
		// Hiding 4.13.0 to cover the rare 4.11.2 would leave 13 sessions
		// as "other"; grouped with it, they show as 4.x instead.
		{"the cell hidden for the rest joins it under its major version", []Atom{v("4.12.0", 12), v("4.12.1", 12), v("4.13.0", 12), v("4.11.2", 1)},
			"other 4.x:13 4.12.0:12 4.12.1:12", 0, 0, map[string]string{"4.11.2": "other 4.x", "4.13.0": "other 4.x"}},
		// The example of docs/privacy.md, with device classes for coarser
		// values.
		{"privacy.md example", []Atom{{Cell: Cell{Value: "Pixel 8", Sessions: 120}, Parent: "phone"}, {Cell: Cell{Value: "Galaxy S23", Sessions: 40}, Parent: "phone"},
			{Cell: Cell{Value: "rare", Sessions: 2}, Parent: "phone"}}, "Pixel 8:120 other phone.x:42", 0, 0, map[string]string{"rare": "other phone.x", "Galaxy S23": "other phone.x"}},
		{"values that are not versions are not grouped", []Atom{v("4.12.0", 40), v("other", 3), v("", 4)}, "", 3, 47, nil},
		{"a hidden value stays hidden", []Atom{v("4.12.0", 40), {Cell: Cell{Value: "4.13.0", Sessions: 30}, Parent: "4", Hidden: true}},
			"4.12.0:40", 1, 30, map[string]string{"4.13.0": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Generalize("App version", tt.atoms, 10, versions)
			var got []string
			for _, c := range b.Cells {
				got = append(got, fmt.Sprintf("%s:%d", c.Value, c.Sessions))
			}
			if strings.Join(got, " ") != tt.shown || b.Hidden != tt.hidden || b.Other.Sessions != tt.other {
				t.Errorf("Generalize = %v, %d hidden, other %d; want %s, %d, %d", got, b.Hidden, b.Other.Sessions, tt.shown, tt.hidden, tt.other)
			}
			for value, want := range tt.labels {
				if l, ok := b.Label(value); l != want || ok != (want != "") {
					t.Errorf("Label(%q) = %q, %v; want %q", value, l, ok, want)
				}
			}
		})
	}
}

// TestGeneralizeMergedGroups checks the rule for merged groups: a cell
// shows only if each group's part of it is 0 or at least k, so the merged
// breakdown less what one group's own page shows never gives away a
// small part of the other.
func TestGeneralizeMergedGroups(t *testing.T) {
	atom := func(value string, parts map[uint64]uint64) Atom {
		a := Atom{Cell: Cell{Value: value}, Parts: parts}
		for _, n := range parts {
			a.Sessions += n
			a.Crashes += n
		}
		return a
	}
	b := Generalize("Device model", []Atom{
		// Pixel 8: 3 sessions of group 1 (hidden on its page) and 20 of
		// group 2: 23 merged, but 23 - 20 would give the 3 away.
		atom("Pixel 8", map[uint64]uint64{1: 3, 2: 20}),
		atom("Galaxy S23", map[uint64]uint64{1: 15, 2: 12}),
		atom("iPhone15,2", map[uint64]uint64{2: 30}),
	}, 10, nil)
	var got []string
	for _, c := range b.Cells {
		got = append(got, c.Value)
	}
	if strings.Join(got, ",") != "iPhone15,2,Galaxy S23" || b.Hidden != 1 {
		t.Errorf("shown %v, %d hidden; want the Pixel 8 hidden", got, b.Hidden)
	}
	if b.Other.Sessions != 0 {
		t.Errorf("other shows %d: its part of group 1 is 3", b.Other.Sessions)
	}
}

// TestGeneralizeNeverRevealsASmallCell checks, over many random
// breakdowns with coarser values and merged groups, what Generalize
// promises: each shown cell has k sessions and each group's part of it is
// 0 or k; no value is in two cells; and when anything is shown, the total
// less the shown cells is 0 or at least k.
func TestGeneralizeNeverRevealsASmallCell(t *testing.T) {
	const k = 10
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 5000 {
		var atoms []Atom
		merged := round%3 == 0
		for i := range 1 + rnd.IntN(9) {
			a := Atom{Cell: Cell{Value: fmt.Sprintf("%d.%d", i%3, i)}, Parent: fmt.Sprint(i % 3)}
			if rnd.IntN(5) == 0 {
				a.Parent = ""
			}
			if merged {
				a.Parts = map[uint64]uint64{}
				for fp := range uint64(2) {
					n := uint64(rnd.IntN(16))
					a.Parts[fp] = n
					a.Sessions += n
				}
			} else {
				a.Sessions = uint64(rnd.IntN(25))
			}
			a.Crashes = a.Sessions
			atoms = append(atoms, a)
		}
		b := Generalize("x", atoms, k, versions)
		var total, shown uint64
		for _, a := range atoms {
			total += a.Sessions
		}
		seen := map[string]string{}
		for _, c := range b.Cells {
			shown += c.Sessions
			if c.Sessions < k {
				t.Fatalf("atoms %+v: cell %+v has fewer than k sessions", atoms, c)
			}
			parts := map[uint64]uint64{}
			var sum uint64
			for _, a := range atoms {
				if l, ok := b.Label(a.Value); ok && l == c.Value {
					if prev, dup := seen[a.Value]; dup {
						t.Fatalf("atoms %+v: %s in %s and %s", atoms, a.Value, prev, c.Value)
					}
					seen[a.Value] = c.Value
					sum += a.Sessions
					for fp, n := range a.Parts {
						parts[fp] += n
					}
				}
			}
			if sum != c.Sessions {
				t.Fatalf("atoms %+v: cell %+v sums %d sessions of its values", atoms, c, sum)
			}
			for fp, n := range parts {
				if n > 0 && n < k {
					t.Fatalf("atoms %+v: cell %+v holds %d sessions of group %d", atoms, c, n, fp)
				}
			}
		}
		if rest := total - shown; len(b.Cells) > 0 && rest != 0 && rest < k {
			t.Fatalf("atoms %+v: shown %+v leave %d hidden sessions, fewer than k", atoms, b.Cells, rest)
		}
		if b.Hidden+len(seen) != len(atoms) {
			t.Fatalf("atoms %+v: %d hidden and %d shown of %d values", atoms, b.Hidden, len(seen), len(atoms))
		}
	}
}
