package geo

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// ErrClosed is returned by the methods of an [IPDB] after Close.
var ErrClosed = errors.New("geo: IP database is closed")

// IPDBConfig configures [OpenIPDB].
type IPDBConfig struct {
	// Path is the MaxMind DB (.mmdb) file to read.
	Path string
	// IncludeNonPublic looks up private, loopback and link-local addresses
	// too, for databases that map an organization's own networks, and for
	// tests. By default they are unknown without a lookup.
	IncludeNonPublic bool
}

// IPDB resolves IP addresses with an MMDB file: GeoLite2-City or
// GeoLite2-Country, DB-IP City Lite or Country Lite, or any MMDB whose
// records have the same layout: the country in country.iso_code (falling
// back to registered_country.iso_code) and the first-level subdivision in
// subdivisions[0].iso_code.
//
// The file is read into memory (tens of megabytes for City databases, twice
// that while Reload runs), so replacing or even rewriting it in place cannot
// affect an open IPDB; call [IPDB.Reload] to pick up a new version. Lookup,
// Reload and Close are safe for concurrent use.
type IPDB struct {
	path      string
	nonPublic bool
	// db holds the current reader. Readers opened from memory need no Close,
	// so Reload and Close swap the pointer and leave the old reader to the
	// garbage collector once in-flight lookups are done with it.
	db atomic.Pointer[maxminddb.Reader]
	mu sync.Mutex // serializes Reload and Close
	// records recycles decoding targets: Decode takes an interface, so a
	// fresh record would escape to the heap on every lookup.
	records sync.Pool
	regions regionCache
}

// OpenIPDB reads the MMDB file at cfg.Path into memory and validates it: it
// checks the file's metadata and that its records carry country codes in a
// layout that Lookup understands. A missing, empty, truncated or non-MMDB
// file, or one without country data (such as an ASN database), is rejected
// with a descriptive error.
func OpenIPDB(cfg IPDBConfig) (*IPDB, error) {
	if cfg.Path == "" {
		return nil, errors.New("geo: open IP database: no path configured")
	}
	db, err := openMMDB(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("geo: open IP database: %w", err)
	}
	d := &IPDB{path: cfg.Path, nonPublic: cfg.IncludeNonPublic}
	d.db.Store(db)
	return d, nil
}

// Reload re-reads the database file and, if it is valid, atomically
// replaces the database used by Lookup. On error the previous database
// stays in use. Lookups running concurrently see either the old or the new
// database.
func (d *IPDB) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db.Load() == nil {
		return ErrClosed
	}
	db, err := openMMDB(d.path)
	if err != nil {
		return fmt.Errorf("geo: reload IP database: %w", err)
	}
	d.db.Store(db)
	return nil
}

// Close releases the database. Lookups and reloads after Close, and a second
// Close, return [ErrClosed]; lookups already running complete normally.
func (d *IPDB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db.Swap(nil) == nil {
		return ErrClosed
	}
	return nil
}

// Lookup returns the location of ip. Addresses that are not globally
// routable (private, loopback, link-local, multicast, unspecified or
// invalid; unless IncludeNonPublic is set, only the invalid ones) and
// addresses the database does not list yield the zero Location and no
// error. IPv4-mapped IPv6 addresses are looked up as IPv4.
// The region is taken from the first (top-level) subdivision only, and
// dropped if it is not a well-formed ISO 3166-2 code.
//
// An error is returned only if the database is closed or a record cannot be
// decoded; error messages never contain the address.
func (d *IPDB) Lookup(ip netip.Addr) (Location, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || !d.nonPublic && (!ip.IsGlobalUnicast() || ip.IsPrivate()) {
		return Location{}, nil
	}
	db := d.db.Load()
	if db == nil {
		return Location{}, ErrClosed
	}
	if ip.Is6() && db.Metadata.IPVersion == 4 {
		return Location{}, nil
	}
	rec, _ := d.records.Get().(*ipRecord)
	if rec == nil {
		rec = new(ipRecord)
	}
	*rec = ipRecord{}
	err := db.Lookup(ip).Decode(rec)
	loc := rec.location(&d.regions)
	d.records.Put(rec)
	if err != nil {
		return Location{}, fmt.Errorf("geo: decode IP database record: %w", err)
	}
	return loc, nil
}

// ipRecord holds the only fields that Lookup decodes from a record.
type ipRecord struct {
	country           string // country.iso_code
	registeredCountry string // registered_country.iso_code
	subdivision       string // subdivisions[0].iso_code
}

