package privacyprobe

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Transport is how a batch is sent.
type Transport string

// The transports batches are sent over, in turn.
const (
	// GRPC is IngestService.Ingest over gRPC, with identifiers in the
	// metadata and the user agent.
	GRPC Transport = "grpc"
	// HTTPJSON is POST /v1/ingest with a protojson body, with identifiers
	// in forwarding and other headers.
	HTTPJSON Transport = "http-json"
	// HTTPProtobuf is POST /v1/ingest with a binary protobuf body.
	HTTPProtobuf Transport = "http-protobuf"
)

var transports = []Transport{GRPC, HTTPJSON, HTTPProtobuf}

// Contexts of plants that are not text in a string field.
const (
	ContextHeader     = "request header"
	ContextConnection = "connection"
	ContextBytes      = "raw bytes"
	ContextDouble     = "double value"
	ContextInteger    = "int64 value"
	ContextAttribute  = "attribute key and value"
)

// Outcomes of a plant, set by Probe.Record.
const (
	// OutcomeUnsent: the batch was not sent (yet).
	OutcomeUnsent = "unsent"
	// OutcomeAccepted: the collector accepted the event (or, for a plant
	// in the device context, a header or the connection, the batch).
	OutcomeAccepted = "accepted"
)

// Plant is one identifier planted in one place of one batch.
type Plant struct {
	// ID numbers the plants of a probe from 1.
	ID int
	// Identifier is what was planted.
	Identifier
	// Context is how it was written, e.g. "after /".
	Context string
	// Field is where, e.g. "events[crash].frames[].file" or
	// "grpc metadata x-forwarded-for".
	Field string
	// Sent is the text sent, the identifier in its context.
	Sent string
	// Batch is the index of the batch in Probe.Batches; Event is the
	// index of the event in it, -1 for batch-level plants.
	Batch, Event int
	// Outcome is OutcomeAccepted, OutcomeUnsent, or why the event or batch
	// was dropped or refused (a drop reason or status code).
	Outcome string
}

// Accepted reports whether the collector took the plant in.
func (p *Plant) Accepted() bool { return p.Outcome == OutcomeAccepted }

// Header is an HTTP header or a gRPC metadata entry.
type Header struct {
	Name, Value string
}

// Batch is one request to send.
type Batch struct {
	// Index is the batch's index in Probe.Batches.
	Index int
	// Request is the batch.
	Request *consentryv1.IngestRequest
	// Transport is how to send it.
	Transport Transport
	// Source is the loopback address to connect from; it is planted too.
	Source netip.Addr
	// Headers are HTTP headers (for the HTTP transports) or gRPC metadata
	// (lower-case names), each holding identifiers.
	Headers []Header
	// UserAgent is the User-Agent to send.
	UserAgent string
	plants    []*Plant
}

// Plants returns the batch's plants.
func (b *Batch) Plants() []*Plant { return b.plants }

