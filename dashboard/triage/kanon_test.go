package triage

import (
	"fmt"
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
