package scrub

// Character classes of bytes, looked up in the class table. A byte may be
// in several classes.
const (
	cDigit    uint16 = 1 << iota // 0-9
	cUpper                       // A-Z
	cLower                       // a-z
	cUnder                       // _
	cNonHex                      // letters other than a-f and A-F
	cHex                         // 0-9 a-f A-F
	cLocal                       // e-mail local part: A-Z a-z 0-9 . _ % + -
	cSecret                      // secret runs: A-Z a-z 0-9 _ + / -
	cB64                         // base64url: A-Z a-z 0-9 _ -
	cCred                        // HTTP credentials: A-Z a-z 0-9 . _ ~ + / = -
	cValueEnd                    // ends an unquoted value: whitespace , ; & ) ] } " ' < > and NUL
	cPathEnd                     // ends a user name in a path
	cSpace                       // ASCII whitespace
	cNorm                        // may start what the detection copy changes: % \ & + ( [ { and UTF-8 lead bytes
)

const (
	cLetter = cUpper | cLower
	cAlnum  = cDigit | cLetter
	cWord   = cAlnum | cUnder
	cShape  = cWord | cNonHex // the classes that make up the shape of a word
)

// class maps each byte to its character classes. Bytes of multi-byte UTF-8
// sequences are in no class, so findings never split a character.
var class = func() (t [256]uint16) {
	in := func(c int, set string) bool {
		for i := 0; i < len(set); i++ {
			if int(set[i]) == c {
				return true
			}
		}
		return false
	}
	for c := 0; c < 256; c++ {
		var b uint16
		switch {
		case c >= '0' && c <= '9':
			b = cDigit | cHex
		case c >= 'A' && c <= 'Z':
			b = cUpper
		case c >= 'a' && c <= 'z':
			b = cLower
		case c == '_':
			b = cUnder
		}
		if b&cLetter != 0 {
			if c|0x20 <= 'f' {
				b |= cHex
			} else {
				b |= cNonHex
			}
		}
		if b&cWord != 0 {
			b |= cLocal | cSecret | cB64 | cCred
		}
		if in(c, ".%+-") {
			b |= cLocal
		}
		if in(c, "+/-") {
			b |= cSecret
		}
		if c == '-' {
			b |= cB64
		}
		if in(c, ".~+/=-") {
			b |= cCred
		}
		if in(c, " \t\n\r\v\f") {
			b |= cSpace | cValueEnd | cPathEnd
		}
		if in(c, ",;&)]}\"'<>\x00") {
			b |= cValueEnd
		}
		if in(c, "/\\\"'`:;,()[]<>|?#&=*{}\x00") {
			b |= cPathEnd
		}
		if in(c, "%\\&+([{") || c >= 0xc0 {
			b |= cNorm
		}
		t[c] = b
	}
	return t
}()

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isLetter(c byte) bool { return class[c]&cLetter != 0 }
func isWord(c byte) bool   { return class[c]&cWord != 0 }
func isHex(c byte) bool    { return class[c]&cHex != 0 }

// isWordOrMarker reports whether c is a word byte or a bracket of a
// marker. Context rules that keep text treat a marker like the word it
// replaced, so that scrubbing twice changes nothing.
func isWordOrMarker(c byte) bool { return isWord(c) || c == ']' || c == '[' }

// isDigitOrMarker reports whether c is a digit or the end of a marker,
// which may have replaced a number.
func isDigitOrMarker(c byte) bool { return isDigit(c) || c == ']' }

// match is one finding: in[start:end] is an identifier of the kind.
type match struct {
	kind       Kind
	start, end int
}