// Config configures a Probe.
type Config struct {
	// Seed makes the probe: the same seed and config give the same
	// batches.
	Seed uint64
	// Plants is roughly how many identifiers to plant; batches are added
	// until there are at least this many. Default 300.
	Plants int
	// Kinds restricts the kinds planted in text; nil plants every kind.
	// Plants in bytes, numbers, headers and the connection keep their
	// kinds.
	Kinds []Kind
	// Contexts restricts the contexts text is written in, by name; nil
	// uses every context.
	Contexts []string
	// AppID is the app the batches are from. Required.
	AppID string
	// Token is the consent token every batch carries, for AppID, covering
	// every scope. Required.
	Token string
	// EventsPerBatch is the number of events per batch, at most 100.
	// Default 12.
	EventsPerBatch int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Plants = cmp.Or(c.Plants, 300)
	c.EventsPerBatch = cmp.Or(c.EventsPerBatch, 12)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.AppID == "" || c.Token == "" {
		errs = append(errs, errors.New("AppID and Token are required"))
	}
	if c.Plants < 1 || c.EventsPerBatch < 1 || c.EventsPerBatch > 100 {
		errs = append(errs, errors.New("Plants must be positive and EventsPerBatch between 1 and 100"))
	}
	for _, k := range c.Kinds {
		if !contains(kindNames(), string(k)) {
			errs = append(errs, fmt.Errorf("unknown kind %q", k))
		}
	}
	for _, n := range c.Contexts {
		if _, ok := contextByName(n); !ok {
			errs = append(errs, fmt.Errorf("unknown context %q", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("privacyprobe: config: %w", err)
	}
	return nil
}

func kindNames() []string {
	var s []string
	for _, k := range Kinds() {
		s = append(s, string(k))
	}
	return s
}

func contextByName(n string) (Context, bool) {
	for _, c := range contexts {
		if c.Name == n {
			return c, true
		}
	}
	return Context{}, false
}

// Probe is a generated set of batches with identifiers planted in them.
type Probe struct {
	// Seed is the seed it was generated from.
	Seed uint64
	// Batches are the requests to send, in order.
	Batches []*Batch
	// Plants are every plant of every batch, by ID (Plants[i].ID == i+1).
	Plants []*Plant
	// Token is the consent token the batches carry, looked for as
	// ConsentToken.
	Token string
}

// New generates a probe.
func New(cfg Config) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &planter{
		cfg:   cfg,
		g:     &generator{r: rand.New(rand.NewPCG(cfg.Seed, 0x70726f6265))},
		probe: &Probe{Seed: cfg.Seed, Token: cfg.Token},
		kinds: cfg.Kinds,
		ctxs:  contexts,
		used:  map[string]bool{},
	}
	if len(p.kinds) == 0 {
		p.kinds = Kinds()
	}
	if len(cfg.Contexts) > 0 {
		p.ctxs = nil
		for _, n := range cfg.Contexts {
			c, _ := contextByName(n)
			p.ctxs = append(p.ctxs, c)
		}
	}
	for len(p.probe.Plants) < cfg.Plants {
		p.newBatch()
	}
	return p.probe, nil
}

// fieldClass is what a string field accepts.
type fieldClass int

const (
	// classShort: up to 256 bytes of any text (names, versions, models,
	// exception types, thread names, frame fields).
	classShort fieldClass = iota
	// classText: free text up to 8 KiB (crash messages, attribute values).
	classText
	// className: a custom event name or attribute key: letters, digits,
	// '.', '_' and '-'.
	className
	// classScreen: a screen name: a name that may also hold '/', ':' and
	// ' '.
	classScreen
)

// The limits and name rules of the collector's limits and validate stages
// (collector/limits, collector/validate), which batches must meet for
// their events to be accepted.
const (
	maxShortBytes = 256
	maxTextBytes  = 8 << 10
)

// fieldClasses are the string fields that are not classShort.
var fieldClasses = map[protoreflect.FullName]fieldClass{
	"consentry.v1.Crash.message":               classText,
	"consentry.v1.AttributeValue.string_value": classText,
	"consentry.v1.CustomEvent.name":            className,
	"consentry.v1.Gesture.screen":              classScreen,
	// A breadcrumb whose name is not a name is left out by the
	// anonymizer: a plant there would prove nothing.
	"consentry.v1.Breadcrumb.name": classScreen,
}

// fits reports whether v is acceptable in a field of class c.
func (c fieldClass) fits(v string) bool {
	switch c {
	case classText:
		return len(v) <= maxTextBytes
	case className, classScreen:
		if v == "" || len(v) > maxShortBytes {
			return false
		}
		for _, r := range v {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			case c == classScreen && (r == '/' || r == ':' || r == ' '):
			default:
				return false
			}
		}
		return true
	default:
		return len(v) <= maxShortBytes
	}
}

// planter builds a probe's batches.
type planter struct {
	cfg   Config
	g     *generator
	probe *Probe
	kinds []Kind
	ctxs  []Context
	cur   *Batch
	event int
	// used holds every needle planted so far, so no two plants share one
	// and a finding names its plant.
	used map[string]bool
}

// addPlant records a plant in the current batch.
func (p *planter) addPlant(id Identifier, context, field, sent string) *Plant {
	pl := &Plant{
		ID: len(p.probe.Plants) + 1, Identifier: id, Context: context, Field: field, Sent: sent,
		Batch: p.cur.Index, Event: p.event, Outcome: OutcomeUnsent,
	}
	p.probe.Plants = append(p.probe.Plants, pl)
	p.cur.plants = append(p.cur.plants, pl)
	for _, n := range allNeedles(id) {
		p.used[n] = true
	}
	return pl
}

// fresh returns a new identifier of kind k whose needles no earlier plant
// has.
func (p *planter) fresh(k Kind) Identifier {
	for {
		id := p.g.identifier(k)
		clash := false
		for _, n := range allNeedles(id) {
			if p.used[n] {
				clash = true
				break
			}
		}
		if !clash {
			return id
		}
	}
}

// freshASCII returns a fresh identifier of kind k in ASCII, as gRPC
// metadata must be.
func (p *planter) freshASCII(k Kind) Identifier {
	for {
		if id := p.fresh(k); isASCII(id.Value) {
			return id
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// text plants an identifier in a string field of class c and returns the
// text to store in it.
func (p *planter) text(field string, c fieldClass) string {
	for attempt := 0; ; attempt++ {
		k := p.kinds[p.g.intn(len(p.kinds))]
		id := p.fresh(k)
		ctx := p.ctxs[p.g.intn(len(p.ctxs))]
		if attempt > 500 {
			// Nothing of the chosen kinds fits this field: plant an
			// ANDROID_ID, which fits every name.
			id = p.fresh(AndroidID)
			ctx = contexts[0]
		}
		sent := ctx.render(p.g, id.Value)
		if !c.fits(sent) || !utf8.ValidString(sent) {
			continue
		}
		p.addPlant(id, ctx.Name, field, sent)
		return sent
	}
}

// newBatch generates one batch.
func (p *planter) newBatch() {
	b := &Batch{Index: len(p.probe.Batches), Transport: transports[len(p.probe.Batches)%len(transports)]}
	p.probe.Batches = append(p.probe.Batches, b)
	p.cur, p.event = b, -1
	req := &consentryv1.IngestRequest{}
	p.fill(req.ProtoReflect(), "")
	b.Request = req
	p.connection(b)
	p.headers(b)
}

// rule fills a field that needs a valid or a special value; it returns
// false to leave the field to the generic walk.
type rule func(p *planter, m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool

// ruleFor returns the rule of the field named name, nil if it has none.
func ruleFor(name protoreflect.FullName) rule {
	switch name {
	case "consentry.v1.IngestRequest.consent_token":
		return func(p *planter, m protoreflect.Message, fd protoreflect.FieldDescriptor, _ string) bool {
			m.Set(fd, protoreflect.ValueOfString(p.cfg.Token))
			return true
		}
	case "consentry.v1.IngestRequest.sent_at_unix_ms":
		return func(p *planter, m protoreflect.Message, fd protoreflect.FieldDescriptor, _ string) bool {
			m.Set(fd, protoreflect.ValueOfInt64(p.cfg.Now().UnixMilli()))
			return true
		}
	case "consentry.v1.IngestRequest.events":
		return (*planter).events
	case "consentry.v1.DeviceContext.app_id":
		return (*planter).appID
	case "consentry.v1.DeviceContext.location":
		return (*planter).location
	case "consentry.v1.Event.event_id":
		return (*planter).eventID
	case "consentry.v1.Event.created_at_unix_ms":
		return (*planter).createdAt
	case "consentry.v1.Event.age_ms":
		return (*planter).age
	case "consentry.v1.Event.session_id":
		return (*planter).sessionID
	case "consentry.v1.Session.duration_ms":
		return (*planter).session
	case "consentry.v1.Session.foreground_ms":
		return func(*planter, protoreflect.Message, protoreflect.FieldDescriptor, string) bool { return true } // set with duration_ms
	case "consentry.v1.CustomEvent.attributes":
		return (*planter).attributes
	}
	return nil
}

// fill fills every field of m: strings get plants, the rest valid values.
// path names m for plants, e.g. "events[crash].frames[]".
func (p *planter) fill(m protoreflect.Message, path string) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			continue // a oneof's branch is chosen by whoever made m
		}
		if r := ruleFor(fd.FullName()); r != nil && r(p, m, fd, join(path, string(fd.Name()))) {
			continue
		}
		p.field(m, fd, join(path, string(fd.Name())))
	}
	oneofs := m.Descriptor().Oneofs()
	for i := range oneofs.Len() {
		od := oneofs.Get(i)
		if od.IsSynthetic() || m.WhichOneof(od) != nil {
			continue
		}
		fd := od.Fields().Get(p.g.intn(od.Fields().Len()))
		p.field(m, fd, join(path, string(fd.Name())))
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// field fills one field generically.
func (p *planter) field(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) {
	switch {
	case fd.IsMap():
		mp := m.Mutable(fd).Map()
		for range 2 {
			k := p.text(path+"{key}", className)
			v := mp.NewValue()
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				p.fill(v.Message(), path+"{}")
			} else {
				v = p.scalar(fd.MapValue(), path+"{}")
			}
			mp.Set(protoreflect.ValueOfString(k).MapKey(), v)
		}
	case fd.IsList():
		l := m.Mutable(fd).List()
		for range 1 + p.g.intn(3) {
			if fd.Kind() == protoreflect.MessageKind {
				v := l.NewElement()
				p.fill(v.Message(), path+"[]")
				l.Append(v)
			} else {
				l.Append(p.scalar(fd, path+"[]"))
			}
		}
	case fd.Kind() == protoreflect.MessageKind:
		p.fill(m.Mutable(fd).Message(), path)
	default:
		m.Set(fd, p.scalar(fd, path))
	}
}

// scalar returns a value for a non-message field.
func (p *planter) scalar(fd protoreflect.FieldDescriptor, path string) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		c, ok := fieldClasses[fd.FullName()]
		if !ok {
			c = classShort
		}
		return protoreflect.ValueOfString(p.text(path, c))
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		var known []protoreflect.EnumNumber
		for i := range vals.Len() {
			if n := vals.Get(i).Number(); n != 0 {
				known = append(known, n)
			}
		}
		return protoreflect.ValueOfEnum(known[p.g.intn(len(known))])
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(p.g.intn(2) == 0)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(p.g.intn(1000)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(p.g.intn(1 << 30)))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(p.g.intn(1000)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(p.g.intn(1000)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(p.g.intn(1000)) / 4)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(p.g.intn(1000)) / 4)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(p.randomID())
	}
	panic(fmt.Sprintf("privacyprobe: no value for %s (%s)", fd.FullName(), fd.Kind()))
}

// randomID returns 16 random bytes that are not all zero.
func (p *planter) randomID() []byte {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(p.g.intn(256))
	}
	b[0] |= 1
	return b
}

