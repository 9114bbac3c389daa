package fakedata

import (
	"math/rand/v2"
	"testing"

	"github.com/consentry/consentry/anonymizer/geo"
)

// TestPlacesResolveToTheirRegion: every place's coordinates lie in the
// region it names, as the collector's offline boundaries resolve them, so
// rows made from the catalogue directly (seed, eventgen) match rows the
// collector makes from the fleet's coordinates.
func TestPlacesResolveToTheirRegion(t *testing.T) {
	b, err := geo.LoadBoundaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Values(Places()) {
		got := b.Lookup(p.Lat, p.Lon)
		if got.Country != p.Country || got.Region != p.Region {
			t.Errorf("%s (%v, %v) resolves to %s/%s, the catalogue says %s/%s", p.City, p.Lat, p.Lon, got.Country, got.Region, p.Country, p.Region)
		}
	}
}

func TestCatalogue(t *testing.T) {
	models := map[string]bool{}
	for _, d := range Values(Devices()) {
		if models[d.Model] {
			t.Errorf("model %s listed twice", d.Model)
		}
		models[d.Model] = true
		if len(OSVersions(d.OS)) == 0 {
			t.Errorf("%s: no versions of %q", d.Model, d.OS)
		}
		if d.Class != "phone" && d.Class != "tablet" {
			t.Errorf("%s: class %q", d.Model, d.Class)
		}
	}
	if len(DevicesOf(OSAndroid))+len(DevicesOf(OSIOS)) != len(Devices()) {
		t.Error("a device of another OS")
	}
	if len(Releases()) < 3 || len(Screens()) == 0 || len(Gestures()) == 0 {
		t.Error("empty tables")
	}
}

func TestPickFollowsWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ws := []Weighted[string]{{1, "rare"}, {9, "common"}, {0, "never"}}
	n := map[string]int{}
	for range 10_000 {
		n[Pick(r, ws)]++
	}
	if n["never"] != 0 || n["rare"] < 800 || n["rare"] > 1200 {
		t.Errorf("draws %v, want about 1,000 rare, 9,000 common and no never", n)
	}
}
