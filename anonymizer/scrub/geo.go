package scrub

import "strings"

// coordinates detects a latitude/longitude pair whose latitude starts
// with the digit word at ws (or a '-' before it): two decimals with at
// least three decimals each (more precise than about 100 m), |lat| < 90
// and |lon| < 180, separated by a comma, a semicolon or spaces, perhaps
// with a key for the longitude (48.20849, 16.37208; lat=48.20849
// lon=16.37208; "lat":48.2085,"lng":16.3721). One of the two may have
// zeros for decimals (59.0000, 96.0832); pairs of numbers whose decimals
// are all zeros, as in CGRect values, are not coordinates.
func (sc *scanner) coordinates(ws int) match {
	in := sc.in
	prev := sc.b(ws - 1)
	if prev == '.' && isWordOrMarker(sc.b(ws-2)) || prev == ':' && (isDigit(sc.b(ws-2)) || sc.b(ws-2) == ']') {
		return match{} // a version or a time
	}
	start := ws
	if (prev == '-' || prev == '+') && ws-1 >= sc.last {
		if c := sc.b(ws - 2); !isWordOrMarker(c) && c != '.' && c != '-' && c != '+' {
			start = ws - 1
		}
	}
	lat, ok := sc.decimalAt(start)
	if !ok || lat.frac < 3 || lat.whole >= 90 {
		return match{}
	}
	p := sc.pairGap(lat.end)
	if c := sc.b(p); c == '"' || isLetter(c) {
		k := p
		if c == '"' {
			k++
		}
		ke := k
		for isLetter(sc.b(ke)) {
			ke++
		}
		if !isLonKey(in[k:ke]) {
			return match{}
		}
		p = ke
		if c == '"' {
			if sc.b(p) != '"' {
				return match{}
			}
			p++
		}
		if c := sc.b(p); c != '=' && c != ':' {
			return match{}
		}
		p = sc.skipSpaces(p+1, 3)
	}
	if p == lat.end {
		return match{}
	}
	lon, ok := sc.decimalAt(p)
	if !pair(lat, lon, ok) {
		return match{}
	}
	// A pair that another number follows as its longitude
	// (0.000,\n48.20849, 16.37208) is read with it: that number's pair
	// is the one meant, and must not lose its latitude to this one.
	for {
		q := sc.pairGap(lon.end)
		next, ok := sc.decimalAt(q)
		if q == lon.end || !pair(lon, next, ok) {
			break
		}
		lon = next
	}
	return match{Coordinates, start, lon.end}
}

// pair reports whether lat and lon (read if ok) are a latitude and a
// longitude: three decimals or more each, one of them not all zeros,
// |lat| < 90 and |lon| < 180.
func pair(lat, lon decimal, ok bool) bool {
	return ok && lat.frac >= 3 && lon.frac >= 3 && lat.whole < 90 && lon.whole < 180 && (lat.precise() || lon.precise())
}

// pairGap returns where the second number of a pair would start after
// the first ends at p: after a comma or semicolon (and a line break, a
// pair wrapped after its comma) and up to three blanks.
func (sc *scanner) pairGap(p int) int {
	if c := sc.b(p); c == ',' || c == ';' {
		p++
		if sc.b(p) == '\n' {
			p++
		} else if sc.b(p) == '\r' && sc.b(p+1) == '\n' {
			p += 2
		}
	}
	return sc.skipSpaces(p, 3)
}

// isLonKey reports whether w names a longitude.
func isLonKey(w string) bool {
	return equalFold(w, "lon") || equalFold(w, "lng") || equalFold(w, "long") || equalFold(w, "longitude")
}

// decimal is a number with a decimal point, such as -33.8688.
type decimal struct {
	end   int  // index after it
	whole int  // its integer part, without the sign
	frac  int  // the number of its decimals
	zero  bool // its decimals are all zeros
}