// events fills the batch's events: one per payload branch in turn, so
// every event kind carries plants.
func (p *planter) events(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool {
	l := m.Mutable(fd).List()
	payload := fd.Message().Oneofs().ByName("payload")
	branches := payload.Fields()
	for i := range p.cfg.EventsPerBatch {
		p.event = i
		br := branches.Get((p.cur.Index + i) % branches.Len())
		ev := l.NewElement().Message()
		ep := fmt.Sprintf("%s[%s]", path, br.Name())
		p.fill(ev.Mutable(br).Message(), ep) // the payload
		p.fill(ev, ep)                       // the event's own fields
		l.Append(protoreflect.ValueOfMessage(ev))
	}
	p.event = -1
	return true
}

func (p *planter) appID(m protoreflect.Message, fd protoreflect.FieldDescriptor, _ string) bool {
	m.Set(fd, protoreflect.ValueOfString(p.cfg.AppID))
	return true
}

// location sends precise coordinates in every other batch (the first
// too, so that a short probe has them), and codes holding identifiers in
// all.
func (p *planter) location(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool {
	loc := m.Mutable(fd).Message()
	fields := loc.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() == protoreflect.StringKind {
			loc.Set(f, p.scalar(f, join(path, string(f.Name()))))
		}
	}
	if p.cur.Index%2 == 1 {
		return true
	}
	lat, lon, _ := p.g.coordinate()
	lat, lon = roundTo(lat, 5+p.g.intn(2)), roundTo(lon, 5+p.g.intn(2))
	for _, c := range []struct {
		name string
		v    float64
	}{{"latitude", lat}, {"longitude", lon}} {
		f := fields.ByName(protoreflect.Name(c.name))
		loc.Set(f, protoreflect.ValueOfFloat64(c.v))
		s := strconv.FormatFloat(c.v, 'f', -1, 64)
		p.addPlant(Identifier{Kind: Coordinates, Format: "decimal degrees", Value: s}, ContextDouble, join(path, c.name), s)
	}
	return true
}

func roundTo(v float64, decimals int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
	return f
}

// eventID is random, except in one event in five, whose id is the 16
// bytes of an advertising id: an SDK that reuses the IDFA as event id.
func (p *planter) eventID(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool {
	if p.g.intn(5) != 0 {
		m.Set(fd, protoreflect.ValueOfBytes(p.randomID()))
		return true
	}
	id := p.fresh(AdID)
	u := strings.ReplaceAll(strings.ToLower(id.Value), "-", "")
	b := make([]byte, 16)
	for i := range b {
		v, _ := strconv.ParseUint(u[2*i:2*i+2], 16, 8)
		b[i] = byte(v)
	}
	m.Set(fd, protoreflect.ValueOfBytes(b))
	id.Format += ", its 16 bytes"
	p.addPlant(id, ContextBytes, path, id.Value)
	return true
}

func (p *planter) createdAt(m protoreflect.Message, fd protoreflect.FieldDescriptor, _ string) bool {
	m.Set(fd, protoreflect.ValueOfInt64(p.cfg.Now().Add(-time.Duration(p.g.intn(60_000))*time.Millisecond).UnixMilli()))
	return true
}

func (p *planter) age(m protoreflect.Message, fd protoreflect.FieldDescriptor, _ string) bool {
	if p.g.intn(2) == 0 {
		m.Set(fd, protoreflect.ValueOfInt64(int64(p.g.intn(60_000))))
	}
	return true
}

// sessionID is random, or, in one event in three, an identifier's text
// (an SDK that uses the ANDROID_ID, an email or an IDFA as session id).
func (p *planter) sessionID(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool {
	if p.g.intn(3) != 0 {
		m.Set(fd, protoreflect.ValueOfBytes(p.randomID()))
		return true
	}
	for {
		id := p.fresh(p.kinds[p.g.intn(len(p.kinds))])
		if len(id.Value) < 8 || len(id.Value) > 64 {
			continue
		}
		m.Set(fd, protoreflect.ValueOfBytes([]byte(id.Value)))
		p.addPlant(id, ContextBytes, path, id.Value)
		return true
	}
}

// session sets a session's phase-consistent durations.
func (p *planter) session(m protoreflect.Message, _ protoreflect.FieldDescriptor, _ string) bool {
	s := m.Interface().(*consentryv1.Session)
	if s.GetPhase() == consentryv1.SessionPhase_SESSION_PHASE_END {
		s.DurationMs = int64(1000 + p.g.intn(3_600_000))
		s.ForegroundMs = s.DurationMs / int64(1+p.g.intn(4))
	}
	return true
}

var neutralKeys = []string{"pages", "mode", "theme", "attempt", "retry", "source", "variant", "step", "format", "count"}

var coordinateKeys = []string{"lat", "lng", "latitude", "longitude", "gps_lat", "location_lon"}

// attributes fills a custom event's attributes, one of each: a neutral
// key with a planted string, an identifier-named key with a random value,
// a key that is an identifier, a neutral key with a number that is one
// (an IMEI, a card, a phone number), and a coordinate-named key with a
// precise coordinate.
func (p *planter) attributes(m protoreflect.Message, fd protoreflect.FieldDescriptor, path string) bool {
	c := m.Interface().(*consentryv1.CustomEvent)
	c.Attributes = map[string]*consentryv1.AttributeValue{}
	str := func(v string) *consentryv1.AttributeValue {
		return &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_StringValue{StringValue: v}}
	}
	key := func(base string) string {
		k := base
		for n := 2; c.Attributes[k] != nil; n++ {
			k = base + strconv.Itoa(n)
		}
		return k
	}
	// A neutral key with a planted string value.
	k := key(p.g.pick(neutralKeys))
	c.Attributes[k] = str(p.text(path+"{}.string_value", classText))

	// An identifier-named key with a random value.
	idKey := key(p.g.pick(identifierKeys))
	kv := p.fresh(KeyValue)
	v := kv.Needles[0]
	c.Attributes[idKey] = str(v)
	p.addPlant(Identifier{Kind: KeyValue, Format: "attribute (" + idKey + ")", Value: v}, ContextAttribute, path+"{"+idKey+"}", v)

	// A key that is an identifier.
	k = p.text(path+"{key}", className)
	if c.Attributes[k] == nil {
		c.Attributes[k] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_BoolValue{BoolValue: true}}
	}

	// A neutral key with a number that is an identifier.
	var num Identifier
	for {
		num = p.fresh([]Kind{IMEI, Card, Phone}[p.g.intn(3)])
		if len(num.Digits) > 0 && len(num.Digits[0]) <= 18 {
			break
		}
	}
	n, _ := strconv.ParseInt(num.Digits[0], 10, 64)
	num.Format += ", as a number"
	num.Value = num.Digits[0]
	k = key(p.g.pick(neutralKeys))
	c.Attributes[k] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_IntValue{IntValue: n}}
	p.addPlant(num, ContextInteger, path+"{}.int_value", num.Value)

	// A coordinate-named key with a precise coordinate.
	lat, _, _ := p.g.coordinate()
	lat = roundTo(lat, 5+p.g.intn(2))
	ck := key(p.g.pick(coordinateKeys))
	c.Attributes[ck] = &consentryv1.AttributeValue{Value: &consentryv1.AttributeValue_DoubleValue{DoubleValue: lat}}
	s := strconv.FormatFloat(lat, 'f', -1, 64)
	p.addPlant(Identifier{Kind: Coordinates, Format: "decimal degrees", Value: s}, ContextDouble, path+"{"+ck+"}.double_value", s)
	return true
}