// scanner finds the identifiers of one input, left to right. It lives on
// the stack of String or Find.
type scanner struct {
	s        *Scrubber
	in       string
	pos      int   // where scanning goes on
	last     int   // end of the previous finding; no finding starts before it
	lastKind Kind  // the kind of the previous finding
	pend     match // a finding to return next, if any

	// Where the scan is: inValue while detecting the value of a key (key
	// detectors are off), lookahead while finding where a secret run ends
	// (generic secrets are off).
	inValue, lookahead bool
	// split: the scan reads the part of a word before a finding that
	// starts inside it (splitWord), and splits no word itself.
	split bool

	// Caches that keep the scan linear: each says where a detector need
	// not look again.
	atSign, pct40 int // index of the next '@' and "%40" at or after some word, or len(in); -1 before the first look
	emailSkip     int // no e-mail address starts at a word before this

	secretStart, secretEnd int  // the last run looked at for a generic secret
	secretPath             bool // it is a path, looked at segment by segment
	secretRunFrom          int  // a word in the last run of secret bytes read,
	secretRunEnd           int  // and where that run ends

	v6Start, v6End   int // the last IPv6 candidate looked at, up to a finding inside it
	v6RunStart       int // the last run of hex digits, ':' and '.' read,
	v6RunEnd         int // which every candidate inside it runs to
	b64Start, b64End int // the last base64url run looked at
	numSkip          int // no card or phone number starts at a word before this

	// skipTo ends a key whose value is a marker: its words were looked at
	// as a key when the text was scrubbed, and are not looked at again.
	skipTo int

	// idNext is where the ',' before the next element of a list of id(1)'s
	// output is, after the last element read (see idOutputName); 0 before
	// the first.
	idNext int

	// glue is, in the second reading of a glued text, the text with its
	// underscores (see unglue); "" otherwise.
	glue string

	// normed: in is the detection copy, or needs none. renorm: the scan
	// stopped because in needs the detection copy (see normalize.go).
	// glued: in has a word glued with underscores, and needs a second
	// reading with them as spaces (see gluedWord).
	normed, renorm, glued bool
}

// b returns in[i], or 0 when i is out of range.
func (sc *scanner) b(i int) byte {
	if i >= 0 && i < len(sc.in) {
		return sc.in[i]
	}
	return 0
}

// next returns the next finding, or a match of kind 0 at the end.
func (sc *scanner) next() match {
	if m := sc.pend; m.kind != 0 {
		sc.pend = match{}
		if sc.changesIn(sc.pos, m.end) {
			return sc.stopForCopy()
		}
		sc.found(m)
		return m
	}
	in := sc.in
	i := sc.pos
	for i < len(in) {
		c := class[in[i]]
		if c&(cWord|cNorm) == 0 {
			i++
			continue
		}
		if c&cWord == 0 {
			if !sc.normed && changesAt(in, i) {
				return sc.stopForCopy()
			}
			i++
			continue
		}
		ws := i
		var bits uint16
		for i < len(in) {
			c := class[in[i]]
			if c&cWord == 0 {
				break
			}
			bits |= c & cShape
			i++
		}
		if bits&cUnder != 0 && !sc.glued && sc.glue == "" && (gluedWord(in, ws, i, bits) || ws == sc.last && ws > 0 && in[ws] == '_') {
			// glued, or glued to the end of a finding, which the marker
			// that replaces it will not be
			sc.glued = true
		}
		m := sc.word(ws, i, bits)
		if m.kind == 0 {
			continue
		}
		if !sc.glued && sc.glue == "" && m.start > i && sc.gluedIn(i, m.start) {
			// a key's words that the finding (its value) skips: once
			// the value is a marker, they are read as words
			sc.glued = true
		}
		if m.start < sc.last {
			m.start = sc.last
		}
		if m.end <= m.start {
			continue
		}
		if m.start < ws && m.start > sc.last && isWord(in[m.start-1]) && !sc.split && sc.pend.kind == 0 {
			if f := sc.splitWord(m); f.kind != 0 {
				sc.pend = m
				m = f
			}
		}
		// A finding may reach past the word (a key's value): the loop
		// has not looked at those bytes for what the copy changes.
		if sc.changesIn(i, m.end) {
			return sc.stopForCopy()
		}
		sc.found(m)
		return m
	}
	sc.pos = len(in)
	return match{}
}

// splitWord returns the first finding in the part before m of the word
// that m starts inside, a word looked at before (an e-mail address's local
// part reaches back at most 64 bytes into a longer run of its bytes:
// 0000...0000%40x.com). Once m is a marker, that part is a word of its
// own, and the next scrubbing reads it so: it is read here as it will be
// then, up to the marker, with 64 bytes before it for context.
func (sc *scanner) splitWord(m match) match {
	in := sc.in
	fs := max(sc.wordBefore(m.start), sc.last)
	base := max(fs-64, sc.last)
	g := scanner{s: sc.s, in: in[base:m.start] + m.kind.Marker(), atSign: -1, pct40: -1, normed: true,
		split: true, pos: fs - base}
	f := g.next()
	if f.kind == 0 || f.end > m.start-base {
		return match{}
	}
	return match{f.kind, f.start + base, f.end + base}
}

