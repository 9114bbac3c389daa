package anonymizer

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/consentry/consentry/anonymizer/fingerprint"
	"github.com/consentry/consentry/anonymizer/scrub"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Stage is the anonymizer stage.
type Stage struct {
	cfg     Config
	scrub   *scrub.Scrubber
	members bool // member keys are computed (k-anonymity is on)
	enums   enumNames

	ipErrors       atomic.Uint64
	numbersDropped atomic.Uint64
}

// New returns the anonymizer stage for cfg.
func New(cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Stage{cfg: cfg, scrub: scrub.New(cfg.Scrub), members: cfg.Generalize.Enabled(), enums: newEnumNames()}, nil
}

// Scrubber returns the stage's free-text scrubber, e.g. for log lines.
func (s *Stage) Scrubber() *scrub.Scrubber { return s.scrub }

// IPLookupErrors returns how many peer-address lookups failed (the
// location was then stored as unknown).
func (s *Stage) IPLookupErrors() uint64 { return s.ipErrors.Load() }

// NumbersDropped returns how many numeric attributes were dropped because
// their value is an IMEI, a payment card or a phone number (see
// scrub.Scrubber.Number).
func (s *Stage) NumbersDropped() uint64 { return s.numbersDropped.Load() }

// Process fills b.Rows from the events not dropped, and forgets b.Peer.
// Allocations are per batch, not per event: rows, frames, breadcrumbs and
// attributes are carved out of b's slices (b.Rows, b.Arena) sized for the
// batch, none once a reused batch has grown, and text that holds no
// identifier is stored as it came.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	peer := b.Peer
	b.Peer = netip.Addr{}
	sizes := countRows(b)
	if sizes.rows == 0 {
		return nil
	}
	now := s.cfg.Now()
	salt, err := s.cfg.Salts.Salt(ctx, now)
	if err != nil {
		return fmt.Errorf("anonymize: %w: %w", pipeline.ErrStorageUnavailable, err)
	}
	a := newArena(&b.Rows, &b.Arena, sizes, s.scrub)
	a.crumbs = b.HasScope(consentryv1.ScopeAnalytics) // see breadcrumbs.go
	common := s.common(a, b, peer)
	members := newMemberKeys(s.members, s.cfg.Salts, b.ConsentID, now, salt)
	ids := newEventIDs(s.cfg.EventIDKey, b.AppID)
	// The events of a batch mostly share a session: key each id once.
	var lastID []byte
	var lastKey uint64
	for i, e := range b.Request.GetEvents() {
		if b.Dropped(i) {
			continue
		}
		c := common
		c.EventID = ids.of(e.GetEventId())
		c.EventTime = b.EventTimes[i].Truncate(s.cfg.TimePrecision)
		if sid := e.GetSessionId(); lastID == nil || !bytes.Equal(sid, lastID) {
			lastID, lastKey = sid, keyed(salt, sid)
		}
		c.SessionKey = lastKey
		c.Member = members.of(c.EventTime)
		s.appendRow(a, &b.Rows, c, e)
	}
	a.report(s.cfg.Detections, b.AppID)
	return nil
}

// common returns the columns every row of b shares. The device values
// are stored exactly as far as the anonymizer is concerned; package kanon
// generalizes the combinations that fewer than k consents share.
func (s *Stage) common(a *arena, b *pipeline.Batch, peer netip.Addr) pipeline.Common {
	d := b.Request.GetDevice()
	c := pipeline.Common{
		AppID: b.AppID,
		QI: pipeline.QI{
			AppVersion:  a.version(d.GetAppVersion()),
			AppBuild:    a.build(d.GetAppBuild()),
			SDKVersion:  a.text(strings.TrimSpace(d.GetSdkVersion())),
			DeviceClass: s.enums.of(d.GetDeviceClass()),
			DeviceModel: a.text(strings.TrimSpace(d.GetDeviceModel())),
			OSName:      s.enums.of(d.GetOsName()),
			OSVersion:   a.text(strings.TrimSpace(d.GetOsVersion())),
			Locale:      normalizeLocale(d.GetLocale()),
		},
		ConsentKey: b.ConsentKey,
	}
	if b.HasScope(consentryv1.ScopeLocation) {
		loc, _ := s.locate(d.GetLocation(), peer)
		c.Country, c.Region = loc.Country, loc.Region
	}
	return c
}

