package scrub

// Street addresses and postcodes in text: a geocoder's error, a delivery
// app's exception message or a form's validation error may print where
// someone lives, which names them as surely as their name does, and is
// finer than the region that stored location may be (invariant 3).
//
// A street address is found with its house number, in the three orders
// that countries write one:
//
//   - the number first, then the street's name and its type: 221B Baker
//     Street, 1600 Amphitheatre Pkwy (English); or the type, then the
//     name: 12 rue de la Paix (French);
//   - the type first, then the name, then the number: Calle Mayor 5, Via
//     Roma 12, Avenida Paulista 1578;
//   - one word that ends in the type, then the number: Hauptstraße 12,
//     Kalverstraat 92, Storgatan 5.
//
// The city after it stays (a place key's value is scrubbed, see
// placeKeys); a postcode between them goes (Hauptstraße 12, 10115
// Berlin). A full postcode of the UK (SW1A 1AA, some fifteen addresses)
// or Canada (K1A 0B1) is found alone, a US ZIP code after its state's
// code (CA 94043); other countries' postcodes are numbers that only a
// key (postcode, zip) or the street address before them tells apart.

// address runs the address detectors that the word in[ws:we], with the
// shape bits, a blank or a '.' around it allow.
func (sc *scanner) address(ws, we int, bits uint16) match {
	in := sc.in
	next, prev := sc.b(we), sc.b(ws-1)
	if isDigit(in[ws]) {
		if m := sc.postcodeAfterAddress(ws, we); m.kind != 0 {
			return m // Hauptstraße 12, 10115 Berlin
		}
		// a house number: 221B Baker Street, Hauptstraße 12
		if we-ws > 5 || houseNumberEnd(in, ws) != we {
			return match{}
		}
		if next == ' ' && (isLetter(sc.b(we+1)) || sc.b(we+1) >= 0xc3) {
			if m := sc.addressAfterNumber(ws, we); m.kind != 0 {
				return m
			}
		}
		if prev == ' ' && suffixEnds&(1<<(sc.b(ws-2)&31)) != 0 {
			return sc.addressBeforeNumber(ws, we)
		}
		return match{}
	}
	switch {
	case bits&cDigit == 0 && (next == ' ' || next == '.') && typeFirstShapes.has(in[ws:we]):
		return sc.addressAfterType(ws, we) // Calle Mayor 5
	case bits&cDigit != 0 && we-ws <= 4 && next == ' ' && isLetter(in[ws]) && isDigit(sc.b(we+1)):
		return sc.postcode(ws, we) // SW1A 1AA
	case we-ws == 2 && next == ' ' && isDigit(sc.b(we+1)) && isUpper(in[ws]) && isUpper(in[ws+1]):
		return sc.zipAfterState(ws, we) // Mountain View, CA 94043
	}
	return match{}
}

// postcodeAfterAddress detects the postcode, 4 or 5 digits, that follows
// a street address the scan has just found, after a comma and a blank,
// before a capitalized city (Hauptstraße 12, 10115 Berlin; 12 rue de la
// Paix, 75002 Paris; Kalverstraat 92, 1012 Amsterdam): the word
// in[ws:we]. A postcode names an area of a few thousand people. The city
// stays.
func (sc *scanner) postcodeAfterAddress(ws, we int) match {
	if we-ws < 4 || we-ws > 5 || sc.lastKind != Address || ws-2 != sc.last || sc.in[ws-2] != ',' || sc.in[ws-1] != ' ' ||
		sc.b(we) != ' ' || !nameWordStart(sc.b(we+1)) {
		return match{}
	}
	return match{Address, ws, we}
}

// zipAfterState detects a US ZIP code (94043, 94043-1351) after the two
// capitals of a state's code, the word in[ws:we], and a blank, at the end
// of a US address (Mountain View, CA 94043): the ZIP is the finding, the
// state, a region, stays. Codes that are words too (ID, IN, OR, OK, ME,
// HI, OH: User ID 12345) do not count.
func (sc *scanner) zipAfterState(ws, we int) match {
	in := sc.in
	if !usStates.has(in[ws:we]) || !equalFoldAny(in[ws:we], usStateCodes[:]...) {
		return match{}
	}
	zs := we + 1
	ze := zs
	for ze < len(in) && ze-zs < 6 && isDigit(in[ze]) {
		ze++
	}
	if ze-zs != 5 {
		return match{}
	}
	if ze+5 <= len(in) && in[ze] == '-' && allOf(in[ze+1:ze+5], isDigit) {
		ze += 5 // ZIP+4
	}
	if ze < len(in) && (isWord(in[ze]) || in[ze] == '-' || in[ze] == '.' && isDigit(sc.b(ze+1))) {
		return match{}
	}
	return match{Address, zs, ze}
}