// precise reports whether d has at least three decimals, not all zeros.
func (d decimal) precise() bool { return d.frac >= 3 && !d.zero }

// decimalAt reads a decimal with at most three integer digits at p: a
// sign, digits, '.', digits, not followed by a word byte or by another
// '.' and a digit (as versions are).
func (sc *scanner) decimalAt(p int) (decimal, bool) {
	d, ok := sc.numberAt(p)
	if !ok || isWord(sc.b(d.end)) || sc.b(d.end) == '.' && isDigit(sc.b(d.end+1)) {
		return d, false
	}
	return d, true
}

// numberAt reads a decimal at p as decimalAt does, whatever follows it.
// Its sign may be '+' too (<+48.20849000,+16.37208000>, a CLLocation's
// description).
func (sc *scanner) numberAt(p int) (decimal, bool) {
	var d decimal
	if c := sc.b(p); c == '-' || c == '+' {
		p++
	}
	s := p
	for isDigit(sc.b(p)) && p-s < 4 {
		d.whole = d.whole*10 + int(sc.in[p]-'0')
		p++
	}
	if p == s || p-s > 3 || sc.b(p) != '.' {
		return d, false
	}
	p++
	f := p
	d.zero = true
	for isDigit(sc.b(p)) {
		if sc.in[p] != '0' {
			d.zero = false
		}
		p++
	}
	d.frac = p - f
	d.end = p
	return d, d.frac > 0
}

// hemispheres detects a latitude/longitude pair in decimal degrees with
// the hemispheres' letters, in either case, after the numbers (48.20849 N,
// 16.37208 E; 48.20849°N 16.37208°W), the latitude's digits the word at
// ws, or before them (N 48.20849 E 16.37208; N48.20849, E16.37208), the
// latitude's letter the word at ws. The numbers are as precise as
// coordinates asks, without signs; a degree sign may follow each.
func (sc *scanner) hemispheres(ws int) match {
	before := isLetter(sc.b(ws))
	lat, p, ok := sc.hemisphereAt(ws, "NS", before)
	if !ok {
		return match{}
	}
	q := sc.pairGap(p)
	if q == p {
		return match{}
	}
	lon, end, ok := sc.hemisphereAt(q, "EW", before)
	if !ok || !pair(lat, lon, true) || isWord(sc.b(end)) {
		return match{}
	}
	return match{Coordinates, ws, end}
}

// hemisphereAt reads at p a number in decimal degrees and the letter of
// its hemisphere, one of letters: before it (and a blank, or none) if
// before, else after it (after a degree sign, a blank, or neither). It
// returns the number and where they end.
func (sc *scanner) hemisphereAt(p int, letters string, before bool) (decimal, int, bool) {
	letter := func(p int) bool { c := sc.b(p) &^ 0x20; return c != 0 && strings.IndexByte(letters, c) >= 0 }
	if before {
		if !letter(p) {
			return decimal{}, 0, false
		}
		p++
		if sc.b(p) == ' ' {
			p++
		}
	}
	if c := sc.b(p); c == '-' || c == '+' {
		return decimal{}, 0, false
	}
	d, ok := sc.numberAt(p)
	if !ok {
		return d, 0, false
	}
	p = d.end + degreeMark(sc.in, d.end)
	if !before {
		if sc.b(p) == ' ' {
			p++
		}
		if !letter(p) {
			return d, 0, false
		}
		p++
	}
	if isWord(sc.b(p)) || sc.b(p) == '.' && isDigit(sc.b(p+1)) {
		return d, 0, false
	}
	return d, p, true
}