// gluedIn reports whether a word that starts in in[from:to] is glued
// with underscores (see gluedWord).
func (sc *scanner) gluedIn(from, to int) bool {
	for p := from; p < to; {
		for p < to && !isWord(sc.in[p]) {
			p++
		}
		if p == to {
			break
		}
		we, bits := readWord(sc.in, p)
		if bits&cUnder != 0 && gluedWord(sc.in, p, we, bits) {
			return true
		}
		p = we
	}
	return false
}

// readWord returns the end of the word that starts at in[p] and the
// shape bits of its bytes.
func readWord(in string, p int) (int, uint16) {
	var bits uint16
	for p < len(in) && isWord(in[p]) {
		bits |= class[in[p]] & cShape
		p++
	}
	return p, bits
}

// found moves the scan past the finding m. An IPv6 candidate, or the
// groups of an IBAN with wrong check digits, looked at before end where m
// starts, as the marker that replaces m will end them: the words after m
// are looked at again, as when the output is scrubbed again.
func (sc *scanner) found(m match) {
	sc.pos, sc.last, sc.lastKind = m.end, m.end, m.kind
	sc.v6End = min(sc.v6End, m.start)
	sc.numSkip = min(sc.numSkip, m.start)
}

// changesIn reports whether the detection copy changes any of
// in[from:to], unless in is the copy or needs none. A finding in text
// that the copy reads otherwise must come from the copy, or scrubbing
// the output again could find what the first scrubbing did not (an
// invalid byte as a key's value: the copy drops it and reads the next
// word as the value).
func (sc *scanner) changesIn(from, to int) bool {
	if sc.normed {
		return false
	}
	for j := from; j < to; j++ {
		if class[sc.in[j]]&cNorm != 0 && changesAt(sc.in, j) {
			return true
		}
	}
	return false
}

// stopForCopy ends the scan: in needs the detection copy.
func (sc *scanner) stopForCopy() match {
	sc.renorm = true
	sc.pos = len(sc.in)
	return match{}
}

