// Package seed builds realistic, deterministic stored rows — what the
// anonymizer would have produced from a fleet of devices over some days —
// for dashboard tests, tests of the documented queries, and benchmarks.
//
// Rows returns the rows of one app over Config.Days UTC days: sessions
// with their gestures, diagnostics and custom events, and crashes and
// handled exceptions drawn from a small catalogue of bugs (Bugs), each of
// which plays a scenario a crash dashboard must show: a steady bug, a bug
// fixed in a release, a regression, a new bug, an escalating bug, a crash
// grouped by its message, and one grouped by the app's own key. Every
// value is already anonymized: no identifiers, coarse regions, times to
// the minute, scrubbed messages. The same Config gives the same rows.
//
// BulkCrashesSQL is for volume instead: one INSERT ... SELECT that makes
// any number of synthetic crash rows on the server itself, for benchmarks
// of a million rows and more.
package seed

import (
	"cmp"
	"math"
	"math/rand/v2"
	"time"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/internal/fakedata"
	"github.com/consentry/consentry/pipeline"
)

// Defaults for the zero fields of Config.
const (
	// DefaultAppID is the app the rows are from.
	DefaultAppID = "com.example.notes"
	// DefaultDays is the number of UTC days the rows cover.
	DefaultDays = 14
	// DefaultSessionsPerDay is the number of sessions each day.
	DefaultSessionsPerDay = 400
)

// Config shapes the rows Rows builds. Zero fields take the defaults
// above; the rows are a function of the Config alone.
type Config struct {
	// AppID is the app every row is from; "" means DefaultAppID.
	AppID string
	// End is the last UTC day included: any time of that day. The zero
	// time means the current UTC day, which keeps the rows within the
	// tables' retention; set End for rows that are the same on every day.
	End time.Time
	// Days is the number of UTC days, ending with End's; 0 or less means
	// DefaultDays.
	Days int
	// SessionsPerDay is the number of sessions each day, each with a
	// start row; 0 or less means DefaultSessionsPerDay. The scenarios of
	// the bug catalogue need the default volume to show clearly.
	SessionsPerDay int
	// Seed selects the random sequence: the same Seed and fields give the
	// same rows.
	Seed uint64
}

// withDefaults returns c with zero fields set to their defaults and End
// truncated to its UTC day.
func (c Config) withDefaults() Config {
	c.AppID = cmp.Or(c.AppID, DefaultAppID)
	if c.End.IsZero() {
		c.End = time.Now()
	}
	c.End = c.End.UTC().Truncate(24 * time.Hour)
	if c.Days <= 0 {
		c.Days = DefaultDays
	}
	if c.SessionsPerDay <= 0 {
		c.SessionsPerDay = DefaultSessionsPerDay
	}
	return c
}

// FirstDay returns the first UTC day the rows of c cover, at midnight.
func (c Config) FirstDay() time.Time {
	c = c.withDefaults()
	return c.End.AddDate(0, 0, -(c.Days - 1))
}

// LastDay returns the last UTC day the rows of c cover, at midnight: End's
// day, or today's if End is zero.
func (c Config) LastDay() time.Time { return c.withDefaults().End }

