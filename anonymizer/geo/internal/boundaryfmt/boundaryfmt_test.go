package boundaryfmt

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func sample() *Dataset {
	return &Dataset{
		Points: []Point{
			{X: 0, Y: 0}, {X: 100, Y: 0}, {X: 100, Y: 100}, {X: 0, Y: 0}, // closed arc 0
			{X: -1800000, Y: -900000}, {X: 1800000, Y: 900000}, // arc 1
			{X: 5, Y: 5}, {X: 6, Y: 6}, {X: 5, Y: 7}, // arc 2
		},
		ArcStarts: []int{0, 4, 6},
		Regions: []Region{
			{Country: "AT", Code: "AT-9", Arcs: []int{0, 2}},
			{Country: "SI", Arcs: []int{1}},
			{Country: "VA"},
		},
	}
}

func encode(t testing.TB, d *Dataset) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, d); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	d := sample()
	got, err := Decode(encode(t, d))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	// Decode returns empty, non-nil slices for regions without arcs.
	d.Regions[2].Arcs = []int{}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, d)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	tests := map[string]func(*Dataset){
		"bad country":        func(d *Dataset) { d.Regions[0].Country = "at" },
		"foreign region":     func(d *Dataset) { d.Regions[0].Code = "DE-BY" },
		"region too long":    func(d *Dataset) { d.Regions[0].Code = "AT-1234" },
		"unsorted arcs":      func(d *Dataset) { d.Regions[0].Arcs = []int{2, 0} },
		"arc out of range":   func(d *Dataset) { d.Regions[0].Arcs = []int{7} },
		"point out of range": func(d *Dataset) { d.Points[0].X = 1800001 },
		"one-point arc":      func(d *Dataset) { d.ArcStarts = []int{0, 4, 8} },
	}
	for name, mutate := range tests {
		d := sample()
		mutate(d)
		if err := Encode(&bytes.Buffer{}, d); err == nil {
			t.Errorf("%s: Encode succeeded, want error", name)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := encode(t, sample())
	for _, n := range []int{0, 5, 19, 20, len(good) - 1} {
		if _, err := Decode(good[:n]); err == nil {
			t.Errorf("Decode of %d-byte prefix succeeded", n)
		}
	}
	if _, err := Decode(append(bytes.Clone(good), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("Decode with trailing byte: %v, want trailing data error", err)
	}
	// Random corruption must give an error or a valid dataset, never a
	// panic.
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := bytes.Clone(good)
		for range 1 + r.IntN(3) {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
		if d, err := Decode(b); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("Decode returned an invalid dataset: %v", err)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, sample()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := Decode(b); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("Decode returned an invalid dataset: %v", err)
			}
		}
	})
}

// FuzzParsePayload fuzzes the payload parser behind the checksum.
func FuzzParsePayload(f *testing.F) {
	p, err := Payload(encode(f, sample()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parsePayload(b); err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("parsePayload returned an invalid dataset: %v", err)
			}
		}
	})
}
