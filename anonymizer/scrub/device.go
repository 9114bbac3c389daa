package scrub

// udid detects an iOS device's UDID as Apple has written it since 2018
// (iPhone XS): its chip's id, 8 hex digits of which the first four are
// zeros, a dash and its ECID, 16 hex digits (00008030-001A2D3E0C12802E),
// in either case. The word at ws is the chip's id.
func (sc *scanner) udid(ws int) match {
	in := sc.in
	if in[ws:ws+4] != "0000" {
		return match{}
	}
	e, _, ok := sc.hexGroups(ws+9, 1, 16, 0)
	if !ok || isWord(sc.b(e)) || sc.b(e) == '-' && isWord(sc.b(e+1)) {
		return match{}
	}
	return match{DeviceID, ws, e}
}

// simID detects a SIM card's ICCID or an eSIM's EID in the digit word
// in[ws:we]. An ICCID has 19 or 20 digits that start with 89 (the
// telecom industry's prefix of ISO/IEC 7812) and pass the Luhn check,
// bare or in groups of four separated by single spaces or dashes, the
// last one shorter, as printed on the card (8901 2601 2345 6789 012). An
// EID has 32 digits that start with 89 and pass the ISO 7064 mod 97-10
// check, as an IBAN's do.
func (sc *scanner) simID(ws, we int) match {
	in := sc.in
	if in[ws] != '8' || in[ws+1] != '9' {
		return match{}
	}
	if sc.continuesNumber(ws) {
		return match{}
	}
	digits, end := we-ws, we
	switch {
	case digits == 32:
		if mod97(0, in[ws:we]) != 1 {
			return match{}
		}
		return match{DeviceID, ws, we}
	case digits == 4:
		sep := sc.b(we)
		if sep != ' ' && sep != '-' || sc.b(ws-1) == sep && isDigitOrMarker(sc.b(ws-2)) {
			return match{} // not the first group of a number
		}
		for size := 4; size == 4 && digits <= 20 && sc.b(end) == sep && isDigit(sc.b(end+1)); {
			ge := end + 1
			for ge < len(in) && isDigit(in[ge]) && ge-end <= 4 {
				ge++
			}
			if isWord(sc.b(ge)) {
				return match{} // a group of more than four
			}
			size = ge - end - 1
			digits += size
			end = ge
		}
		if sc.b(end) == sep && isDigitOrMarker(sc.b(end+1)) {
			return match{} // the groups go on
		}
	}
	if digits != 19 && digits != 20 || !luhn(in[ws:end]) {
		return match{}
	}
	return match{DeviceID, ws, end}
}
