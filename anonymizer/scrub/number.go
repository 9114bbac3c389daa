package scrub

import "strconv"

// Number reports the kind of identifier that the integer v, the value of
// an attribute named key, is when written in decimal, or 0: a payment
// card or an IMEI (Luhn-checked, as in text; an IMEI whose leading 0 a
// number lost too), or a phone number written as digits without '+' or
// separators: a country calling code and a national number of a length
// that country's numbers have (4366412345678 is +43 664 1234567), or a
// North American, Indian or Brazilian national number (see bareNational).
// A phone number is not looked for under a key that names a time, a
// duration, a size or a build (created_at, duration_ms, size_bytes,
// version_code): epoch times and byte counts have phone-shaped digits.
// Negative numbers are read without their sign. Number does not allocate.
func (s *Scrubber) Number(key string, v int64) Kind {
	if v < 0 {
		if v == -v { // math.MinInt64
			return 0
		}
		v = -v
	}
	if v < 1_000_000_000 {
		return 0 // nine digits or fewer: no card, IMEI or phone number
	}
	var buf [20]byte
	d := strconv.AppendInt(buf[:0], v, 10)
	n := len(d)
	if n >= 13 && n <= 19 && luhn(string(d)) {
		amex := d[0] == '3' && (d[1] == '4' || d[1] == '7')
		switch {
		case n == 15 && !amex && s.on(IMEI):
			return IMEI
		case cardPrefix(d) && s.on(Card):
			return Card
		}
	}
	if n == 14 && s.on(IMEI) {
		// an IMEI that starts with 0 (TAC 01...), which the number lost
		var z [15]byte
		z[0] = '0'
		copy(z[1:], d)
		if luhn(string(z[:])) {
			return IMEI
		}
	}
	if !s.on(Phone) || n > 15 || numberKeyExempt(key) {
		return 0
	}
	if bareNational(string(d)) || e164Digits(string(d)) {
		return Phone
	}
	return 0
}

// cardPrefix reports whether the digits d begin as the numbers of a card
// scheme of their length begin: Visa (4; 13, 16 or 19 digits), American
// Express (34, 37; 15), Diners (300-305, 36, 38, 39; 14 to 16), JCB
// (3528-3589), Mir (2200-2204), Mastercard (2221-2720, 51-55) and the
// schemes that start with 5 or 6 (Maestro, Discover, UnionPay, RuPay;
// 16 to 19). Without the grouping that text has, a number needs this
// much to be taken for a card: a size or a hash of the right length
// passes the Luhn check one time in ten.
func cardPrefix(d []byte) bool {
	n := len(d)
	p4, _ := strconv.Atoi(string(d[:4]))
	switch d[0] {
	case '2':
		return n >= 16 && (p4 >= 2200 && p4 <= 2204 || p4 >= 2221 && p4 <= 2720)
	case '3':
		p2, p3 := p4/100, p4/10
		return n == 15 && (p2 == 34 || p2 == 37) ||
			n >= 14 && n <= 16 && (p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38 || p2 == 39) ||
			n >= 16 && p4 >= 3528 && p4 <= 3589
	case '4':
		return n == 13 || n == 16 || n == 19
	case '5', '6':
		return n >= 16
	}
	return false
}

// numberKeyExempt reports whether the key's last word names a time, a
// duration, a size or a build number, whose values are not taken for
// phone numbers.
func numberKeyExempt(key string) bool {
	var k normKey
	k.set(key)
	if k.n == 0 {
		return false
	}
	last := 0
	for i := k.n - 1; i > 0; i-- {
		if k.starts&(1<<i) != 0 {
			last = i
			break
		}
	}
	w := string(k.b[last:k.n])
	for _, e := range numberKeyWords {
		if w == e {
			return true
		}
	}
	return false
}

// numberKeyWords are the last words of keys of times, durations, sizes
// and builds.
var numberKeyWords = [...]string{
	"at", "time", "timestamp", "ts", "epoch", "date", "ms", "millis", "micros", "nanos", "ns", "us", "sec",
	"secs", "seconds", "duration", "elapsed", "latency", "bytes", "size", "kb", "mb", "gb", "kib", "mib",
	"gib", "offset", "version", "code", "build", "hash", "checksum", "crc",
}

// e164Digits reports whether d, digits without '+', is an international
// phone number: a country calling code followed by a national number of
// a length that country's (mostly mobile) numbers have, at least ten
// digits in all, fifteen at most (E.164).
func e164Digits(d string) bool {
	if len(d) < 10 || len(d) > 15 {
		return false
	}
	for cc := 1; cc <= 3; cc++ {
		lo, hi := nsnLengths(d[:cc])
		if n := len(d) - cc; lo > 0 && n >= lo && n <= hi {
			return true
		}
	}
	return false
}

// nsnLengths returns the shortest and longest national number of the
// country calling code cc, or 0, 0 for a code that is not assigned.
// Two-digit codes and the North American and Russian ones have their
// own; the assigned three-digit codes share 8 to 10 digits.
func nsnLengths(cc string) (int, int) {
	switch len(cc) {
	case 1:
		if cc == "1" || cc == "7" {
			return 10, 10
		}
	case 2:
		for i := 0; i+6 <= len(twoDigitCodes); i += 7 {
			if twoDigitCodes[i:i+2] == cc {
				return int(twoDigitCodes[i+3] - '0' + 5), int(twoDigitCodes[i+5] - '0' + 5)
			}
		}
	case 3:
		for i := 0; i+3 <= len(threeDigitCodes); i += 4 {
			if threeDigitCodes[i:i+3] == cc {
				return 8, 10
			}
		}
	}
	return 0, 0
}

// twoDigitCodes are the two-digit country calling codes of ITU-T E.164,
// each as "cc:l-h " where l and h, plus 5, are the shortest and longest
// national numbers.
const twoDigitCodes = "20:4-5 27:4-4 30:5-5 31:4-4 32:3-4 33:4-4 34:4-4 36:3-4 39:4-6 40:4-4 " +
	"41:4-4 43:3-8 44:4-5 45:3-3 46:3-5 47:3-3 48:4-4 49:4-7 51:3-4 52:5-5 53:3-3 54:5-6 " +
	"55:5-6 56:4-4 57:5-5 58:5-5 60:4-5 61:4-4 62:4-7 63:5-5 64:3-5 65:3-3 66:3-4 81:4-5 " +
	"82:4-5 84:4-5 86:5-6 90:5-5 91:5-5 92:5-5 93:4-4 94:4-4 95:3-5 98:5-5 "

// threeDigitCodes are the assigned three-digit country calling codes.
const threeDigitCodes = "211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 " +
	"234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 " +
	"257 258 260 261 262 263 264 265 266 267 268 269 290 291 297 298 299 350 351 352 353 354 355 " +
	"356 357 358 359 370 371 372 373 374 375 376 377 378 379 380 381 382 383 385 386 387 389 420 " +
	"421 423 500 501 502 503 504 505 506 507 508 509 590 591 592 593 594 595 596 597 598 599 670 " +
	"672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 689 690 691 692 850 852 853 " +
	"855 856 880 886 960 961 962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 992 993 " +
	"994 995 996 998 "
