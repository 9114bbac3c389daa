package limits

import (
	"fmt"
	"reflect"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// ErrMalformed is returned by Scan for bytes that are not an
// IngestRequest in the format given (a truncated field, a bad length,
// unbalanced JSON, nesting deeper than any request has). Resending them
// cannot succeed.
var ErrMalformed = pipeline.ErrMalformed.Specialize("request could not be decoded as a consentry.v1.IngestRequest", pipeline.ReasonBatchMalformed, 0)

// Format is how a request is encoded.
type Format int

// The formats Scan reads.
const (
	// FormatProto is the protobuf wire format (gRPC, HTTP
	// application/x-protobuf).
	FormatProto Format = iota
	// FormatJSON is protojson (HTTP application/json).
	FormatJSON
)

// ProcessingFactor is how many times its decoded estimate a request is
// charged on top of its wire bytes: once for the decoded message, once
// for what the stages build from it (rows, scrubbed copies, the
// response).
const ProcessingFactor = 2

// MaxDepth is the deepest nesting of messages (protobuf) or of objects and
// arrays (JSON) a request may have. A Consentry request nests at most 6
// deep; unknown protobuf fields are kept as bytes and not descended into.
const MaxDepth = 32

// Cost is what one request will cost to decode and process, counted from
// its encoded bytes before anything is decoded.
type Cost struct {
	// Wire is the request's encoded size.
	Wire int64
	// Decoded estimates the heap its decoded message takes: every
	// message's struct, every string and bytes field, every element's
	// slot, unknown fields kept as bytes. It is at least what decoding
	// retains (TestDecodedEstimateBoundsHeap measures it).
	Decoded int64
	// Events, Frames and Attributes count the batch's events, stack
	// frames and custom attributes.
	Events, Frames, Attributes int
	// AppID is device.app_id as sent, unchecked (for counting a refusal
	// under it, if it is a valid app id).
	AppID string
	// UTF8 reports, for a protobuf request scanned to its end, that every
	// string field is valid UTF-8 and every field number valid: what
	// validate.RequestUTF8 would say, found in the same pass, so that
	// decoding need not read the request once more to know it. False for
	// JSON and for a refused request.
	UTF8 bool
}

// Charge is what the request is charged in the in-flight budget: its
// wire bytes plus ProcessingFactor times its decoded estimate.
func (c Cost) Charge() int64 { return c.Wire + ProcessingFactor*c.Decoded }

// Scanner reads an encoded IngestRequest without building it: it counts
// events, frames and attributes (refusing a batch over the limits as soon
// as it passes them, before the rest is read) and estimates the decoded
// size from the counts, so the in-flight budget can be charged before a
// single message is allocated. It is safe for concurrent use.
type Scanner struct {
	cfg     Config
	request *msgInfo
	// objectCost is the most one JSON object can cost decoded (the
	// largest message, in its slot).
	objectCost int64
}

// counter says what a field's elements count towards.
type counter int

const (
	countNone counter = iota
	countEvents
	countFrames
	countAttributes
	countAppID
)

// msgInfo is what the scanner knows of one message type.
type msgInfo struct {
	// cost is what one decoded instance takes: its struct and its slot in
	// the parent (a slice element or a oneof wrapper).
	cost int64
	// fields are the known fields by number; numbers beyond are unknown.
	fields []*fieldInfo
}

// field returns the known field num, or nil.
func (mi *msgInfo) field(num protowire.Number) *fieldInfo {
	if num < 0 || int(num) >= len(mi.fields) {
		return nil
	}
	return mi.fields[num]
}

// fieldInfo is one known field.
type fieldInfo struct {
	wire    protowire.Type
	child   *msgInfo // for message and map fields
	counter counter
	// str marks a string field, whose bytes must be UTF-8.
	str bool
}

// mapEntryCost is what one map entry takes besides its key and value: its
// slot in the map's table (key header, value pointer) at the table's load.
const mapEntryCost = 64

// NewScanner returns a scanner that refuses batches over cfg's limits.
func NewScanner(cfg Config) (*Scanner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scanner{cfg: cfg.withDefaults()}
	infos := make(map[protoreflect.FullName]*msgInfo)
	var build func(md protoreflect.MessageDescriptor) (*msgInfo, error)
	build = func(md protoreflect.MessageDescriptor) (*msgInfo, error) {
		if mi, ok := infos[md.FullName()]; ok {
			return mi, nil
		}
		mi := &msgInfo{}
		infos[md.FullName()] = mi
		if md.IsMapEntry() {
			mi.cost = mapEntryCost
		} else {
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
			if err != nil {
				return nil, fmt.Errorf("limits: scanner: %w", err)
			}
			mi.cost = allocSize(int64(reflect.TypeOf(mt.Zero().Interface()).Elem().Size())) + 16
		}
		s.objectCost = max(s.objectCost, mi.cost)
		fds := md.Fields()
		maxNum := protowire.Number(0)
		for i := range fds.Len() {
			maxNum = max(maxNum, fds.Get(i).Number())
		}
		mi.fields = make([]*fieldInfo, maxNum+1)
		for i := range fds.Len() {
			fd := fds.Get(i)
			fi := &fieldInfo{wire: wireType(fd), str: fd.Kind() == protoreflect.StringKind}
			if fd.Kind() == protoreflect.MessageKind {
				c, err := build(fd.Message())
				if err != nil {
					return nil, err
				}
				fi.child = c
			}
			mi.fields[fd.Number()] = fi
		}
		return mi, nil
	}
	req := (&consentryv1.IngestRequest{}).ProtoReflect().Descriptor()
	var err error
	if s.request, err = build(req); err != nil {
		return nil, err
	}
	// What the counts refer to.
	s.request.fields[req.Fields().ByName("events").Number()].counter = countEvents
	dev := req.Fields().ByName("device").Message()
	infos[dev.FullName()].fields[dev.Fields().ByName("app_id").Number()].counter = countAppID
	crash := (&consentryv1.Crash{}).ProtoReflect().Descriptor()
	infos[crash.FullName()].fields[crash.Fields().ByName("frames").Number()].counter = countFrames
	custom := (&consentryv1.CustomEvent{}).ProtoReflect().Descriptor()
	infos[custom.FullName()].fields[custom.Fields().ByName("attributes").Number()].counter = countAttributes
	return s, nil
}

// wireType is the wire type a field is encoded with (none of Consentry's
// repeated fields are packed scalars).
func wireType(fd protoreflect.FieldDescriptor) protowire.Type {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return protowire.Fixed64Type
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return protowire.Fixed32Type
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	default:
		return protowire.VarintType
	}
}

