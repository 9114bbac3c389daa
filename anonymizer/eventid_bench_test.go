package anonymizer

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// BenchmarkEventID measures re-keying one 16-byte event id.
func BenchmarkEventID(b *testing.B) {
	ids := newEventIDs(make([]byte, 32), "com.example.notes")
	id := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		id[0]++
		_ = ids.of(id)
	}
}

// TestEventIDIsHMAC checks the stored id against crypto/hmac for ids of
// every length up to and past a block.
func TestEventIDIsHMAC(t *testing.T) {
	key := []byte("server secret derived key 32 byt")
	ids := newEventIDs(key, "com.example.notes")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("com.example.notes"))
	appKey := m.Sum(nil)
	for n := range 200 {
		id := make([]byte, n)
		for i := range id {
			id[i] = byte(i*7 + n)
		}
		want := hmac.New(sha256.New, appKey)
		want.Write(id)
		if got := ids.of(id); [16]byte(want.Sum(nil)) != got {
			t.Fatalf("id of %d bytes: got %x", n, got)
		}
	}
}
