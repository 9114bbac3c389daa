package scrub

// iban detects an IBAN that starts with the word at ws, which begins with
// two letters and two digits: either that word alone of 15 to 34 letters
// and digits (GB82WEST12345698765432), or groups of four separated by
// single spaces or a line break (DE89 3704 0044 0532 0130 00), the last of
// one to four. It starts with the code of a country that has IBANs, in
// either case (de89 3704 ... as typed), and its check digits must be valid
// (ISO 13616, mod 97).
//
// An IBAN of a country with a fixed length whose characters are grouped
// otherwise is ibanWritten's.
func (sc *scanner) iban(ws, we int) match {
	in := sc.in
	head := in[ws : ws+4]
	if _, ok := ibanCountry(head[:2]); !ok {
		return match{}
	}
	// The account number's letters may be in any case, as typed or
	// mangled (NL39Lsrx4497100763); the check digits rule out words.
	part := func(c byte) bool { return isLetter(c) || isDigit(c) }
	if n := we - ws; n != 4 {
		if n < 15 || n > 34 || !allOf(in[ws+4:we], part) || !validIBAN(mod97(0, in[ws+4:we]), head) {
			return sc.ibanWritten(ws)
		}
		return match{IBAN, ws, we}
	}
	r, total, end := 0, 4, -1
	p, last := we, we
	// the end of the last group that holds a digit (a valid IBAN may
	// end after it, in a group of letters)
	final := we
	wrapAt := -1  // where the first group after a line break starts
	more := false // a marker or a longer number follows the groups
	for g := 0; g < 8; g++ {
		sep, w := sc.groupSep(p)
		if sep != ' ' {
			break
		}
		wrapped := wrapAt >= 0 || sc.b(p) != ' '
		if wrapped && wrapAt < 0 {
			wrapAt = p + w
		}
		gs := p + w
		ge := gs
		for ge < len(in) && ge-gs < 5 && part(in[ge]) {
			ge++
		}
		if ge == gs && markerAt(in, gs) > 0 || ge-gs > 4 && isDigit(in[gs]) {
			more = true
		}
		if ge == gs || ge-gs > 4 || isWord(sc.b(ge)) || sc.joinsNext(ge) || wrapped && (sc.dashJoins(ge) || sc.startsAddress(gs, ge)) {
			break // a group after a line break may start a dashed number, a phone number or a street address
		}
		r = mod97(r, in[gs:ge])
		total += ge - gs
		if !allOf(in[gs:ge], isLetter) {
			final = ge
		}
		if !wrapped {
			last = ge
		}
		if total >= 15 && total <= 34 && validIBAN(r, head) {
			end = ge
		}
		if ge-gs < 4 {
			break
		}
		p = ge
	}
	if wrapAt >= 0 && end > wrapAt && (end < final || more) {
		// An IBAN wrapped over two lines takes all the groups that
		// follow, but words of letters ("from"): else it is a number
		// that ends a line and the start of another. A marker after
		// the groups stands for the groups it replaced, and a longer
		// number after them (0664 1234567) for more groups.
		end = -1
	}
	if end < 0 {
		if m := sc.ibanWritten(ws); m.kind != 0 {
			return m
		}
		// The groups of an IBAN with wrong check digits, on its line,
		// are no other number either.
		if total >= 15 {
			sc.numSkip = last
		}
		return match{}
	}
	return match{IBAN, ws, end}
}

