package sdk

import (
	"bytes"
	"testing"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// FuzzQueueRecord feeds the queue's record decoding tampered and arbitrary
// bytes: it must never panic, and must never return data for a frame that
// differs from what was sealed. The fuzzer's inputs are an edit applied to
// a sealed record (XOR a byte at a position, truncate, append) and raw
// bytes for the segment scanner.
func FuzzQueueRecord(f *testing.F) {
	aead, err := newAEAD(bytes.Repeat([]byte{1}, keySize))
	if err != nil {
		f.Fatal(err)
	}
	plain, err := encodeRecord(nil, 7, 1234, &consentryv1.Event{
		EventId: bytes.Repeat([]byte{9}, 16), CreatedAtUnixMs: 1,
		Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: "home"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := sealFrame(nil, aead, magicQueue, plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(0, byte(0), 0, []byte(nil))
	f.Add(3, byte(1), 0, []byte(nil))
	f.Add(10, byte(0x80), 0, []byte("x"))
	f.Add(len(sealed)-1, byte(1), 5, []byte(magicQueue))
	f.Add(4, byte(0xff), 0, append([]byte(magicQueue+"\x00\x00\x00\x20"), make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, pos int, xor byte, cut int, extra []byte) {
		frame := bytes.Clone(sealed)
		if pos >= 0 && pos < len(frame) {
			frame[pos] ^= xor
		}
		if cut > 0 && cut <= len(frame) {
			frame = frame[:len(frame)-cut]
		}
		frame = append(frame, extra...)
		tampered := !bytes.HasPrefix(frame, sealed)
		got, n, err := openFrame(nil, aead, magicQueue, frame)
		switch {
		case tampered && err == nil:
			t.Fatalf("tampered frame opened: %x", got)
		case !tampered && (err != nil || n != len(sealed) || !bytes.Equal(got, plain)):
			t.Fatalf("intact frame: n=%d err=%v", n, err)
		}
		if err == nil {
			if _, err := decodeRecord(got); err != nil {
				t.Fatalf("intact record does not decode: %v", err)
			}
		}
		// The scanner finds exactly the intact frames, whatever surrounds
		// them.
		data := append(append(bytes.Clone(extra), frame...), extra...)
		spans, _ := scanFrames(aead, data)
		for _, sp := range spans {
			if !bytes.Equal(data[sp[0]:sp[1]], sealed) {
				t.Fatalf("scanner returned a frame that was not sealed: %x", data[sp[0]:sp[1]])
			}
		}
		if !tampered && len(spans) == 0 {
			t.Fatal("scanner missed the intact frame")
		}
		// Arbitrary plaintexts never panic the decoder.
		_, _ = decodeRecord(extra)
	})
}