// version keeps an app version that is a plain version number, such as
// "4.12.1" or "4.12.0.300", which free-text scrubbing would take for an
// IP address, and scrubs anything else. A version that is a valid IPv4
// address, such as "4.12.0.3" or "10.1.2.3", could be one an app put in
// the field by mistake: it keeps its first three components ("4.12.0"),
// so no address is stored whatever k-anonymity decides; one that is
// another identifier's shape is scrubbed.
func (a *arena) version(v string) string {
	v = strings.TrimSpace(v)
	if dateBuild(v) {
		return v
	}
	if !isVersion(v) {
		return a.text(v)
	}
	if ipShaped(v) {
		return v[:strings.LastIndexByte(v, '.')]
	}
	// Other identifiers can have the shape of a version too (a phone
	// number 415.555.2671, a MAC address 1615.2371.4124): read it as
	// the value of a version, so that what only a version word proves
	// a count (a build number 2026112901) stays.
	const ctx = "version "
	if sv := a.text(ctx + v); sv != ctx+v {
		return strings.TrimPrefix(sv, ctx)
	}
	return v
}

// ipShaped reports whether v is an IPv4 address.
func ipShaped(v string) bool {
	a, err := netip.ParseAddr(v)
	return err == nil && a.Is4()
}

// build scrubs an app build, but keeps a build number made of a date and
// a counter (2026112901), which has the shape of a phone number.
func (a *arena) build(v string) string {
	v = strings.TrimSpace(v)
	if dateBuild(v) {
		return v
	}
	return a.text(v)
}

// dateBuild reports whether v is a build number of a date and a counter:
// 10 to 12 digits, the first eight a date of this century (yyyyMMdd).
// Android versionCodes are often made so, and have the shape of a North
// American phone number, which they are not.
func dateBuild(v string) bool {
	if len(v) < 10 || len(v) > 12 || !isDigitsOnly(v) {
		return false
	}
	month := int(v[4]-'0')*10 + int(v[5]-'0')
	day := int(v[6]-'0')*10 + int(v[7]-'0')
	return v[:2] == "20" && month >= 1 && month <= 12 && day >= 1 && day <= 31
}

// isVersion reports whether v is 1 to 4 dot-separated numbers of up to 9
// digits each, without leading zeros, optionally after a "v" and
// followed by a "-" or "+" suffix of letters, digits and dots that has a
// letter or is at most three digits, e.g. "v4.12.0-beta.2" or "4.12.0-1".
func isVersion(v string) bool {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V")
	core, suffix, _ := strings.Cut(v, "-")
	if i := strings.IndexByte(core, '+'); i >= 0 {
		core, suffix = core[:i], core[i+1:]+suffix
	}
	parts := strings.Split(core, ".")
	if len(parts) > 4 || v == "" {
		return false
	}
	for _, p := range parts {
		// no leading zeros, as semantic versions have none: 0274 is
		// the end of a phone number, 2023.01.15 a date
		if p == "" || len(p) > 9 || !isDigitsOnly(p) || len(p) > 1 && p[0] == '0' {
			return false
		}
	}
	letters := false
	for _, r := range suffix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.') {
			return false
		}
		letters = letters || r >= 'A'
	}
	// A suffix of digits alone is short (4.12.0-1); a longer one makes a
	// phone number (0176-73219370), not a version.
	return len(suffix) <= 32 && (letters || len(suffix) <= 3)
}

// rowSizes counts what a batch's rows need.
type rowSizes struct {
	rows, sessions, gestures, crashes, customs, diagnostics int
	frames, crumbs, strs, nums, bools                       int
}

// countRows counts the rows, frames and attributes of b's events that are
// not dropped.
func countRows(b *pipeline.Batch) rowSizes {
	var n rowSizes
	for i, e := range b.Request.GetEvents() {
		if b.Dropped(i) {
			continue
		}
		n.rows++
		switch p := e.GetPayload().(type) {
		case *consentryv1.Event_Session:
			n.sessions++
		case *consentryv1.Event_Gesture:
			n.gestures++
		case *consentryv1.Event_Crash:
			n.crashes++
			n.frames += len(p.Crash.GetFrames())
			n.crumbs += len(p.Crash.GetBreadcrumbs())
		case *consentryv1.Event_Custom:
			n.customs++
			for _, a := range p.Custom.GetAttributes() {
				switch a.GetValue().(type) {
				case *consentryv1.AttributeValue_StringValue:
					n.strs += 2
				case *consentryv1.AttributeValue_IntValue, *consentryv1.AttributeValue_DoubleValue:
					n.strs++
					n.nums++
				case *consentryv1.AttributeValue_BoolValue:
					n.strs++
					n.bools++
				}
			}
		case *consentryv1.Event_Diagnostic:
			n.diagnostics++
		}
	}
	return n
}

