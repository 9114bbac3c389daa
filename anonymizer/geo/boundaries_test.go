package geo

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// loadTestBoundaries loads the embedded dataset once per test binary.
var loadTestBoundaries = sync.OnceValues(LoadBoundaries)

func testBoundaries(tb testing.TB) *Boundaries {
	tb.Helper()
	b, err := loadTestBoundaries()
	if err != nil {
		tb.Fatalf("LoadBoundaries: %v", err)
	}
	return b
}

// knownPoints are places with their expected location. Points are city
// centres, moved slightly inland where the generalised coastline of the
// data would otherwise leave them at sea.
var knownPoints = []struct {
	name     string
	lat, lon float64
	want     Location
}{
	// Europe
	{"Vienna", 48.2082, 16.3738, Location{"AT", "AT-9"}},
	{"Graz", 47.0707, 15.4395, Location{"AT", "AT-6"}},
	{"Munich", 48.1351, 11.5820, Location{"DE", "DE-BY"}},
	{"Berlin", 52.5200, 13.4050, Location{"DE", "DE-BE"}},
	{"Paris", 48.8566, 2.3522, Location{"FR", "FR-IDF"}},
	{"Lyon", 45.7640, 4.8357, Location{"FR", "FR-ARA"}},
	{"Toulouse", 43.6047, 1.4442, Location{"FR", "FR-OCC"}},
	{"Milan", 45.4642, 9.1900, Location{"IT", "IT-25"}},
	{"Rome", 41.9028, 12.4964, Location{"IT", "IT-62"}},
	{"Naples", 40.8518, 14.2681, Location{"IT", "IT-72"}},
	{"Madrid", 40.4168, -3.7038, Location{"ES", "ES-MD"}},
	{"Barcelona", 41.3874, 2.1686, Location{"ES", "ES-CT"}},
	{"Seville", 37.3891, -5.9845, Location{"ES", "ES-AN"}},
	{"Bilbao", 43.2630, -2.9350, Location{"ES", "ES-PV"}},
	{"Palma", 39.5696, 2.6502, Location{"ES", "ES-IB"}},
	{"Las Palmas", 28.1235, -15.4363, Location{"ES", "ES-CN"}},
	{"London", 51.5074, -0.1278, Location{"GB", "GB-ENG"}},
	{"Edinburgh", 55.9533, -3.1883, Location{"GB", "GB-SCT"}},
	{"Cardiff", 51.4816, -3.1791, Location{"GB", "GB-WLS"}},
	{"Belfast", 54.5973, -5.9301, Location{"GB", "GB-NIR"}},
	{"Dublin", 53.3498, -6.2603, Location{"IE", "IE-L"}},
	{"Cork", 51.8985, -8.4756, Location{"IE", "IE-M"}},
	{"Galway", 53.2707, -9.0568, Location{"IE", "IE-C"}},
	{"Letterkenny", 54.9503, -7.7338, Location{"IE", "IE-U"}},
	{"Brussels", 50.8503, 4.3517, Location{"BE", "BE-BRU"}},
	{"Antwerp", 51.2194, 4.4025, Location{"BE", "BE-VLG"}},
	{"Liège", 50.6326, 5.5797, Location{"BE", "BE-WAL"}},
	{"Amsterdam", 52.3676, 4.9041, Location{"NL", "NL-NH"}},
	{"Zurich", 47.3769, 8.5417, Location{"CH", "CH-ZH"}},
	{"Warsaw", 52.2297, 21.0122, Location{"PL", "PL-14"}},
	{"Prague", 50.0755, 14.4378, Location{"CZ", "CZ-10"}},
	{"Lisbon", 38.7223, -9.1393, Location{"PT", "PT-11"}},
	{"Athens", 37.9838, 23.7275, Location{"GR", "GR-I"}},
	{"Oslo", 59.9139, 10.7522, Location{"NO", "NO-03"}},
	{"Stockholm", 59.3293, 18.0686, Location{"SE", "SE-AB"}},
	{"Moscow", 55.7558, 37.6173, Location{"RU", "RU-MOW"}},
	{"Simferopol", 44.9521, 34.1024, Location{"UA", "UA-43"}},
	{"Istanbul", 41.0151, 28.9795, Location{"TR", "TR-34"}},
	{"Novi Sad", 45.2671, 19.8335, Location{"RS", "RS-VO"}},
	{"Ljubljana", 46.0569, 14.5058, Location{"SI", ""}}, // country-only
	{"Vatican", 41.9029, 12.4534, Location{"VA", ""}},   // enclave inside IT-62
	{"San Marino", 43.9424, 12.4578, Location{"SM", "SM-03"}},
	{"Reykjavík", 64.1466, -21.9426, Location{"IS", "IS-1"}},
	// Americas
	{"New York", 40.7128, -74.0060, Location{"US", "US-NY"}},
	{"San Francisco", 37.7749, -122.4194, Location{"US", "US-CA"}},
	{"Honolulu", 21.3069, -157.8583, Location{"US", "US-HI"}},
	{"Anchorage", 61.2181, -149.9003, Location{"US", "US-AK"}},
	{"Toronto", 43.6532, -79.3832, Location{"CA", "CA-ON"}},
	{"Montreal", 45.5019, -73.5674, Location{"CA", "CA-QC"}},
	{"Mexico City", 19.4326, -99.1332, Location{"MX", "MX-CMX"}},
	{"São Paulo", -23.5505, -46.6333, Location{"BR", "BR-SP"}},
	{"Rio de Janeiro", -22.9068, -43.1729, Location{"BR", "BR-RJ"}},
	{"Buenos Aires", -34.6037, -58.3816, Location{"AR", "AR-C"}},
	{"Santiago", -33.4489, -70.6693, Location{"CL", "CL-RM"}},
	{"Bogotá", 4.7110, -74.0721, Location{"CO", "CO-DC"}},
	{"Lima", -12.0464, -77.0428, Location{"PE", "PE-LMA"}},
	// Asia and Oceania
	{"Tokyo", 35.6762, 139.6503, Location{"JP", "JP-13"}},
	{"Osaka", 34.6937, 135.5023, Location{"JP", "JP-27"}},
	{"Seoul", 37.5665, 126.9780, Location{"KR", "KR-11"}},
	{"Beijing", 39.9042, 116.4074, Location{"CN", "CN-BJ"}},
	{"Shanghai", 31.2304, 121.4737, Location{"CN", "CN-SH"}},
	{"Mumbai", 19.0760, 72.8777, Location{"IN", "IN-MH"}},
	{"Hyderabad", 17.3850, 78.4867, Location{"IN", "IN-TS"}},
	{"Kolkata", 22.5726, 88.3639, Location{"IN", "IN-WB"}},
	{"Singapore", 1.3521, 103.8198, Location{"SG", "SG-03"}},
	{"Jakarta", -6.2088, 106.8456, Location{"ID", "ID-JK"}},
	{"Manila", 14.5995, 120.9842, Location{"PH", "PH-00"}},
	{"Bangkok", 13.7563, 100.5018, Location{"TH", "TH-10"}},
	{"Colombo", 6.9271, 79.8612, Location{"LK", "LK-1"}},
	{"Tehran", 35.6892, 51.3890, Location{"IR", "IR-23"}},
	{"Riyadh", 24.7136, 46.6753, Location{"SA", "SA-01"}},
	{"Sydney", -33.8688, 151.2093, Location{"AU", "AU-NSW"}},
	{"Melbourne", -37.8136, 144.9631, Location{"AU", "AU-VIC"}},
	{"Auckland", -36.8485, 174.7633, Location{"NZ", "NZ-AUK"}},
	// Africa
	{"Cape Town", -33.9249, 18.4241, Location{"ZA", "ZA-WC"}},
	{"Johannesburg", -26.2041, 28.0473, Location{"ZA", "ZA-GP"}},
	{"Nairobi", -1.2921, 36.8219, Location{"KE", ""}}, // country-only
	{"Cairo", 30.0444, 31.2357, Location{"EG", "EG-C"}},
	{"Lagos", 6.5244, 3.3792, Location{"NG", "NG-LA"}},
	{"Kampala", 0.3476, 32.5825, Location{"UG", "UG-C"}},
	{"Ouagadougou", 12.3714, -1.5197, Location{"BF", "BF-03"}},
	{"Addis Ababa", 8.9806, 38.7578, Location{"ET", "ET-AA"}},
	// Overseas and antimeridian
	{"Cayenne", 4.9224, -52.3135, Location{"FR", "FR-GF"}},
	{"Saint-Denis, Réunion", -20.8821, 55.4507, Location{"FR", "FR-RE"}},
	{"Christmas Island", -10.4475, 105.6904, Location{"CX", ""}},
	{"Chukotka at 180°E", 67, 180, Location{"RU", "RU-CHU"}},
	{"Chukotka at 180°W", 67, -180, Location{"RU", "RU-CHU"}},
	{"Taveuni, Fiji", -16.85, -179.95, Location{"FJ", "FJ-N"}},
	{"Antarctica", -80, 0, Location{"AQ", ""}},
}

