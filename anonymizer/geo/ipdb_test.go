package geo_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consentry/consentry/anonymizer/geo"
	"github.com/consentry/consentry/anonymizer/geo/geotest"
)

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// testRecords resembles a GeoLite2-City database.
func testRecords() []geotest.Record {
	return []geotest.Record{
		{Prefix: prefix("81.2.69.0/24"), Country: "AT", Subdivision1: "9", Subdivision2: "900"},
		{Prefix: prefix("2a02:8388::/32"), Country: "AT", Subdivision1: "6"},
		{Prefix: prefix("2.16.0.0/16"), Country: "FR", Subdivision1: "IDF", Subdivision2: "75"},
		{Prefix: prefix("2a00:1450::/32"), Country: "US", Subdivision1: "CA"},
		{Prefix: prefix("5.0.0.0/16"), RegisteredCountry: "DE"},
		{Prefix: prefix("5.1.0.0/16"), Country: "IT", RegisteredCountry: "DE", Subdivision1: "25"},
		{Prefix: prefix("89.160.20.0/24"), Country: "SE", Subdivision1: "TOOLONG"},
		{Prefix: prefix("89.160.21.0/24"), Country: "SE", Subdivision1: "a-b"},
		{Prefix: prefix("89.160.22.0/24"), Country: "SE", Subdivision2: "AB"},
		{Prefix: prefix("89.160.23.0/24"), Country: "se"},
		{Prefix: prefix("89.160.24.0/24"), Country: "ES", Subdivision1: "MD"},
		{Prefix: prefix("10.0.0.0/8"), Country: "AT", Subdivision1: "9"},
		{Prefix: prefix("fd00::/8"), Country: "AT", Subdivision1: "9"},
	}
}

