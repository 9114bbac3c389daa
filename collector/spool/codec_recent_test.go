package spool

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/pipeline"
)

// TestCodecRecentStrings checks the encoder's memory of recent strings
// (by the address of their bytes): strings that share their first bytes
// but not their length, equal strings at other addresses, and more
// distinct strings than it remembers all survive a round trip.
func TestCodecRecentStrings(t *testing.T) {
	long := strings.Repeat("abcdefgh", 40)
	r := &pipeline.Rows{}
	for i := range 300 {
		c := common(1, i)
		// Prefixes of one string share its address.
		c.AppVersion = long[:1+i%7]
		c.DeviceModel = long[:len(long)-i%5]
		// Equal contents at new addresses.
		c.Locale = strings.Clone("de-AT")
		// Many distinct strings, so remembered ones are replaced.
		c.OSVersion = long[i%64 : i%64+3+i%11]
		r.Gestures = append(r.Gestures, pipeline.GestureRow{Common: c, Type: long[:3], Screen: long[i%8:]})
	}
	roundTrip(t, r)
}

// BenchmarkCodec encodes and decodes a spool record of 200 mixed rows.
func BenchmarkCodec(b *testing.B) {
	rows := makeRows(1, 200)
	enc := newEncoder()
	buf := enc.appendRows(nil, rows)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = enc.appendRows(buf[:0], rows)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var out pipeline.Rows
		for b.Loop() {
			out = pipeline.Rows{}
			if err := decodeRows(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	// As the shipper decodes: one decoder and one set of rows for every
	// record.
	b.Run("decode-reused", func(b *testing.B) {
		b.ReportAllocs()
		var (
			d   decoder
			out pipeline.Rows
		)
		for b.Loop() {
			out.Recycle()
			if err := d.decodeRows(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