func TestBoundariesLookup(t *testing.T) {
	b := testBoundaries(t)
	for _, tt := range knownPoints {
		if got := b.Lookup(tt.lat, tt.lon); got != tt.want {
			t.Errorf("%s: Lookup(%v, %v) = %+v, want %+v", tt.name, tt.lat, tt.lon, got, tt.want)
		}
	}
}

func TestBoundariesLookupUnknown(t *testing.T) {
	b := testBoundaries(t)
	tests := []struct {
		name     string
		lat, lon float64
	}{
		{"null island", 0, 0},
		{"mid-Atlantic", 30, -40},
		{"South Atlantic", -30, -15},
		{"mid-Pacific", 0, -150},
		{"Indian Ocean", -20, 80},
		{"North Sea", 56, 3},
		{"Mediterranean", 35, 18},
		{"North Pole", 90, 0},
		{"NaN latitude", math.NaN(), 10},
		{"NaN longitude", 48, math.NaN()},
		{"+Inf", math.Inf(1), 0},
		{"-Inf", 0, math.Inf(-1)},
		{"latitude > 90", 90.0001, 16},
		{"latitude < -90", -91, 16},
		{"longitude > 180", 48, 180.0001},
		{"longitude < -180", 48, -200},
	}
	for _, tt := range tests {
		if got := b.Lookup(tt.lat, tt.lon); got != (Location{}) {
			t.Errorf("%s: Lookup(%v, %v) = %+v, want unknown", tt.name, tt.lat, tt.lon, got)
		}
	}
}