// word runs the detectors that the shape of the word in[ws:we] allows and
// returns the first finding, which may start before the word (a '+', '(',
// '-' or "::" that belongs to it) or after it (the value of a key).
func (sc *scanner) word(ws, we int, bits uint16) match {
	s := sc.s
	in := sc.in
	n := we - ws
	next := sc.b(we)
	prev := sc.b(ws - 1)
	var m match
	if ws < sc.skipTo {
		return m
	}
	// the user information of a URL: scheme://user:password@host
	if prev == '/' && sc.b(ws-2) == '/' && sc.b(ws-3) == ':' && s.on(Secret) {
		if m = sc.urlCredentials(ws); m.kind != 0 {
			return m
		}
	} else if prev == ':' && sc.b(ws-2) == '/' && sc.b(ws-3) == '/' && sc.b(ws-4) == ':' && s.on(Secret) {
		if m = sc.urlCredentials(ws - 1); m.kind != 0 {
			return m
		}
	}

	// a name in id(1)'s output: uid=1000(jdoe) groups=1000(jdoe),27(sudo)
	if prev == '(' && isDigit(sc.b(ws-2)) && !sc.inValue && s.on(UserPath) {
		if m = sc.idOutputName(ws); m.kind != 0 {
			return m
		}
	}
	if bits&cLetter != 0 && !sc.inValue && isKeyFollow(next) && !(next == '=' && n <= 6 && s.on(UserPath) && sc.idOutputKey(ws, we)) {
		if m = sc.keyValue(ws, we, next); m.kind != 0 {
			return m
		}
		if ws < sc.skipTo {
			return match{}
		}
		// a code in an invitation's link: myapp://invite?ref=JDOE2024
		if next == '=' && (prev == '?' || prev == '&') && n <= 6 && s.on(KeyValue) {
			if m = sc.inviteCode(ws, we); m.kind != 0 {
				return m
			}
		}
	}
	// a property list's value after its key: <key>username</key><string>...
	if prev == '>' && next == '<' && bits&cLetter != 0 && !sc.inValue {
		if m = sc.plistValue(ws, we); m.kind != 0 {
			return m
		}
	}
	// a profile's handle: instagram.com/alice.smith, tiktok.com/@alice
	if (prev == '/' && profileHostEnd(in, ws-1) || prev == '@' && sc.b(ws-2) == '/') && s.on(UserPath) {
		if m = sc.profileHandle(ws); m.kind != 0 {
			return m
		}
	}
	if ws >= sc.emailSkip && s.on(Email) {
		if m = sc.email(ws, we); m.kind != 0 {
			return m
		}
	}
	if bits&cLetter != 0 {
		// a handle in prose (@jdoe1987, mention @jane_doe), the account
		// a log signed in as (signed in as jdoe)
		if prev == '@' && !sc.inValue && s.on(UserPath) {
			if m = sc.proseHandle(ws); m.kind != 0 {
				return m
			}
		}
		if next == ' ' && (n == 2 && in[ws]|0x20 == 'a' && in[ws+1]|0x20 == 's' || n == 4 && equalFold(in[ws:we], "user")) && !sc.inValue && s.on(UserPath) {
			if m = sc.signedInName(ws, we); m.kind != 0 {
				return m
			}
		}
		// an Android app's random install folders: /data/app/~~.../
		if n == 3 && prev == '/' && next == '/' && equalFold(in[ws:we], "app") && s.on(DeviceID) {
			if m = sc.installDirs(ws, we); m.kind != 0 {
				return m
			}
		}
		if (prev == '/' || prev == '\\') && (n >= 4 && n <= 9) && s.on(UserPath) {
			if m = sc.userPath(ws, we); m.kind != 0 {
				return m
			}
		}
		// an account in a web path: GET /v1/users/48213/avatar; a
		// contact's lookup key in Android's contacts provider's URIs
		if prev == '/' && next == '/' && n <= 9 && s.on(KeyValue) && (isAccountsCollection(in[ws:we]) || sc.contactLookup(ws, we)) {
			if m = sc.pathAccount(ws, we); m.kind != 0 {
				return m
			}
		}
		if n >= 3 && in[ws]|0x20 == 'e' && in[ws+1]|0x20 == 'y' && in[ws+2]|0x20 == 'j' && s.on(JWT) {
			if m = sc.jwt(ws); m.kind != 0 {
				return m
			}
		}
		if secretFirst(in[ws]) && s.on(Secret) {
			if m = sc.prefixedSecret(ws, we, next); m.kind != 0 {
				return m
			}
			if sc.gluedAt(ws - 1) {
				// in the second reading of a glued text, a key whose
				// shape has underscores (sk_live_..., github_pat_...)
				// is read in the text with them
				g := scanner{s: s, in: sc.glue, atSign: -1, pct40: -1, normed: true, last: sc.last}
				if m = g.prefixedSecret(ws, g.wordEnd(ws), g.b(g.wordEnd(ws))); m.kind != 0 {
					return m
				}
			}
		}
		if n >= 4 && isLetter(in[ws]) && isLetter(in[ws+1]) && isDigit(in[ws+2]) && isDigit(in[ws+3]) && s.on(IBAN) {
			if m = sc.iban(ws, we); m.kind != 0 {
				return m
			}
		}
		// a name after a courtesy title (Mr. Smith, Frau Müller)
		if n <= 5 && titleShapes[n]&(1<<(in[ws]&31)) != 0 && (next == '.' || next == ' ') && isUpper(in[ws]) && s.on(UserPath) {
			if m = sc.titledName(ws, we); m.kind != 0 {
				return m
			}
		}
		// an owner's name in a device's name (Jane's iPhone, Annas
		// iPhone, iPhone von Anna)
		if (next == '\'' || next == '-' || next == ' ' && in[we-1] == 's' && isUpper(in[ws]) && deviceWordEnd(in, we+1) > 0) && s.on(UserPath) {
			if m = sc.deviceOwner(ws, we); m.kind != 0 {
				return m
			}
		}
		if next == ' ' && deviceWordShapes.has(in[ws:we]) && s.on(UserPath) {
			if m = sc.ownerAfterDevice(ws, we); m.kind != 0 {
				return m
			}
		}
		// a latitude after its hemisphere's letter (N 48.20849 E 16.37208)
		if (in[ws]|0x20 == 'n' || in[ws]|0x20 == 's') && (n == 1 && next == ' ' || n <= 4 && next == '.' && isDigit(in[ws+1])) && s.on(Coordinates) {
			if m = sc.hemispheres(ws); m.kind != 0 {
				return m
			}
		}
		// a country code apart from the check digits (DE 89 3704 ...)
		if n == 2 && isUpper(in[ws]) && isUpper(in[ws+1]) && next == ' ' && isDigit(sc.b(we+1)) && isDigit(sc.b(we+2)) && s.on(IBAN) {
			if m = sc.ibanWritten(ws); m.kind != 0 {
				return m
			}
		}
	}
	// an iCloud user's record name (CloudKit, key-value store) or a Game
	// Center player id: '_' and 32 hex digits (_a1b2..., A:_a1b2...),
	// perhaps glued to more with an underscore
	if n >= 33 && in[ws] == '_' && (n == 33 || in[ws+33] == '_') && !isWordOrMarker(prev) && s.on(KeyValue) && allHex(in[ws+1:ws+33]) {
		return match{KeyValue, ws, ws + 33}
	}
	if bits&(cUnder|cNonHex) == 0 { // hex digits only
		if n == 16 && next != '-' && prev != '-' && s.on(DeviceID) && deviceIDShape(in[ws:we]) && !sc.pointerContext(ws) {
			return match{DeviceID, ws, we}
		}
		if n == 8 && next == ' ' && prev == '<' && s.on(DeviceID) {
			if m = sc.apnsToken(ws); m.kind != 0 {
				return m
			}
		}
		if n == 8 && next == '-' && s.on(DeviceID) {
			if m = sc.udid(ws); m.kind != 0 {
				return m
			}
		}
		if n == 4 && next == '-' && prev == '/' && s.on(DeviceID) {
			if m = sc.volumeID(ws); m.kind != 0 {
				return m
			}
		}
		if n == 8 && next == '-' && s.on(UUID) {
			if m = sc.uuid(ws); m.kind != 0 {
				return m
			}
		}
		if s.on(MAC) {
			if n == 2 && (next == ':' || next == '-') || n == 1 && next == ':' {
				if m = sc.mac(ws, next); m.kind != 0 {
					return m
				}
			} else if n == 4 && next == '.' {
				if m = sc.ciscoMAC(ws); m.kind != 0 {
					return m
				}
			}
		}
		if n <= 4 && (next == ':' || prev == ':') && s.on(IP) {
			if m = sc.ipv6(ws, next); m.kind != 0 {
				return m
			}
		}
	}
	// a street address (221B Baker Street, Calle Mayor 5, Hauptstraße
	// 12) or a UK or Canadian postcode (SW1A 1AA)
	if (isDigit(in[ws]) && n <= 5 || typeFirstShapes.has(in[ws:we]) || n <= 4 && bits&cDigit != 0 && isLetter(in[ws]) || n == 2 && isUpper(in[ws])) &&
		(next == ' ' || next == '.' || prev == ' ') && s.on(Address) {
		if m = sc.address(ws, we, bits); m.kind != 0 {
			return m
		}
	}
	if bits == cDigit && ws >= sc.numSkip {
		if n <= 3 && (next == 0xc2 || next == 0xcb) && s.on(Coordinates) {
			if m = sc.dms(ws); m.kind != 0 {
				return m
			}
		}
		if next == '.' && n <= 3 {
			if s.on(IP) {
				if m = sc.ipv4(ws); m.kind != 0 {
					return m
				}
			}
			if s.on(Coordinates) {
				if m = sc.coordinates(ws); m.kind != 0 {
					return m
				}
				if m = sc.hemispheres(ws); m.kind != 0 {
					return m
				}
			}
		}
		grouped := next == ' ' || next == '-' || next == '.' || next == '/' || next == ')' || next == '\n' || next == '\r'
		if (n == 4 && grouped || n >= 19 && n <= 20 || n == 32) && in[ws] == '8' && s.on(DeviceID) {
			if m = sc.simID(ws, we); m.kind != 0 {
				return m
			}
		}
		if (n >= 13 || grouped) && (s.on(Card) || s.on(IMEI)) {
			if m = sc.cardOrIMEI(ws, we); m.kind != 0 {
				return m
			}
		}
		if (n >= 7 || grouped || prev == '+' || prev == '(') && s.on(Phone) {
			if m = sc.phone(ws, we); m.kind != 0 {
				return m
			}
		}
	}
	// The second reading of a glued text looks for no random secrets: the
	// first read the runs whole, underscores and all, and parts of
	// symbols joined by '_' ($s5Notes12NoteListViewC05tableD0_12cell...)
	// are no secrets.
	if !sc.lookahead && sc.glue == "" && (ws < sc.secretEnd || n >= 32 || class[next]&cSecret != 0 || next == '=') && s.on(Secret) {
		if m = sc.genericSecret(ws); m.kind != 0 {
			return m
		}
	}
	return match{}
}

