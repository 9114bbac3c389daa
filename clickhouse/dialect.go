package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect is what the schema needs to know about a server: its version and
// whether it gets the modern schema.
type Dialect struct {
	// Version is the version string the server reported, e.g. "18.16.1".
	Version string
	// Major and Minor are the first two components of Version.
	Major, Minor int
	// Modern reports whether the server is 21.8 or newer.
	//
	// 21.8 is the first long-term-support release that has everything the
	// modern schema uses: LowCardinality enabled by default (19.x), column
	// codecs (19.x), TTL with ttl_only_drop_parts (20.x) and table comments
	// (21.6). Older servers, such as Debian's 18.16, get the legacy schema:
	// the same columns with plain String types, default compression, no TTL
	// and no table comments.
	Modern bool
}

// Servers from modernMajor.modernMinor on get the modern schema.
const (
	modernMajor = 21
	modernMinor = 8
)

// ParseVersion parses a version string as returned by SELECT version(),
// e.g. "18.16.1", "24.8.4.13" or "26.7.2.1", into a Dialect.
func ParseVersion(v string) (Dialect, error) {
	s := strings.TrimSpace(v)
	// Some builds append a suffix such as "-lts" or "-stable".
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return Dialect{}, fmt.Errorf("parse server version %q: want major.minor[.patch...]", v)
	}
	var nums [2]int
	for i := range nums {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return Dialect{}, fmt.Errorf("parse server version %q: component %q is not a number", v, parts[i])
		}
		nums[i] = n
	}
	for _, p := range parts[2:] {
		if _, err := strconv.Atoi(p); err != nil {
			return Dialect{}, fmt.Errorf("parse server version %q: component %q is not a number", v, p)
		}
	}
	major, minor := nums[0], nums[1]
	return Dialect{
		Version: strings.TrimSpace(v),
		Major:   major,
		Minor:   minor,
		Modern:  major > modernMajor || major == modernMajor && minor >= modernMinor,
	}, nil
}

// DedupTokens reports whether the server takes insert deduplication
// tokens (insert_deduplication_token, 22.2 and newer): an insert repeated
// with the same token is stored once.
func (d Dialect) DedupTokens() bool {
	return d.Major > 22 || d.Major == 22 && d.Minor >= 2
}

// String returns the version and the schema flavour, e.g. "18.16.1 (legacy)".
func (d Dialect) String() string {
	if d.Modern {
		return d.Version + " (modern)"
	}
	return d.Version + " (legacy)"
}

// chType is a column's type on both kinds of server. The two types must be
// compatible: every query that runs against one must run against the other
// (LowCardinality(String) versus String, for instance).
type chType struct {
	// legacy is the type on servers before 21.8.
	legacy string
	// modern is the type on newer servers; "" means the same as legacy.
	modern string
	// codec is the compression codec on newer servers, e.g. "ZSTD(1)";
	// "" keeps the server's default (LZ4).
	codec string
}

// in returns t's type on d's servers.
func (t chType) in(d Dialect) string {
	if d.Modern && t.modern != "" {
		return t.modern
	}
	return t.legacy
}

// The column types the schema uses. Low-cardinality strings (versions,
// models, enum names) are dictionary-encoded on modern servers; free text and
// times get a stronger codec there.
func lowCardType() chType {
	return chType{legacy: "String", modern: "LowCardinality(String)"}
}

func textType() chType { return chType{legacy: "String", codec: "ZSTD(1)"} }

// stringType is a plain String without a codec: for the small tables of
// the consent store, where codecs and dictionaries buy nothing.
func stringType() chType { return chType{legacy: "String"} }

// timeType is a DateTime in UTC without a codec, for the small tables.
func timeType() chType { return chType{legacy: "DateTime('UTC')"} }

func dateType() chType { return chType{legacy: "Date"} }

// eventTime is the corrected event time. Rows are sorted by event id within
// a day, but times are still close together, so Delta pays off.
func eventTimeType() chType {
	return chType{legacy: "DateTime('UTC')", codec: "Delta, ZSTD(1)"}
}

// minute is a whole-minute time; sorted within each (app, reason) run.
func minuteType() chType {
	return chType{legacy: "DateTime('UTC')", codec: "DoubleDelta, ZSTD(1)"}
}

func uuidType() chType { return chType{legacy: "UUID"} }

func uint8Type() chType { return chType{legacy: "UInt8"} }

func uint32Type() chType { return chType{legacy: "UInt32"} }

func uint64Type() chType { return chType{legacy: "UInt64"} }

func lowCardArrayType() chType {
	return chType{legacy: "Array(String)", modern: "Array(LowCardinality(String))", codec: "ZSTD(1)"}
}

func textArrayType() chType { return chType{legacy: "Array(String)", codec: "ZSTD(1)"} }

func stringArrayType() chType { return chType{legacy: "Array(String)"} }

func uint32ArrayType() chType { return chType{legacy: "Array(UInt32)", codec: "ZSTD(1)"} }

func uint8ArrayType() chType { return chType{legacy: "Array(UInt8)", codec: "ZSTD(1)"} }

func float64ArrayType() chType { return chType{legacy: "Array(Float64)", codec: "ZSTD(1)"} }

func aggregateType(fn, arg string) chType {
	return chType{legacy: "AggregateFunction(" + fn + ", " + arg + ")"}
}
