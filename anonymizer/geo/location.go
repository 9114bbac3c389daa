package geo

import "strings"

// Location is a coarse location: at most a country and a first-level
// subdivision.
type Location struct {
	Country string // ISO 3166-1 alpha-2, upper case, e.g. "AT"; "" if unknown
	Region  string // ISO 3166-2 first-level code, e.g. "AT-9"; "" if unknown. Always prefixed by Country + "-".
}

// Known reports whether the country is known.
func (l Location) Known() bool {
	return l.Country != ""
}

// WellFormed returns l without what is not well-formed: a country that is
// not two upper-case ASCII letters empties the location, and a region that
// is not a first-level code of the country ("AT-9" for "AT") is dropped.
func (l Location) WellFormed() Location {
	if !validCountry(l.Country) {
		return Location{}
	}
	if l.Region != "" && !validRegion(l.Country, l.Region) {
		l.Region = ""
	}
	return l
}

// validCountry reports whether s is two upper-case ASCII letters.
func validCountry(s string) bool {
	return len(s) == 2 && isUpper(s[0]) && isUpper(s[1])
}

// validSubdivision reports whether s is a first-level subdivision code
// without its country prefix: one to three upper-case ASCII letters or
// digits.
func validSubdivision(s string) bool {
	if len(s) < 1 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validRegion reports whether region is a well-formed first-level code of
// country, e.g. "AT-9" for "AT".
func validRegion(country, region string) bool {
	sub, ok := strings.CutPrefix(region, country+"-")
	return ok && validCountry(country) && validSubdivision(sub)
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