// Rows returns the rows of cfg's app over cfg.Days UTC days ending with
// cfg.End's, the same for the same cfg:
//
//   - sessions: cfg.SessionsPerDay a day, each a "start" row and, unless it
//     crashed or was killed (about 5%), an "end" row with its duration
//     (log-normal around three minutes) and foreground time;
//   - gestures: a few summaries per session over the app's screens;
//   - diagnostics: an app_start per session, and some hang and
//     memory_warning rows;
//   - custom events: export_pdf (format, pages, premium) and
//     search_performed (scope, results);
//   - crashes: about 3% of sessions end in a crash and about 2% report a
//     handled exception, each an occurrence of a bug of the catalogue
//     (see Bugs) with its fingerprint set.
//
// All rows of a session share its device, app version, locale and region;
// event times are in the session's UTC day, truncated to the minute.
// App versions 4.11.2 to 4.13.0 roll out over the days (4.13.0 only in the
// last three). Devices, places, screens and gestures are
// internal/fakedata's. One device model ("Xperia 1 V", RareModel) and one region
// ("IS-1", RareRegion) are each seen in one to three sessions only, for
// testing the generalization of rare values.
func Rows(cfg Config) *pipeline.Rows {
	cfg = cfg.withDefaults()
	g := &generator{
		cfg:  cfg,
		rnd:  rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		rows: &pipeline.Rows{},
	}
	g.carry = make([][]float64, len(catalogue))
	for i := range g.carry {
		g.carry[i] = make([]float64, len(appVersions))
		for v := range g.carry[i] {
			g.carry[i][v] = g.rnd.Float64()
		}
	}
	total := cfg.Days * cfg.SessionsPerDay
	g.rareModel = g.pickRare(total)
	g.rareRegion = g.pickRare(total)
	for d := range cfg.Days {
		g.day(d)
	}
	return g.rows
}

// generator builds the rows of one Config. It is not safe for concurrent
// use.
type generator struct {
	cfg  Config
	rnd  *rand.Rand
	rows *pipeline.Rows
	// rareModel and rareRegion are the global indexes of the sessions that
	// get the rare device model and the rare region.
	rareModel, rareRegion map[int]bool
	// next is the global index of the next session.
	next int
	// carry is, per bug of the catalogue and app version, the fraction of
	// an occurrence that the days so far owe, so that small daily rates
	// still add up to their expected totals.
	carry [][]float64
}

// session is a session before its rows are made.
type session struct {
	common pipeline.Common
	// version indexes appVersions.
	version int
	start   time.Time
	dur     time.Duration
	network string
	// fatal is the bug the session crashed with, or nil; handled the bug
	// of its handled exception, or nil.
	fatal, handled *bugDef
	// killed sessions end without an end row, as if the system ended the
	// app in the background.
	killed bool
}

// pickRare returns one to three distinct session indexes below total.
func (g *generator) pickRare(total int) map[int]bool {
	n := min(1+g.rnd.IntN(3), total)
	picked := make(map[int]bool, n)
	for len(picked) < n {
		picked[g.rnd.IntN(total)] = true
	}
	return picked
}

// day makes the rows of day d, 0 being the first.
func (g *generator) day(d int) {
	cfg := g.cfg
	midnight := cfg.End.AddDate(0, 0, d-(cfg.Days-1))
	weights := versionWeights(d, cfg.Days)
	sessions := make([]*session, cfg.SessionsPerDay)
	for i := range sessions {
		sessions[i] = g.session(midnight, weights)
		g.next++
	}
	last := d == cfg.Days-1
	g.assignBugs(sessions, last, false)
	g.assignBugs(sessions, last, true)
	for _, s := range sessions {
		g.emit(s)
	}
}

// session draws one session of the day starting at midnight.
func (g *generator) session(midnight time.Time, versionWeights []float64) *session {
	r := g.rnd
	v := pickWeighted(r, versionWeights)
	dev := fakedata.Pick(r, devices)
	if g.rareModel[g.next] {
		dev = rareDevice
	}
	osVersion := fakedata.Pick(r, fakedata.OSVersions(dev.OS))
	place := fakedata.Pick(r, places)
	if g.rareRegion[g.next] {
		place = rarePlace
	}
	sdk := fakedata.SDKVersion(dev.OS)
	var key uint64
	for key == 0 {
		key = r.Uint64()
	}
	s := &session{
		common: pipeline.Common{
			AppID:      g.cfg.AppID,
			SessionKey: key,
			QI: pipeline.QI{
				AppVersion:  appVersions[v].name,
				AppBuild:    appVersions[v].build,
				SDKVersion:  sdk,
				DeviceClass: dev.Class,
				DeviceModel: dev.Model,
				OSName:      dev.OS,
				OSVersion:   osVersion,
				Locale:      place.Locale,
				Country:     place.Country,
				Region:      place.Region,
			},
		},
		version: v,
		network: "wifi",
		killed:  r.Float64() < 0.02,
	}
	if r.Float64() < 0.35 {
		s.network = "cellular"
	}
	// Log-normal around three minutes, between five seconds and two hours.
	ms := math.Exp(math.Log(180_000) + 0.9*r.NormFloat64())
	s.dur = time.Duration(min(max(ms, 5_000), 7_200_000)) * time.Millisecond
	hour := fakedata.PickIndex(r, len(hourWeights), func(i int) float64 { return hourWeights[i] })
	start := midnight.Add(time.Duration(hour)*time.Hour + time.Duration(r.Int64N(int64(time.Hour))))
	// Sessions stay within their day: the session key's salt is the day's.
	if latest := midnight.Add(24*time.Hour - time.Minute - s.dur); start.After(latest) {
		start = latest
	}
	s.start = start
	return s
}