// allocSize approximates the heap a Go allocation of n bytes takes: the
// runtime's size classes waste at most an eighth, and round to 16.
func allocSize(n int64) int64 {
	if n == 0 {
		return 0
	}
	n += n / 8
	return (n + 15) &^ 15
}

// Scan reads b, a request in format f, and returns what it will cost. It
// fails with ErrBatchTooLarge when the events pass MaxEvents (having
// counted them, without reading into them) or as soon as the frames or
// attributes pass what one batch may hold (MaxEvents × MaxFrames,
// MaxEvents × MaxAttributes), and with ErrMalformed for bytes that cannot
// be the request.
func (s *Scanner) Scan(b []byte, f Format) (Cost, error) {
	st := scan{s: s, cost: Cost{Wire: int64(len(b))}}
	var err error
	if f == FormatJSON {
		err = st.json(b)
	} else {
		st.cost.UTF8 = true
		err = st.message(b, s.request, 1)
	}
	if err == nil {
		err = st.tooMany
	}
	if err != nil {
		st.cost.UTF8 = false
	}
	return st.cost, err
}

// scan is the state of one Scan.
type scan struct {
	s    *Scanner
	cost Cost
	// tooMany is set once the events pass the limit; from then on the
	// scan only counts events.
	tooMany error
}

// add adds n bytes to the decoded estimate, unless the batch is already
// refused.
func (st *scan) add(n int64) {
	if st.tooMany == nil {
		st.cost.Decoded += n
	}
}

// count adds one element to c and refuses the batch once over its limit.
func (st *scan) count(c counter) error {
	cfg := &st.s.cfg
	switch c {
	case countEvents:
		// Over the limit, the scan goes on counting events (only), so the
		// refusal counts them all.
		if st.cost.Events++; st.cost.Events > cfg.MaxEvents && st.tooMany == nil {
			st.tooMany = fmt.Errorf("%w: more than %d events", ErrBatchTooLarge, cfg.MaxEvents)
		}
	case countFrames:
		if st.cost.Frames++; st.cost.Frames > cfg.MaxEvents*cfg.MaxFrames {
			return fmt.Errorf("%w: more than %d stack frames", ErrBatchTooLarge, cfg.MaxEvents*cfg.MaxFrames)
		}
	case countAttributes:
		if st.cost.Attributes++; st.cost.Attributes > cfg.MaxEvents*cfg.MaxAttributes {
			return fmt.Errorf("%w: more than %d attributes", ErrBatchTooLarge, cfg.MaxEvents*cfg.MaxAttributes)
		}
	}
	return nil
}

// consumeTag is protowire.ConsumeTag with the common case first: a tag of
// one byte (field numbers up to 15), which is most of the tags of a
// request, is read without the general varint decoder.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	if c := b[0]; c < 0x80 && c >= 1<<3 {
		return protowire.Number(c >> 3), protowire.Type(c & 7), 1
	}
	return protowire.ConsumeTag(b)
}

// message scans the fields of one message of type mi, depth deep.
func (st *scan) message(b []byte, mi *msgInfo, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	st.cost.Decoded += mi.cost
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if !num.IsValid() {
			st.cost.UTF8 = false // decoders differ on these
		}
		fi := mi.field(num)
		if fi == nil || fi.wire != typ {
			// Unknown (or of another wire type, which decoding keeps as
			// unknown too): kept as its bytes, with room to grow.
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(m))
			}
			st.cost.Decoded += 2 * int64(n+m)
			b = b[m:]
			continue
		}
		if typ != protowire.BytesType {
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(m))
			}
			b = b[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(m))
		}
		b = b[m:]
		if err := st.count(fi.counter); err != nil {
			return err
		}
		if st.tooMany != nil {
			continue // counting events only
		}
		if fi.counter == countAppID && len(v) <= consentryv1.MaxAppIDLen {
			st.cost.AppID = string(v)
		}
		if fi.child == nil {
			st.cost.Decoded += allocSize(int64(len(v)))
			if fi.str && st.cost.UTF8 && !utf8.Valid(v) {
				st.cost.UTF8 = false
			}
			continue
		}
		if err := st.message(v, fi.child, depth+1); err != nil {
			return err
		}
	}
	return nil
}
