package kanon

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultHierarchy is the order attributes are generalized in unless
// configured otherwise: the least useful first. Device models are the
// longest tail and the most identifying, and a rare model matters to few
// analyses, so it goes first; then the locale's region part (the language
// stays) and the region (the country stays), which usage reports need at
// country level at most; then the OS and app versions, which crash triage
// needs most, to their major (and major.minor) versions; then each
// attribute to unknown, the app version last.
const DefaultHierarchy = "model,locale,location,os,app,locale,location,os,app"

// Hierarchy is the order in which a class that has too few consents is
// generalized: a list of steps, each taking one attribute one rung up its
// ladder. Level 0 keeps every value; level n has taken the first n steps;
// the level after the last step is the top, where every quasi-identifier
// is unknown. The zero Hierarchy is DefaultHierarchy.
type Hierarchy struct {
	steps []Attribute
}

// ParseHierarchy parses a comma-separated list of attribute names
// (model, locale, location, os, app), each naming one step. An attribute
// may appear at most as often as its ladder has rungs: model once, the
// others twice. Attributes that never reach their last rung are
// generalized only at the top.
func ParseHierarchy(s string) (Hierarchy, error) {
	var h Hierarchy
	var used [NumAttributes]int
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		i := slices.Index(attributeNames[:], name)
		if i < 0 {
			return Hierarchy{}, fmt.Errorf("hierarchy %q: unknown attribute %q (want %s)", s, name, strings.Join(attributeNames[:], ", "))
		}
		a := Attribute(i)
		if used[a]++; used[a] > a.Rungs() {
			return Hierarchy{}, fmt.Errorf("hierarchy %q: %s appears %d times, its ladder has %d rungs", s, a, used[a], a.Rungs())
		}
		h.steps = append(h.steps, a)
	}
	if len(h.steps) == 0 {
		return Hierarchy{}, errors.New("hierarchy: no steps")
	}
	return h, nil
}

// MustParseHierarchy is ParseHierarchy for constants; it panics on error.
func MustParseHierarchy(s string) Hierarchy {
	h, err := ParseHierarchy(s)
	if err != nil {
		panic(err)
	}
	return h
}

// orDefault returns h, or DefaultHierarchy for the zero Hierarchy.
func (h Hierarchy) orDefault() Hierarchy {
	if len(h.steps) == 0 {
		return MustParseHierarchy(DefaultHierarchy)
	}
	return h
}

// String returns h as ParseHierarchy reads it.
func (h Hierarchy) String() string {
	h = h.orDefault()
	names := make([]string, len(h.steps))
	for i, a := range h.steps {
		names[i] = a.String()
	}
	return strings.Join(names, ",")
}

// Top returns the top level: every quasi-identifier unknown.
func (h Hierarchy) Top() int { return len(h.orDefault().steps) + 1 }

// At returns the generalization of level, from 0 (exact) to Top; levels
// beyond Top are Top.
func (h Hierarchy) At(level int) Generalization {
	h = h.orDefault()
	var g Generalization
	if level > len(h.steps) {
		g.Top = true
		for a := range NumAttributes {
			g.Rungs[a] = attributeRungs[a]
		}
		return g
	}
	for _, a := range h.steps[:max(level, 0)] {
		g.Rungs[a]++
	}
	return g
}

// Generalize returns q as stored at level.
func (h Hierarchy) Generalize(q QI, level int) QI { return h.At(level).Apply(q) }