// arena holds the batch-sized slices rows take their frames and
// attributes from, and counts what the scrubber finds in the batch.
type arena struct {
	// Arena is the batch's, sized for it by newArena: appends to its
	// slices never reallocate.
	*pipeline.Arena

	scrub *scrub.Scrubber
	// clean remembers strings of the batch that scrubbing left as they
	// were: screens, stack frames and attribute keys repeat from event to
	// event, and a repeat then costs a comparison instead of a scan.
	clean cleanCache
	// found counts the identifiers replaced, by scrub.Kind; keys the
	// attributes dropped for an identifier-named key.
	found [32]uint32
	keys  uint32
	// crumbs is set when the batch's consent covers crashes' breadcrumbs.
	crumbs bool
}

// text scrubs a free-text value and counts what it replaced. Clean text
// costs one scan (String returns it as it is, without allocating), and a
// repeat of it in the same batch a comparison.
func (a *arena) text(v string) string {
	slot := a.clean.slot(v)
	if slot != nil && *slot == v {
		// The remembered copy: equal rows then share one string, which
		// the spool's encoder recognizes by its address.
		return *slot
	}
	out := a.scrub.String(v)
	if out != v {
		a.scrub.Find(v, func(k scrub.Kind, _, _ int) { a.found[k%32]++ })
	} else if slot != nil {
		*slot = v
	}
	return out
}

// cleanCache is a direct-mapped set of strings known to scrub to
// themselves, for one batch: a string's slot comes from its length and
// its first, middle and last bytes, and a string that maps to a taken
// slot replaces what was there. A hit needs the whole string to be equal,
// so a collision costs a scan, never a value left unscrubbed. It holds
// only clean text (never a value that held an identifier), and only for
// its batch's arena.
type cleanCache [cleanSlots]string

const (
	// cleanBits sets the cache's size: 64 slots.
	cleanBits  = 6
	cleanSlots = 1 << cleanBits
	// cleanMaxLen is the longest string the cache keeps: longer free text
	// (crash messages) rarely repeats and costs its comparison.
	cleanMaxLen = 128
)

// slot returns v's slot, or nil for a string too long to keep.
func (c *cleanCache) slot(v string) *string {
	n := len(v)
	if n == 0 || n > cleanMaxLen {
		return nil
	}
	h := uint32(n)*0x9e3779b1 ^ uint32(v[0])<<16 ^ uint32(v[n-1])<<8 ^ uint32(v[n/2])
	h *= 0x85ebca6b
	return &c[h>>(32-cleanBits)]
}

// report tells c what the batch's scrubbing found, if anything.
func (a *arena) report(c DetectionCounter, app string) {
	if c == nil {
		return
	}
	for k, n := range a.found {
		if n > 0 {
			c.CountDetections(app, scrub.Kind(k).String(), int(n))
		}
	}
	if a.keys > 0 {
		c.CountDetections(app, IdentifierKey, int(a.keys))
	}
}

// newArena sizes rows and store for n, keeping the room they have, and
// returns an arena that carves from store.
func newArena(rows *pipeline.Rows, store *pipeline.Arena, n rowSizes, sc *scrub.Scrubber) *arena {
	rows.Sessions = grow(rows.Sessions, n.sessions)
	rows.Gestures = grow(rows.Gestures, n.gestures)
	rows.Crashes = grow(rows.Crashes, n.crashes)
	rows.Customs = grow(rows.Customs, n.customs)
	rows.Diagnostics = grow(rows.Diagnostics, n.diagnostics)
	store.Frames = grow(store.Frames, n.frames)
	store.Breadcrumbs = grow(store.Breadcrumbs, n.crumbs)
	store.Strings = grow(store.Strings, n.strs)
	store.Numbers = grow(store.Numbers, n.nums)
	store.Bools = grow(store.Bools, n.bools)
	return &arena{Arena: store, scrub: sc}
}

// grow returns s with room for n more elements. Unlike slices.Grow, whose
// append of a make the compiler fuses only in builds that are not
// instrumented, it allocates once, and only when s lacks the room, in
// -race builds too, where the allocation tests also run.
func grow[T any](s []T, n int) []T {
	if n <= cap(s)-len(s) {
		return s
	}
	g := make([]T, len(s), len(s)+n)
	copy(g, s)
	return g
}

// tail returns the elements of s from start, capped so that appends to the
// result cannot overwrite what follows it; nil if there are none.
func tail[T any](s []T, start int) []T {
	if len(s) == start {
		return nil
	}
	return s[start:len(s):len(s)]
}

