// Package pipeline defines what flows between the collector's stages: the
// storage-ready rows that the anonymizer produces and the sink stores, the
// reasons an event is dropped, and the small interfaces that join the
// stages.
//
// A batch travels limits → consent → validate → anonymize → sink. Every
// stage up to anonymize works on the decoded request; anonymize turns the
// events that survived into Rows, which hold nothing but coarse, scrubbed
// values (see package anonymizer), and the Sink stores them durably.
package pipeline

import (
	"context"
	"time"
)

// Sink stores rows durably. Write returns nil only once every row is
// durable (stored, or in a write-ahead spool that ships it); on error none
// or some of the rows may be stored, and the caller reports a retryable
// error so the client resends (event ids deduplicate). Once Write has
// returned nil it must not use rows' slices or the slices inside the rows
// (a crash's frames, an event's attributes): the caller reuses them for
// the next batch (Batch.Reuse). A Write that failed may still use them
// (a shared insert that retries after one waiter gave up), so the caller
// then lets them go. origin says which batch the rows came from, so a
// spool can check consent again when it ships them.
type Sink interface {
	Write(ctx context.Context, rows *Rows, origin Origin) error
}

// Origin is what a sink needs to know of the batch some rows came from to
// enforce revocation and erasure again when it stores them later (the
// spool's ship-time consent gate). It is kept in memory and, until the
// rows are shipped, in the spool; it is never stored in ClickHouse.
type Origin struct {
	// ConsentHash is the SHA-256 of the id of the consent the batch was
	// accepted under: the key revocations are stored and looked up by
	// (package consent). Zero when there is none (tests, tools).
	ConsentHash [32]byte
	// ConsentKey is the consent's pseudonym that the rows of erasable apps
	// carry (Common.ConsentKey), "" for anonymous apps: the key erasures
	// name.
	ConsentKey string
	// Received is when the collector received the batch, by its clock.
	Received time.Time
}

// RejectCounter counts events that were dropped or rejected, per app and
// reason, without any payload.
type RejectCounter interface {
	// CountRejects adds n events of app dropped for reason.
	CountRejects(app string, reason Reason, n int)
}

// QI is the combination of quasi-identifiers a stored row carries: the
// device-level columns that are the same for every row of one install on
// one day and that, together, could single it out. Package anonymizer/kanon
// makes every stored combination common to at least k consents of an app
// and day.
type QI struct {
	// AppVersion is the app's user-visible version.
	AppVersion string
	// AppBuild is the app's build number.
	AppBuild string
	// SDKVersion is the SDK's name and version.
	SDKVersion string
	// DeviceClass is the class of device, e.g. "phone", or "unknown".
	DeviceClass string
	// DeviceModel is the marketing model name, possibly generalized.
	DeviceModel string
	// OSName is the operating system family, e.g. "android", or "unknown".
	OSName string
	// OSVersion is the operating system version.
	OSVersion string
	// Locale is the UI locale reduced to language and region, e.g. "de-AT".
	Locale string
	// Country is the ISO 3166-1 alpha-2 code, or "" when unknown.
	Country string
	// Region is the ISO 3166-2 code, e.g. "AT-9", or "" when unknown or
	// generalized away.
	Region string
}

// Common holds the columns every table shares. Strings are the scrubbed,
// generalized values; enums are lower-case names such as "phone".
type Common struct {
	// AppID is the app's registered id.
	AppID string
	// EventID is the random 16-byte id the SDK drew for the event.
	EventID [16]byte
	// EventTime is the event's time after clock-skew correction, truncated
	// to the configured precision, in UTC.
	EventTime time.Time
	// SessionKey is the SDK's session id re-keyed under the day's salt; 0
	// when the event carried no session id.
	SessionKey uint64
	// QI holds the row's quasi-identifiers: app version and build, SDK,
	// device, OS, locale and location.
	QI
	// ConsentKey is, for apps whose erasure policy is erasable, a keyed
	// pseudonym of the consent id (hex HMAC-SHA-256 under a server secret)
	// so the consent's rows can be erased; "" for anonymous apps.
	ConsentKey string
	// Member is the row's k-anonymity member key: a keyed hash of the
	// consent id under the salt of the event's UTC day, which counts the
	// distinct consents behind a combination of quasi-identifiers without
	// linking days (package anonymizer/kanon); 0 when k-anonymity is off or
	// the day's salt is gone. It travels with the row through the spool
	// and, while the row waits for its class to reach k, the collector's
	// private tables; it is never stored in the analysts' tables.
	Member uint64
}

