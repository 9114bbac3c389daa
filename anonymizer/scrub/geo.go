package scrub

// coordinates detects a latitude/longitude pair whose latitude starts
// with the digit word at ws (or a '-' before it): two decimals with at
// least three decimals each (more precise than about 100 m), |lat| < 90
// and |lon| < 180, separated by a comma, a semicolon or spaces, perhaps
// with a key for the longitude (48.20849, 16.37208; lat=48.20849
// lon=16.37208; "lat":48.2085,"lng":16.3721). Numbers whose decimals are
// all zeros, as in CGRect values, are not coordinates.
func (sc *scanner) coordinates(ws int) match {
	in := sc.in
	prev := sc.b(ws - 1)
	if prev == '.' && isWordOrMarker(sc.b(ws-2)) || prev == ':' && (isDigit(sc.b(ws-2)) || sc.b(ws-2) == ']') {
		return match{} // a version or a time
	}
	start := ws
	if prev == '-' && ws-1 >= sc.last {
		if c := sc.b(ws - 2); !isWordOrMarker(c) && c != '.' && c != '-' {
			start = ws - 1
		}
	}
	lat, ok := sc.decimalAt(start)
	if !ok || !lat.precise() || lat.whole >= 90 {
		return match{}
	}
	p := lat.end
	if c := sc.b(p); c == ',' || c == ';' {
		p++
		// a pair wrapped after its comma
		if sc.b(p) == '\n' {
			p++
		} else if sc.b(p) == '\r' && sc.b(p+1) == '\n' {
			p += 2
		}
	}
	p = sc.skipSpaces(p, 3)
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
	if !ok || !lon.precise() || lon.whole >= 180 {
		return match{}
	}
	return match{Coordinates, start, lon.end}
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
// '-', digits, '.', digits, not followed by a word byte or by another
// '.' and a digit (as versions are).
func (sc *scanner) decimalAt(p int) (decimal, bool) {
	var d decimal
	if sc.b(p) == '-' {
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
	if d.frac == 0 || isWord(sc.b(p)) || sc.b(p) == '.' && isDigit(sc.b(p+1)) {
		return d, false
	}
	d.end = p
	return d, true
}