// assignBugs draws, for each bug of the catalogue that is fatal (or
// handled, if handled is set), how many of the day's sessions of each
// version it hits, and picks them among those not hit yet. last tells
// whether this is the last day.
func (g *generator) assignBugs(sessions []*session, last, handled bool) {
	r := g.rnd
	for i := range catalogue {
		b := &catalogue[i]
		if b.handled != handled || b.lastDayOnly && !last {
			continue
		}
		rate := b.rate
		if last && b.lastDayFactor > 0 {
			rate *= b.lastDayFactor
		}
		for v := range appVersions {
			if !b.inVersion(v) {
				continue
			}
			var eligible []*session
			for _, s := range sessions {
				free := s.fatal == nil
				if handled {
					free = s.handled == nil
				}
				if free && s.version == v && (b.os == "" || b.os == s.common.OSName) {
					eligible = append(eligible, s)
				}
			}
			// Carrying the fractions over keeps the counts close to the
			// rate, on each day and in total.
			want := rate*float64(len(eligible)) + g.carry[i][v]
			n := min(int(want), len(eligible))
			g.carry[i][v] = want - float64(n)
			for k := range n {
				j := k + r.IntN(len(eligible)-k)
				eligible[k], eligible[j] = eligible[j], eligible[k]
				if handled {
					eligible[k].handled = b
				} else {
					eligible[k].fatal = b
				}
			}
		}
	}
}

// emit appends the rows of s.
func (g *generator) emit(s *session) {
	r := g.rnd
	end := s.start.Add(s.dur)
	g.rows.Sessions = append(g.rows.Sessions, pipeline.SessionRow{Common: g.common(s, s.start), Phase: "start"})

	start := diagnostic{kind: "app_start", startType: "warm", dur: 300 + r.IntN(600)}
	if r.Float64() < 0.55 {
		start = diagnostic{kind: "app_start", startType: "cold", dur: 800 + r.IntN(1700)}
	}
	g.diagnostic(s, s.start, start)
	if r.Float64() < 0.04 {
		g.diagnostic(s, g.during(s), diagnostic{kind: "hang", startType: "unknown", dur: 250 + int(r.ExpFloat64()*1500)%9750})
	}
	memoryWarnings := 0.015
	if s.common.OSName == osIOS {
		memoryWarnings = 0.05
	}
	if r.Float64() < memoryWarnings {
		g.diagnostic(s, g.during(s), diagnostic{kind: "memory_warning", startType: "unknown", memory: uint64(300+r.IntN(1500)) << 20})
	}

	for range 2 + r.IntN(5) {
		g.gesture(s)
	}
	if r.Float64() < 0.12 {
		for range 1 + r.IntN(2) {
			g.exportPDF(s)
		}
	}
	if r.Float64() < 0.3 {
		for range 1 + r.IntN(4) {
			g.search(s)
		}
	}

	if b := s.handled; b != nil {
		g.crash(s, b, g.during(s))
	}
	if b := s.fatal; b != nil {
		// The crash ends the session: no end row.
		g.crash(s, b, end)
		return
	}
	if s.killed {
		return
	}
	fg := time.Duration(float64(s.dur) * (0.6 + 0.4*r.Float64()))
	g.rows.Sessions = append(g.rows.Sessions, pipeline.SessionRow{
		Common:       g.common(s, end),
		Phase:        "end",
		DurationMs:   uint64(s.dur.Milliseconds()),
		ForegroundMs: uint64(min(fg, s.dur).Milliseconds()),
	})
}

