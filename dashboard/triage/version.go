package triage

import (
	"cmp"
	"slices"
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

// maxVersionLen is the longest app version a decision names.
const maxVersionLen = 64

// ValidVersion reports whether v is an app version a group can be
// resolved in: numbers separated by dots, at least one, optionally
// followed by a pre-release or build suffix after '-' or '+' of letters,
// digits, dots and dashes ("4.13.1", "4.14.0-beta.2", "2024.11+7"), at
// most 64 bytes. It need not have been seen: the usual fix ships in the
// next release.
func ValidVersion(v string) bool {
	if v == "" || len(v) > maxVersionLen {
		return false
	}
	i, digits := 0, 0
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && digits > 0 && i+1 < len(v) && v[i+1] >= '0' && v[i+1] <= '9':
			digits = 0
		case (c == '-' || c == '+') && digits > 0:
			return validSuffix(v[i+1:])
		default:
			return false
		}
	}
	return digits > 0
}

// validSuffix reports whether s is a pre-release or build suffix: letters,
// digits, '.', '-' and '+', starting with a letter or digit.
func validSuffix(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && (i == 0 || c != '.' && c != '-' && c != '+') {
			return false
		}
	}
	return true
}

// MajorVersion returns the first part of a version ("4" of "4.12.0"), or
// "" for a value that is not a version ("other", "").
func MajorVersion(v string) string {
	if !comparableVersion(v) {
		return ""
	}
	return versionParts(v)[0]
}

// NextVersions returns the releases that may follow the newest of seen,
// the usual versions to resolve a group in: the next patch, minor and
// major version of the newest one that is plain numbers ("4.13.0" gives
// 4.13.1, 4.14.0 and 5.0.0). It returns nil if no version is.
func NextVersions(seen []string) []string {
	var newest []uint64
	for _, v := range seen {
		parts := versionParts(v)
		nums := make([]uint64, 0, 3)
		for _, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				nums = nil
				break
			}
			nums = append(nums, n)
		}
		if len(nums) == 0 || !ValidVersion(v) {
			continue
		}
		for len(nums) < 3 {
			nums = append(nums, 0)
		}
		if newest == nil || slices.Compare(nums, newest) > 0 {
			newest = nums
		}
	}
	if newest == nil {
		return nil
	}
	format := func(n ...uint64) string {
		s := make([]string, len(n))
		for i, x := range n {
			s[i] = strconv.FormatUint(x, 10)
		}
		return strings.Join(s, ".")
	}
	patch := slices.Clone(newest)
	patch[len(patch)-1]++
	return []string{format(patch...), format(newest[0], newest[1]+1, 0), format(newest[0]+1, 0, 0)}
}
