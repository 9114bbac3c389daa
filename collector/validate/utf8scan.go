package validate

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RequestUTF8 reports whether every string field in the protobuf encoding
// b of an IngestRequest is valid UTF-8 and every field number is valid; a
// false answer may also mean b does not parse. It reads b once without allocating, so that decoders that
// do not check UTF-8 themselves (the generated UnmarshalVT) can be used on
// valid input, and UnmarshalRequest's repairs on the rest.
func RequestUTF8(b []byte) bool { return requestScan.valid(b, 0) }

// scanField is what a field of a message holds, for the scan.
type scanField struct {
	kind uint8 // scanOther, scanString or scanMessage
	sub  *scanMsg
}

const (
	scanOther uint8 = iota
	scanString
	scanMessage
)

// scanMsg is a message type's fields by number, for the scan; numbers
// beyond the slice are unknown fields.
type scanMsg struct {
	fields []scanField
}

var requestScan = newScanMsg(requestDesc, make(map[protoreflect.FullName]*scanMsg))

// newScanMsg returns md's table, sharing tables of types seen in memo (so
// recursive types end).
func newScanMsg(md protoreflect.MessageDescriptor, memo map[protoreflect.FullName]*scanMsg) *scanMsg {
	if m, ok := memo[md.FullName()]; ok {
		return m
	}
	m := &scanMsg{}
	memo[md.FullName()] = m
	fds := md.Fields()
	maxNum := 0
	for i := range fds.Len() {
		maxNum = max(maxNum, int(fds.Get(i).Number()))
	}
	m.fields = make([]scanField, maxNum+1)
	for i := range fds.Len() {
		fd := fds.Get(i)
		switch fd.Kind() {
		case protoreflect.StringKind:
			m.fields[fd.Number()] = scanField{kind: scanString}
		case protoreflect.MessageKind:
			m.fields[fd.Number()] = scanField{kind: scanMessage, sub: newScanMsg(fd.Message(), memo)}
		}
	}
	return m
}

// valid reports whether the strings of the message encoding b are UTF-8.
func (m *scanMsg) valid(b []byte, depth int) bool {
	if depth > maxDepth {
		return false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || !num.IsValid() {
			return false
		}
		b = b[n:]
		if typ != protowire.BytesType || int(num) >= len(m.fields) || m.fields[num].kind == scanOther {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		f := m.fields[num]
		if f.kind == scanString {
			if !utf8.Valid(v) {
				return false
			}
		} else if !f.sub.valid(v, depth+1) {
			return false
		}
	}
	return true
}
