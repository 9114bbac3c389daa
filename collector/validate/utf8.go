package validate

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Invalid UTF-8.
//
// Proto3 string fields must hold UTF-8, and the protobuf runtimes (Go's
// binary and JSON decoders among them) refuse a whole message when one
// string does not. One crash message cut in the middle of a character, or
// one thread name a native library wrote in Latin-1, would refuse a batch
// of a thousand events as malformed, and the SDK, told not to retry, would
// discard the good events with it. UnmarshalRequest and
// UnmarshalRequestJSON decode such a batch anyway, and decide per string:
//
//   - Free text (textFields: a crash message, a thread name, the fields of
//     a stack frame, a string attribute value) is repaired: each run of
//     bytes that is not UTF-8 becomes U+FFFD, and the text is then
//     scrubbed like any other. The stored text is valid UTF-8 that the
//     scrubber read; the bytes it could not read are never stored. A
//     crash's breadcrumb name is repaired too, and the anonymizer then
//     leaves that breadcrumb out: it is a name, but not worth its crash.
//   - Any other string of an event names something that must be exact to
//     group or filter by (a screen, an event name, an attribute key, an
//     exception type, a crash fingerprint): the event is dropped with
//     DROP_REASON_INVALID_FIELD and counted, and the rest of the batch is
//     stored.
//   - Strings of the batch itself (the consent token, the device context)
//     are repaired, and then checked as always: a repaired token does not
//     verify (CONSENT_INVALID), a repaired app id is refused, a repaired
//     locale or region code is not one, device fields are scrubbed.
//
// Valid input costs nothing extra: the lenient decoding runs only when the
// ordinary one failed.

// replacement is what a run of bytes that are not UTF-8 becomes.
const replacement = "\uFFFD"

// textFields are the string fields of an event that hold free text, which
// is repaired when it is not UTF-8. Invalid UTF-8 in any other string field
// of an event drops the event.
var textFields = map[protoreflect.FullName]bool{
	"consentry.v1.Crash.message":               true,
	"consentry.v1.Crash.thread":                true,
	"consentry.v1.StackFrame.module":           true,
	"consentry.v1.StackFrame.function":         true,
	"consentry.v1.StackFrame.file":             true,
	"consentry.v1.AttributeValue.string_value": true,
	// A breadcrumb's name is a name, but a bad one costs the breadcrumb
	// (the anonymizer leaves it out), not its crash.
	"consentry.v1.Breadcrumb.name": true,
}

// eventsField is IngestRequest.events.
const eventsField protowire.Number = 4

// invalidTextField is the field number of the mark UnmarshalRequest leaves
// on an event, as an unknown field, when one of its names was not UTF-8:
// the largest number protobuf allows, which no Consentry message uses. A
// client that sends the mark itself only gets that event dropped.
const invalidTextField protowire.Number = protowire.MaxValidNumber

// maxDepth bounds the nesting the lenient decoders follow. The ingest
// messages nest five deep; deeper input is not a valid request.
const maxDepth = 32

// errTooDeep is input nested deeper than any request.
var errTooDeep = errors.New("nested too deep")

var requestDesc = (&consentryv1.IngestRequest{}).ProtoReflect().Descriptor()

// UnmarshalRequest decodes the protobuf encoding b into req, as
// proto.Unmarshal does, except that strings that are not valid UTF-8 do
// not fail it: they are repaired, and an event whose name was not UTF-8 is
// marked to be dropped with DROP_REASON_INVALID_FIELD by the stage (see
// the rules above). It fails where proto.Unmarshal fails for any other
// reason.
//
// Valid input, nearly all of it, is decoded by the code vtprotobuf
// generates (UnmarshalVT: no reflection, a fifth of proto.Unmarshal's
// instructions), once RequestUTF8 has found every string valid, which
// UnmarshalVT does not check; anything else goes the way described above.
// req must be empty.
func UnmarshalRequest(b []byte, req *consentryv1.IngestRequest) error {
	return UnmarshalScannedRequest(b, req, RequestUTF8(b))
}

// UnmarshalScannedRequest is UnmarshalRequest for a caller that already
// knows what RequestUTF8(b) says (limits.Cost.UTF8 finds it while
// scanning): it saves reading b once more.
func UnmarshalScannedRequest(b []byte, req *consentryv1.IngestRequest, utf8OK bool) error {
	if utf8OK {
		if req.UnmarshalVT(b) == nil {
			return nil
		}
		proto.Reset(req)
	}
	err := proto.Unmarshal(b, req)
	if err == nil {
		return nil
	}
	r := repairer{}
	fixed, rerr := r.message(nil, requestDesc, b, -1, 0)
	if rerr != nil || !r.changed {
		return err
	}
	if err := proto.Unmarshal(fixed, req); err != nil {
		return fmt.Errorf("unmarshal repaired request: %w", err)
	}
	markEvents(req, r.drops)
	return nil
}

