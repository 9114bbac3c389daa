package triage

import (
	"errors"
	"fmt"
	"time"
)

// State is the triage state of a crash group.
type State string

// Crash group states. A group without a decision is open.
const (
	// StateOpen needs triage or a fix.
	StateOpen State = "open"
	// StateResolved is fixed in Decision.ResolvedIn: crashes in that app
	// version or a later one, after the decision, mean the group has
	// regressed.
	StateResolved State = "resolved"
	// StateIgnored is not worth fixing; it stays out of the default list.
	StateIgnored State = "ignored"
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	return s == StateOpen || s == StateResolved || s == StateIgnored
}

// Decision is one triage decision about a crash group: the group's state
// from then on.
type Decision struct {
	// AppID and Fingerprint name the group.
	AppID       string
	Fingerprint uint64
	// State is the group's new state.
	State State
	// ResolvedIn is the app version that carries the fix (see
	// ValidVersion), often one not seen yet; set exactly when State is
	// StateResolved. Crashes in it or a later version after ChangedAt
	// mark the group regressed.
	ResolvedIn string
	// ChangedBy names who made the decision: a dashboard user, never an
	// app user.
	ChangedBy string
	// ChangedAt is when the decision was made, between 1970 and 2106. It
	// is stored to the second, and orders decisions to the nanosecond.
	ChangedAt time.Time
}

// maxDecisionText is the longest version and user name a Decision holds.
const maxDecisionText = 64

// checkChangedAt returns why t cannot be the time of a decision or a
// change, or nil: it is stored as a DateTime, 1970 to 2106 to the second.
func checkChangedAt(t time.Time) error {
	if s := t.Unix(); s <= 0 || s > 1<<32-1 {
		return fmt.Errorf("changed at %s is outside 1970 to 2106", t.UTC().Format(time.RFC3339))
	}
	return nil
}

// Validate reports whether d can be recorded.
func (d Decision) Validate() error {
	var errs []error
	if d.AppID == "" {
		errs = append(errs, errors.New("app id is empty"))
	}
	if !d.State.Valid() {
		errs = append(errs, fmt.Errorf("state %q is not open, resolved or ignored", d.State))
	}
	if d.State == StateResolved && d.ResolvedIn == "" {
		errs = append(errs, errors.New("a resolved group needs the version that fixes it"))
	} else if d.State == StateResolved && !ValidVersion(d.ResolvedIn) {
		errs = append(errs, fmt.Errorf("%q is not an app version such as 4.13.1 or 4.14.0-beta.2", d.ResolvedIn))
	}
	if d.State != StateResolved && d.ResolvedIn != "" {
		errs = append(errs, fmt.Errorf("only a resolved group has a version, not a %s one", d.State))
	}
	if len(d.ResolvedIn) > maxDecisionText || len(d.ChangedBy) > maxDecisionText {
		errs = append(errs, fmt.Errorf("version and user name are limited to %d bytes", maxDecisionText))
	}
	errs = append(errs, checkChangedAt(d.ChangedAt))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("crash group status: %w", err)
	}
	return nil
}
