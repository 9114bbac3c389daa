// Package anonymizer is the pipeline stage that turns validated events into
// storage-ready rows holding nothing that identifies a person or a device:
// only fields the API defines survive, attribute keys that name identifiers
// are dropped with their values, free text is scrubbed, location is reduced
// to a country and first-level region, session ids are re-keyed under a
// daily salt, and event times are truncated to a configured precision.
//
// docs/privacy.md lists every rule with an example.
package anonymizer

import (
	"errors"
	"time"
)

// Config configures the anonymizer.
type Config struct {
	// TimePrecision is the precision stored event times are truncated to.
	// Default one second.
	TimePrecision time.Duration
	// Salts supplies the daily salt session ids are re-keyed with. Nil
	// means an in-process store whose salts live only in memory.
	Salts SaltSource
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.TimePrecision == 0 {
		c.TimePrecision = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Salts == nil {
		c.Salts = NewMemorySalts()
	}
	return c
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.TimePrecision < time.Millisecond || c.TimePrecision > 24*time.Hour {
		return errors.New("anonymizer: time precision must be between 1ms and 24h")
	}
	return nil
}
