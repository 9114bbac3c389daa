package limits

import (
	"fmt"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// jsonFrame is an open JSON object or array.
type jsonFrame struct {
	array bool
	// key is the key this container is the value of (for an array's
	// elements, the array's key); "" at the root.
	key string
	// Objects: whether the next string is a key, and the current key
	// (only the short ones the scanner looks for are kept).
	expectKey bool
	curKey    string
}

// maxKeptKey is the longest key the JSON scan remembers: the ones it
// counts by ("events", "frames", "attributes", "device", "appId") are
// shorter.
const maxKeptKey = 16

// json scans protojson: every object is counted as the largest message,
// every string as its bytes, every array element as its slot. Events are
// the elements of the root's "events", frames the elements of any
// "frames", attributes the keys of any "attributes". It checks nesting
// and balance, not the rest of the grammar, which decoding checks.
func (st *scan) json(b []byte) error {
	var stack []jsonFrame
	top := func() *jsonFrame {
		if len(stack) == 0 {
			return nil
		}
		return &stack[len(stack)-1]
	}
	// value accounts for the start of a value inside the current
	// container and returns the key it is the value of.
	value := func() string {
		t := top()
		switch {
		case t == nil:
			return ""
		case t.array:
			st.add(16)
			return t.key
		default:
			return t.curKey
		}
	}
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r', ':':
			i++
		case ',':
			if t := top(); t != nil && !t.array {
				t.expectKey = true
			}
			i++
		case '{', '[':
			if len(stack) >= MaxDepth {
				return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
			}
			t := top()
			key := value()
			if c == '{' {
				st.add(st.s.objectCost)
				if t != nil && t.array {
					var ctr counter
					switch {
					case t.key == "events" && len(stack) == 2:
						ctr = countEvents
					case t.key == "frames":
						ctr = countFrames
					}
					if err := st.count(ctr); err != nil {
						return err
					}
				}
			}
			stack = append(stack, jsonFrame{array: c == '[', key: key, expectKey: c == '{'})
			i++
		case '}', ']':
			t := top()
			if t == nil || t.array != (c == ']') {
				return fmt.Errorf("%w: unbalanced %q at byte %d", ErrMalformed, c, i)
			}
			stack = stack[:len(stack)-1]
			i++
		case '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return fmt.Errorf("%w: unterminated string", ErrMalformed)
			}
			s := b[i+1 : j]
			i = j + 1
			st.add(allocSize(int64(len(s))))
			if t := top(); t != nil && !t.array && t.expectKey {
				t.expectKey = false
				t.curKey = ""
				if len(s) <= maxKeptKey {
					t.curKey = string(s)
				}
				if t.key == "attributes" {
					if err := st.count(countAttributes); err != nil {
						return err
					}
				}
				continue
			}
			key := value()
			if len(stack) == 2 && stack[1].key == "device" && !stack[1].array && (key == "appId" || key == "app_id") && len(s) <= consentryv1.MaxAppIDLen {
				st.cost.AppID = string(s)
			}
		default: // a number, true, false or null
			value()
			for i < len(b) {
				switch b[i] {
				case ',', ']', '}', '{', '[', '"', ' ', '\t', '\n', '\r', ':':
				default:
					i++
					continue
				}
				break
			}
		}
	}
	if len(stack) != 0 {
		return fmt.Errorf("%w: %d unclosed objects or arrays", ErrMalformed, len(stack))
	}
	return nil
}
