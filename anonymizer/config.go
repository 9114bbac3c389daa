// Package anonymizer is the pipeline stage that turns validated events into
// storage-ready rows holding nothing that identifies a person or a device:
//
//   - only fields the API defines survive, and attribute keys that name
//     identifiers are dropped with their values;
//   - free text (messages, frames, attribute values, names) is scrubbed by
//     the detectors of package scrub, which replace what they find with a
//     marker such as "[email]";
//   - location becomes a country and first-level region at most, from the
//     device's coordinates, the codes the app sent or the connection's
//     address, which are then forgotten;
//   - every row gets a member key, so that package kanon can hold back and
//     generalize rows until their combination of quasi-identifiers is
//     shared by k distinct consents (k-anonymity over the stored rows);
//   - session ids are re-keyed under a salt that changes every UTC day and
//     is destroyed afterwards, and event ids under a key derived from the
//     server secret (see EventIDKey), so an advertising id sent as event
//     id is not stored;
//   - numeric attributes that are an IMEI, a card or a phone number are
//     dropped;
//   - event times are truncated to a configured precision.
//
// docs/privacy.md lists every rule with an example.
package anonymizer

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/anonymizer/scrub"
)

// DefaultTimePrecision is the default precision of stored event times: a
// minute, as Glean stores ping times, so that event times cannot serve to
// link events of one device across sessions, while crash triage still sees
// when a crash wave started.
const DefaultTimePrecision = time.Minute

// Config configures the anonymizer.
type Config struct {
	// TimePrecision is the precision stored event times are truncated to,
	// between a millisecond and a day. Default DefaultTimePrecision.
	TimePrecision time.Duration
	// Salts supplies the daily salt session ids are re-keyed with. Nil
	// means NewSalts with an in-memory store, which suits one replica.
	Salts *Salts
	// Scrub configures the free-text detectors.
	Scrub scrub.Config
	// IPs resolves the peer address when the device sends no location;
	// nil means the address is not used.
	IPs IPLocator
	// Coordinates resolves the device's coordinates; nil means
	// coordinates give an unknown location.
	Coordinates CoordLocator
	// Regions, when set, tells first-level region codes, so that codes an
	// app sends that are finer (or unknown) are dropped.
	Regions RegionSet
	// Generalize configures k-anonymity (package kanon); the anonymizer
	// computes member keys only when it is enabled (K above 1).
	Generalize GeneralizeConfig
	// Detections, if set, is told per batch how many identifiers each
	// detector replaced, and how many attributes were dropped for an
	// identifier-named key, for the privacy report. It must not block.
	Detections DetectionCounter
	// EventIDKey keys the event ids the anonymizer stores in place of the
	// ones the SDK sent (see StoredEventID); make it with EventIDKey from
	// the server secret every replica shares, so that a retry reaching
	// another replica is stored under the same id. Nil means a random key
	// of the Stage, which suits one process and tests: a batch retried
	// across a restart is then stored twice.
	EventIDKey []byte
	// Mappings, if set, deobfuscates the crashes of the Android builds it
	// has an R8/ProGuard mapping of, before they are fingerprinted.
	Mappings Mappings
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.TimePrecision = cmp.Or(c.TimePrecision, DefaultTimePrecision)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Salts == nil {
		c.Salts = NewSalts(SaltsConfig{Now: c.Now})
	}
	if len(c.EventIDKey) == 0 {
		c.EventIDKey = make([]byte, sha256.Size)
		_, _ = rand.Read(c.EventIDKey) // crypto/rand.Read never fails (Go 1.24+).
	}
	return c
}

// DetectionCounter counts what the scrubber removed, per app; the
// collector stores the counts (clickhouse.PrivacyCounts).
type DetectionCounter interface {
	// CountDetections adds n identifiers of app found by detector (a
	// scrub.Kind's name, or IdentifierKey).
	CountDetections(app, detector string, n int)
}

// IdentifierKey is the detector name under which custom attributes
// dropped for an identifier-named key are counted.
const IdentifierKey = "identifier_key"

// Validate reports whether c is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.TimePrecision < time.Millisecond || c.TimePrecision > 24*time.Hour {
		errs = append(errs, errors.New("anonymizer: time precision must be between 1ms and 24h"))
	}
	if err := c.Generalize.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("anonymizer: %w", err))
	}
	return errors.Join(errs...)
}
