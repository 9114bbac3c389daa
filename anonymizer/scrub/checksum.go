package scrub

// luhn reports whether the digits of s, ignoring other bytes, pass the
// Luhn check used by payment cards and IMEIs.
func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n > 0 && sum%10 == 0
}

// mod97 folds the characters of s into the remainder r modulo 97 as ISO
// 13616 (IBAN) and ISO 7064 do: digits count as themselves, letters A-Z as
// 10-35; other bytes are skipped.
func mod97(r int, s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case isUpper(c):
			r = (r*100 + int(c-'A') + 10) % 97
		case c >= 'a' && c <= 'z':
			r = (r*100 + int(c-'a') + 10) % 97
		}
	}
	return r
}

// validIBAN reports whether the IBAN whose first four characters (country
// and check digits) are head and whose remainder of the account number
// (BBAN) modulo 97 is bban has valid check digits.
func validIBAN(bban int, head string) bool {
	return mod97(bban, head) == 1
}