// SessionRow is a stored session start or end.
type SessionRow struct {
	Common
	// Phase is "start" or "end".
	Phase string
	// DurationMs is the session length on "end", else 0.
	DurationMs uint64
	// ForegroundMs is the foreground time on "end", else 0.
	ForegroundMs uint64
}

// GestureRow is a stored gesture summary.
type GestureRow struct {
	Common
	// Type is the gesture, e.g. "tap".
	Type string
	// Screen is the app's screen name.
	Screen string
	// Count is how many gestures the row summarizes, at least 1.
	Count uint32
	// DurationMs is the total gesture duration, 0 if not applicable.
	DurationMs uint32
}

// Frame is one scrubbed stack frame.
type Frame struct {
	Module   string
	Function string
	File     string
	Line     uint32
	InApp    bool
}

// CrashRow is a stored crash or handled exception.
type CrashRow struct {
	Common
	// ExceptionType is the exception or signal type.
	ExceptionType string
	// Fingerprint is the key of the crash's group (fingerprint.Sum): the
	// same for every occurrence of one bug.
	Fingerprint uint64
	// Message is the scrubbed exception message.
	Message string
	// Frames is the scrubbed stack, innermost first.
	Frames []Frame
	// Thread is the thread name.
	Thread string
	// Handled is true for a handled exception, false for a crash.
	Handled bool
	// AppState is e.g. "foreground", or "unknown".
	AppState string
	// Breadcrumbs are what the user did before the crash, oldest first;
	// not part of the fingerprint.
	Breadcrumbs []Breadcrumb
}

// Breadcrumb is one scrubbed breadcrumb of a crash.
type Breadcrumb struct {
	// Type is "screen_view", "custom", a gesture type such as "tap", or
	// "unknown".
	Type string
	// Name is the screen or event name, scrubbed.
	Name string
	// OffsetMs is how long before the crash it happened, in milliseconds,
	// rounded to the stored times' precision.
	OffsetMs int64
}

// CustomRow is a stored app-defined event. Attributes are split by type so
// analysts can aggregate numbers without parsing strings.
type CustomRow struct {
	Common
	// Name is the event name.
	Name string
	// StringKeys and StringValues are the string attributes, scrubbed,
	// sorted by key.
	StringKeys   []string
	StringValues []string
	// NumberKeys and NumberValues are the integer and float attributes.
	NumberKeys   []string
	NumberValues []float64
	// BoolKeys and BoolValues are the boolean attributes.
	BoolKeys   []string
	BoolValues []bool
}

// DiagnosticRow is a stored diagnostic measurement.
type DiagnosticRow struct {
	Common
	// Kind is e.g. "app_start".
	Kind string
	// DurationMs is the measured duration, 0 if not applicable.
	DurationMs uint32
	// StartType is "cold", "warm", "hot" or "unknown".
	StartType string
	// NetworkType is e.g. "wifi", or "unknown".
	NetworkType string
	// MemoryBytes is the memory footprint on a memory warning, else 0.
	MemoryBytes uint64
}

// Rows are the storage-ready rows of one or more batches, one slice per
// table.
type Rows struct {
	Sessions    []SessionRow
	Gestures    []GestureRow
	Crashes     []CrashRow
	Customs     []CustomRow
	Diagnostics []DiagnosticRow
}

// Len returns the number of rows across all tables.
func (r *Rows) Len() int {
	return len(r.Sessions) + len(r.Gestures) + len(r.Crashes) + len(r.Customs) + len(r.Diagnostics)
}

// Append adds every row of o to r.
func (r *Rows) Append(o *Rows) {
	r.Sessions = append(r.Sessions, o.Sessions...)
	r.Gestures = append(r.Gestures, o.Gestures...)
	r.Crashes = append(r.Crashes, o.Crashes...)
	r.Customs = append(r.Customs, o.Customs...)
	r.Diagnostics = append(r.Diagnostics, o.Diagnostics...)
}

// Recycle empties r for reuse, keeping its capacity, and clears the rows
// it held so that their strings and slices can be collected.
func (r *Rows) Recycle() {
	clear(r.Sessions)
	clear(r.Gestures)
	clear(r.Crashes)
	clear(r.Customs)
	clear(r.Diagnostics)
	r.Reset()
}

// Reset empties r, keeping its capacity.
func (r *Rows) Reset() {
	r.Sessions = r.Sessions[:0]
	r.Gestures = r.Gestures[:0]
	r.Crashes = r.Crashes[:0]
	r.Customs = r.Customs[:0]
	r.Diagnostics = r.Diagnostics[:0]
}
