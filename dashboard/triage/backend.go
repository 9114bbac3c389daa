package triage

import (
	"context"
	"time"
)

// Backend is the storage a Store reads crash groups, sessions and triage
// decisions from, and records decisions in. Package clickhouse implements
// it (*clickhouse.Client) over its aggregates, the crashes table and the
// table of decisions.
//
// A Backend answers questions about stored data; a Store decides what the
// answers mean: ranking, flags, which groups a status selects, which cells
// are hidden. Every method is safe for concurrent use, and an error is the
// storage's (a Store wraps it with what it was reading).
type Backend interface {
	// GroupDays returns what each crash group of s (every group, or those
	// of s.Groups) has on each day of s that it crashed on, in no
	// particular order. Each event counts once, however often it was
	// stored.
	GroupDays(ctx context.Context, s Scope) ([]GroupDay, error)
	// GroupTitles returns a message and a culprit for each of s.Groups
	// that crashed in s; s.Groups is not empty.
	GroupTitles(ctx context.Context, s Scope) (map[uint64]Title, error)
	// SearchGroups returns the crash groups of s with a crash in s whose
	// exception type, message or culprit (the function of the innermost
	// in-app frame) contains text, ignoring case.
	SearchGroups(ctx context.Context, s Scope, text string) ([]uint64, error)
	// FirstCrashDays returns, for each crash group of app (every group, or
	// those of groups), the first UTC day it crashed on in all the data
	// kept.
	FirstCrashDays(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error)
	// FirstCrashTimes returns, for each of groups, when it first crashed
	// in all the data kept; groups is not empty.
	FirstCrashTimes(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error)
	// VersionsLastSeen returns, for each of groups and each app version
	// it crashed in on the UTC day of since or later, the time of its
	// latest crash in that version; groups is not empty.
	VersionsLastSeen(ctx context.Context, app string, groups []uint64, since time.Time) (map[uint64]map[string]time.Time, error)
	// LatestCrash returns the latest crash of s (of s.Groups) on day,
	// among the crashes of the exception types types (the group's: they
	// let the backend read only that group's rows); ok is false if there
	// is none.
	LatestCrash(ctx context.Context, s Scope, day time.Time, types []string) (c Crash, ok bool, err error)
	// Crashes returns up to limit crashes of s (of s.Groups) among the
	// crashes of the exception types types, latest first, after the
	// first offset of them; each event once.
	Crashes(ctx context.Context, s Scope, types []string, offset, limit int) ([]Crash, error)
	// HourCells counts the distinct sessions and the crashes of s (of
	// s.Groups) among the crashes of the exception types types, per hour
	// from since on.
	HourCells(ctx context.Context, s Scope, since time.Time, types []string) ([]HourCell, error)
	// DayCells counts the distinct sessions and the crashes of s (of
	// s.Groups) per crash group, day, app version, country and region.
	DayCells(ctx context.Context, s Scope) ([]DayCell, error)
	// DeviceCells counts the distinct sessions and the crashes of s (of
	// s.Groups), among the crashes of the exception types types, per
	// crash group, OS, OS version, device class and model.
	DeviceCells(ctx context.Context, s Scope, types []string) ([]DeviceCell, error)
	// VersionDays returns, per day and app version of s (s.Groups and
	// s.Kind aside), the distinct sessions, the distinct sessions with a
	// crash that ended the process, and those crashes.
	VersionDays(ctx context.Context, s Scope) ([]VersionDay, error)
	// AppIDs returns the ids of the apps registered or seen, in order.
	AppIDs(ctx context.Context) ([]string, error)
	// FilterValues returns the app versions, OS names, countries and
	// regions with at least minSessions distinct sessions in s (s.Groups
	// and s.Kind aside), empty values left out, each list in order.
	FilterValues(ctx context.Context, s Scope, minSessions int) (*FilterValues, error)
	// LatestDecisions returns the latest triage decision of each crash
	// group of app (every group, or those of groups) that has one.
	LatestDecisions(ctx context.Context, app string, groups []uint64) (map[uint64]Decision, error)
	// DecisionHistory returns up to limit decisions about one group,
	// latest first.
	DecisionHistory(ctx context.Context, app string, group uint64, limit int) ([]Decision, error)
	// RecordDecisions stores decisions, keeping the earlier ones.
	RecordDecisions(ctx context.Context, ds []Decision) error
	// LatestChanges returns the latest change of kind of each crash group
	// of app (every group, or those of groups) that has one.
	LatestChanges(ctx context.Context, app string, kind ChangeKind, groups []uint64) (map[uint64]Change, error)
	// ChangeHistory returns up to limit changes, latest first, about
	// groups, and the merges into one of them of groups since unmerged;
	// groups is not empty.
	ChangeHistory(ctx context.Context, app string, groups []uint64, limit int) ([]Change, error)
	// RecordChanges stores changes, keeping the earlier ones.
	RecordChanges(ctx context.Context, cs []Change) error
}