func (s *Stage) appendRow(a *arena, rows *pipeline.Rows, c pipeline.Common, e *consentryv1.Event) {
	switch p := e.GetPayload().(type) {
	case *consentryv1.Event_Session:
		v := p.Session
		rows.Sessions = append(rows.Sessions, pipeline.SessionRow{
			Common:       c,
			Phase:        s.enums.of(v.GetPhase()),
			DurationMs:   uint64(v.GetDurationMs()),
			ForegroundMs: uint64(v.GetForegroundMs()),
		})
	case *consentryv1.Event_Gesture:
		v := p.Gesture
		n := v.GetCount()
		if n == 0 {
			n = 1
		}
		rows.Gestures = append(rows.Gestures, pipeline.GestureRow{
			Common:     c,
			Type:       s.enums.of(v.GetType()),
			Screen:     a.text(v.GetScreen()),
			Count:      n,
			DurationMs: v.GetDurationMs(),
		})
	case *consentryv1.Event_Crash:
		v := p.Crash
		start := len(a.Frames)
		// Structured frames are scrubbed field by field: a path's user
		// name, an address in a function name.
		for _, f := range v.GetFrames() {
			a.Frames = append(a.Frames, pipeline.Frame{
				Module:   a.text(f.GetModule()),
				Function: a.text(f.GetFunction()),
				File:     a.text(f.GetFile()),
				Line:     f.GetLine(),
				InApp:    f.GetInApp(),
			})
		}
		rows.Crashes = append(rows.Crashes, pipeline.CrashRow{
			Common:        c,
			ExceptionType: a.text(v.GetExceptionType()),
			Message:       a.text(v.GetMessage()),
			Frames:        tail(a.Frames, start),
			Thread:        a.text(v.GetThread()),
			Handled:       v.GetHandled(),
			AppState:      s.enums.of(v.GetAppState()),
			Breadcrumbs:   s.breadcrumbs(a, v.GetBreadcrumbs()),
		})
		// The group key is computed from the scrubbed crash, so scrubbed
		// values cannot split a group.
		cr := &rows.Crashes[len(rows.Crashes)-1]
		s.deobfuscate(cr)
		cr.Fingerprint = fingerprint.Sum(cr, a.text(v.GetFingerprint()))
	case *consentryv1.Event_Custom:
		rows.Customs = append(rows.Customs, s.customRow(a, c, p.Custom))
	case *consentryv1.Event_Diagnostic:
		v := p.Diagnostic
		rows.Diagnostics = append(rows.Diagnostics, pipeline.DiagnosticRow{
			Common:      c,
			Kind:        s.enums.of(v.GetKind()),
			DurationMs:  v.GetDurationMs(),
			StartType:   s.enums.of(v.GetStartType()),
			NetworkType: s.enums.of(v.GetNetworkType()),
			MemoryBytes: v.GetMemoryBytes(),
		})
	}
}

// maxSortedKeys is the number of attribute keys sorted on the stack; the
// limits stage allows 64 attributes.
const maxSortedKeys = 64

