package scrub

// cardOrIMEI detects a payment card number or an IMEI that starts with the
// digit word at ws: 13 to 19 digits, bare or in groups separated
// consistently by single spaces (or a line break) or dashes, that pass the
// Luhn check.
// Fifteen digits are an IMEI unless they start with 34 or 37 (American
// Express) or are grouped like a card; other lengths are cards if they
// start with 2 to 6.
func (sc *scanner) cardOrIMEI(ws, we int) match {
	in := sc.in
	if sc.continuesNumber(ws) {
		return match{}
	}
	var size, end [6]int
	size[0], end[0] = we-ws, we
	k, digits := 1, we-ws
	if digits > 19 {
		return match{}
	}
	var sep byte
	wrap := 0       // the first group after a line break, if any
	marker := false // a marker follows the groups, in place of a group
	for k < len(size) && digits < 19 {
		c, w := sc.groupSep(end[k-1])
		if c == 0 || sep != 0 && c != sep {
			break
		}
		if sc.b(end[k-1]) != c && wrap == 0 {
			wrap = k
		}
		gs := end[k-1] + w
		ge := gs
		for ge < len(in) && isDigit(in[ge]) {
			ge++
		}
		if ge == gs && markerAt(in, gs) > 0 {
			marker = true
		}
		if ge == gs || isWord(sc.b(ge)) || sc.joinsNext(ge) || wrap > 0 && sc.dashJoins(ge) {
			break // a group after a line break may start a dashed number or a phone number
		}
		if wrap == k && ge-gs == 1 {
			break // a lone digit that starts a line numbers what follows (7 avenue de la Paix)
		}
		sep = c
		size[k], end[k] = ge-gs, ge
		digits += ge - gs
		k++
	}
	all := k // the groups a wrapped number must take
	if marker {
		all++ // the marker replaced the groups of another number
	}
	for j := k; j >= 1; j-- {
		d := 0
		for _, n := range size[:j] {
			d += n
		}
		if d < 13 || d > 19 || wrap > 0 && j > wrap && j < all {
			// A number wrapped over two lines takes all the groups
			// that follow: else it is a number that ends a line and
			// the start of another.
			continue
		}
		span := in[ws:end[j-1]]
		if !luhn(span) {
			continue
		}
		first, second := span[0], nthDigit(span, 1)
		amex := first == '3' && (second == '4' || second == '7')
		if d == 15 && !amex && imeiGrouping(size[:j]) && sc.s.on(IMEI) {
			return match{IMEI, ws, end[j-1]}
		}
		if first >= '2' && first <= '6' && cardGrouping(size[:j]) && sc.s.on(Card) {
			return match{Card, ws, end[j-1]}
		}
	}
	return match{}
}

// nthDigit returns the digit of s at index n among its digits, or 0.
func nthDigit(s string, n int) byte {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if n == 0 {
				return s[i]
			}
			n--
		}
	}
	return 0
}

// cardGrouping reports whether group sizes are those of a card number:
// one group, groups of four with a shorter last one (4-4-4-4, 4-4-4-4-3),
// or American Express and Diners (4-6-5, 4-6-4).
func cardGrouping(sizes []int) bool {
	if len(sizes) == 1 {
		return true
	}
	if len(sizes) == 3 && sizes[0] == 4 && sizes[1] == 6 && (sizes[2] == 5 || sizes[2] == 4) {
		return true
	}
	for i, n := range sizes {
		if n != 4 && (i < len(sizes)-1 || n > 4) {
			return false
		}
	}
	return true
}

// imeiGrouping reports whether group sizes are those of an IMEI: one
// group, 2-6-6-1 or 8-6-1.
func imeiGrouping(sizes []int) bool {
	switch len(sizes) {
	case 1:
		return true
	case 3:
		return sizes[0] == 8 && sizes[1] == 6 && sizes[2] == 1
	case 4:
		return sizes[0] == 2 && sizes[1] == 6 && sizes[2] == 6 && sizes[3] == 1
	}
	return false
}

// continuesNumber reports whether the digit word at ws is a later part of
// a number, not the start of a card's, an IMEI's or a SIM's: a fraction
// or thousands after '.' or ',' and digits, or a phone number after '+'.
func (sc *scanner) continuesNumber(ws int) bool {
	c := sc.b(ws - 1)
	return (c == '.' || c == ',') && isDigitOrMarker(sc.b(ws-2)) || c == '+'
}
