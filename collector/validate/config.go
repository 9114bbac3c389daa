// Package validate is the pipeline stage that checks a batch's structure
// and each event's types, enums, ranges and time, and corrects the device's
// clock skew.
//
// Clock-skew correction. A device's wall clock can be wrong by minutes or
// years, and can be changed between an event and its upload. For each event
// the stage computes a corrected time, in this order of preference:
//
//  1. received − age_ms, when the SDK sent the event's age measured on its
//     monotonic clock: immune to any wall-clock error or change on the
//     device, off only by the upload's one-way latency;
//  2. created_at + (received − sent_at): the device clock's offset at send
//     time applied to the event's device time (PostHog's and Snowplow's
//     method), used when the monotonic clock reset (a reboot) in between.
//
// An event whose corrected time is further in the future than
// FutureTolerance, or older than MaxAge, is dropped with IN_FUTURE or
// TOO_OLD. MaxAge is the offline window: events queued for days while the
// device was offline are kept up to it.
//
// Coordinates. A device location's latitude must lie in [-90, 90] and
// its longitude in [-180, 180]; NaN, infinities and values beyond (1e308)
// drop every event of the batch with INVALID_FIELD, before the
// anonymizer derives a region from them: the location is the batch's, so
// every event would carry what was derived from garbage.
//
// Invalid UTF-8. The protobuf runtimes refuse a whole message when one
// string in it is not UTF-8. The collector decodes requests with
// UnmarshalRequest and UnmarshalRequestJSON instead, which repair free
// text (a crash message, a thread name, stack frame fields, string
// attribute values, the batch's own fields) with U+FFFD and mark an event
// whose name (a screen, an event name, an attribute key, an exception
// type, a crash fingerprint) is not UTF-8; the stage drops a marked event
// with INVALID_FIELD, so one bad string costs one event, not the batch.
package validate

import (
	"cmp"
	"errors"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Config configures the validate stage.
type Config struct {
	// MaxAge is how old an event may be, after correction, and still be
	// stored: the window for events queued offline. Default 14 days.
	MaxAge time.Duration
	// FutureTolerance is how far past the server's time a corrected event
	// time may lie. Default 5 minutes.
	FutureTolerance time.Duration
	// MaxSessionDuration bounds a session's length. Default 7 days.
	MaxSessionDuration time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxAge:             consentryv1.DefaultMaxEventAge,
		FutureTolerance:    5 * time.Minute,
		MaxSessionDuration: 7 * 24 * time.Hour,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxAge = cmp.Or(c.MaxAge, d.MaxAge)
	c.FutureTolerance = cmp.Or(c.FutureTolerance, d.FutureTolerance)
	c.MaxSessionDuration = cmp.Or(c.MaxSessionDuration, d.MaxSessionDuration)
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxAge < time.Hour || c.FutureTolerance < 0 || c.MaxSessionDuration < time.Minute {
		return errors.New("validate: max age must be at least 1h, future tolerance not negative, max session at least 1m")
	}
	return nil
}
