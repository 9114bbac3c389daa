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
	// markerAfter is whether a marker follows the groups where a further
	// group would: it stands for the digits it replaced, so the run of
	// groups goes on (as a marker before them counts as digits).
	markerAfter bool
}

// goesOn reports whether the run of groups goes on after the first j.
func (g *digitGroups) goesOn(j int) bool { return j < g.n || g.markerAfter }

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
//   - North American 3-3-4 (415-555-2671, 415.555.2671), Chinese mobile
//     3-4-4 (138 0013 8000), Spanish and Polish 3-3-3 (612 345 678),
//     Mexican 2-4-4 (55 1234 5678);
//   - a trunk prefix '0' and an area code (0664 1234567, 0664/1234567,
//     030 12345678, 06 12 34 56 78, 06-12345678, 02-123-4567).
//
// Any 7 to 15 digits are a phone number after a phone word such as "tel",
// "phone", "mobile", "call", "sms" or "whatsapp". Dates, times, versions,
// counts, timestamps, line numbers and offsets have none of these shapes.
func (sc *scanner) phone(ws, we int) match {
	in := sc.in
	prev := sc.b(ws - 1)
	if (prev == '.' || prev == '-' || prev == '/' || prev == ':' || prev == ',') && sc.numberBefore(ws-1) {
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
		// the country code in parentheses: (+43) 664 1234567
		if sc.b(ws-2) == '(' && sc.b(we) == ')' && we-ws <= 3 && ws-2 >= sc.last {
			start = ws - 2
			g.sep[0] = '('
			p++
		}
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
	if c := sc.b(p); (c == ' ' || c == '-' || c == '.' || c == '/') && markerAt(in, p+1) > 0 {
		g.markerAfter = true
	}
	if g.isDate(in) {
		return match{}
	}
	afterDigits := prev == ' ' && isDigitOrMarker(sc.b(ws-2))
	for j := g.n; j >= 1; j-- {
		if g.sep[j-1] == '(' {
			continue
		}
		if g.isPhone(in, j, intl, afterDigits) {
			return match{Phone, start, g.end[j-1]}
		}
		if j == 1 && !intl && g.sep[0] != '(' && bareNational(in[g.start[0]:g.end[0]]) && !sc.countContext(start, g.end[0]) {
			return match{Phone, start, g.end[0]}
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
// 29.11.2026, 11/29/2026; not when more groups follow alike, as in
// the French 06.12.34.56.78.
func (g *digitGroups) isDate(in string) bool {
	if g.n < 3 || g.sep[1] != g.sep[2] || g.sep[1] == ' ' || g.sep[1] == '(' || g.n > 3 && g.sep[3] == g.sep[1] {
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
	// Russian, after the trunk 8: 8 912 345-67-89, 8 (912) 345-67-89
	if j == 5 && g0 == "8" && g.size(1) == 3 && g.size(2) == 3 && g.size(3) == 2 && g.size(4) == 2 && g.sep[3] == g.sep[4] && !afterDigits {
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
	// Spanish and Polish: 612 345 678, 912 345 678, 512 345 678 (no
	// trunk prefix)
	if j == 3 && len(g0) == 3 && g.size(1) == 3 && g.size(2) == 3 && g0[0] >= '4' && g0[0] <= '9' && g.sep[1] == ' ' && !afterDigits {
		return true
	}
	// Mexican: 55 1234 5678 (an area code of two, no trunk prefix), not
	// the start of a longer run of groups
	if j == 3 && !g.goesOn(3) && len(g0) == 2 && g0[0] != '0' && g.size(1) == 4 && g.size(2) == 4 && !afterDigits {
		return true
	}
	// Chinese mobile: 138 0013 8000, 138-0013-8000 (1, then 3 to 9)
	if j == 3 && len(g0) == 3 && g.size(1) == 4 && g.size(2) == 4 && g0[0] == '1' && g0[1] >= '3' && !afterDigits {
		return true
	}
	// Indian: 098765 43210, a trunk 0 and a mobile number of 5 and 5
	if j == 2 && len(g0) == 6 && g0[0] == '0' && g0[1] >= '6' && g.size(1) == 5 {
		return true
	}
	// trunk prefix and area code: 0664 1234567, 06 12 34 56 78
	if g0[0] != '0' || len(g0) < 2 || g0[1] == '0' || len(g0) > 5 {
		return false
	}
	if len(g0) == 2 {
		// Dutch mobile: 06-12345678; an area code of one digit then 3-4
		// or 4-4 (Seoul 02-123-4567, Tokyo 03-1234-5678)
		if (j == 2 && g.size(1) == 8 || j == 3 && g.size(1) >= 3 && g.size(1) <= 4 && g.size(2) == 4) && !afterDigits {
			return true
		}
		if j != 5 || afterDigits || g.n > 5 && g.size(5) == 2 || g.n == 5 && g.markerAfter {
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

// sameSep reports whether the first j groups are separated alike, but
// for a '/' after the area code (0664/123 45 67).
func (g *digitGroups) sameSep(j int) bool {
	first := 1
	if g.sep[1] == '/' && j > 2 {
		first = 2
	}
	for i := first + 1; i < j; i++ {
		if g.sep[i] != g.sep[first] {
			return false
		}
	}
	return true
}

// numberBefore reports whether a number (a word of digits, or a marker
// that replaced one) ends at p, before a separator of its groups: "0664"
// in 0664/1234567, but not "v2" in /api/v2/0152 13112171.
func (sc *scanner) numberBefore(p int) bool {
	if sc.b(p-1) == ']' {
		return true
	}
	ws := sc.wordBefore(p)
	if ws == p {
		return false
	}
	for i := ws; i < p; i++ {
		if !isDigit(sc.in[i]) {
			return false
		}
	}
	return true
}

// bareNational reports whether the digits d, written without separators,
// have the shape of a national phone number of a country whose numbers
// are often written so: North American 10 digits ([2-9]xx [2-9]xx xxxx,
// and with the country code 1 before), Indian mobile 10 digits ([6-9]...)
// Italian mobile 10 digits (3...), Brazilian mobile 11 digits (an area
// code without zeros, then 9), Chinese mobile 11 digits (1, then 3 to 9)
// and Russian mobile 11 digits after the trunk 8 (89...).
// Epoch times in seconds (1xxxxxxxxx) and in milliseconds (13 digits)
// have none of these shapes; counts and sizes may, and are told apart by
// their context (countContext).
func bareNational(d string) bool {
	nanp := func(d string) bool { return len(d) == 10 && d[0] >= '2' && d[3] >= '2' }
	switch len(d) {
	case 10:
		return nanp(d) || d[0] >= '6' || d[0] == '3'
	case 11:
		if d[0] == '8' && d[1] == '9' {
			return true
		}
		return d[0] == '1' && (nanp(d[1:]) || d[1] >= '3') || d[0] != '0' && d[1] != '0' && d[2] == '9'
	}
	return false
}

// countContext reports whether the number in[start:end] is a count, a
// size, a time or a code by its context: a unit after it (2147483648
// bytes, 1234567890 ms), or a word before it, perhaps with ':' or '='
// between, that names one (size: 4294967296, duration_ms=1234567890,
// versionCode 2026112901, offset 2147483647).
func (sc *scanner) countContext(start, end int) bool {
	in := sc.in
	if q := end + 1; sc.b(end) == ' ' && q < len(in) && isLetter(in[q]) {
		e := q
		for e < len(in) && isLetter(in[e]) {
			e++
		}
		if (e == len(in) || !isWord(in[e])) && equalFoldAny(in[q:e], countUnits[:]...) {
			return true
		}
	}
	// up to four words back on the line: "Bytes before following
	// region: 4305010672"
	p := start
	for words := 0; words < 4; words++ {
		for i := 0; i < 3 && p > 0; i++ {
			if c := in[p-1]; c == ' ' || c == '\t' || c == ':' || c == '=' || c == '"' || c == '\'' {
				p--
			} else {
				break
			}
		}
		ws := sc.wordBefore(p)
		if ws == p || ws < sc.last {
			return false
		}
		if isCountWord(in[ws:p]) {
			return true
		}
		p = ws
	}
	return false
}

// isCountWord reports whether w is or ends with a word of countWords, or
// is a name of a time that ends in "_at" (created_at; "at" alone is a
// word before a phone number as often).
func isCountWord(w string) bool {
	if len(w) > 3 && equalFold(w[len(w)-3:], "_at") {
		return true
	}
	for _, cw := range countWords {
		if len(w) >= len(cw) && equalFold(w[len(w)-len(cw):], cw) &&
			(len(w) == len(cw) || w[len(w)-len(cw)-1] == '_' || isUpper(w[len(w)-len(cw)]) || len(cw) >= 4) {
			return true
		}
	}
	return false
}

// countUnits are units after a number that make it a count, a size or a
// time.
var countUnits = [...]string{
	"b", "byte", "bytes", "kb", "kib", "mb", "mib", "gb", "gib", "tb", "bit", "bits", "ms", "us", "ns", "s",
	"sec", "secs", "second", "seconds", "millis", "milliseconds", "micros", "nanos", "min", "mins", "minutes",
	"h", "hours", "days", "items", "rows", "entries", "records", "events", "frames", "times", "px", "dp",
	"pages", "blocks", "ticks", "cycles", "instructions", "allocations", "objects",
}

// countWords end the names of counts, sizes, times, codes and versions
// before a number; a short one counts only as a whole word or as the
// last word of a name (duration_ms, elapsedMs).
var countWords = [...]string{
	"size", "bytes", "length", "len", "count", "total", "free", "used", "offset", "code", "errno",
	"status", "ts", "timestamp", "time", "epoch", "duration", "elapsed", "ms", "millis", "nanos",
	"version", "versioncode", "build", "hash", "crc", "checksum", "seq", "sequence", "pid", "tid",
	"inode", "limit", "max", "min", "memory", "heap", "rss", "capacity", "remaining", "quota",
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
		if equalFoldAny(w, phoneWords[:]...) {
			return true
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
	return equalFoldAny(w, "number", "no", "nr", "num", "to", "is", "at", "on", "via", "from")
}