// gluedWord reports whether the word in[ws:we], which holds an
// underscore, may have an identifier glued into it with underscores, as
// in cache_3d8c0c45-a705-45e0-bf7d-9e95d2b136c1_v2 or upload_10.1.2.3:
// it has a digit, or an underscore at its edge touches punctuation
// (cache_-25.44551, =_v2). Such words are read a second time with their
// underscores as spaces (see Scrubber.slowFind). Words of code joined by
// underscores without digits (retry_after_ms, screen_name,
// Java_com_example_Bridge_render) are not, so keys stay whole.
func gluedWord(in string, ws, we int, bits uint16) bool {
	if bits&cDigit != 0 {
		return true
	}
	if in[we-1] == '_' && we < len(in) && class[in[we]]&(cSpace|cWord) == 0 {
		return true
	}
	return in[ws] == '_' && ws > 0 && class[in[ws-1]]&(cSpace|cWord) == 0
}

// unglue writes in to dst with its underscores as spaces, except inside
// markers.
func unglue(dst []byte, in string) []byte {
	dst = append(dst[:0], in...)
	for i := 0; i < len(in); i++ {
		if n := markerAt(in, i); n > 0 {
			i += n - 1
			continue
		}
		if in[i] == '_' {
			dst[i] = ' '
		}
	}
	return dst
}

