package triage

import (
	"cmp"
	"strconv"
	"strings"
)

// CompareVersions orders app versions as people read them: dot-, dash- or
// plus-separated parts, numbers numerically ("4.10" after "4.9"), other
// parts as text, and a version before any longer one it is a prefix of
// ("4.12" before "4.12.1"). It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := range min(len(pa), len(pb)) {
		if c := comparePart(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

// versionParts splits a version at '.', '-' and '+'.
func versionParts(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' || r == '+' })
}

// comparePart compares two parts: numbers numerically and before text.
func comparePart(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(na, nb)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return cmp.Compare(a, b)
}

// comparableVersion reports whether v looks like a version: generalized values
// ("other") and empty ones are not, and never mark a group regressed.
func comparableVersion(v string) bool {
	return v != "" && v != "other" && v[0] >= '0' && v[0] <= '9'
}