// common returns s's common fields for a new event at t: a fresh event id
// and t truncated to the minute.
func (g *generator) common(s *session, t time.Time) pipeline.Common {
	c := s.common
	c.EventID = g.eventID()
	c.EventTime = t.UTC().Truncate(time.Minute)
	return c
}

// during returns a random time within s.
func (g *generator) during(s *session) time.Time {
	return s.start.Add(time.Duration(g.rnd.Int64N(int64(s.dur) + 1)))
}

// eventID returns 16 random bytes shaped as a UUID version 4, as the SDKs
// draw them.
func (g *generator) eventID() [16]byte {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rnd.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// diagnostic is a diagnostic row's own fields.
type diagnostic struct {
	kind, startType string
	dur             int
	memory          uint64
}

func (g *generator) diagnostic(s *session, t time.Time, d diagnostic) {
	g.rows.Diagnostics = append(g.rows.Diagnostics, pipeline.DiagnosticRow{
		Common:      g.common(s, t),
		Kind:        d.kind,
		DurationMs:  uint32(d.dur),
		StartType:   d.startType,
		NetworkType: s.network,
		MemoryBytes: d.memory,
	})
}

func (g *generator) gesture(s *session) {
	r := g.rnd
	typ := fakedata.Pick(r, gestures)
	n := 1 + r.IntN(40)
	dur := 0
	if typ.PerGestureMs > 0 {
		dur = n * (typ.PerGestureMs/2 + r.IntN(typ.PerGestureMs))
	}
	g.rows.Gestures = append(g.rows.Gestures, pipeline.GestureRow{
		Common:     g.common(s, g.during(s)),
		Type:       typ.Type,
		Screen:     fakedata.Pick(r, screens),
		Count:      uint32(n),
		DurationMs: uint32(dur),
	})
}

func (g *generator) exportPDF(s *session) {
	r := g.rnd
	format := "pdf"
	if r.Float64() < 0.2 {
		format = "png"
	}
	g.rows.Customs = append(g.rows.Customs, pipeline.CustomRow{
		Common:       g.common(s, g.during(s)),
		Name:         "export_pdf",
		StringKeys:   []string{"format"},
		StringValues: []string{format},
		NumberKeys:   []string{"pages"},
		NumberValues: []float64{float64(1 + r.IntN(40))},
		BoolKeys:     []string{"premium"},
		BoolValues:   []bool{r.Float64() < 0.3},
	})
}

func (g *generator) search(s *session) {
	r := g.rnd
	g.rows.Customs = append(g.rows.Customs, pipeline.CustomRow{
		Common:       g.common(s, g.during(s)),
		Name:         "search_performed",
		StringKeys:   []string{"scope"},
		StringValues: []string{[]string{"all", "titles", "tags"}[r.IntN(3)]},
		NumberKeys:   []string{"results"},
		NumberValues: []float64{float64(r.IntN(60))},
	})
}

// crash appends an occurrence of b in s at t.
func (g *generator) crash(s *session, b *bugDef, t time.Time) {
	row := b.occurrenceOf(g.rnd, s.version, s.common.OSName, s.common.OSVersion)
	row.Common = g.common(s, t)
	row.Fingerprint = fingerprint.Sum(&row, b.custom)
	g.rows.Crashes = append(g.rows.Crashes, row)
}

// pickWeighted returns a random index of weights, weighted by its values.
func pickWeighted(r *rand.Rand, weights []float64) int {
	return fakedata.PickIndex(r, len(weights), func(i int) float64 { return weights[i] })
}
