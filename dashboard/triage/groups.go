package triage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Group is a crash group: every crash of an app with one fingerprint, and
// of the groups merged into it.
type Group struct {
	AppID       string
	Fingerprint uint64
	// Members are the groups merged into this one, in order; nil if none.
	Members []uint64
	// ExceptionType, Message and Culprit describe one of its crashes:
	// type, scrubbed message, and the innermost in-app function.
	ExceptionType string
	Message       string
	Culprit       string
	// ExceptionTypes are every type of its crashes: one, unless the app
	// grouped them with a custom fingerprint or groups were merged.
	ExceptionTypes []string
	// Crashes, Fatal and Sessions count the crashes, those that ended the
	// process, and the distinct sessions affected, in the filter.
	Crashes  uint64
	Fatal    uint64
	Sessions uint64
	// FirstSeen and LastSeen bound the crashes in the filter; FirstEver is
	// the group's first crash in all the data kept.
	FirstSeen time.Time
	LastSeen  time.Time
	FirstEver time.Time
	// Versions are the app versions it crashed in, in the filter, oldest
	// first.
	Versions []string
	// Daily counts crashes per day of the filter, oldest first.
	Daily []uint64
	// Status is the latest triage decision; State is open if none.
	Status Decision
	// Assignee is the dashboard user working on it, "" for nobody.
	Assignee string
	// Regressed: resolved, but crashing in the fixed version or a later
	// one since it was resolved; RegressedIn are those versions. New:
	// first crashed within Config.NewWithin. Escalating: today at least
	// EscalateMin crashes and EscalateFactor times the daily average of
	// the 7 days before.
	Regressed   bool
	RegressedIn []string
	New         bool
	Escalating  bool
}

// AllFingerprints returns the group's own fingerprint and its members'.
func (g *Group) AllFingerprints() []uint64 { return append([]uint64{g.Fingerprint}, g.Members...) }

// merges returns app's merges.
func (s *Store) merges(ctx context.Context, app string) (mergeSet, error) {
	latest, err := s.b.LatestChanges(ctx, app, ChangeMerge, nil)
	if err != nil {
		return mergeSet{}, fmt.Errorf("triage: read merges: %w", err)
	}
	return newMergeSet(latest), nil
}

// groups returns the groups of f, with their status and flags but without
// their titles (see titles), ranked by impact: most affected sessions
// first, then most crashes. With only (the members of one group, ms the
// app's merges), it reads only those; else every group, reading the
// merges itself. A merged group's crashes count in the group it joined.
func (s *Store) groups(ctx context.Context, f Filter, ms *mergeSet, only []uint64) ([]Group, error) {
	var (
		days      []GroupDay
		statuses  map[uint64]Decision
		assignees map[uint64]Change
		regressed map[uint64][]string
		firstEver map[uint64]time.Time
	)
	// The days read cover the escalation baseline too.
	wide := f
	wide.Days = max(f.Days, escalateBaselineDays+1)
	err := parallel(
		func() (err error) {
			if days, err = s.b.GroupDays(ctx, s.scope(wide, only...)); err != nil {
				return fmt.Errorf("triage: list crash groups: %w", err)
			}
			return nil
		},
		func() (err error) {
			if ms == nil {
				m, err := s.merges(ctx, f.AppID)
				if err != nil {
					return err
				}
				ms = &m
			}
			if statuses, err = s.statuses(ctx, f.AppID, only); err != nil {
				return err
			}
			regressed, err = s.regressed(ctx, f.AppID, *ms, statuses)
			return err
		},
		func() (err error) {
			if assignees, err = s.b.LatestChanges(ctx, f.AppID, ChangeAssignee, only); err != nil {
				return fmt.Errorf("triage: read assignees: %w", err)
			}
			return nil
		},
		func() (err error) { firstEver, err = s.firstEver(ctx, f.AppID, only); return err },
	)
	if err != nil {
		return nil, err
	}

	// Sum each group's days of f: distinct sessions add up over days,
	// as a session's key changes every day, and (nearly) over merged
	// groups (see docs/dashboard.md).
	wideDays, fDays := s.days(wide.Days), s.days(f.Days)
	index := make(map[uint64]int)
	var out []Group
	daily := make(map[uint64][]uint64)
	for _, d := range days {
		i := wideDays.index(d.Day)
		if i < 0 {
			continue
		}
		root := ms.root(d.Fingerprint)
		counts, ok := daily[root]
		if !ok {
			counts = make([]uint64, wideDays.n)
			daily[root] = counts
		}
		counts[i] += d.Crashes
		if fDays.index(d.Day) < 0 {
			continue
		}
		j, ok := index[root]
		if !ok {
			j = len(out)
			index[root] = j
			out = append(out, Group{AppID: f.AppID, Fingerprint: root, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen})
		}
		g := &out[j]
		g.Crashes += d.Crashes
		g.Fatal += d.Fatal
		g.Sessions += d.Sessions
		if d.FirstSeen.Before(g.FirstSeen) {
			g.FirstSeen = d.FirstSeen
		}
		if d.LastSeen.After(g.LastSeen) {
			g.LastSeen = d.LastSeen
		}
		g.Versions = appendNew(g.Versions, d.Versions...)
		g.ExceptionTypes = appendNew(g.ExceptionTypes, d.ExceptionTypes...)
		if d.Fingerprint != root && !slices.Contains(g.Members, d.Fingerprint) {
			g.Members = append(g.Members, d.Fingerprint)
		}
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), cmp.Compare(b.Crashes, a.Crashes), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})

	now := s.cfg.Now()
	for i := range out {
		g := &out[i]
		slices.Sort(g.Members)
		slices.SortFunc(g.Versions, CompareVersions)
		slices.Sort(g.ExceptionTypes)
		g.ExceptionType = g.ExceptionTypes[0]
		g.FirstEver = g.FirstSeen
		for _, fp := range g.AllFingerprints() {
			if t, ok := firstEver[fp]; ok && t.Before(g.FirstEver) {
				g.FirstEver = t
			}
		}
		g.Status = Decision{AppID: f.AppID, Fingerprint: g.Fingerprint, State: StateOpen}
		if st, ok := statuses[g.Fingerprint]; ok {
			g.Status = st
		}
		g.Assignee = assignees[g.Fingerprint].Value
		g.RegressedIn = regressed[g.Fingerprint]
		g.Regressed = len(g.RegressedIn) > 0
		g.New = now.Sub(g.FirstEver) <= s.cfg.NewWithin
		counts := daily[g.Fingerprint]
		g.Daily = slices.Clone(counts[len(counts)-f.Days:])
		g.Escalating = s.escalating(counts)
	}
	return out, nil
}