// UnmarshalMaxMindDBCursor implements [mmdbdata.CursorUnmarshaler]. It reads
// country.iso_code, registered_country.iso_code and subdivisions[0].iso_code
// and skips everything else, so a lookup decodes no more than it needs.
func (r *ipRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	m, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[ipRecord](err)
	}
	var next mmdbdata.Cursor
	for key, value, ok := m.Next(next); ok; key, value, ok = m.Next(next) {
		switch string(key) {
		case "country":
			r.country, next, err = readISOCode(value)
		case "registered_country":
			r.registeredCountry, next, err = readISOCode(value)
		case "subdivisions":
			r.subdivision, next, err = readFirstISOCode(value)
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, fmt.Errorf("field %q: %w", key, err)
		}
	}
	return m.End()
}

// readISOCode reads the iso_code field of the map at c.
func readISOCode(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	m, err := c.Map()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	var (
		code string
		next mmdbdata.Cursor
	)
	for key, value, ok := m.Next(next); ok; key, value, ok = m.Next(next) {
		if string(key) == "iso_code" {
			code, next, err = value.ReadString()
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	end, err := m.End()
	return code, end, err
}

// readFirstISOCode reads the iso_code field of the first map in the array
// at c.
func readFirstISOCode(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	s, err := c.Slice()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	var (
		code string
		next mmdbdata.Cursor
	)
	for i, value, ok := s.Next(next); ok; i, value, ok = s.Next(next) {
		if i == 0 {
			code, next, err = readISOCode(value)
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	end, err := s.End()
	return code, end, err
}

// location converts the record to a Location, validating the codes. The
// region string comes from cache, if not nil.
func (r *ipRecord) location(cache *regionCache) Location {
	country := r.country
	if country == "" {
		country = r.registeredCountry
	}
	if !validCountry(country) {
		return Location{}
	}
	loc := Location{Country: country}
	if validSubdivision(r.subdivision) {
		loc.Region = cache.get(country, r.subdivision)
	}
	return loc
}

// regionCacheLimit bounds the number of region strings a regionCache keeps.
// Real databases have a few thousand distinct subdivisions.
const regionCacheLimit = 8192

// regionCache interns region codes ("AT-9") so that lookups do not allocate
// them. Reads are lock-free; a miss copies the map (copy-on-write), which
// happens at most regionCacheLimit times.
type regionCache struct {
	m  atomic.Pointer[map[[5]byte]string]
	mu sync.Mutex // serializes writers
}

// get returns country + "-" + sub. country must have 2 bytes and sub 1 to 3.
func (c *regionCache) get(country, sub string) string {
	if c == nil {
		return country + "-" + sub
	}
	var k [5]byte
	copy(k[:2], country)
	copy(k[2:], sub)
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	s := country + "-" + sub
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && len(*old) >= regionCacheLimit {
		return s
	}
	m := make(map[[5]byte]string)
	if old != nil {
		if cached, ok := (*old)[k]; ok { // added by a concurrent writer
			return cached
		}
		m = maps.Clone(*old)
	}
	m[k] = s
	c.m.Store(&m)
	return s
}

// layoutSample is the number of records openMMDB decodes to check the
// database layout.
const layoutSample = 512

// openMMDB reads and validates the MMDB file at path.
func openMMDB(path string) (*maxminddb.Reader, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	db, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := validateMMDB(db); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return db, nil
}

// validateMMDB checks the metadata of db and that its first records have a
// layout Lookup understands, with at least one country code.
//
// It deliberately does not run the library's exhaustive Reader.Verify, which
// walks the whole search tree and data section and takes seconds for a City
// database. The file comes from the operator, and as it is read into memory
// a damaged file can only make lookups fail, never crash the process.
func validateMMDB(db *maxminddb.Reader) error {
	m := db.Metadata
	if m.BinaryFormatMajorVersion != 2 {
		return fmt.Errorf("unsupported MMDB format version %d.%d", m.BinaryFormatMajorVersion, m.BinaryFormatMinorVersion)
	}
	if m.IPVersion != 4 && m.IPVersion != 6 {
		return fmt.Errorf("unsupported IP version %d in metadata", m.IPVersion)
	}
	n, withCountry := 0, 0
	for res := range db.Networks() {
		var rec ipRecord
		if err := res.Decode(&rec); err != nil {
			return fmt.Errorf("database type %q: record layout not understood: %w", m.DatabaseType, err)
		}
		if rec.location(nil).Known() {
			withCountry++
		}
		if n++; n == layoutSample {
			break
		}
	}
	if n == 0 {
		return fmt.Errorf("database type %q has no records", m.DatabaseType)
	}
	if withCountry == 0 {
		return fmt.Errorf("database type %q: none of the %d records checked has a country.iso_code or registered_country.iso_code; want a City or Country database", m.DatabaseType, n)
	}
	return nil
}