// Scope is the part of the stored data a Backend query covers: an app's
// rows on a range of UTC days, narrowed by dimensions and crash groups.
type Scope struct {
	// AppID is the app.
	AppID string
	// First and Last are the first and the last UTC day covered, at
	// midnight.
	First, Last time.Time
	// AppVersion, OSName, Country and Region narrow the rows to those
	// with these values; "" for any.
	AppVersion string
	OSName     string
	Country    string
	Region     string
	// Groups narrows crash rows to these crash groups; nil or empty for
	// every group.
	Groups []uint64
	// Kind narrows crash rows to crashes that ended the process or to
	// handled exceptions; KindAll for both. Tables of sessions ignore it.
	Kind Kind
}

// GroupDay is what a crash group has on one day.
type GroupDay struct {
	Fingerprint uint64
	Day         time.Time
	// ExceptionTypes are the exception types of its crashes, in no
	// particular order.
	ExceptionTypes []string
	// Crashes and Fatal count its crashes (and handled exceptions) and
	// those that ended the process; Sessions counts the distinct sessions
	// with one.
	Crashes  uint64
	Fatal    uint64
	Sessions uint64
	// FirstSeen and LastSeen are the times of its first and latest crash
	// of the day.
	FirstSeen time.Time
	LastSeen  time.Time
	// Versions are the app versions it crashed in, in no particular
	// order.
	Versions []string
}

// Title describes a crash group by one of its crashes: its scrubbed
// message, and the function of the innermost in-app frame (else of the
// innermost frame).
type Title struct {
	Message string
	Culprit string
}

// DayCell counts a crash group's distinct sessions and crashes on one day
// with one app version, country and region.
type DayCell struct {
	Fingerprint uint64
	Day         time.Time
	AppVersion  string
	Country     string
	Region      string
	Sessions    uint64
	Crashes     uint64
}

// DeviceCell counts a crash group's distinct sessions and crashes on one
// OS version and device model.
type DeviceCell struct {
	Fingerprint uint64
	OSName      string
	OSVersion   string
	DeviceClass string
	DeviceModel string
	Sessions    uint64
	Crashes     uint64
}

// HourCell counts distinct sessions and crashes in one hour.
type HourCell struct {
	Hour     time.Time
	Sessions uint64
	Crashes  uint64
}

// VersionDay is one app version's sessions on one day.
type VersionDay struct {
	Day        time.Time
	AppVersion string
	// Sessions are distinct sessions, Crashed the distinct sessions with
	// a crash that ended the process, and Crashes those crashes.
	Sessions uint64
	Crashed  uint64
	Crashes  uint64
}

// FilterValues are the values of the dimensions a Filter narrows by.
type FilterValues struct {
	AppVersions []string
	OSNames     []string
	Countries   []string
	Regions     []string
}
