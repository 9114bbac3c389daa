package scrub

// maxGroups is the most digit groups a phone number is read in.
const maxGroups = 8

// digitGroups are the digit groups of a possible phone number.
type digitGroups struct {
	n          int
	start, end [maxGroups]int
	// sep is the separator before each group: ' ', '-', '.' or '/', '('
	// for a group in parentheses, 0 for the first group.
	sep [maxGroups]byte
}

func (g *digitGroups) size(i int) int { return g.end[i] - g.start[i] }

// digits returns the number of digits in the first j groups.
func (g *digitGroups) digits(j int) int {
	d := 0
	for i := range j {
		d += g.size(i)
	}
	return d
}

// phone detects a phone number whose first digit group is the word at
// ws. It reads up to eight groups separated by single spaces, dashes,
// dots or slashes, or in parentheses, and takes the longest prefix of them
// that has the shape of a phone number:
//
//   - international: '+' and 7 to 15 digits (+43 664 1234567,
//     +1 (415) 555-2671, +33612345678), or "00" and a country code
//     (0043 664 1234567);
//   - an area code in parentheses ((415) 555-2671);
//   - North American 3-3-4 (415-555-2671, 415.555.2671);
//   - a trunk prefix '0' and an area code (0664 1234567, 0664/1234567,
//     030 12345678, 06 12 34 56 78).
//
// Any 7 to 15 digits are a phone number after a phone word such as "tel",
// "phone", "mobile", "call", "sms" or "whatsapp". Dates, times, versions,
// counts, timestamps, line numbers and offsets have none of these shapes.
func (sc *scanner) phone(ws, we int) match {
	in := sc.in
	prev := sc.b(ws - 1)
	if (prev == '.' || prev == '-' || prev == '/' || prev == ':' || prev == ',') && isDigitOrMarker(sc.b(ws-2)) {
		return match{} // a later part of a number looked at before
	}
	var g digitGroups
	g.start[0], g.end[0], g.n = ws, we, 1
	start, intl := ws, false
	p := we
	switch prev {
	case '+':
		if c := sc.b(ws - 2); isWord(c) || c == ']' || c == '.' || c == '+' || c == ')' || ws-1 < sc.last {
			return match{} // an offset such as abort+164
		}
		start, intl = ws-1, true
	case '(':
		if n := we - ws; sc.b(we) == ')' && n >= 2 && n <= 5 && ws-1 >= sc.last {
			start = ws - 1
			g.sep[0] = '('
			p++
		}
	}
groups:
	for g.n < maxGroups && g.digits(g.n) <= 17 {
		c := sc.b(p)
		var sep byte
		q := p + 1
		switch {
		case g.sep[g.n-1] == '(' && isDigit(c): // (415)555-2671
			sep, q = ' ', p
		case (c == ' ' || c == '-' || c == '.' || c == '/') && isDigit(sc.b(p+1)):
			sep = c
		case c == ' ' && sc.b(p+1) == '(' && isDigit(sc.b(p+2)):
			sep, q = '(', p+2
		case c == '(' && isDigit(sc.b(p+1)):
			sep = '('
		default:
			break groups
		}
		e := q
		for e < len(in) && isDigit(in[e]) {
			e++
		}
		if isWord(sc.b(e)) || sep == '(' && (sc.b(e) != ')' || e-q > 5) {
			break
		}
		g.start[g.n], g.end[g.n], g.sep[g.n] = q, e, sep
		g.n++
		p = e
		if sep == '(' {
			p++
		}
	}
	if g.isDate(in) {
		return match{}
	}
	for j := g.n; j >= 1; j-- {
		if g.sep[j-1] == '(' {
			continue
		}
		if g.isPhone(in, j, intl, prev == ' ' && isDigitOrMarker(sc.b(ws-2))) {
			return match{Phone, start, g.end[j-1]}
		}
	}
	if g.digits(g.n) >= 7 && sc.phoneWordBefore(start) {
		for j := g.n; j >= 1; j-- {
			if d := g.digits(j); d >= 7 && d <= 15 && g.sep[j-1] != '(' {
				return match{Phone, start, g.end[j-1]}
			}
		}
	}
	return match{}
}