// usStateCodes are the codes of the US states and DC but those that are
// English words too (ID, IN, OR, OK, ME, HI, OH).
var usStateCodes = [...]string{
	"al", "ak", "az", "ar", "ca", "co", "ct", "de", "dc", "fl", "ga", "il", "ia", "ks", "ky", "la",
	"md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj", "nm", "ny", "nc", "nd", "pa",
	"ri", "sc", "sd", "tn", "tx", "ut", "vt", "va", "wa", "wv", "wi", "wy",
}

// usStates holds the first letters of usStateCodes.
var usStates = shapesOf(usStateCodes[:])

// addressAfterNumber detects a street address that starts with the
// house number in[ws:we] (12, 221B), which a blank follows. Its name's
// words are capitalized (or in the irregular case of text written so:
// bAkEr), or all in lower case as people type addresses (221b baker
// street): then none of them may be a word of prose (the, on, ...: 2
// items on the road) and the type must be a whole word of
// fullStreetTypes.
func (sc *scanner) addressAfterNumber(ws, we int) match {
	in := sc.in
	p := we + 1
	e := letterRunEnd(in, p)
	if e-p < 2 {
		return match{}
	}
	if sc.b(e) == ' ' && numberFirstShapes.has(in[p:e]) && equalFoldAny(in[p:e], numberFirstTypes[:]...) {
		// 12 rue de la Paix, 3 boulevard Haussmann
		caseless := !equalFoldAny(in[p:e], numberFirstTypesCased[:]...) || irregularCase(in[p:e])
		if end := sc.streetNameEnd(e+1, false, caseless); end > 0 {
			return match{Address, ws, end}
		}
		return match{}
	}
	caps := !allOf(in[p:e], isLower)
	for words := 0; words < maxStreetWords; words++ {
		e := letterRunEnd(in, p)
		if e-p < 2 || e < len(in) && (isDigit(in[e]) || in[e] == '_') {
			return match{}
		}
		w := in[p:e]
		if words > 0 && streetTypeShapes.has(w) && equalFoldAny(w, streetTypes[:]...) && (caps || equalFoldAny(w, fullStreetTypes[:]...)) {
			if sc.b(e) == '.' && e-p <= 4 && !isWord(sc.b(e+1)) {
				e++ // Baker St.
			}
			return match{Address, ws, e}
		}
		if caps && !isUpper(in[p]) && in[p] < 0xc3 && !irregularCase(w) || !caps && (!allOf(w, isLower) || equalFoldAny(w, addressStopWords[:]...)) {
			return match{}
		}
		if sc.b(e) != ' ' {
			return match{}
		}
		p = e + 1
	}
	return match{}
}

// addressAfterType detects a street address that starts with the
// street's type, the word in[ws:we] (Calle, Via, Avenida), a blank, the
// street's name and the house number: Calle Mayor 5. Only the types of
// typeFirstTypesCaseless may be in lower case, or have a name in lower
// case after them (calle mayor 5, Calle mayor 5); any may be in the
// irregular case of text written so (vIa rOmA 12), and then so may the
// name, or in lower case before a name in random case (via fANbARguS 5).
func (sc *scanner) addressAfterType(ws, we int) match {
	w := sc.in[ws:we]
	if !equalFoldAny(w, typeFirstTypes[:]...) {
		return match{}
	}
	p := we + 1
	// in random case (vIa rOmA 12; via fANbARguS 5, where the type came
	// out in lower case) case tells nothing
	caseless := equalFoldAny(w, typeFirstTypesCaseless[:]...) || irregularCase(w) || randomCase(sc.in[p:letterRunEnd(sc.in, p)])
	if !caseless && !isUpper(w[0]) {
		return match{}
	}
	if sc.b(we) == '.' && sc.b(we+1) == ' ' {
		p++ // Av. Paulista 1578
	}
	end := sc.streetNameEnd(p, true, caseless)
	if end < 0 {
		return match{}
	}
	return match{Address, ws, end}
}

// streetNameEnd returns the end of a street's name at p: up to
// maxStreetWords words that start with a capital or a letter beyond
// ASCII or are in irregular case (or, caseless, any words of letters but
// addressStopWords), or are particles before such a word (de la Paix),
// with one blank after each but the last. With number, a house number must follow the name after a
// blank, and its end is returned. -1 if there is none.
func (sc *scanner) streetNameEnd(p int, number, caseless bool) int {
	in := sc.in
	end := -1
	for words := 0; words < maxStreetWords; words++ {
		if sc.particleAt(p) {
			e := p
			for in[e] != ' ' {
				e++
			}
			p = e + 1
			continue
		}
		e := nameWordEnd(in, p)
		if e < 0 {
			le := letterRunEnd(in, p)
			if (caseless || irregularCase(in[p:le])) && le-p >= 2 && !equalFoldAny(in[p:le], addressStopWords[:]...) &&
				(le == len(in) || !isDigit(in[le]) && in[le] != '_') {
				e = le
			}
		}
		if e < 0 {
			break
		}
		end = e
		if sc.b(e) != ' ' {
			break
		}
		if number {
			if ne := houseNumberEnd(in, e+1); ne > 0 {
				return ne
			}
		}
		p = e + 1
	}
	if number {
		return -1
	}
	return end
}

