// Package triage reads crash groups for the people who fix them: groups
// ranked by impact with their trend, the regressed, new and escalating
// flags, search, sorting and pages of groups, one group's stack, charts,
// breakdowns and individual crashes, triage decisions, assignments, notes
// and merges, and an app's crash-free session rate and release adoption.
//
// A Store asks a Backend, which this package declares and package
// clickhouse implements, for what is stored: per-group and per-day counts
// from the aggregates, the raw crashes of one group at a time, and the
// changes made. The Store merges, ranks, flags and hides; the Backend
// only counts, so pages stay fast over millions of crashes.
//
// Merged groups are a fingerprint override applied at read time: every
// count, flag, chart and breakdown of a group includes the groups merged
// into it, and the stored crashes and aggregates are never rewritten.
//
// Breakdowns show only cells of at least K distinct sessions, grouping
// smaller values under coarser ones (see Generalize), and an individual
// crash shows a version, OS, device or region only as the breakdown of
// its group shows it: what triage shows never singles out a device.
package triage

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/anonymizer/scrub"
)

// Defaults for Config.
const (
	// DefaultK is the fewest distinct sessions a breakdown cell, or a
	// filter value, needs to be shown.
	DefaultK = 10
	// DefaultNewWithin is how recently a group must have first crashed to
	// be new.
	DefaultNewWithin = 24 * time.Hour
	// DefaultEscalateFactor is how many times its previous daily average a
	// group must crash today to be escalating.
	DefaultEscalateFactor = 2.0
	// DefaultEscalateMin is the fewest crashes today an escalating group
	// has.
	DefaultEscalateMin = 10
	// DefaultPerPage is how many groups a page of List has.
	DefaultPerPage = 50
	// MaxPerPage is the most groups a page of List has.
	MaxPerPage = 200
	// CrashesPerPage is how many individual crashes a group's page shows
	// at a time.
	CrashesPerPage = 20
	// MaxSearchLen is the longest search text, in bytes.
	MaxSearchLen = 200
)

// escalateBaselineDays is how many days before today the escalation
// baseline averages over.
const escalateBaselineDays = 7

