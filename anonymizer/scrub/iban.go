package scrub

// iban detects an IBAN that starts with the word at ws, which begins with
// two capital letters and two digits: either that word alone of 15 to 34
// capital letters and digits (GB82WEST12345698765432), or groups of four
// separated by single spaces (DE89 3704 0044 0532 0130 00), the last of
// one to four. The check digits must be valid (ISO 13616, mod 97).
func (sc *scanner) iban(ws, we int) match {
	in := sc.in
	head := in[ws : ws+4]
	if n := we - ws; n != 4 {
		if n < 15 || n > 34 || !upperAlnum(in[ws+4:we]) || !validIBAN(mod97(0, in[ws+4:we]), head) {
			return match{}
		}
		return match{IBAN, ws, we}
	}
	r, total, end := 0, 4, -1
	p, last := we, we
	for g := 0; g < 8 && sc.b(p) == ' '; g++ {
		gs := p + 1
		ge := gs
		for ge < len(in) && ge-gs < 5 && (isUpper(in[ge]) || isDigit(in[ge])) {
			ge++
		}
		if ge == gs || ge-gs > 4 || isWord(sc.b(ge)) {
			break
		}
		r = mod97(r, in[gs:ge])
		total += ge - gs
		last = ge
		if total >= 15 && total <= 34 && validIBAN(r, head) {
			end = ge
		}
		if ge-gs < 4 {
			break
		}
		p = ge
	}
	if end < 0 {
		// The groups of an IBAN with wrong check digits are no other
		// number either.
		if total >= 15 {
			sc.numSkip = last
		}
		return match{}
	}
	return match{IBAN, ws, end}
}