// connection plants the loopback address the batch connects from.
func (p *planter) connection(b *Batch) {
	for {
		a := netip.AddrFrom4([4]byte{127, byte(1 + p.g.intn(254)), byte(p.g.intn(256)), byte(2 + p.g.intn(253))})
		if p.used[a.String()] {
			continue
		}
		b.Source = a
		p.addPlant(Identifier{Kind: IPv4, Format: "loopback", Value: a.String()}, ContextConnection, "connection source address", a.String())
		return
	}
}

// headers plants identifiers in forwarding headers, the User-Agent and
// other headers an app may send.
func (p *planter) headers(b *Batch) {
	prefix := "http header "
	name := func(n string) string { return n }
	if b.Transport == GRPC {
		prefix = "grpc metadata "
		name = strings.ToLower
	}
	add := func(header string, parts ...any) {
		var sb strings.Builder
		var ids []Identifier
		for _, part := range parts {
			switch v := part.(type) {
			case string:
				sb.WriteString(v)
			case Kind:
				id := p.freshASCII(v)
				ids = append(ids, id)
				sb.WriteString(id.Value)
			case func(Identifier) string: // an email rendered, e.g. URL-encoded
				id := p.freshASCII(Email)
				ids = append(ids, id)
				sb.WriteString(v(id))
			}
		}
		h := Header{Name: name(header), Value: sb.String()}
		field := prefix + h.Name
		if header == "User-Agent" {
			b.UserAgent = h.Value
			if b.Transport == GRPC {
				field = "grpc user-agent"
			}
		} else {
			b.Headers = append(b.Headers, h)
		}
		for _, id := range ids {
			p.addPlant(id, ContextHeader, field, h.Value)
		}
	}
	add("X-Forwarded-For", IPv4, ", ", IPv4)
	add("Forwarded", "for=", IPv4, ";proto=https, for=\"[", IPv6, "]\"")
	add("X-Real-IP", IPv4)
	add("User-Agent", "Notes/4.12.0 (Pixel 8; Android 14; ", Email, ") okhttp/4.12.0 ", AdID)
	add("X-Device-Id", AndroidID)
	add("X-Advertising-Id", AdID)
	add("X-User-Email", Email)
	add("X-MSISDN", Phone)
	add("Authorization", Credential)
	add("Cookie", "sid=", APIKey, "; theme=dark")
	add("Referer", "https://app.example.com/profile?email=", func(id Identifier) string { return url.QueryEscape(id.Value) })
}