// repairer rewrites the wire encoding of a request with its invalid
// strings repaired, noting the events to drop.
type repairer struct {
	changed bool
	drops   []int
}

// drop notes that event i is to be dropped.
func (r *repairer) drop(i int) {
	if n := len(r.drops); n == 0 || r.drops[n-1] != i {
		r.drops = append(r.drops, i)
	}
}

// message appends to out the encoding b of a message of type md with its
// strings repaired. event is the index of the event b is part of, or -1.
func (r *repairer) message(out []byte, md protoreflect.MessageDescriptor, b []byte, event, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	fields := md.Fields()
	isRequest := md == requestDesc
	events := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		raw := b[:n+m]
		b = b[n+m:]
		fd := fields.ByNumber(num)
		if fd == nil || typ != protowire.BytesType {
			// Unknown, or of another wire type: the decoder keeps it
			// as an unknown field without looking inside.
			out = append(out, raw...)
			continue
		}
		v, _ := protowire.ConsumeBytes(raw[n:])
		switch fd.Kind() {
		case protoreflect.StringKind:
			if utf8.Valid(v) {
				out = append(out, raw...)
				continue
			}
			r.changed = true
			if event >= 0 && !textFields[fd.FullName()] {
				r.drop(event)
			}
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, bytes.ToValidUTF8(v, []byte(replacement)))
		case protoreflect.MessageKind:
			ev := event
			if isRequest && num == eventsField {
				ev = events
				events++
			}
			sub, err := r.message(nil, fd.Message(), v, ev, depth+1)
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, sub)
		default:
			out = append(out, raw...)
		}
	}
	return out, nil
}

// markEvents marks the events of req at the indexes drops, in ascending
// order, as holding a name that was not UTF-8.
func markEvents(req *consentryv1.IngestRequest, drops []int) {
	events := req.GetEvents()
	for _, i := range drops {
		if i >= len(events) {
			return
		}
		m := events[i].ProtoReflect()
		u := m.GetUnknown()
		u = protowire.AppendTag(u[:len(u):len(u)], invalidTextField, protowire.VarintType)
		m.SetUnknown(protowire.AppendVarint(u, 1))
	}
}

