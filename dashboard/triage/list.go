package triage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Sort orders a list of groups.
type Sort string

// The orders of a list.
const (
	// SortSessions orders by affected sessions, then crashes.
	SortSessions Sort = "sessions"
	// SortCrashes orders by crashes, then sessions.
	SortCrashes Sort = "crashes"
	// SortLastSeen orders by the latest crash.
	SortLastSeen Sort = "last_seen"
	// SortFirstSeen orders by the first crash ever: the age of the group.
	SortFirstSeen Sort = "first_seen"
)

// Sorts returns the orders a list can take.
func Sorts() []Sort { return []Sort{SortSessions, SortCrashes, SortLastSeen, SortFirstSeen} }

// ListOptions picks the order and the page of a list.
type ListOptions struct {
	// Sort is the order; default SortSessions.
	Sort Sort
	// Asc sorts smallest or oldest first; the default is largest or
	// newest first.
	Asc bool
	// Page is the page, from 1; default 1. A page past the last is empty.
	Page int
	// PerPage is how many groups a page has; default DefaultPerPage, at
	// most MaxPerPage.
	PerPage int
}

// normalize returns o with defaults applied, or an error wrapping
// ErrInvalidFilter.
func (o ListOptions) normalize() (ListOptions, error) {
	o.Sort = cmp.Or(o.Sort, SortSessions)
	if !slices.Contains(Sorts(), o.Sort) {
		return o, fmt.Errorf("%w: unknown order %q", ErrInvalidFilter, o.Sort)
	}
	o.Page = cmp.Or(o.Page, 1)
	o.PerPage = cmp.Or(o.PerPage, DefaultPerPage)
	if o.Page < 1 || o.PerPage < 1 || o.PerPage > MaxPerPage {
		return o, fmt.Errorf("%w: page %d of %d groups is not a page", ErrInvalidFilter, o.Page, o.PerPage)
	}
	return o, nil
}

// GroupList is a page of crash groups.
type GroupList struct {
	// Groups are the page's groups, in order.
	Groups []Group
	// Total is how many groups the filter selects, on every page, and
	// Crashes their crashes.
	Total   int
	Crashes uint64
	// Options are the order and page, with defaults applied; Pages is
	// the number of pages.
	Options ListOptions
	Pages   int
}

// List returns a page of the crash groups of f, in the order of o.
func (s *Store) List(ctx context.Context, f Filter, o ListOptions) (*GroupList, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	if o, err = o.normalize(); err != nil {
		return nil, err
	}
	var (
		groups []Group
		found  []uint64
	)
	err = parallel(
		func() (err error) { groups, err = s.groups(ctx, f, nil, nil); return err },
		func() (err error) {
			if f.Search == "" {
				return nil
			}
			if found, err = s.b.SearchGroups(ctx, s.scope(f), f.Search); err != nil {
				return fmt.Errorf("triage: search: %w", err)
			}
			return nil
		},
	)
	if err != nil {
		return nil, err
	}
	groups = slices.DeleteFunc(groups, func(g Group) bool {
		if !f.Status.selects(&g) || f.Assignee != "" && g.Assignee != f.Assignee {
			return true
		}
		return f.Search != "" && !slices.ContainsFunc(g.AllFingerprints(), func(fp uint64) bool { return slices.Contains(found, fp) })
	})
	sortGroups(groups, o)
	l := &GroupList{Total: len(groups), Options: o, Pages: max(1, (len(groups)+o.PerPage-1)/o.PerPage)}
	for _, g := range groups {
		l.Crashes += g.Crashes
	}
	from := min((o.Page-1)*o.PerPage, len(groups))
	l.Groups = groups[from:min(from+o.PerPage, len(groups))]
	if err := s.titles(ctx, f, l.Groups); err != nil {
		return nil, err
	}
	return l, nil
}

// sortGroups orders groups as o says; ties go by the other counts, then
// fingerprint, so the order is stable between pages.
func sortGroups(groups []Group, o ListOptions) {
	key := func(a, b *Group) int {
		switch o.Sort {
		case SortCrashes:
			return cmp.Or(cmp.Compare(a.Crashes, b.Crashes), cmp.Compare(a.Sessions, b.Sessions))
		case SortLastSeen:
			return a.LastSeen.Compare(b.LastSeen)
		case SortFirstSeen:
			return a.FirstEver.Compare(b.FirstEver)
		}
		return cmp.Or(cmp.Compare(a.Sessions, b.Sessions), cmp.Compare(a.Crashes, b.Crashes))
	}
	slices.SortFunc(groups, func(a, b Group) int {
		c := key(&a, &b)
		if !o.Asc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
}

// selects reports whether a group in g's state is listed under st.
func (st Status) selects(g *Group) bool {
	switch st {
	case StatusUnresolved:
		return g.Status.State == StateOpen || g.Regressed
	case StatusResolved:
		return g.Status.State == StateResolved && !g.Regressed
	case StatusIgnored:
		return g.Status.State == StateIgnored
	}
	return true
}