// irregularCase reports whether the letters w change from lower to upper
// case inside (bAkEr, rOmA), as text written in random case does; so do
// names in camelCase (iPhone, McDonald).
func irregularCase(w string) bool {
	for i := 1; i < len(w); i++ {
		if isUpper(w[i]) && isLower(w[i-1]) {
			return true
		}
	}
	return false
}

// randomCase reports whether the letters w change from lower to upper
// case twice (nERbisBAs), as text written in random case does and
// names rarely do (McDonald, iPhone change once): the case of the words
// around w tells nothing then.
func randomCase(w string) bool {
	n := 0
	for i := 1; i < len(w); i++ {
		if isUpper(w[i]) && isLower(w[i-1]) {
			n++
		}
	}
	return n >= 2
}

// letterRunEnd returns the end of the letters, in any case, and the
// characters beyond ASCII at p, at most 40 bytes of them.
func letterRunEnd(in string, p int) int {
	e := p
	for e < len(in) && e-p < 40 && (isLetter(in[e]) || in[e] >= 0x80) {
		e++
	}
	return e
}

// addressBeforeNumber detects a street address whose house number is the
// word in[ws:we] (see houseNumberEnd), after a blank and one word that ends in a street's type
// (Hauptstraße 12, Kalverstraat 92, Storgatan 5, Hauptstr. 3), which is
// capitalized or in lower case, or is the type alone, capitalized, after
// a capitalized word (Mariahilfer Gasse 7, Berliner Allee 5).
func (sc *scanner) addressBeforeNumber(ws, we int) match {
	in := sc.in
	blank := ws - 1
	s := blank
	for s > 0 && s > blank-40 && (isLetter(in[s-1]) || in[s-1] >= 0x80 || in[s-1] == '.' && s == blank) {
		s--
	}
	if s == blank || s < sc.last || !isLetter(in[s]) || s > 0 && (isWord(in[s-1]) || in[s-1] == '-' || in[s-1] == '.') {
		return match{}
	}
	w := in[s:blank]
	for _, suffix := range streetSuffixes {
		if len(w) >= len(suffix)+2 && equalFold(w[len(w)-len(suffix):], suffix) && (isUpper(w[0]) || suffix != "gade") {
			return match{Address, s, we}
		}
		if len(w) == len(suffix) && isUpper(w[0]) && equalFold(w, suffix) && sc.b(s-1) == ' ' {
			ps := s - 1
			for ps > 0 && s-ps < 40 && (isLetter(in[ps-1]) || in[ps-1] >= 0x80) {
				ps--
			}
			if ps < s-3 && ps >= sc.last && isUpper(in[ps]) && (ps == 0 || !isWord(in[ps-1])) {
				return match{Address, ps, we}
			}
		}
	}
	return match{}
}

// houseNumberEnd returns the end of a house number at p (1 to 4 digits,
// perhaps one letter: 5, 221B, 12a) that no word byte follows, or -1.
func houseNumberEnd(in string, p int) int {
	e := p
	for e < len(in) && e-p < 4 && isDigit(in[e]) {
		e++
	}
	if e == p {
		return -1
	}
	if e < len(in) && isLetter(in[e]) {
		e++
	}
	if e < len(in) && (isWord(in[e]) || in[e] == '.' && e+1 < len(in) && isDigit(in[e+1])) {
		return -1
	}
	return e
}

// maxStreetWords is the most words of a street's name and type that the
// address detectors read.
const maxStreetWords = 5

// streetTypes end a street's name after it in English (Baker Street,
// Amphitheatre Pkwy). Types that are words of other text as often (Way,
// Place, Close, Row, Court, Square, Circle, Loop) are not among them.
var streetTypes = [...]string{
	"street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive",
	"dr", "terrace", "parkway", "pkwy", "highway", "hwy", "crescent", "alley",
}

// fullStreetTypes are the streetTypes that a street's name in lower case
// may end with (221b baker street): whole words, none that is also a
// word of prose about devices (drive).
var fullStreetTypes = [...]string{
	"street", "avenue", "road", "boulevard", "lane", "terrace", "parkway", "highway", "crescent",
}

// addressStopWords are words of prose that no street's name in lower case
// holds (2 items on the road).
var addressStopWords = [...]string{
	"the", "a", "an", "on", "in", "of", "to", "for", "and", "or", "at", "by", "with", "from", "into",
	"per", "is", "are", "was", "not", "no", "min", "mins", "sec", "ms", "times", "items", "more",
}