// gluedAt reports whether in[i] is an underscore that the second reading
// of a glued text reads as a space.
func (sc *scanner) gluedAt(i int) bool {
	return sc.glue != "" && i >= 0 && i < len(sc.glue) && sc.glue[i] == '_'
}

// isKeyFollow reports whether c may follow a key of a key-value pair, or
// an authentication scheme.
func isKeyFollow(c byte) bool {
	switch c {
	case '=', ':', '"', '\'', ' ', '\t', '-', '\\', '>':
		return true
	}
	return false
}

// skipSpaces returns the index after up to max blanks (spaces and tabs)
// at p.
func (sc *scanner) skipSpaces(p, max int) int {
	for i := 0; i < max && (sc.b(p) == ' ' || sc.b(p) == '\t'); i++ {
		p++
	}
	return p
}

// wordEnd returns the end of the word bytes starting at p.
func (sc *scanner) wordEnd(p int) int {
	for p < len(sc.in) && class[sc.in[p]]&cWord != 0 {
		p++
	}
	return p
}

// classEnd returns the end of the run of bytes in class c starting at p.
func (sc *scanner) classEnd(p int, c uint16) int {
	for p < len(sc.in) && class[sc.in[p]]&c != 0 {
		p++
	}
	return p
}

// b64RunEnd returns the end of the run of base64url bytes that holds p,
// remembering it so that the words of one run do not scan it again.
func (sc *scanner) b64RunEnd(p int) int {
	if p < sc.b64Start || p >= sc.b64End {
		sc.b64Start, sc.b64End = p, sc.classEnd(p, cB64)
	}
	return sc.b64End
}

// wordBefore returns the start of the word that ends at end (exclusive),
// which is end itself when in[end-1] is no word byte.
func (sc *scanner) wordBefore(end int) int {
	p := end
	for p > 0 && isWord(sc.in[p-1]) {
		p--
	}
	return p
}