// allOf reports whether f holds for every byte of s.
func allOf(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

// ibanWritten detects an IBAN that starts at ws (with its country code,
// in either case, then its check digits) written in groups separated by
// one kind of separator throughout, on one line, other than the groups of
// four with spaces that iban reads:
//
//   - with dashes or dots (DE89-3704-0044-0532-0130-00): all the groups
//     the separator joins, in groups of four (the last of one to four, 15
//     to 34 characters, as iban's) or of any length if they make the
//     length the IBAN registry fixes for the country;
//   - with spaces, in groups of any length (DE89 370400440532013000,
//     GB82WEST 12345698765432, DE 89 3704 ...): the groups must end
//     exactly at the country's length, which only the registry's
//     countries have.
//
// Its check digits must be valid.
func (sc *scanner) ibanWritten(ws int) match {
	in := sc.in
	length, ok := ibanCountry(in[ws : ws+2])
	if !ok {
		return match{}
	}
	var head [4]byte
	n, r, p := 0, 0, ws
	var sep byte
	fours := true // every group before the last has four characters
	for {
		g := 0
		for ; p < len(in) && (isLetter(in[p]) || isDigit(in[p])); p++ {
			if n == 34 || sep == ' ' && n == length {
				return match{} // longer than an IBAN, or the country's
			}
			if n < len(head) {
				head[n] = in[p]
			} else {
				r = mod97(r, in[p:p+1])
			}
			n++
			g++
		}
		if sep == ' ' && n == length {
			if c := sc.b(p); (c == '-' || c == '.') && isWord(sc.b(p+1)) {
				return match{} // a dashed or dotted group follows
			}
			break
		}
		c := sc.b(p)
		if c != ' ' && c != '-' && c != '.' || sep != 0 && c != sep || !isLetter(sc.b(p+1)) && !isDigit(sc.b(p+1)) {
			// the groups end
			if sep == '-' || sep == '.' {
				if n == length || fours && g <= 4 && n >= 15 {
					break
				}
			}
			return match{}
		}
		fours = fours && g == 4
		sep = c
		p++
	}
	if !isDigit(head[2]) || !isDigit(head[3]) || !validIBAN(r, string(head[:])) {
		return match{}
	}
	return match{IBAN, ws, p}
}

// ibanCountry reports whether cc, in either case, is the code of a country
// that has IBANs, and the length of its IBANs: the length the IBAN
// registry states, or 0 for a country that uses IBANs without being in
// the registry.
func ibanCountry(cc string) (length int, ok bool) {
	for i := 0; i+3 < len(ibanCountries); i += 5 {
		if equalFold(cc, ibanCountries[i:i+2]) {
			return int(ibanCountries[i+2]-'0')*10 + int(ibanCountries[i+3]-'0'), true
		}
	}
	return 0, false
}

// ibanCountries are the countries of the IBAN registry (ISO 13616,
// release 101), lower case, each with the length of its IBANs, then
// those that use IBANs without being in it, with length 00.
const ibanCountries = "ad24 ae23 al28 at20 az28 ba20 be16 bg22 bh22 bi27 br29 by28 ch21 cr22 cy28 cz24 de22 dj27 " +
	"dk18 do28 ee20 eg29 es24 fi18 fk18 fo18 fr27 gb22 ge22 gi23 gl18 gr27 gt28 hn28 hr21 hu28 ie22 il23 " +
	"iq23 is26 it27 jo30 kw30 kz20 lb28 lc32 li21 lt20 lu20 lv21 ly25 mc27 md24 me22 mk19 mn20 mr27 mt31 " +
	"mu30 ni28 nl18 no15 om23 pk24 pl28 ps29 pt25 qa29 ro24 rs22 ru33 sa24 sc31 sd18 se24 si19 sk24 sm27 " +
	"so23 st25 sv28 tl23 tn24 tr26 ua29 va22 vg24 xk20 ye30 " +
	"dz00 ao00 bj00 bf00 cm00 cv00 cf00 cg00 ci00 ga00 gq00 gw00 ir00 mg00 ml00 mz00 ne00 sn00 td00 tg00 km00 ma00 "

// startsAddress reports whether the group in[gs:ge] is the house number
// that starts a street address (221B Baker Street).
func (sc *scanner) startsAddress(gs, ge int) bool {
	return sc.b(ge) == ' ' && houseNumberEnd(sc.in, gs) == ge && sc.s.on(Address) && sc.addressAfterNumber(gs, ge).kind != 0
}

// dashJoins reports whether a '-' at p joins the group of digits that
// ends there to a word after it, as in a dashed number (0100-5550123,
// 4717-4736-7749-6718), or a '/' to digits, as in a phone number
// (0623/6802413; a path goes on with a name: 1111/notes).
func (sc *scanner) dashJoins(p int) bool {
	switch sc.b(p) {
	case '-':
		return isWord(sc.b(p + 1))
	case '/':
		return isDigit(sc.b(p + 1))
	}
	return false
}

// joinsNext reports whether a '.' or ':' at p joins the group of digits
// that ends there to a word after it: the group starts a dotted number
// or an address (203.0.113.7, 1004.5, 2001:db8::1), not the last group
// of a card or an IBAN.
func (sc *scanner) joinsNext(p int) bool {
	c := sc.b(p)
	return (c == '.' || c == ':') && isWord(sc.b(p+1))
}

// groupSep returns the separator of digit groups at p and its width: ' '
// for a space or a line break (a number wrapped over two lines), '-' for
// a dash, 0 for none.
func (sc *scanner) groupSep(p int) (byte, int) {
	switch sc.b(p) {
	case ' ', '\n':
		return ' ', 1
	case '\r':
		if sc.b(p+1) == '\n' {
			return ' ', 2
		}
	case '-':
		return '-', 1
	}
	return 0, 0
}
