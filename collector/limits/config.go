// Package limits is the first stage of the ingest pipeline: it refuses
// batches that exceed the batch-level limits and drops events whose fields
// exceed the per-event limits, before any other work is done on them.
package limits

import (
	"cmp"
	"errors"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Config holds the limits. Zero fields take the defaults from
// DefaultConfig.
type Config struct {
	// MaxMessageBytes bounds an encoded request; larger requests are refused
	// by the transport with RESOURCE_EXHAUSTED before they are decoded.
	MaxMessageBytes int
	// MaxEvents bounds the events in one batch.
	MaxEvents int
	// MaxNameBytes bounds short strings: names, versions, models, screens,
	// exception types, thread names, attribute keys, frame fields.
	MaxNameBytes int
	// MaxTextBytes bounds free text: crash messages and attribute values.
	MaxTextBytes int
	// MaxFrames bounds the frames of one stack trace.
	MaxFrames int
	// MaxAttributes bounds the attributes of one custom event.
	MaxAttributes int
	// MaxBreadcrumbs bounds the breadcrumbs of one crash.
	MaxBreadcrumbs int
	// MaxBreadcrumbBytes bounds a breadcrumb's name.
	MaxBreadcrumbBytes int
	// MaxDeadline caps the time one request may take; a client deadline
	// further out is shortened to it.
	MaxDeadline time.Duration
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes: consentryv1.DefaultMaxMessageBytes,
		MaxEvents:       consentryv1.DefaultMaxBatchEvents,
		MaxNameBytes:    consentryv1.DefaultMaxNameBytes,
		MaxTextBytes:    consentryv1.DefaultMaxTextBytes,
		MaxFrames:       consentryv1.DefaultMaxFrames,
		MaxAttributes:   consentryv1.DefaultMaxAttributes,
		MaxDeadline:     30 * time.Second,

		MaxBreadcrumbs:     consentryv1.DefaultMaxBreadcrumbs,
		MaxBreadcrumbBytes: consentryv1.DefaultMaxBreadcrumbBytes,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, d.MaxMessageBytes)
	c.MaxEvents = cmp.Or(c.MaxEvents, d.MaxEvents)
	c.MaxNameBytes = cmp.Or(c.MaxNameBytes, d.MaxNameBytes)
	c.MaxTextBytes = cmp.Or(c.MaxTextBytes, d.MaxTextBytes)
	c.MaxFrames = cmp.Or(c.MaxFrames, d.MaxFrames)
	c.MaxAttributes = cmp.Or(c.MaxAttributes, d.MaxAttributes)
	c.MaxBreadcrumbs = cmp.Or(c.MaxBreadcrumbs, d.MaxBreadcrumbs)
	c.MaxBreadcrumbBytes = cmp.Or(c.MaxBreadcrumbBytes, d.MaxBreadcrumbBytes)
	c.MaxDeadline = cmp.Or(c.MaxDeadline, d.MaxDeadline)
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MaxMessageBytes < 1024 || c.MaxEvents < 1 || c.MaxNameBytes < 16 || c.MaxTextBytes < c.MaxNameBytes ||
		c.MaxFrames < 1 || c.MaxAttributes < 1 || c.MaxDeadline < time.Second || c.MaxBreadcrumbs < 1 || c.MaxBreadcrumbBytes < 16 {
		return errors.New("limits: a limit is below its minimum (message 1 KiB, events 1, names 16 B, text >= names, frames 1, attributes 1, deadline 1s, breadcrumbs 1, breadcrumb names 16 B)")
	}
	return nil
}