// customRow returns the row of a custom event: attributes whose key names
// an identifier, or holds one (e.g. "jane@example.com": true), are dropped
// with their values, string values are scrubbed, and the rest is split by
// type, in key order.
func (s *Stage) customRow(a *arena, c pipeline.Common, v *consentryv1.CustomEvent) pipeline.CustomRow {
	r := pipeline.CustomRow{Common: c, Name: a.text(v.GetName())}
	attrs := v.GetAttributes()
	var buf [maxSortedKeys]string
	keys := buf[:0]
	nStr := 0
	for k, v := range attrs {
		if s.scrub.IsIdentifierKey(k) {
			a.keys++
			continue
		}
		if a.text(k) != k {
			continue
		}
		if n, ok := integral(v); ok && s.scrub.Number(k, n) != 0 {
			s.numbersDropped.Add(1)
			continue
		}
		keys = append(keys, k)
		if _, ok := v.GetValue().(*consentryv1.AttributeValue_StringValue); ok {
			nStr++
		}
	}
	slices.Sort(keys)
	// countRows sized a.Strings for two strings per string attribute.
	base := len(a.Strings)
	a.Strings = a.Strings[:base+2*nStr]
	r.StringKeys = a.Strings[base : base : base+nStr]
	r.StringValues = a.Strings[base+nStr : base+nStr : base+2*nStr]
	for _, k := range keys {
		if v, ok := attrs[k].GetValue().(*consentryv1.AttributeValue_StringValue); ok {
			r.StringKeys = append(r.StringKeys, k)
			r.StringValues = append(r.StringValues, a.text(v.StringValue))
		}
	}
	if nStr == 0 {
		r.StringKeys, r.StringValues = nil, nil
	}
	numStart, numKeyStart := len(a.Numbers), len(a.Strings)
	for _, k := range keys {
		switch v := attrs[k].GetValue().(type) {
		case *consentryv1.AttributeValue_IntValue:
			a.Strings, a.Numbers = append(a.Strings, k), append(a.Numbers, float64(v.IntValue))
		case *consentryv1.AttributeValue_DoubleValue:
			a.Strings, a.Numbers = append(a.Strings, k), append(a.Numbers, v.DoubleValue)
		}
	}
	r.NumberKeys, r.NumberValues = tail(a.Strings, numKeyStart), tail(a.Numbers, numStart)
	boolStart, boolKeyStart := len(a.Bools), len(a.Strings)
	for _, k := range keys {
		if v, ok := attrs[k].GetValue().(*consentryv1.AttributeValue_BoolValue); ok {
			a.Strings, a.Bools = append(a.Strings, k), append(a.Bools, v.BoolValue)
		}
	}
	r.BoolKeys, r.BoolValues = tail(a.Strings, boolKeyStart), tail(a.Bools, boolStart)
	return r
}

// integral returns the value of an integer attribute, or of a double
// attribute that holds an integer, as an int64.
func integral(v *consentryv1.AttributeValue) (int64, bool) {
	switch v := v.GetValue().(type) {
	case *consentryv1.AttributeValue_IntValue:
		return v.IntValue, true
	case *consentryv1.AttributeValue_DoubleValue:
		if f := v.DoubleValue; f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), true
		}
	}
	return 0, false
}

// enumNames holds the stored name of every value of the API's enums: the
// lower-case value name without the enum's prefix, e.g. "phone" for
// DEVICE_CLASS_PHONE, indexed by the value's number ("" for UNSPECIFIED).
// The enums are found by their descriptor, which is one value per enum for
// the process's life: a lookup hashes a pointer, not the enum's name, and
// does not allocate.
type enumNames map[protoreflect.EnumDescriptor][]string

// newEnumNames returns the names of the enums of the ingest API.
func newEnumNames() enumNames {
	n := make(enumNames)
	enums := consentryv1.File_consentry_v1_ingest_proto.Enums()
	for i := range enums.Len() {
		e := enums.Get(i)
		vals := e.Values()
		prefix, _ := strings.CutSuffix(string(vals.ByNumber(0).Name()), "UNSPECIFIED")
		var names []string
		for j := range vals.Len() {
			v := vals.Get(j)
			if k := int(v.Number()); k > 0 {
				if k >= len(names) {
					names = append(names, make([]string, k+1-len(names))...)
				}
				names[k] = strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix))
			}
		}
		n[e] = names
	}
	return n
}

// of returns v's stored name, and "unknown" for UNSPECIFIED or a value this
// version does not know.
func (n enumNames) of(v protoreflect.Enum) string {
	names := n[v.Descriptor()]
	if k := v.Number(); k > 0 && int64(k) < int64(len(names)) && names[k] != "" {
		return names[k]
	}
	return "unknown"
}

// normalizeLocale keeps a BCP 47 tag's language and region subtags, e.g.
// "de-AT" from "de_AT@currency=EUR"; anything else becomes "".
func normalizeLocale(v string) string {
	v, _, _ = strings.Cut(v, "@")
	var buf [8]string
	parts := buf[:0]
	for p := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == '-' || r == '_' }) {
		if len(parts) == len(buf) {
			break
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 || !isAlpha(parts[0], 2, 3) {
		return ""
	}
	lang := parts[0]
	for _, p := range parts[1:] {
		if isAlpha(p, 2, 2) || isDigitsN(p, 3) {
			return localeString(lang, p)
		}
	}
	return lowerASCII(lang)
}

// localeString returns lang-REGION, without allocating for the common,
// already well-cased tags.
func localeString(lang, region string) string {
	if lowerASCII(lang) == lang && upperASCII(region) == region && len(lang)+1+len(region) <= 7 {
		return lang + "-" + region
	}
	return lowerASCII(lang) + "-" + upperASCII(region)
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'a' && s[i] <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

func isAlpha(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isDigitsN(s string, n int) bool { return len(s) == n && isDigitsOnly(s) }

func isDigitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
