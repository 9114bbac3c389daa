package triage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrInvalidChange wraps the errors of changes that cannot be made.
var ErrInvalidChange = errors.New("invalid change")

// SetStatus records a triage decision about a group; its ChangedAt
// defaults to now. A decision about a group merged into another one is
// about that one: a merged group's crashes count there.
func (s *Store) SetStatus(ctx context.Context, d Decision) error {
	return s.SetStatuses(ctx, []Decision{d})
}

// SetStatuses records decisions about several groups at once, as
// SetStatus does; none is recorded if one is invalid.
func (s *Store) SetStatuses(ctx context.Context, ds []Decision) error {
	if len(ds) == 0 {
		return nil
	}
	ds = slices.Clone(ds)
	now := s.cfg.Now()
	apps := make(map[string]mergeSet)
	for i := range ds {
		d := &ds[i]
		if d.ChangedAt.IsZero() {
			// Apart by a nanosecond, so a bulk change keeps its order.
			d.ChangedAt = now.Add(time.Duration(i))
		}
		if err := d.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidChange, err)
		}
		ms, ok := apps[d.AppID]
		if !ok {
			var err error
			if ms, err = s.merges(ctx, d.AppID); err != nil {
				return err
			}
			apps[d.AppID] = ms
		}
		d.Fingerprint = ms.root(d.Fingerprint)
	}
	if err := s.b.RecordDecisions(ctx, ds); err != nil {
		return fmt.Errorf("triage: record decisions: %w", err)
	}
	return nil
}

// Assign records who works on the groups of app (their roots, if
// merged): assignee, a dashboard user the caller checked, or "" for
// nobody.
func (s *Store) Assign(ctx context.Context, app string, groups []uint64, assignee, by string) error {
	ms, err := s.merges(ctx, app)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	var cs []Change
	for i, fp := range groups {
		cs = append(cs, Change{AppID: app, Fingerprint: ms.root(fp), Kind: ChangeAssignee, Value: assignee, ChangedBy: by, ChangedAt: now.Add(time.Duration(i))})
	}
	return s.record(ctx, cs)
}

// SetNote records the free-text note of a group of app (of its root, if
// merged), "" for none. Notes are scrubbed of identifiers (e-mail
// addresses, phone numbers, ...) as crash messages are, before they are
// stored: they are readable by analysts.
func (s *Store) SetNote(ctx context.Context, app string, group uint64, note, by string) error {
	ms, err := s.merges(ctx, app)
	if err != nil {
		return err
	}
	c := Change{AppID: app, Fingerprint: ms.root(group), Kind: ChangeNote, Value: s.cfg.Scrubber.String(note), ChangedBy: by, ChangedAt: s.cfg.Now()}
	return s.record(ctx, []Change{c})
}

// Merge merges groups into the group into, so their crashes count as its
// crashes everywhere, and returns the group they joined: into, or the
// group into was merged into before. Groups already in it are left as
// they are; a group merged elsewhere moves, with the groups merged into
// it. Merging is undone group by group with Unmerge.
func (s *Store) Merge(ctx context.Context, app string, into uint64, groups []uint64, by string) (uint64, error) {
	ms, err := s.merges(ctx, app)
	if err != nil {
		return 0, err
	}
	root := ms.root(into)
	now := s.cfg.Now()
	var cs []Change
	for _, fp := range groups {
		r := ms.root(fp)
		if r == root || slices.ContainsFunc(cs, func(c Change) bool { return c.Fingerprint == r }) {
			continue
		}
		cs = append(cs, Change{AppID: app, Fingerprint: r, Kind: ChangeMerge, MergedInto: root, ChangedBy: by, ChangedAt: now.Add(time.Duration(len(cs)))})
	}
	if len(cs) == 0 {
		return root, fmt.Errorf("%w: the groups are one group already", ErrInvalidChange)
	}
	return root, s.record(ctx, cs)
}

// Unmerge takes group out of the group it was merged into; the groups
// merged into it stay with it.
func (s *Store) Unmerge(ctx context.Context, app string, group uint64, by string) error {
	ms, err := s.merges(ctx, app)
	if err != nil {
		return err
	}
	if _, ok := ms.into[group]; !ok {
		return fmt.Errorf("%w: group %016x is not merged", ErrInvalidChange, group)
	}
	return s.record(ctx, []Change{{AppID: app, Fingerprint: group, Kind: ChangeMerge, ChangedBy: by, ChangedAt: s.cfg.Now()}})
}

// record validates and stores changes.
func (s *Store) record(ctx context.Context, cs []Change) error {
	if len(cs) == 0 {
		return nil
	}
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidChange, err)
		}
	}
	if err := s.b.RecordChanges(ctx, cs); err != nil {
		return fmt.Errorf("triage: record changes: %w", err)
	}
	return nil
}
