// Package geotest provides test support for code that uses package geo: it
// writes small MaxMind DB (MMDB) files with GeoLite2-City-like records.
package geotest

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Record is one network of a test database. Empty fields are left out of
// the record.
type Record struct {
	Prefix            netip.Prefix // IPv4 or IPv6 network
	Country           string       // country.iso_code, e.g. "AT"
	Subdivision1      string       // subdivisions[0].iso_code, e.g. "9"
	Subdivision2      string       // subdivisions[1].iso_code, e.g. "W"; with an empty Subdivision1, the first subdivision has no iso_code
	RegisteredCountry string       // registered_country.iso_code
}

// WriteMMDB writes an IPv6 (dual-stack) MMDB file with the given records to
// path, in the layout of GeoLite2-City: IPv4 networks are also reachable as
// IPv4-mapped IPv6 addresses, and reserved networks such as 10.0.0.0/8 may
// be included. The file is written to a temporary file first and renamed
// into place, so a database that is open elsewhere is replaced atomically.
// Failures are reported with t.Fatal.
func WriteMMDB(t testing.TB, path string, records []Record) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoLite2-City",
		Description:             map[string]string{"en": "consentry geotest database"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
	if err != nil {
		t.Fatalf("geotest: new MMDB tree: %v", err)
	}
	for _, r := range records {
		if !r.Prefix.IsValid() {
			t.Fatalf("geotest: invalid prefix in record %+v", r)
		}
		p := r.Prefix.Masked()
		network := &net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}
		if err := tree.Insert(network, r.value()); err != nil {
			t.Fatalf("geotest: insert %s: %v", p, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geotest-*.mmdb")
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tree.WriteTo(tmp); err != nil {
		tmp.Close()
		t.Fatalf("geotest: write MMDB: %v", err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatalf("geotest: write MMDB: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatalf("geotest: %v", err)
	}
}

// value returns the MMDB record for r.
func (r Record) value() mmdbtype.Map {
	m := mmdbtype.Map{}
	if r.Country != "" {
		m["country"] = isoCode(r.Country)
	}
	if r.RegisteredCountry != "" {
		m["registered_country"] = isoCode(r.RegisteredCountry)
	}
	switch {
	case r.Subdivision2 != "":
		m["subdivisions"] = mmdbtype.Slice{isoCode(r.Subdivision1), isoCode(r.Subdivision2)}
	case r.Subdivision1 != "":
		m["subdivisions"] = mmdbtype.Slice{isoCode(r.Subdivision1)}
	}
	return m
}

// isoCode returns a GeoLite2-style place with the given iso_code (omitted
// when empty) and an English name.
func isoCode(code string) mmdbtype.Map {
	m := mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Place " + code)}}
	if code != "" {
		m["iso_code"] = mmdbtype.String(code)
	}
	return m
}