func openTestDB(t *testing.T, records []geotest.Record) (*geo.IPDB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteMMDB(t, path, records)
	db, err := geo.OpenIPDB(geo.IPDBConfig{Path: path})
	if err != nil {
		t.Fatalf("OpenIPDB: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestIPDBLookup(t *testing.T) {
	db, _ := openTestDB(t, testRecords())
	tests := []struct {
		ip   string
		want geo.Location
	}{
		{"81.2.69.142", geo.Location{Country: "AT", Region: "AT-9"}},        // second level ignored
		{"::ffff:81.2.69.142", geo.Location{Country: "AT", Region: "AT-9"}}, // IPv4-mapped IPv6
		{"2a02:8388:1:2::1", geo.Location{Country: "AT", Region: "AT-6"}},
		{"2.16.1.1", geo.Location{Country: "FR", Region: "FR-IDF"}},
		{"2a00:1450:4001::1", geo.Location{Country: "US", Region: "US-CA"}},
		{"5.0.1.1", geo.Location{Country: "DE"}},                  // registered_country only
		{"5.1.1.1", geo.Location{Country: "IT", Region: "IT-25"}}, // country wins over registered_country
		{"89.160.20.5", geo.Location{Country: "SE"}},              // malformed subdivision dropped
		{"89.160.21.5", geo.Location{Country: "SE"}},              // malformed subdivision dropped
		{"89.160.22.5", geo.Location{Country: "SE"}},              // first subdivision lacks iso_code
		{"89.160.23.5", geo.Location{}},                           // malformed country
		{"89.160.24.200", geo.Location{Country: "ES", Region: "ES-MD"}},
		{"8.8.8.8", geo.Location{}},      // not in the database
		{"2606:4700::1", geo.Location{}}, // not in the database
		{"10.1.2.3", geo.Location{}},     // private, although listed
		{"fd00::1", geo.Location{}},      // unique local, although listed
		{"192.168.1.1", geo.Location{}},
		{"172.16.0.1", geo.Location{}},
		{"127.0.0.1", geo.Location{}},
		{"::1", geo.Location{}},
		{"0.0.0.0", geo.Location{}},
		{"::", geo.Location{}},
		{"169.254.1.1", geo.Location{}},
		{"fe80::1%eth0", geo.Location{}},
		{"224.0.0.1", geo.Location{}},
		{"ff02::1", geo.Location{}},
		{"255.255.255.255", geo.Location{}},
	}
	for _, tt := range tests {
		got, err := db.Lookup(netip.MustParseAddr(tt.ip))
		if err != nil {
			t.Errorf("Lookup(%s): %v", tt.ip, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
		}
	}
	if got, err := db.Lookup(netip.Addr{}); err != nil || got.Known() {
		t.Errorf("Lookup(invalid) = %+v, %v; want unknown, nil", got, err)
	}
}

func TestIPDBIncludeNonPublic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geotest.WriteMMDB(t, path, testRecords())
	db, err := geo.OpenIPDB(geo.IPDBConfig{Path: path, IncludeNonPublic: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]geo.Location{
		"10.1.2.3":    {Country: "AT", Region: "AT-9"},
		"fd00::1":     {Country: "AT", Region: "AT-9"},
		"192.168.1.1": {},
		"81.2.69.142": {Country: "AT", Region: "AT-9"},
	} {
		if got, err := db.Lookup(netip.MustParseAddr(ip)); err != nil || got != want {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", ip, got, err, want)
		}
	}
}

func TestOpenIPDBErrors(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.mmdb")
	geotest.WriteMMDB(t, valid, testRecords())
	data, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noCountry := filepath.Join(dir, "asn.mmdb")
	geotest.WriteMMDB(t, noCountry, []geotest.Record{{Prefix: prefix("1.0.0.0/24")}, {Prefix: prefix("1.0.1.0/24")}})

	tests := []struct {
		name    string
		path    string
		wantErr string
		is      error
	}{
		{"no path", "", "no path", nil},
		{"missing", filepath.Join(dir, "missing.mmdb"), "missing.mmdb", fs.ErrNotExist},
		{"empty", write("empty.mmdb", nil), "empty.mmdb", nil},
		{"not an MMDB", write("text.mmdb", []byte(strings.Repeat("not a database\n", 100))), "invalid MaxMind DB", nil},
		{"truncated", write("truncated.mmdb", data[:len(data)/2]), "truncated.mmdb", nil},
		{"truncated metadata", write("truncmeta.mmdb", data[:len(data)-20]), "truncmeta.mmdb", nil},
		{"no country", noCountry, "country", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := geo.OpenIPDB(geo.IPDBConfig{Path: tt.path})
			if err == nil {
				db.Close()
				t.Fatal("OpenIPDB succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "geo: open IP database: ") {
				t.Errorf("error %q does not start with \"geo: open IP database: \" or lacks %q", err, tt.wantErr)
			}
			t.Logf("%s: %v", tt.name, err)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestIPDBReload(t *testing.T) {
	recordsA := []geotest.Record{{Prefix: prefix("81.2.69.0/24"), Country: "AT", Subdivision1: "9"}}
	recordsB := []geotest.Record{{Prefix: prefix("81.2.69.0/24"), Country: "DE", Subdivision1: "BY"}}
	wantA := geo.Location{Country: "AT", Region: "AT-9"}
	wantB := geo.Location{Country: "DE", Region: "DE-BY"}
	db, path := openTestDB(t, recordsA)
	ip := netip.MustParseAddr("81.2.69.1")

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		lookups atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				got, err := db.Lookup(ip)
				if err != nil {
					t.Errorf("Lookup during reload: %v", err)
					return
				}
				if got != wantA && got != wantB {
					t.Errorf("Lookup during reload = %+v, want %+v or %+v", got, wantA, wantB)
					return
				}
				lookups.Add(1)
			}
		})
	}
	want := wantA
	for i := range 10 {
		records := recordsB
		want = wantB
		if i%2 == 1 {
			records, want = recordsA, wantA
		}
		geotest.WriteMMDB(t, path, records)
		if err := db.Reload(); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got, err := db.Lookup(ip); err != nil || got != want {
			t.Fatalf("after reload %d: Lookup = %+v, %v; want %+v", i, got, err, want)
		}
	}
	stop.Store(true)
	wg.Wait()
	if lookups.Load() == 0 {
		t.Error("no concurrent lookups ran")
	}

	// A broken file is rejected and the loaded database stays in use.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err == nil || !strings.HasPrefix(err.Error(), "geo: reload IP database: ") {
		t.Errorf("Reload of a broken file: error %v, want geo: reload IP database: …", err)
	}
	if got, err := db.Lookup(ip); err != nil || got != want {
		t.Errorf("after failed reload: Lookup = %+v, %v; want %+v", got, err, want)
	}
}

func TestIPDBClose(t *testing.T) {
	db, _ := openTestDB(t, testRecords())
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := db.Lookup(netip.MustParseAddr("81.2.69.1")); !errors.Is(err, geo.ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
	if err := db.Reload(); !errors.Is(err, geo.ErrClosed) {
		t.Errorf("Reload after Close: %v, want ErrClosed", err)
	}
	if err := db.Close(); !errors.Is(err, geo.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
}

func BenchmarkIPDBLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "city.mmdb")
	geotest.WriteMMDB(b, path, testRecords())
	db, err := geo.OpenIPDB(geo.IPDBConfig{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ips := []netip.Addr{
		netip.MustParseAddr("81.2.69.142"),
		netip.MustParseAddr("2a02:8388:1:2::1"),
		netip.MustParseAddr("2.16.1.1"),
		netip.MustParseAddr("5.0.1.1"),
		netip.MustParseAddr("8.8.8.8"),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.Lookup(ips[i%len(ips)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