// Record notes what the collector did with batch b: resp is its answer,
// err the error instead. It returns an error when resp does not add up
// (accepted and dropped counts that do not match the events).
func (pr *Probe) Record(b *Batch, resp *consentryv1.IngestResponse, err error) error {
	if err != nil {
		for _, pl := range b.plants {
			pl.Outcome = "refused: " + statusText(err)
		}
		return nil
	}
	n := len(b.Request.GetEvents())
	drops := make(map[int]string)
	for _, d := range resp.GetEventDrops() {
		drops[int(d.GetIndex())] = strings.TrimPrefix(d.GetReason().String(), "DROP_REASON_")
	}
	if int(resp.GetAccepted())+int(resp.GetDropped()) != n || int(resp.GetDropped()) != len(drops) {
		return fmt.Errorf("privacyprobe: batch %d: %d events, response accepted %d and dropped %d, listing %d drops",
			b.Index, n, resp.GetAccepted(), resp.GetDropped(), len(drops))
	}
	for _, pl := range b.plants {
		switch {
		case pl.Event < 0 && resp.GetAccepted() > 0:
			pl.Outcome = OutcomeAccepted
		case pl.Event < 0:
			pl.Outcome = "no event of the batch accepted"
		case drops[pl.Event] != "":
			pl.Outcome = "dropped: " + drops[pl.Event]
		default:
			pl.Outcome = OutcomeAccepted
		}
	}
	return nil
}