// equalFold reports whether s equals the lower-case ASCII word lower,
// ignoring ASCII case.
func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldAny reports whether s equals one of the lower-case ASCII words
// lowers, ignoring ASCII case.
func equalFoldAny(s string, lowers ...string) bool {
	for _, lower := range lowers {
		if equalFold(s, lower) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII text
// lower, ignoring ASCII case.
func hasPrefixFold(s, lower string) bool {
	return len(s) >= len(lower) && equalFold(s[:len(lower)], lower)
}

// deviceIDShape reports whether the 16 hex digits h look like a random
// 64-bit id (ANDROID_ID) rather than a number or a pattern: a letter, two
// digits, fewer than eight zeros (000000000004f7c4 is an offset;
// 000000000000000f a flag), and no repeating pattern (7f7f7f7f7f7f7f7f).
// Zeros are as likely in a random id as any digit (8034e0002ecb31d2):
// pointers are told apart by their context (pointerContext).
func deviceIDShape(h string) bool {
	letters, digits, zeros := 0, 0, 0
	for i := 0; i < len(h); i++ {
		switch {
		case h[i] == '0':
			zeros++
			digits++
		case isDigit(h[i]):
			digits++
		default:
			letters++
		}
	}
	if letters < 1 || digits < 2 || zeros >= 8 {
		return false
	}
	for _, period := range []int{1, 2, 4, 8} {
		if h[:len(h)-period] == h[period:] {
			return false
		}
	}
	return true
}

// pointerContext reports whether the 16 hex digits at in[ws] are a value
// of a register dump, a backtrace or a memory dump, as in tombstones: a
// register name or "pc" and blanks before them ("x4  0000007fd3c2a4c8",
// "#00 pc 000000000004f7c4", "lr  b400007c3a8e1230"), or a column of a
// memory dump's line (see dumpColumn).
func (sc *scanner) pointerContext(ws int) bool {
	in := sc.in
	p := ws
	for p > 0 && ws-p < 4 && in[p-1] == ' ' {
		p--
	}
	if p < ws {
		if pw := sc.wordBefore(p); pw < p && isRegister(in[pw:p]) {
			return true
		}
	}
	return sc.dumpColumn(ws)
}

// dumpColumn reports whether the word at ws is one of the first three
// columns of a memory dump's line, as in tombstones ("    0000007fd3c2a490
// b400007c3a8e1230 0000000000000000  ................"): the line's first
// word, after blanks, is a user-space address, whose upper 16 bits are
// zero, the second is 16 hex digits, and they are one space apart. The
// context is the start of the line, which no other finding replaces (a
// marker for the second word counts as the word it replaced), so an id
// kept here is kept when the output is scrubbed again; an id beside an
// address elsewhere in a line is not kept, as the address may be found
// to be an id itself. In the second reading of a glued line it reads the
// line as written, as the first reading did: an underscore is not the
// space between two columns.
func (sc *scanner) dumpColumn(ws int) bool {
	in := sc.in
	if sc.glue != "" {
		in = sc.glue
	}
	first := ws
	for col := 1; ; col++ {
		b := first
		for b > 0 && (in[b-1] == ' ' || in[b-1] == '\t') {
			b--
		}
		if b == 0 || in[b-1] == '\n' || in[b-1] == '\r' {
			break // first starts its line
		}
		if col == 3 || first-b != 1 || in[b] != ' ' {
			return false
		}
		first = b
		for first > 0 && class[in[first-1]]&cSpace == 0 {
			first--
		}
	}
	second := first + 17
	if second > len(in) || !userAddress(in[first:second-1]) || in[second-1] != ' ' {
		return false
	}
	end := second + markerAt(in, second)
	if end == second {
		end += 16
		if end > len(in) || !allHex(in[second:end]) {
			return false
		}
	}
	return end == len(in) || class[in[end]]&cSpace != 0
}

// userAddress reports whether s is 16 hex digits whose first four are
// zeros, as the user-space addresses of 64-bit processes are.
func userAddress(s string) bool {
	return len(s) == 16 && s[:4] == "0000" && allHex(s)
}

// isRegister reports whether w names a CPU register or the program
// counter in a crash dump: x0-x30, w0-w30, r0-r15, lr, sp, pc, fp, ip,
// pst, cpsr, rip, rsp, rbp and the like.
func isRegister(w string) bool {
	switch len(w) {
	case 2, 3:
		if c := w[0] | 0x20; (c == 'x' || c == 'w' || c == 'r') && isDigit(w[1]) && (len(w) == 2 || isDigit(w[2])) {
			return true
		}
	}
	return equalFoldAny(w, "pc", "lr", "sp", "fp", "ip", "pst", "cpsr", "rip", "rsp", "rbp", "eip", "esp", "ebp")
}

// allHex reports whether s holds only hex digits.
func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}
