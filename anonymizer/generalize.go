package anonymizer

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults of GeneralizeConfig.
const (
	// DefaultK is the default number of distinct consents a value must be
	// seen from before it is stored as it is.
	DefaultK = 10
	// DefaultWindow is the default window the consents are counted in.
	DefaultWindow = 24 * time.Hour
	// DefaultMaxValues is the default bound on the values counted at once.
	DefaultMaxValues = 200_000
)

// GeneralizeConfig configures the generalization of rare values: a device
// model, OS version, locale, region or country that fewer than K distinct
// consents of an app were seen with during the current or the previous
// Window is stored as a coarser value (docs/privacy.md lists the ladders).
type GeneralizeConfig struct {
	// K is the threshold; 0 means DefaultK, 1 turns generalization off.
	K int
	// Window is the counting window; 0 means DefaultWindow.
	Window time.Duration
	// MaxValues bounds the (app, field, value) triples counted at once, so
	// memory stays bounded; values beyond it count as rare. 0 means
	// DefaultMaxValues.
	MaxValues int
}

func (c GeneralizeConfig) withDefaults() GeneralizeConfig {
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxValues == 0 {
		c.MaxValues = DefaultMaxValues
	}
	return c
}

// field names what a census value is.
type field uint8

const (
	fieldAppVersion field = iota + 1
	fieldModel
	fieldOSVersion
	fieldOSMajor
	fieldLocale
	fieldLanguage
	fieldRegion
	fieldCountry
)

// censusKey is one counted value.
type censusKey struct {
	app   string
	field field
	value string
}

// tally holds the distinct members a value was seen from, up to k.
type tally struct {
	members []uint64
}

// Census counts, per value, the distinct members (keyed consent ids) it is
// seen from in fixed windows, to tell rare values from common ones. It is
// per replica: a value is common once one replica alone has seen it from k
// members, so the rule holds across replicas too (they can only be
// stricter together than the rule asks). It is safe for concurrent use.
type Census struct {
	cfg GeneralizeConfig

	mu        sync.Mutex
	start     time.Time // start of the current window
	cur, prev map[censusKey]*tally
}

// NewCensus returns an empty Census for cfg.
func NewCensus(cfg GeneralizeConfig) *Census {
	cfg = cfg.withDefaults()
	return &Census{cfg: cfg, cur: make(map[censusKey]*tally)}
}

// observe records that member saw value at now and reports whether value
// is common: seen from at least k distinct members in the current or the
// previous window. A zero member is not counted. Empty values are common
// (there is nothing to generalize).
func (c *Census) observe(now time.Time, app string, f field, value string, member uint64) bool {
	if value == "" || c.cfg.K <= 1 {
		return true
	}
	k := censusKey{app, f, value}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	if t := c.prev[k]; t != nil && len(t.members) >= c.cfg.K {
		return true
	}
	t := c.cur[k]
	if t == nil {
		if member == 0 || len(c.cur) >= c.cfg.MaxValues {
			return false
		}
		// The map outlives the request: keep copies, not the request's
		// strings.
		k.app, k.value = strings.Clone(k.app), strings.Clone(k.value)
		t = &tally{members: make([]uint64, 0, min(c.cfg.K, 16))}
		c.cur[k] = t
	}
	if len(t.members) >= c.cfg.K {
		return true
	}
	if member != 0 {
		for _, m := range t.members {
			if m == member {
				return false
			}
		}
		t.members = append(t.members, member)
	}
	return len(t.members) >= c.cfg.K
}

// rotate starts a new window when now has left the current one.
func (c *Census) rotate(now time.Time) {
	if c.start.IsZero() {
		c.start = now.Truncate(c.cfg.Window)
		return
	}
	switch {
	case now.Before(c.start.Add(c.cfg.Window)):
		return
	case now.Before(c.start.Add(2 * c.cfg.Window)):
		c.prev = c.cur
	default:
		c.prev = nil
	}
	c.cur = make(map[censusKey]*tally, len(c.prev))
	c.start = now.Truncate(c.cfg.Window)
}

// Len returns the number of values counted in the current window.
func (c *Census) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur)
}

// Placeholders stored for generalized values.
const (
	// Other replaces a rare device model or OS version.
	Other = "other"
)

// generalize applies the ladders to c's device fields and location for the
// batch's member (see docs/privacy.md):
//
//	app version shaped like an IPv4 address: "10.0.2.15" → "other"
//	device model:  "Pixel 8"    → "other"
//	OS version:    "17.4.1"     → "17" → "other"
//	locale:        "de-AT"      → "de" → ""
//	location:      AT / AT-9    → AT / "" → "" / ""
func (c *Census) generalize(now time.Time, member uint64, app string, v *deviceValues) {
	if c == nil || c.cfg.K <= 1 {
		return
	}
	if ipShaped(v.appVersion) && !c.observe(now, app, fieldAppVersion, v.appVersion, member) {
		v.appVersion = Other
	}
	if !c.observe(now, app, fieldModel, v.model, member) {
		v.model = Other
	}
	if !c.observe(now, app, fieldOSVersion, v.osVersion, member) {
		v.osVersion = majorVersion(v.osVersion)
		if !c.observe(now, app, fieldOSMajor, v.osVersion, member) {
			v.osVersion = Other
		}
	}
	if !c.observe(now, app, fieldLocale, v.locale, member) {
		v.locale, _, _ = strings.Cut(v.locale, "-")
		if !c.observe(now, app, fieldLanguage, v.locale, member) {
			v.locale = ""
		}
	}
	if !c.observe(now, app, fieldRegion, v.region, member) {
		v.region = ""
	}
	if !c.observe(now, app, fieldCountry, v.country, member) {
		v.country, v.region = "", ""
	}
}

// deviceValues are the batch-level values that generalize may coarsen.
type deviceValues struct {
	appVersion, model, osVersion, locale, country, region string
}

// ipShaped reports whether v is four dot-separated numbers of 0 to 255,
// which could be an IPv4 address as much as a version.
func ipShaped(v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is4()
}

// majorVersion returns the first component of a dotted version, e.g. "17"
// for "17.4.1"; a version without a leading number becomes Other.
func majorVersion(v string) string {
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	if end == 0 {
		return Other
	}
	return v[:end]
}