// appendNew appends to list the values it does not hold yet.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

// titles fills in the message and culprit of groups: the group's own, or
// else a member's.
func (s *Store) titles(ctx context.Context, f Filter, groups []Group) error {
	if len(groups) == 0 {
		return nil
	}
	var fps []uint64
	for _, g := range groups {
		fps = append(fps, g.AllFingerprints()...)
	}
	titles, err := s.b.GroupTitles(ctx, s.scope(f, fps...))
	if err != nil {
		return fmt.Errorf("triage: crash group titles: %w", err)
	}
	for i := range groups {
		for _, fp := range groups[i].AllFingerprints() {
			if t, ok := titles[fp]; ok {
				groups[i].Message, groups[i].Culprit = t.Message, t.Culprit
				break
			}
		}
	}
	return nil
}

// escalating applies the escalation rule to a group's daily counts, the
// last being today's.
func (s *Store) escalating(counts []uint64) bool {
	if len(counts) == 0 {
		return false
	}
	today := counts[len(counts)-1]
	var base uint64
	for _, n := range counts[max(0, len(counts)-1-escalateBaselineDays) : len(counts)-1] {
		base += n
	}
	avg := float64(base) / escalateBaselineDays
	return today >= s.cfg.EscalateMin && float64(today) >= s.cfg.EscalateFactor*avg
}

// firstEver returns when each group of app (or of only) first crashed,
// over all the data kept. To stay fast over many days it reads the first
// day of each group, and the exact time only for the groups whose first
// day is within NewWithin of now, and for only; the other groups get the
// start of their first day.
func (s *Store) firstEver(ctx context.Context, app string, only []uint64) (map[uint64]time.Time, error) {
	days, err := s.b.FirstCrashDays(ctx, app, only)
	if err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	out := make(map[uint64]time.Time, len(days))
	recent := s.cfg.Now().Add(-s.cfg.NewWithin).UTC().Truncate(24 * time.Hour)
	var exact []uint64
	for fp, d := range days {
		out[fp] = d.UTC()
		if len(only) > 0 || !d.Before(recent) {
			exact = append(exact, fp)
		}
	}
	if len(exact) == 0 {
		return out, nil
	}
	times, err := s.b.FirstCrashTimes(ctx, app, exact)
	if err != nil {
		return nil, fmt.Errorf("triage: first crashes: %w", err)
	}
	maps.Copy(out, times)
	return out, nil
}

// statuses returns the latest status of each group of app that has one
// (or only of the groups of only).
func (s *Store) statuses(ctx context.Context, app string, only []uint64) (map[uint64]Decision, error) {
	out, err := s.b.LatestDecisions(ctx, app, only)
	if err != nil {
		return nil, fmt.Errorf("triage: read statuses: %w", err)
	}
	return out, nil
}

// regressed returns, for each unmerged group resolved in statuses that
// crashed in the fixed version or a later one after it was resolved
// (itself or a group merged into it), those versions, in order. Crashes
// from before the decision do not count, whatever their version: they
// were known when the group was resolved.
func (s *Store) regressed(ctx context.Context, app string, ms mergeSet, statuses map[uint64]Decision) (map[uint64][]string, error) {
	resolved := make(map[uint64]Decision)
	var since time.Time
	var fps []uint64
	for fp, st := range statuses {
		if st.State != StateResolved || ms.merged(fp) {
			continue
		}
		resolved[fp] = st
		if since.IsZero() || st.ChangedAt.Before(since) {
			since = st.ChangedAt
		}
		fps = append(fps, ms.members(fp)...)
	}
	out := make(map[uint64][]string)
	if len(resolved) == 0 {
		return out, nil
	}
	slices.Sort(fps)
	versions, err := s.b.VersionsLastSeen(ctx, app, slices.Compact(fps), since)
	if err != nil {
		return nil, fmt.Errorf("triage: versions of resolved groups: %w", err)
	}
	for fp, last := range versions {
		root := ms.root(fp)
		st, ok := resolved[root]
		if !ok {
			continue
		}
		for v, at := range last {
			if comparableVersion(v) && CompareVersions(v, st.ResolvedIn) >= 0 && at.After(st.ChangedAt) {
				out[root] = appendNew(out[root], v)
			}
		}
	}
	for _, vs := range out {
		slices.SortFunc(vs, CompareVersions)
	}
	return out, nil
}
