package scrub

// keyValue detects the value of a key that names an identifier or a
// secret (user_id=1234, "deviceId":"abc", password: hunter2), the
// credential of an HTTP Authorization header, and the credential after an
// authentication scheme (Bearer abc...). in[ws:we] is the word that may
// start the key or be the scheme; next is in[we].
func (sc *scanner) keyValue(ws, we int, next byte) match {
	in := sc.in
	// Dashes before the word join it to a key that started earlier
	// (x-user-id) and was looked at there; a flag's dashes (--password)
	// do not.
	if p := ws - 1; p >= 0 && in[p] == '-' {
		for p >= 0 && in[p] == '-' {
			p--
		}
		if p >= 0 && isWordOrMarker(in[p]) {
			return match{}
		}
	}
	if next == ' ' && (we-ws == 5 || we-ws == 6) && isScheme(in[ws:we]) {
		if !sc.s.on(Token) {
			return match{}
		}
		return sc.schemeCredential(we)
	}
	ke := we
	for sc.b(ke) == '-' && isWord(sc.b(ke+1)) {
		ke = sc.wordEnd(ke + 1)
	}
	p := ke
	quoted := false
	switch q := sc.b(p); {
	case (q == '"' || q == '\'') && sc.b(ws-1) == q:
		quoted = true
		p++
	case q == '\\' && sc.b(p+1) == '"' && sc.b(ws-1) == '"' && sc.b(ws-2) == '\\':
		quoted = true
		p += 2
	}
	p = sc.skipSpaces(p, 4)
	colon := false
	switch sc.b(p) {
	case '=':
		switch sc.b(p + 1) {
		case '=':
			return match{}
		case '>':
			p += 2
		default:
			p++
		}
	case ':':
		if sc.b(p+1) == ':' {
			return match{}
		}
		colon = true
		p++
	default:
		return match{}
	}
	vs := sc.skipSpaces(p, 40)
	if colon && !quoted && sc.isLogTag(ws) {
		return match{}
	}

	if ke-ws < minFragment && shortKeyFirsts&(1<<(in[ws]&31)) == 0 && sc.s.extraKey == nil &&
		(sc.b(ws-1) != ' ' || !isWord(sc.b(ws-2))) {
		return match{} // a short key that is no known key (x0:, kt:42)
	}
	var k normKey
	k.set(in[ws:ke])
	f := sc.s.flags(&k)
	switch {
	case f&kCoord != 0:
		if !sc.s.on(Coordinates) {
			return match{}
		}
		return sc.coordinateValue(vs)
	case f&kAuth != 0:
		if !sc.s.on(Token) {
			return match{}
		}
		return sc.authValue(vs)
	case f&(kIdent|kSecret) == 0:
		// A key of two words, such as "User ID: 1234".
		pw := sc.wordBefore(ws - 1)
		if sc.b(ws-1) != ' ' || pw == ws-1 || pw < sc.last || sc.b(pw-1) == '[' {
			return match{}
		}
		k.set(in[pw:ke])
		if k.trunc || keyTable[string(k.b[:k.n])]&kIdent == 0 {
			return match{}
		}
		f = kIdent
	}
	secret := f&kSecret != 0
	if colon && !quoted && !secret && f&kWeak != 0 {
		return match{}
	}
	kind := KeyValue
	switch {
	case secret && sc.s.on(Secret):
		kind = Secret
	case f&kIdent == 0 || !sc.s.on(KeyValue):
		return match{}
	}
	m, scrubbed := sc.value(kind, vs, f&kCookie != 0)
	if scrubbed {
		sc.skipTo = ke
	}
	return m
}

// isLogTag reports whether the word at ws is the tag of an Android log
// line after its priority letter ("E Auth: ..." or "E/Auth: ..."), which
// names a component, not a key.
func (sc *scanner) isLogTag(ws int) bool {
	sep := sc.b(ws - 1)
	if sep != ' ' && sep != '/' || ws-2 < sc.last {
		return false
	}
	switch sc.b(ws - 2) {
	case 'V', 'D', 'I', 'W', 'E', 'F', 'A':
	default:
		return false
	}
	c := sc.b(ws - 3)
	return ws < 3 || sep == ' ' && c == ' ' || sep == '/' && !isWord(c)
}