// firstLevel lists, for the countries whose Natural Earth units are mapped
// up to ISO first level, the only codes that may appear.
var firstLevel = map[string][]string{
	"FR": {"FR-ARA", "FR-BFC", "FR-BRE", "FR-CVL", "FR-COR", "FR-GES", "FR-HDF", "FR-IDF", "FR-NOR",
		"FR-NAQ", "FR-OCC", "FR-PDL", "FR-PAC", "FR-GF", "FR-GP", "FR-MQ", "FR-RE", "FR-YT"},
	"IT": {"IT-21", "IT-23", "IT-25", "IT-32", "IT-34", "IT-36", "IT-42", "IT-45", "IT-52", "IT-55",
		"IT-57", "IT-62", "IT-65", "IT-67", "IT-72", "IT-75", "IT-77", "IT-78", "IT-82", "IT-88"},
	"ES": {"ES-AN", "ES-AR", "ES-AS", "ES-CN", "ES-CB", "ES-CL", "ES-CM", "ES-CT", "ES-CE", "ES-EX",
		"ES-GA", "ES-IB", "ES-RI", "ES-MD", "ES-ML", "ES-MC", "ES-NC", "ES-PV", "ES-VC"},
	"GB": {"GB-ENG", "GB-SCT", "GB-WLS", "GB-NIR"},
	"IE": {"IE-C", "IE-L", "IE-M", "IE-U"},
	"BE": {"BE-BRU", "BE-VLG", "BE-WAL"},
	"UG": {"UG-C", "UG-E", "UG-N", "UG-W"},
	"BA": {"BA-BIH", "BA-SRP", "BA-BRC"},
}

// countryOnly lists countries that must have no regions.
var countryOnly = []string{"CI", "KE", "LU", "LV", "MA", "MK", "NP", "SI"}

// maxRegions is a sane upper bound on first-level subdivisions per country.
const maxRegions = 100

func TestBoundariesRegions(t *testing.T) {
	b := testBoundaries(t)
	perCountry := make(map[string][]string)
	seen := make(map[Location]bool)
	for _, loc := range b.locations() {
		if seen[loc] {
			t.Errorf("duplicate region %+v", loc)
		}
		seen[loc] = true
		if !validCountry(loc.Country) {
			t.Errorf("invalid country in %+v", loc)
		}
		if _, ok := perCountry[loc.Country]; !ok {
			perCountry[loc.Country] = nil
		}
		if loc.Region == "" {
			continue
		}
		if !strings.HasPrefix(loc.Region, loc.Country+"-") || !validRegion(loc.Country, loc.Region) {
			t.Errorf("region %q is not a first-level code of %s", loc.Region, loc.Country)
		}
		perCountry[loc.Country] = append(perCountry[loc.Country], loc.Region)
	}

	countries := make([]string, 0, len(perCountry))
	for c := range perCountry {
		countries = append(countries, c)
	}
	sort.Strings(countries)
	var counts strings.Builder
	total := 0
	for _, c := range countries {
		n := len(perCountry[c])
		total += n
		counts.WriteString(" " + c + ":" + strconv.Itoa(n))
		if n > maxRegions {
			t.Errorf("%s has %d regions, more than %d: not first level?", c, n, maxRegions)
		}
	}
	t.Logf("%d countries, %d regions; regions per country:%s", len(countries), total, counts.String())
	if len(countries) < 200 {
		t.Errorf("only %d countries in the dataset", len(countries))
	}

	for c, allowed := range firstLevel {
		for _, r := range perCountry[c] {
			if !slices.Contains(allowed, r) {
				t.Errorf("%s: unexpected region %s (finer than first level?)", c, r)
			}
		}
		if len(perCountry[c]) != len(allowed) {
			t.Errorf("%s: %d regions %v, want %d", c, len(perCountry[c]), perCountry[c], len(allowed))
		}
	}
	for _, c := range countryOnly {
		if _, ok := perCountry[c]; !ok {
			t.Errorf("country-only %s missing", c)
		}
		if len(perCountry[c]) != 0 {
			t.Errorf("country-only %s has regions %v", c, perCountry[c])
		}
	}
}