// invalidText reports whether UnmarshalRequest marked e (see markEvents).
func invalidText(e *consentryv1.Event) bool {
	b := e.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if num == invalidTextField {
			return true
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return false
}

// jsonOptions are how the HTTP endpoint decodes JSON: unknown fields are
// skipped, as over gRPC, so newer SDKs work with older collectors.
var jsonOptions = protojson.UnmarshalOptions{DiscardUnknown: true}

// UnmarshalRequestJSON decodes the protojson encoding b into req, unknown
// fields skipped, with the repairs of UnmarshalRequest: a JSON string that
// holds bytes that are not UTF-8, or a \u escape of half a surrogate pair,
// is repaired or drops its event as a protobuf string would.
func UnmarshalRequestJSON(b []byte, req *consentryv1.IngestRequest) error {
	err := jsonOptions.Unmarshal(b, req)
	if err == nil {
		return nil
	}
	fixed, drops, changed := repairJSON(b)
	if !changed {
		return err
	}
	if err := jsonOptions.Unmarshal(fixed, req); err != nil {
		return fmt.Errorf("unmarshal repaired request: %w", err)
	}
	markEvents(req, drops)
	return nil
}

// jsonFrame is an open JSON object or array, with the part of the
// request it holds.
type jsonFrame struct {
	array bool
	// For an object: the message it is (md), or the map field it is the
	// value of (mapFd); neither for JSON the request does not define.
	md    protoreflect.MessageDescriptor
	mapFd protoreflect.FieldDescriptor
	// For an array: the repeated field it is the value of, if known.
	listFd protoreflect.FieldDescriptor
	// events: the array is IngestRequest.events.
	events bool
	// event is the index of the event the frame is part of, or -1.
	event int
	// index is the index of the array's current element.
	index int
	// key: an object's next string is a key. value is the field of the
	// value after the key just read, if known.
	key   bool
	value protoreflect.FieldDescriptor
}

// repairJSON returns b with the JSON strings that are not UTF-8 repaired,
// the events to drop in ascending order, and whether anything changed. b
// is expected to be JSON apart from its strings; where it is not, the
// decoder of the result fails.
func repairJSON(b []byte) (out []byte, drops []int, changed bool) {
	var stack []jsonFrame
	deep := 0 // open brackets beyond maxDepth, which are not followed
	// next returns the field and event of the value that starts now.
	next := func() (fd protoreflect.FieldDescriptor, md protoreflect.MessageDescriptor, event int, events bool) {
		if len(stack) == 0 {
			return nil, requestDesc, -1, false
		}
		f := &stack[len(stack)-1]
		event = f.event
		switch {
		case f.array && f.listFd != nil:
			if f.events {
				event = f.index
			}
			fd = f.listFd
			if fd.Kind() == protoreflect.MessageKind {
				md = fd.Message()
			}
			return fd, md, event, false
		case f.mapFd != nil:
			fd = f.mapFd.MapValue()
		case !f.array:
			fd = f.value
		}
		if fd == nil {
			return nil, nil, event, false
		}
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			md = fd.Message()
		}
		return fd, md, event, f.md == requestDesc && fd.Number() == eventsField
	}
	last := 0
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case '{', '[':
			i++
			if deep > 0 || len(stack) == maxDepth {
				deep++
				continue
			}
			fd, md, event, events := next()
			f := jsonFrame{array: c == '[', event: event, key: c == '{'}
			switch {
			case c == '[' && fd != nil && fd.IsList():
				f.listFd, f.events = fd, events
			case c == '{' && fd != nil && fd.IsMap():
				f.mapFd = fd
			case c == '{':
				f.md = md
			}
			stack = append(stack, f)
		case '}', ']':
			i++
			if deep > 0 {
				deep--
			} else if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			i++
			if deep == 0 && len(stack) > 0 {
				f := &stack[len(stack)-1]
				f.key = !f.array
				f.index++
			}
		case '"':
			end, bad := jsonString(b, i)
			var key bool
			var f *jsonFrame
			if deep == 0 && len(stack) > 0 {
				f = &stack[len(stack)-1]
				key = f.key
			}
			if len(bad) > 0 {
				changed = true
				for _, sp := range bad {
					out = append(out, b[last:sp[0]]...)
					out = append(out, `\ufffd`...)
					last = sp[1]
				}
				var fd protoreflect.FieldDescriptor
				event := -1
				switch {
				case key && f.mapFd != nil:
					fd, event = f.mapFd.MapKey(), f.event
				case !key && deep == 0:
					fd, _, event, _ = next()
				}
				if fd != nil && event >= 0 && !textFields[fd.FullName()] {
					if n := len(drops); n == 0 || drops[n-1] != event {
						drops = append(drops, event)
					}
				}
			}
			if key {
				f.key = false
				f.value = nil
				if f.md != nil {
					name := jsonKey(b[i:end])
					fields := f.md.Fields()
					if f.value = fields.ByJSONName(name); f.value == nil {
						f.value = fields.ByTextName(name)
					}
				}
			}
			i = end
		default:
			i++
		}
	}
	if !changed {
		return b, nil, false
	}
	return append(out, b[last:]...), drops, true
}

// jsonString returns the end of the JSON string that starts with the
// quote at b[i], and the spans of it that are not UTF-8: runs of bytes
// that are not, and \u escapes of half a surrogate pair.
func jsonString(b []byte, i int) (end int, bad [][2]int) {
	j := i + 1
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, bad
		case c == '\\':
			if j+1 < len(b) && b[j+1] == 'u' {
				r, ok := hex4(b, j+2)
				switch {
				case !ok:
					j += 2
				case utf16.IsSurrogate(r):
					if r2, ok := hex4(b, j+8); r < 0xdc00 && ok && b[j+6] == '\\' && b[j+7] == 'u' && r2 >= 0xdc00 && r2 <= 0xdfff {
						j += 12
						continue
					}
					bad = append(bad, [2]int{j, j + 6})
					j += 6
				default:
					j += 6
				}
				continue
			}
			j += 2
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r != utf8.RuneError || n > 1 {
				j += n
				continue
			}
			s := j
			for j < len(b) && b[j] >= utf8.RuneSelf {
				if r, n := utf8.DecodeRune(b[j:]); r != utf8.RuneError || n > 1 {
					break
				}
				j++
			}
			bad = append(bad, [2]int{s, j})
		}
	}
	return len(b), bad
}

// hex4 returns the value of the four hex digits at b[i:], if there are.
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var v [2]byte
	if _, err := hex.Decode(v[:], b[i:i+4]); err != nil {
		return 0, false
	}
	return rune(binary.BigEndian.Uint16(v[:])), true
}

// jsonKey returns the text of the quoted JSON string q.
func jsonKey(q []byte) string {
	if bytes.IndexByte(q, '\\') < 0 && len(q) >= 2 {
		return string(q[1 : len(q)-1])
	}
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}