// isDate reports whether the first groups are a date: 2026-11-29,
// 29.11.2026, 11/29/2026.
func (g *digitGroups) isDate(in string) bool {
	if g.n < 3 || g.sep[1] != g.sep[2] || g.sep[1] == ' ' || g.sep[1] == '(' {
		return false
	}
	a, b, c := g.size(0), g.size(1), g.size(2)
	return a == 4 && b <= 2 && c <= 2 || a <= 2 && b <= 2 && (c == 4 || c == 2 && g.sep[1] == '.')
}

// isPhone reports whether the first j groups have the shape of a phone
// number; intl is whether a '+' comes before them, afterDigits whether
// another group of digits does.
func (g *digitGroups) isPhone(in string, j int, intl, afterDigits bool) bool {
	d := g.digits(j)
	g0 := in[g.start[0]:g.end[0]]
	if intl {
		return d >= 7 && d <= 15
	}
	if g.sep[0] == '(' {
		return j >= 2 && d >= 7 && d <= 15
	}
	if len(g0) >= 2 && g0[0] == '0' && g0[1] == '0' {
		// 00 and a country code: 0043 664 1234567, 00 43 664 1234567
		if d-2 < 7 || d-2 > 15 || len(g0) > 5 || len(g0) > 2 && g0[2] == '0' || j < 2 ||
			len(g0) == 2 && (j < 3 || g.size(1) > 3 || in[g.start[1]] == '0') {
			return false
		}
		for i := 1; i < j; i++ {
			if g.size(i) >= 3 {
				return true
			}
		}
		return false
	}
	// A national number written without separators: the trunk prefix 0,
	// a non-zero digit, 10 to 12 digits in all (06641234567,
	// 03012345678). Zero-padded counters start with 00.
	if j == 1 && d >= 10 && d <= 12 && g0[0] == '0' && g0[1] != '0' && !afterDigits {
		return true
	}
	if j < 2 || !g.sameSep(j) {
		return false
	}
	// North American: 415-555-2671, 1 415 555 2671
	if j == 3 && len(g0) == 3 && g.size(1) == 3 && g.size(2) == 4 ||
		j == 4 && g0 == "1" && g.size(1) == 3 && g.size(2) == 3 && g.size(3) == 4 {
		return true
	}
	// trunk prefix and area code: 0664 1234567, 06 12 34 56 78
	if g0[0] != '0' || len(g0) < 2 || g0[1] == '0' || len(g0) > 5 {
		return false
	}
	if len(g0) == 2 {
		if j != 5 || afterDigits || g.n > 5 && g.size(5) == 2 {
			return false // not five groups of two, but a longer run
		}
		for i := 1; i < j; i++ {
			if g.size(i) != 2 {
				return false
			}
		}
		return true
	}
	if d < 9 || d > 13 || g.size(1) < 3 {
		return false
	}
	for i := 2; i < j; i++ {
		if g.size(i) < 2 {
			return false
		}
	}
	return true
}

// sameSep reports whether the first j groups are separated alike.
func (g *digitGroups) sameSep(j int) bool {
	for i := 2; i < j; i++ {
		if g.sep[i] != g.sep[1] {
			return false
		}
	}
	return true
}

// phoneWordBefore reports whether a phone word ("tel", "phone", "sms",
// ...) comes right before p, perhaps with a filler word between, as in
// "phone number: 5552671".
func (sc *scanner) phoneWordBefore(p int) bool {
	in := sc.in
	for words := 0; words < 2; words++ {
		q := p
		for i := 0; i < 4 && q > 0 && !isWord(in[q-1]) && in[q-1] != '\n' && in[q-1] != ']'; i++ {
			q--
		}
		ws := sc.wordBefore(q)
		if ws == q || sc.b(ws-1) == '[' {
			return false
		}
		w := in[ws:q]
		for _, pw := range phoneWords {
			if equalFold(w, pw) {
				return true
			}
		}
		if !isFiller(w) {
			return false
		}
		p = ws
	}
	return false
}

var phoneWords = [...]string{
	"tel", "tele", "telephone", "phone", "phones", "mobile", "mob", "cell", "cellphone", "call",
	"calling", "sms", "whatsapp", "fax", "msisdn", "dial", "dialed", "dialing", "telefon",
	"handy", "phonenumber",
}

// isFiller reports whether w may stand between a phone word and a number.
func isFiller(w string) bool {
	for _, f := range [...]string{"number", "no", "nr", "num", "to", "is", "at", "on", "via", "from"} {
		if equalFold(w, f) {
			return true
		}
	}
	return false
}