// statusText is err's text up to its first colon-separated detail, which
// is enough to tell refusals apart.
func statusText(err error) string {
	s := err.Error()
	if i := strings.Index(s, " desc = "); i >= 0 {
		s = s[:i]
	}
	return s
}

// StringFields returns the path of every string field of the ingest API,
// as plants name them (e.g. "events[crash].frames[].file"), with the ones
// the probe does not plant in and why.
func StringFields() (planted []string, skipped map[string]string) {
	skipped = map[string]string{
		"consent_token": "must be a valid token; looked for as consent_token instead",
		"device.app_id": "must name the app the token was issued for",
	}
	var walk func(md protoreflect.MessageDescriptor, path string)
	walk = func(md protoreflect.MessageDescriptor, path string) {
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			p := join(path, string(fd.Name()))
			switch {
			case fd.FullName() == "consentry.v1.IngestRequest.events":
				oneof := fd.Message().Oneofs().ByName("payload")
				for j := range oneof.Fields().Len() {
					br := oneof.Fields().Get(j)
					walk(br.Message(), fmt.Sprintf("%s[%s]", p, br.Name()))
				}
				walk(fd.Message(), p+"[]")
			case fd.ContainingOneof() != nil && fd.ContainingMessage().FullName() == "consentry.v1.Event":
				// the payload branches, walked above
			case fd.IsMap():
				if fd.MapKey().Kind() == protoreflect.StringKind {
					planted = append(planted, p+"{key}")
				}
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					walk(fd.MapValue().Message(), p+"{}")
				}
			case fd.Kind() == protoreflect.MessageKind:
				suffix := ""
				if fd.IsList() {
					suffix = "[]"
				}
				walk(fd.Message(), p+suffix)
			case fd.Kind() == protoreflect.StringKind:
				if _, ok := skipped[p]; !ok {
					planted = append(planted, p)
				}
			}
		}
	}
	walk((&consentryv1.IngestRequest{}).ProtoReflect().Descriptor(), "")
	sort.Strings(planted)
	return planted, skipped
}
