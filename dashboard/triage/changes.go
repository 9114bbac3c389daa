package triage

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// ChangeKind is what a Change sets about a crash group, besides its state
// (a Decision).
type ChangeKind string

// The kinds of Change.
const (
	// ChangeAssignee sets the dashboard user who works on the group
	// (Change.Value; "" for nobody).
	ChangeAssignee ChangeKind = "assignee"
	// ChangeNote sets the group's free-text note (Change.Value, scrubbed
	// of identifiers; "" for none).
	ChangeNote ChangeKind = "note"
	// ChangeMerge merges the group into another one (Change.MergedInto;
	// 0 undoes it): a fingerprint override that every read applies, so
	// the aggregates need no rewrite.
	ChangeMerge ChangeKind = "merged_into"
)

// MaxNoteLen is the longest note, in bytes.
const MaxNoteLen = 2000

// Change is one change of a crash group's assignee, note or merge; the
// latest change of each kind counts, and the earlier ones are kept.
type Change struct {
	// AppID and Fingerprint name the group.
	AppID       string
	Fingerprint uint64
	// Kind is what changes.
	Kind ChangeKind
	// Value is the assignee or the note; "" clears it.
	Value string
	// MergedInto is, for ChangeMerge, the group this one joins; 0 undoes
	// the merge.
	MergedInto uint64
	// ChangedBy names who made the change: a dashboard user.
	ChangedBy string
	// ChangedAt is when, between 1970 and 2106; stored to the second,
	// ordered to the nanosecond.
	ChangedAt time.Time
}

// Validate reports whether c can be recorded.
func (c Change) Validate() error {
	var errs []error
	if c.AppID == "" {
		errs = append(errs, errors.New("app id is empty"))
	}
	switch c.Kind {
	case ChangeAssignee:
		if c.Value != "" && !ValidUser(c.Value) {
			errs = append(errs, fmt.Errorf("%q is not a dashboard user name", c.Value))
		}
	case ChangeNote:
		if len(c.Value) > MaxNoteLen || !utf8.ValidString(c.Value) {
			errs = append(errs, fmt.Errorf("a note is UTF-8 text of at most %d bytes", MaxNoteLen))
		}
	case ChangeMerge:
		if c.MergedInto == c.Fingerprint {
			errs = append(errs, errors.New("a group cannot be merged into itself"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown change %q", c.Kind))
	}
	if c.Kind != ChangeMerge && c.MergedInto != 0 {
		errs = append(errs, errors.New("only a merge names a group to merge into"))
	}
	if c.Kind == ChangeMerge && c.Value != "" {
		errs = append(errs, errors.New("a merge has no text"))
	}
	if len(c.ChangedBy) > maxDecisionText {
		errs = append(errs, fmt.Errorf("user names are limited to %d bytes", maxDecisionText))
	}
	errs = append(errs, checkChangedAt(c.ChangedAt))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("crash group change: %w", err)
	}
	return nil
}

// ValidUser reports whether u can name a dashboard user: 1 to 64 letters,
// digits, '.', '_' and '-'.
func ValidUser(u string) bool {
	if u == "" || len(u) > maxDecisionText {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// mergeSet is an app's merges: which group each merged group joined.
// Merges chain (a group merged into one that was merged in turn joins
// the last), and every read uses the root of the chain.
type mergeSet struct {
	into map[uint64]uint64
}

// newMergeSet returns the merges of the latest merge changes of an app.
func newMergeSet(latest map[uint64]Change) mergeSet {
	m := mergeSet{into: make(map[uint64]uint64)}
	for fp, c := range latest {
		if c.MergedInto != 0 && c.MergedInto != fp {
			m.into[fp] = c.MergedInto
		}
	}
	return m
}

// root returns the group fp's crashes are counted in: fp, or the end of
// its chain of merges. Two users merging groups into each other at once
// make a cycle; its groups all count in the lowest fingerprint of it.
func (m mergeSet) root(fp uint64) uint64 {
	if _, ok := m.into[fp]; !ok {
		return fp // most groups: read for every row of a list
	}
	seen := []uint64{fp}
	for {
		next, ok := m.into[fp]
		if !ok {
			return fp
		}
		if slices.Contains(seen, next) {
			cycle := seen[slices.Index(seen, next):]
			return slices.Min(cycle)
		}
		seen = append(seen, next)
		fp = next
	}
}

// members returns root and every group merged into it, directly or not,
// root first and the others in order.
func (m mergeSet) members(root uint64) []uint64 {
	out := []uint64{root}
	var others []uint64
	for fp := range m.into {
		if fp != root && m.root(fp) == root {
			others = append(others, fp)
		}
	}
	slices.Sort(others)
	return append(out, others...)
}

// merged reports whether fp counts in another group.
func (m mergeSet) merged(fp uint64) bool { return m.root(fp) != fp }

// MergedError is returned by Store.Group for a group merged into another
// one.
type MergedError struct {
	// Into is the group its crashes count in.
	Into uint64
}

func (e *MergedError) Error() string {
	return fmt.Sprintf("triage: crash group merged into %016x", e.Into)
}

// Is makes errors.Is(err, ErrMerged) true.
func (e *MergedError) Is(target error) bool { return target == ErrMerged }

// ErrMerged is what a MergedError is.
var ErrMerged = errors.New("triage: crash group merged into another")