// Config configures a Store.
type Config struct {
	// Backend holds the crash groups, sessions and decisions; required.
	// A *clickhouse.Client is one.
	Backend Backend
	// K is the fewest distinct sessions a breakdown cell needs to be
	// shown. Default DefaultK.
	K int
	// NewWithin, EscalateFactor and EscalateMin define the new and
	// escalating flags. Defaults DefaultNewWithin, DefaultEscalateFactor,
	// DefaultEscalateMin.
	NewWithin      time.Duration
	EscalateFactor float64
	EscalateMin    uint64
	// Scrubber scrubs notes of identifiers before they are stored;
	// default a Scrubber with every detector.
	Scrubber *scrub.Scrubber
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Store answers triage questions. It is safe for concurrent use.
type Store struct {
	cfg Config
	b   Backend
}

// New returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Backend == nil {
		return nil, errors.New("triage: Backend is required")
	}
	if cfg.K < 0 || cfg.EscalateFactor < 0 || cfg.NewWithin < 0 {
		return nil, errors.New("triage: K, NewWithin and EscalateFactor must not be negative")
	}
	cfg.K = cmp.Or(cfg.K, DefaultK)
	cfg.NewWithin = cmp.Or(cfg.NewWithin, DefaultNewWithin)
	cfg.EscalateFactor = cmp.Or(cfg.EscalateFactor, DefaultEscalateFactor)
	cfg.EscalateMin = cmp.Or(cfg.EscalateMin, DefaultEscalateMin)
	if cfg.Scrubber == nil {
		cfg.Scrubber = scrub.New(scrub.Config{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, b: cfg.Backend}, nil
}

// K returns the fewest distinct sessions a shown cell has.
func (s *Store) K() int { return s.cfg.K }

// Now returns the Store's current time.
func (s *Store) Now() time.Time { return s.cfg.Now() }

// Status selects groups by their triage state in List.
type Status string

// Statuses a Filter can select.
const (
	// StatusUnresolved is open and regressed groups: what needs work.
	StatusUnresolved Status = "unresolved"
	// StatusAll is every group.
	StatusAll Status = "all"
	// StatusResolved is resolved groups that have not regressed.
	StatusResolved Status = "resolved"
	// StatusIgnored is ignored groups.
	StatusIgnored Status = "ignored"
)

// Kind selects crashes by whether they ended the process.
type Kind string

// Kinds a Filter can select.
const (
	// KindAll is crashes and handled exceptions.
	KindAll Kind = ""
	// KindFatal is crashes that ended the process.
	KindFatal Kind = "fatal"
	// KindHandled is exceptions the app caught and reported.
	KindHandled Kind = "handled"
)

// Filter selects the crashes a page is about.
type Filter struct {
	// AppID is the app; required.
	AppID string
	// Days is how many UTC days, ending today, to cover; default 14, at
	// most 400.
	Days int
	// AppVersion, OSName and Region narrow the crashes, "" for any.
	// Region is an ISO 3166-1 country ("AT") or a 3166-2 region ("AT-9").
	AppVersion string
	OSName     string
	Region     string
	// Kind narrows to crashes that ended the process or to handled
	// exceptions; KindAll for both.
	Kind Kind
	// Status selects groups by state; default StatusUnresolved.
	Status Status
	// Search selects the groups with a crash whose exception type,
	// message or culprit function contains it, ignoring case; "" for
	// every group. At most MaxSearchLen bytes.
	Search string
	// Assignee selects the groups assigned to this dashboard user; "" for
	// any.
	Assignee string
}

// ErrInvalidFilter wraps the errors of filters that cannot be run.
var ErrInvalidFilter = errors.New("invalid filter")

// normalize returns f with defaults applied, or an error wrapping
// ErrInvalidFilter.
func (f Filter) normalize() (Filter, error) {
	if f.AppID == "" {
		return f, fmt.Errorf("%w: no app selected", ErrInvalidFilter)
	}
	if f.Days == 0 {
		f.Days = 14
	}
	if f.Days < 1 || f.Days > 400 {
		return f, fmt.Errorf("%w: %d days is not between 1 and 400", ErrInvalidFilter, f.Days)
	}
	switch f.Status {
	case "":
		f.Status = StatusUnresolved
	case StatusUnresolved, StatusAll, StatusResolved, StatusIgnored:
	default:
		return f, fmt.Errorf("%w: unknown status %q", ErrInvalidFilter, f.Status)
	}
	switch f.Kind {
	case KindAll, KindFatal, KindHandled:
	default:
		return f, fmt.Errorf("%w: unknown kind %q: fatal, handled or empty", ErrInvalidFilter, f.Kind)
	}
	f.Search = strings.TrimSpace(f.Search)
	if len(f.Search) > MaxSearchLen || !utf8.ValidString(f.Search) {
		return f, fmt.Errorf("%w: the search is longer than %d bytes", ErrInvalidFilter, MaxSearchLen)
	}
	if f.Assignee != "" && !ValidUser(f.Assignee) {
		return f, fmt.Errorf("%w: %q is not a user name", ErrInvalidFilter, f.Assignee)
	}
	return f, nil
}

// Range returns the first and the last UTC day f covers, at midnight, as
// of now.
func (s *Store) Range(f Filter) (first, last time.Time) {
	if f.Days == 0 {
		f.Days = 14
	}
	d := s.days(max(f.Days, 1))
	return d.first, d.date(d.n - 1)
}

// scope returns the Scope of f's app, days, dimensions and kind, and of
// the crash groups groups (nil for every group). A two-letter Region is
// an ISO 3166-1 country, a longer one an ISO 3166-2 region.
func (s *Store) scope(f Filter, groups ...uint64) Scope {
	days := s.days(f.Days)
	sc := Scope{AppID: f.AppID, First: days.first, Last: days.date(days.n - 1), AppVersion: f.AppVersion, OSName: f.OSName, Groups: groups, Kind: f.Kind}
	if len(f.Region) == 2 {
		sc.Country = f.Region
	} else {
		sc.Region = f.Region
	}
	return sc
}

// today returns the start of the current UTC day.
func (s *Store) today() time.Time {
	y, m, d := s.cfg.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayRange is n UTC days, the oldest first.
type dayRange struct {
	first time.Time
	n     int
}

// days returns the n days ending today.
func (s *Store) days(n int) dayRange { return dayRange{first: s.today().AddDate(0, 0, 1-n), n: n} }

// date returns the i-th day.
func (r dayRange) date(i int) time.Time { return r.first.AddDate(0, 0, i) }

// index returns the position of t's day, or -1 if it is not one of them.
func (r dayRange) index(t time.Time) int {
	if i := int(t.UTC().Sub(r.first).Hours() / 24); i >= 0 && i < r.n {
		return i
	}
	return -1
}

// parallel runs fns at once and returns their errors joined.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
