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
	// record, and the slices of the rows carved again once stored.
	b.Run("decode-reused", func(b *testing.B) {
		b.ReportAllocs()
		var (
			d   decoder
			out pipeline.Rows
		)
		for b.Loop() {
			out.Recycle()
			d.carvers.recycle()
			if err := d.decodeRows(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCarversRecycle decodes rounds of records as the shipper does, with
// the carved slices recycled between rounds: every round decodes to the
// same rows as a fresh decoder (a recycled chunk comes back cleared, and
// no slice of a round overlaps another of that round), and after the
// first round its chunks are carved again instead of allocated.
func TestCarversRecycle(t *testing.T) {
	var records [][]byte
	want := &pipeline.Rows{}
	for i := range 4 {
		r := makeRows(i+1, 300) // 60 crashes, 60 customs a record
		// Slices of other lengths, nil and empty ones too.
		r.Crashes[0].Frames = append(r.Crashes[0].Frames, r.Crashes[0].Frames...)
		r.Crashes[1].Frames, r.Crashes[2].Frames = nil, []pipeline.Frame{}
		r.Customs[0].BoolKeys, r.Customs[0].BoolValues = []string{"a", "b"}, []bool{true, false}
		records = append(records, newEncoder().appendRows(nil, r))
		want.Append(r)
	}
	var (
		d   decoder
		got pipeline.Rows
	)
	round := func() {
		got.Reset()
		d.carvers.recycle()
		for _, p := range records {
			if err := d.decodeRows(p, &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		round()
		if !rowsEqual(want, &got) {
			t.Fatalf("round %d: decoded rows differ from the encoded ones", i)
		}
		// Writing to one row's slices changes no other row's.
		for j := range got.Crashes {
			for k := range got.Crashes[j].Frames {
				got.Crashes[j].Frames[k].Line = uint32(1000 + j)
			}
		}
		for j, c := range got.Crashes {
			for _, f := range c.Frames {
				if f.Line != uint32(1000+j) {
					t.Fatalf("round %d: crash %d's frames overlap another crash's", i, j)
				}
			}
		}
	}
	// The chunks a round carves are those of the round before: none is
	// allocated once the first round has made them.
	chunks := func() int {
		c := &d.carvers
		return len(c.lists.used) + len(c.lists.spare) + len(c.frames.used) + len(c.frames.spare) +
			len(c.crumbs.used) + len(c.crumbs.spare) + len(c.floats.used) + len(c.floats.spare) +
			len(c.bools.used) + len(c.bools.spare)
	}
	before := chunks()
	if before == 0 {
		t.Fatal("no chunks carved")
	}
	for range 3 {
		round()
	}
	if after := chunks(); after != before {
		t.Errorf("the carvers hold %d chunks after three more rounds, want the first round's %d", after, before)
	}
}
