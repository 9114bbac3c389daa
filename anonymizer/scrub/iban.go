package scrub

// iban detects an IBAN that starts with the word at ws, which begins with
// two letters and two digits: either that word alone of 15 to 34 letters
// and digits (GB82WEST12345698765432), or groups of four separated by
// single spaces or a line break (DE89 3704 0044 0532 0130 00), the last of
// one to four. It starts with the code of a country that has IBANs, in
// either case (de89 3704 ... as typed), and its check digits must be valid
// (ISO 13616, mod 97).
func (sc *scanner) iban(ws, we int) match {
	in := sc.in
	head := in[ws : ws+4]
	if !ibanCountry(head[:2]) {
		return match{}
	}
	// The account number's letters may be in any case, as typed or
	// mangled (NL39Lsrx4497100763); the check digits rule out words.
	part := func(c byte) bool { return isLetter(c) || isDigit(c) }
	if n := we - ws; n != 4 {
		if n < 15 || n > 34 || !allOf(in[ws+4:we], part) || !validIBAN(mod97(0, in[ws+4:we]), head) {
			return match{}
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
		if ge == gs || ge-gs > 4 || isWord(sc.b(ge)) || sc.joinsNext(ge) || wrapped && sc.dashJoins(ge) {
			break // a group after a line break may start a dashed number or a phone number
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

// ibanCountry reports whether cc, in either case, is the code of a country
// that has IBANs.
func ibanCountry(cc string) bool {
	for i := 0; i+1 < len(ibanCountries); i += 3 {
		if equalFold(cc, ibanCountries[i:i+2]) {
			return true
		}
	}
	return false
}

// ibanCountries are the countries of the IBAN registry (ISO 13616) and
// those that use IBANs without being in it, lower case.
const ibanCountries = "ad ae al at az ba be bg bh bi br by ch cr cy cz de dj dk do ee eg es fi fk fo fr gb ge gi gl gr " +
	"gt hr hu ie il iq is it jo kw kz lb lc li lt lu lv ly mc md me mk mn mr mt mu ni nl no om pk pl ps pt qa " +
	"ro rs ru sa sc sd se si sk sm so st sv tl tn tr ua va vg xk ye dz ao bj bf cm cv cf cg ci ga gq gw hn ir " +
	"mg ml mz ne sn td tg km ma "

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