// dms detects a coordinate in degrees, minutes and seconds whose degrees
// are the digit word at ws (or a '-' before it), as GPS and map apps
// write them: 48°12'30.6"N, 48° 12' 30.6" N, 48°12′30.6″N, or with
// decimal minutes, 48°12.510'N; and the other half of the pair, if one
// follows (48°12'30.6"N 16°22'19.5"E). A coordinate needs seconds or
// decimal minutes (about 30 m): 45°30' of a slope and 90° are kept.
func (sc *scanner) dms(ws int) match {
	start := ws
	if sc.b(ws-1) == '-' && ws-1 >= sc.last && !isWordOrMarker(sc.b(ws-2)) {
		start = ws - 1
	}
	end, ok := sc.dmsAt(start)
	if !ok {
		return match{}
	}
	// the other half: after blanks, or a comma or semicolon and blanks
	p := end
	if c := sc.b(p); c == ',' || c == ';' {
		p++
	}
	if q := sc.skipSpaces(p, 3); q > end {
		if e, ok := sc.dmsAt(q); ok {
			end = e
		}
	}
	return match{Coordinates, start, end}
}

// dmsAt reads one precise coordinate in degrees, minutes and seconds at
// p (see dms) and returns its end.
func (sc *scanner) dmsAt(p int) (int, bool) {
	if sc.b(p) == '-' {
		p++
	}
	if n := sc.digitsAt(p, 3); n == 0 {
		return 0, false
	} else {
		p += n
	}
	n := degreeMark(sc.in, p)
	if n == 0 {
		return 0, false
	}
	p = sc.skipSpaces(p+n, 1)
	// minutes, perhaps with decimals
	m := sc.digitsAt(p, 2)
	if m == 0 {
		return 0, false
	}
	p += m
	precise := false
	if sc.b(p) == '.' {
		d := sc.digitsAt(p+1, 9)
		if d == 0 {
			return 0, false
		}
		p += 1 + d
		precise = d >= 2
	}
	if n = minuteMark(sc.in, p); n == 0 {
		return 0, false
	}
	p += n
	if !precise {
		// seconds
		q := sc.skipSpaces(p, 1)
		s := sc.digitsAt(q, 2)
		if s == 0 {
			return 0, false
		}
		q += s
		if sc.b(q) == '.' {
			if d := sc.digitsAt(q+1, 9); d > 0 {
				q += 1 + d
			}
		}
		if n = secondMark(sc.in, q); n == 0 {
			return 0, false
		}
		p = q + n
	}
	// the hemisphere
	q := sc.skipSpaces(p, 1)
	switch sc.b(q) | 0x20 {
	case 'n', 's', 'e', 'w':
		if !isWord(sc.b(q + 1)) {
			p = q + 1
		}
	}
	return p, true
}

// digitsAt returns the number of digits at p, 0 if there are more than
// max.
func (sc *scanner) digitsAt(p, max int) int {
	n := 0
	for isDigit(sc.b(p + n)) {
		n++
	}
	if n > max {
		return 0
	}
	return n
}

// degreeMark returns the length of a degree sign at in[p]: ° (U+00B0),
// º (U+00BA) or ˚ (U+02DA); 0 if there is none.
func degreeMark(in string, p int) int {
	if p+1 < len(in) && (in[p] == 0xc2 && (in[p+1] == 0xb0 || in[p+1] == 0xba) || in[p] == 0xcb && in[p+1] == 0x9a) {
		return 2
	}
	return 0
}

// minuteMark returns the length of a minute sign at in[p]: ' or ′
// (U+2032); 0 if there is none.
func minuteMark(in string, p int) int {
	switch {
	case p < len(in) && in[p] == '\'' && (p+1 >= len(in) || in[p+1] != '\''):
		return 1
	case strings.HasPrefix(in[min(p, len(in)):], "′"):
		return len("′")
	}
	return 0
}

// secondMark returns the length of a second sign at in[p]: ", ″
// (U+2033) or ”; 0 if there is none.
func secondMark(in string, p int) int {
	switch {
	case p < len(in) && in[p] == '"':
		return 1
	case strings.HasPrefix(in[min(p, len(in)):], "''"):
		return 2
	case strings.HasPrefix(in[min(p, len(in)):], "″"):
		return len("″")
	}
	return 0
}
