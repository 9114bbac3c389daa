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
	// FirstCrashDays returns, for each crash group of app (every group, or
	// those of groups), the first UTC day it crashed on in all the data
	// kept.
	FirstCrashDays(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error)
	// FirstCrashTimes returns, for each of groups, when it first crashed
	// in all the data kept; groups is not empty.
	FirstCrashTimes(ctx context.Context, app string, groups []uint64) (map[uint64]time.Time, error)
	// CrashedVersions returns, for each of groups, the app versions it
	// crashed in, in all the data kept; groups is not empty.
	CrashedVersions(ctx context.Context, app string, groups []uint64) (map[uint64][]string, error)
	// LatestCrash returns the latest crash of s, whose Groups is one
	// group, on day, among the crashes of the exception types types (the
	// group's: they let the backend read only that group's rows); ok is
	// false if there is none.
	LatestCrash(ctx context.Context, s Scope, day time.Time, types []string) (c Crash, ok bool, err error)
	// DayCells counts the distinct sessions and the crashes of s (Groups
	// is one group) per day, app version, country and region.
	DayCells(ctx context.Context, s Scope) ([]DayCell, error)
	// DeviceCells counts the distinct sessions and the crashes of s
	// (Groups is one group), among the crashes of the exception types
	// types, per OS, OS version and device model.
	DeviceCells(ctx context.Context, s Scope, types []string) ([]DeviceCell, error)
	// VersionDays returns, per day and app version of s (s.Groups aside),
	// the distinct sessions, the distinct sessions with a crash that ended
	// the process, and those crashes.
	VersionDays(ctx context.Context, s Scope) ([]VersionDay, error)
	// AppIDs returns the ids of the apps registered or seen, in order.
	AppIDs(ctx context.Context) ([]string, error)
	// FilterValues returns the app versions, OS names, countries and
	// regions with at least minSessions distinct sessions in s (s.Groups
	// aside), empty values left out, each list in order.
	FilterValues(ctx context.Context, s Scope, minSessions int) (*FilterValues, error)
	// LatestDecisions returns the latest triage decision of each crash
	// group of app (every group, or those of groups) that has one.
	LatestDecisions(ctx context.Context, app string, groups []uint64) (map[uint64]Decision, error)
	// DecisionHistory returns up to limit decisions about one group,
	// latest first.
	DecisionHistory(ctx context.Context, app string, group uint64, limit int) ([]Decision, error)
	// RecordDecision stores a decision, keeping the earlier ones.
	RecordDecision(ctx context.Context, d Decision) error
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
	Day        time.Time
	AppVersion string
	Country    string
	Region     string
	Sessions   uint64
	Crashes    uint64
}

// DeviceCell counts a crash group's distinct sessions and crashes on one
// OS version and device model.
type DeviceCell struct {
	OSName      string
	OSVersion   string
	DeviceModel string
	Sessions    uint64
	Crashes     uint64
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