// numberFirstTypes are streets' types after the house number, before the
// name, as French writes them (12 rue de la Paix).
var numberFirstTypes = [...]string{
	"rue", "avenue", "boulevard", "bd", "chemin", "impasse", "quai", "cours", "place",
}

// numberFirstTypesCased are the numberFirstTypes whose street's name must
// be capitalized (3 place Vendôme, but not 3 place holders).
var numberFirstTypesCased = [...]string{"avenue", "cours", "place", "bd"}

// typeFirstTypes are streets' types before the name and the house
// number: Spanish, Catalan, Portuguese, Italian, French in Belgium
// (Calle Mayor 5, Rua Augusta 100, Via Roma 12, Rue Neuve 12).
var typeFirstTypes = [...]string{
	"calle", "carrer", "avenida", "av", "rua", "via", "viale", "piazza", "piazzale", "corso",
	"largo", "plaza", "paseo", "rue", "avenue",
}

// typeFirstShapes, numberFirstShapes and streetTypeShapes hold the
// lengths and first letters of typeFirstTypes, numberFirstTypes and
// streetTypes: cheap tests before a word is looked up.
var typeFirstShapes, numberFirstShapes, streetTypeShapes = shapesOf(typeFirstTypes[:]), shapesOf(numberFirstTypes[:]), shapesOf(streetTypes[:])

// typeFirstTypesCaseless are the typeFirstTypes that start a street
// address in lower case too (calle mayor 5): not via, avenue, rue, av and
// largo, which are words of other text in lower case.
var typeFirstTypesCaseless = [...]string{
	"calle", "carrer", "avenida", "rua", "viale", "piazza", "piazzale", "corso", "plaza", "paseo",
}

// streetSuffixes end one word that names a street before its house
// number: German, Dutch, Swedish, Danish, Norwegian (Hauptstraße 12,
// Kalverstraat 92, Storgatan 5).
var streetSuffixes = [...]string{
	"stra\u00dfe", "strasse", "str.", "gasse", "weg", "platz", "allee", "damm", "ufer", "steig",
	"straat", "laan", "gracht", "plein", "kade", "gatan", "gata", "v\u00e4gen", "vagen", "veien",
	"gade", "vej",
}

// suffixEnds has bit c&31 set when a word of streetSuffixes ends with c:
// a cheap test before addressBeforeNumber reads the word before a number.
var suffixEnds = func() (m uint32) {
	for _, w := range streetSuffixes {
		m |= 1 << (w[len(w)-1] & 31)
	}
	return m
}()

// postcode detects a full postcode of the UK (SW1A 1AA, M1 1AE: an outward
// code of one or two letters, a digit and perhaps a digit or a letter; a
// blank; a digit and two letters) or Canada (K1A 0B1) whose outward part
// is the word in[ws:we], which a blank follows, in any case.
func (sc *scanner) postcode(ws, we int) match {
	in := sc.in
	if we+4 > len(in) || we+4 < len(in) && (isWord(in[we+4]) || in[we+4] == '-') {
		return match{}
	}
	var b [8]byte
	n := copy(b[:], in[ws:we])
	copy(b[n:], in[we+1:we+4])
	for i := range n + 3 {
		if c := b[i]; isLower(c) {
			b[i] = c - 'a' + 'A'
		}
	}
	w, inward := b[:n], b[n:n+3]
	if len(w) == 3 && isUpper(w[0]) && isDigit(w[1]) && isUpper(w[2]) &&
		isDigit(inward[0]) && isUpper(inward[1]) && isDigit(inward[2]) {
		return match{Address, ws, we + 4} // K1A 0B1
	}
	if !isDigit(inward[0]) || !ukInwardLetter(inward[1]) || !ukInwardLetter(inward[2]) ||
		string(inward[1:]) == "GB" || string(inward[1:]) == "TB" {
		return match{} // not M1 8GB, a Mac's chip and memory
	}
	i := 0
	for i < len(w) && i < 2 && isUpper(w[i]) {
		i++
	}
	if i == 0 || i == len(w) || !isDigit(w[i]) || w[0] == 'Q' || w[0] == 'V' || w[0] == 'X' {
		return match{}
	}
	i++
	if i < len(w) && (isDigit(w[i]) || isUpper(w[i])) {
		i++
	}
	if i != len(w) {
		return match{}
	}
	return match{Address, ws, we + 4}
}

// ukInwardLetter reports whether c may be a letter of a UK postcode's
// inward code: a capital other than C, I, K, M, O and V.
func ukInwardLetter(c byte) bool {
	switch c {
	case 'C', 'I', 'K', 'M', 'O', 'V':
		return false
	}
	return isUpper(c)
}