func TestBoundariesLookupAllocs(t *testing.T) {
	b := testBoundaries(t)
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range knownPoints {
			b.Lookup(p.lat, p.lon)
		}
		b.Lookup(30, -40)
		b.Lookup(math.NaN(), 0)
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run, want 0", allocs)
	}
}

func TestBoundariesConcurrent(t *testing.T) {
	b := testBoundaries(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				for _, tt := range knownPoints {
					if got := b.Lookup(tt.lat, tt.lon); got != tt.want {
						t.Errorf("%s: concurrent Lookup = %+v, want %+v", tt.name, got, tt.want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestBoundariesGrid checks the spatial index against a brute-force scan of
// all regions for points on a coarse global lattice.
func TestBoundariesGrid(t *testing.T) {
	b := testBoundaries(t)
	step := 1.13
	if testing.Short() {
		step = 3.7
	}
	checked := 0
	for lat := -89.9; lat < 90; lat += step {
		for lon := -179.95; lon < 180; lon += step {
			x, y := lon*scale, lat*scale
			var want []Location
			for i := range b.regions {
				if b.contains(&b.regions[i], x, y) {
					want = append(want, b.regions[i].loc)
				}
			}
			got := b.Lookup(lat, lon)
			switch {
			case len(want) == 0 && got.Known():
				t.Errorf("Lookup(%.2f, %.2f) = %+v, brute force finds no region", lat, lon, got)
			case len(want) > 0 && !slices.Contains(want, got):
				t.Errorf("Lookup(%.2f, %.2f) = %+v, brute force finds %v", lat, lon, got, want)
			}
			checked++
		}
	}
	t.Logf("checked %d points", checked)
}

func TestLoadBoundariesCorrupt(t *testing.T) {
	good := []byte(admin1)
	if _, err := loadBoundaries(good); err != nil {
		t.Fatalf("loadBoundaries(embedded): %v", err)
	}
	mutate := func(f func([]byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := map[string][]byte{
		"empty":         nil,
		"short header":  good[:10],
		"truncated":     good[:len(good)/2],
		"bad magic":     mutate(func(p []byte) []byte { p[0] ^= 0xff; return p }),
		"bad version":   mutate(func(p []byte) []byte { p[8] = 99; return p }),
		"bad length":    mutate(func(p []byte) []byte { p[12]++; return p }),
		"bad checksum":  mutate(func(p []byte) []byte { p[16]++; return p }),
		"flipped data":  mutate(func(p []byte) []byte { p[len(p)/2] ^= 0x5a; return p }),
		"trailing junk": append(slices.Clone(good), 1, 2, 3),
	}
	for name, data := range tests {
		if _, err := loadBoundaries(data); err == nil {
			t.Errorf("%s: loadBoundaries succeeded, want error", name)
		}
	}
}

func BenchmarkBoundariesLookup(b *testing.B) {
	bd := testBoundaries(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := knownPoints[i%len(knownPoints)]
		bd.Lookup(p.lat, p.lon)
		i++
	}
}

// BenchmarkBoundariesLookupRandom looks up points spread evenly over the
// globe (most at sea).
func BenchmarkBoundariesLookupRandom(b *testing.B) {
	bd := testBoundaries(b)
	b.ReportAllocs()
	var lat, lon float64
	for b.Loop() {
		bd.Lookup(lat, lon)
		lat = math.Mod(lat+7.31+90, 180) - 90
		lon = math.Mod(lon+13.7+180, 360) - 180
	}
}

func BenchmarkLoadBoundaries(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBoundaries(); err != nil {
			b.Fatal(err)
		}
	}
}