// value returns the value of a key that starts at vs: a quoted string, the
// rest of the line for cookies, or else the bytes up to whitespace or one
// of , ; & ) ] } " ' < >. If a detector recognizes the value, its kind
// is used instead of kind. scrubbed reports a value that is a marker.
func (sc *scanner) value(kind Kind, vs int, toEOL bool) (m match, scrubbed bool) {
	in := sc.in
	if vs >= len(in) {
		return match{}, false
	}
	if markerAt(in, vs) > 0 {
		return match{}, true
	}
	quoted := false
	ve := vs
	switch c := in[vs]; {
	case c == '"' || c == '\'':
		vs++
		ve = vs
		for ve < len(in) && in[ve] != c && in[ve] != '\n' && in[ve] != '\\' && ve-vs < 512 {
			ve++
		}
		if sc.b(ve) != c && sc.b(ve) != '\\' {
			return match{}, false
		}
		quoted = true
	case c == '\\' && sc.b(vs+1) == '"':
		vs += 2
		ve = vs
		for ve < len(in) && in[ve] != '\\' && in[ve] != '"' && in[ve] != '\n' && ve-vs < 512 {
			ve++
		}
		quoted = true
	case toEOL:
		for ve < len(in) && in[ve] != '\n' && in[ve] != '\r' && in[ve] != '"' {
			ve++
		}
		for ve > vs && (in[ve-1] == ' ' || in[ve-1] == '\t') {
			ve--
		}
	default:
		if c == '[' || c == '(' || c == '{' {
			// a phone number such as (415) 555-2671, or a list
			if m := sc.valueDetect(vs); m.kind != 0 {
				return m, false
			}
			vs++
		}
		ve = vs
		for ve < len(in) && class[in[ve]]&cValueEnd == 0 {
			ve++
		}
	}
	if markerAt(in, vs) > 0 {
		return match{}, true
	}
	if ve <= vs || isNullish(in[vs:ve]) {
		return match{}, false
	}
	if m := sc.valueDetect(vs); m.kind != 0 && m.end >= ve {
		if quoted || toEOL {
			return match{m.kind, vs, ve}, false
		}
		return match{m.kind, vs, m.end}, false
	}
	return match{kind, vs, ve}, false
}

// valueDetect runs the detectors on the word at vs (after a '+', '-' or
// '(' that may belong to it) and returns a finding that starts there.
func (sc *scanner) valueDetect(vs int) match {
	p := vs
	if c := sc.b(p); c == '+' || c == '-' || c == '(' {
		p++
	}
	if !isWord(sc.b(p)) {
		return match{}
	}
	we := p
	var bits uint16
	for we < len(sc.in) && isWord(sc.in[we]) {
		bits |= class[sc.in[we]] & cShape
		we++
	}
	sc.inValue = true
	m := sc.word(p, we, bits)
	sc.inValue = false
	if m.kind == 0 || m.start > p {
		return match{}
	}
	m.start = vs
	return m
}

// isNullish reports whether a value says there is none.
func isNullish(v string) bool {
	switch len(v) {
	case 1:
		return v == "-"
	case 3:
		return equalFold(v, "nil") || equalFold(v, "n/a")
	case 4:
		return equalFold(v, "null") || equalFold(v, "none") || equalFold(v, "true")
	case 5:
		return equalFold(v, "false")
	case 6:
		return equalFold(v, "(null)") || equalFold(v, "<null>")
	case 9:
		return equalFold(v, "undefined")
	}
	return false
}

// isScheme reports whether w is an HTTP authentication scheme whose
// credential follows it.
func isScheme(w string) bool {
	return equalFold(w, "bearer") || equalFold(w, "basic") || equalFold(w, "token")
}

// schemeCredential returns the credential after a scheme word ending at p.
func (sc *scanner) schemeCredential(p int) match {
	p = sc.skipSpaces(p, 4)
	end := sc.credential(p)
	if end < 0 {
		return match{}
	}
	return match{Token, p, end}
}

// authValue returns the credential in the value of an Authorization
// header that starts at vs. When the value starts with a scheme that
// schemeCredential knows, the scheme word yields the finding instead.
func (sc *scanner) authValue(vs int) match {
	p := vs
	if c := sc.b(p); c == '"' || c == '\'' {
		p++
	}
	q := p
	for isWord(sc.b(q)) || sc.b(q) == '-' {
		q++
	}
	if q > p && isLetter(sc.in[p]) && sc.b(q) == ' ' {
		if isScheme(sc.in[p:q]) {
			return match{}
		}
		p = sc.skipSpaces(q, 4)
		if markerAt(sc.in, p) > 0 {
			sc.skipTo = q // the scheme of a credential scrubbed before
			return match{}
		}
	}
	end := sc.credential(p)
	if end < 0 {
		return match{}
	}
	return match{Token, p, end}
}

// credential returns the end of a credential of at least 8 bytes of
// [A-Za-z0-9._~+/=-] starting at p, or -1. A trailing '.' ends a sentence,
// not the credential, and a plain word ("Bearer expired") is none.
func (sc *scanner) credential(p int) int {
	e := sc.classEnd(p, cCred)
	for e > p && sc.in[e-1] == '.' {
		e--
	}
	if e-p < 8 || plainWord(sc.in[p:e]) {
		return -1
	}
	return e
}

// plainWord reports whether w is a lower-case or capitalized word.
func plainWord(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || i == 0 && isUpper(c)) {
			return false
		}
	}
	return true
}

// coordinateValue returns the value of a coordinate key at vs: a pair of
// coordinates, or a single decimal with at least 2 decimals.
func (sc *scanner) coordinateValue(vs int) match {
	p := vs
	if c := sc.b(p); c == '"' || c == '\'' {
		p++
	}
	ds := p
	if sc.b(ds) == '-' {
		ds++
	}
	if !isDigit(sc.b(ds)) {
		return match{}
	}
	if we := sc.wordEnd(ds); sc.b(we) == '.' && we-ds <= 3 {
		if m := sc.coordinates(ds); m.kind != 0 && m.start == p {
			return m
		}
	}
	d, ok := sc.decimalAt(p)
	if !ok || d.frac < 2 {
		return match{}
	}
	return match{Coordinates, p, d.end}
}
