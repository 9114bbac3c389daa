package scrub

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// keyValue detects the value of a key that names an identifier or a
// secret (user_id=1234, "deviceId":"abc", password: hunter2,
// <ssid>Anna Home</ssid>), the
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
	if sc.gluedAt(ws-1) || sc.gluedAt(ke) {
		return match{} // a part of a key joined by '_', read whole before
	}
	p := ke
	quoted := false
	switch q := sc.b(p); {
	case isQuote(q) && sc.b(ws-1) == q:
		quoted = true
		p++
	case q == '\\' && sc.b(p+1) == '"' && sc.b(ws-1) == '"' && sc.b(ws-2) == '\\':
		quoted = true
		p += 2
	case sc.b(ws-1) == ' ' && (isQuote(q) || q == '\\' && sc.b(p+1) == '"') && sc.quotedTwoWords(ws, q):
		// a key of two words quoted whole ("AF id": ...), read as such
		// below (twoWordKey)
		quoted = true
		p++
		if q == '\\' {
			p++
		}
	}
	blank := p
	p = sc.skipSpaces(p, 4)
	colon, spaced, element := false, false, false
	switch sc.b(p) {
	case '>':
		// <ssid>Anna Home</ssid>: the text of an XML or plist element
		// named like an identifier (not </ssid>, <ssid >, <a href=...>)
		if quoted || p != ke || sc.b(ws-1) != '<' {
			return match{}
		}
		element = true
		p++
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
		// key value: an id after a blank (fcm_token 9962541186), a quoted
		// value (SSID "Anna Home"), or the marker that replaced it
		if p == blank || p-blank > 2 || quoted || !spacedKeyEnd(in[ws:ke]) || markerAt(in, p) == 0 && !isQuote(sc.b(p)) && sc.spacedValueEnd(p) < 0 {
			return match{}
		}
		spaced = true
	}
	vs := p
	if !spaced {
		vs = sc.skipSpaces(p, 40)
	}
	if colon && !quoted && sc.isLogTag(ws) {
		return match{}
	}

	// a field of a person's object as its toString prints it (see
	// personObject): its id, handle and name name the person
	person := !spaced && !element && !quoted && isPersonField(in[ws:ke]) && sc.personObject(ws)
	if !person && ke-ws < minFragment && shortKeyFirsts&(1<<(in[ws]&31)) == 0 && sc.s.extraKey == nil &&
		(sc.b(ws-1) != ' ' || !isWord(sc.b(ws-2))) {
		return match{} // a short key that is no known key (x0:, kt:42)
	}
	var k normKey
	k.set(in[ws:ke])
	f := sc.s.flags(&k)
	if person {
		f = f&^kWeak | kIdent
	}
	if f&kNet != 0 && f&(kIdent|kSecret) == 0 && !element {
		return sc.networkValue(f, ke, vs, colon, spaced, quoted)
	}
	if spaced {
		if f&(kIdent|kSecret) == 0 && ke-ws == 2 && equalFold(in[ws:ke], "id") {
			f = sc.twoWordKey(ws, ke) // AF id 1612345678901, User ID 1234
		}
		return sc.spacedValue(f, ke, vs)
	}
	if element {
		return sc.elementValue(f, vs)
	}
	if f&kCoord != 0 {
		// A coordinate's value: a number decides as a coordinate; what
		// is no number is read on as an identifier's value, as the key
		// may name one too (words of a mangled key can spell "lat").
		p := vs
		if isQuote(sc.b(p)) {
			p++
		}
		if sc.b(p) == '-' {
			p++
		}
		if isDigit(sc.b(p)) || f&(kIdent|kSecret) == 0 {
			if !sc.s.on(Coordinates) {
				return match{}
			}
			return sc.coordinateValue(vs, fixedPointKey(in[ws:ke]))
		}
	}
	switch {
	case f&kAuth != 0:
		if !sc.s.on(Token) {
			return match{}
		}
		return sc.authValue(vs)
	case f&(kIdent|kSecret) == 0:
		// A key of two words, such as "User ID: 1234".
		g := sc.twoWordKey(ws, ke)
		if g&kIdent == 0 {
			return match{}
		}
		f = g // License plate: B-MW 1234 is words
	}
	secret := f&kSecret != 0
	if colon && !quoted && !secret && f&kWeak != 0 && !sc.randomIDAt(vs) {
		// uid: 10234, name: RenderThread; not uid: Xk3mP9qR2sT5vW8yZ1aB4cD6eF7g,
		// nor a key of two words that ends in a weak one (network name:)
		g := sc.twoWordKey(ws, ke)
		switch {
		case g&kNet != 0 && g&(kIdent|kSecret) == 0:
			return sc.networkValue(g, ke, vs, colon, false, quoted)
		case g&kIdent == 0 || g&kWeak != 0:
			return match{}
		}
		f = g
	}
	if f&kLone != 0 && equalFoldAny(in[vs:sc.wordEnd(vs)], toolErrors[:]...) {
		return match{} // whoami: cannot find name for user ID 1000
	}
	kind := KeyValue
	switch {
	case secret && sc.s.on(Secret):
		kind = Secret
	case f&kIdent == 0 || !sc.s.on(KeyValue):
		return match{}
	}
	m, scrubbed := sc.value(kind, vs, f&kCookie != 0, f&kWords != 0)
	if scrubbed {
		sc.skipTo = ke
	}
	return m
}

// quotedTwoWords reports whether the word before in[ws], one space
// before it, starts right after the quote q (after \" where q is '\\'):
// a key of two words quoted whole, "AF id".
func (sc *scanner) quotedTwoWords(ws int, q byte) bool {
	pw := sc.wordBefore(ws - 1)
	if pw == ws-1 {
		return false
	}
	if q == '\\' {
		return sc.b(pw-1) == '"' && sc.b(pw-2) == '\\'
	}
	return sc.b(pw-1) == q
}

// twoWordKey returns what the key of two words names whose second word
// is in[ws:ke] (User ID, License plate, network name), 0 if keyTable has
// no such key, or the words are no key's: they must be separated by one
// space, come after the last finding, and not be a marker's or an
// Objective-C method's (see below).
func (sc *scanner) twoWordKey(ws, ke int) keyFlag {
	pw := sc.wordBefore(ws - 1)
	if sc.b(ws-1) != ' ' || pw == ws-1 || pw < sc.last {
		return 0
	}
	if sc.b(pw-1) == '[' && (ke-ws != 2 || markerAt(sc.in, pw-1) > 0) {
		// In brackets only a key that ends in "id" ([AF id=...]): not
		// a marker's word ([ip] id), nor an Objective-C method's words
		// (-[UIApplication sendAction:...])
		return 0
	}
	var k normKey
	k.set(sc.in[pw:ke])
	if k.trunc {
		return 0
	}
	return keyTable[string(k.b[:k.n])] &^ (kHeadOnly | kWholeOnly)
}

// networkValue returns the value at vs of a key that names a Wi-Fi
// network in text with the flags f (see networkKeys), which ends at ke:
// a quoted name, or an unquoted one that starts with a letter (not -67
// dBm, 802.11ac, <unknown ssid>), after "network" only a quoted one,
// after "wifi:" only one that looks like no word (spacedValueEnd:
// JohnsHome-5G, not "wifi: scan results"), and after a key and a blank
// only a quoted one; a state or a type (enabled, connected, cellular;
// see netStates) is none. The name runs on over its words as a
// person's does (wifi=Smith Family WiFi).
func (sc *scanner) networkValue(f keyFlag, ke, vs int, colon, spaced, keyQuoted bool) match {
	if !sc.s.on(KeyValue) {
		return match{}
	}
	in := sc.in
	v := vs
	switch {
	case isQuote(sc.b(v)):
		v++
	case sc.b(v) == '\\' && sc.b(v+1) == '"':
		v += 2
	case markerAt(in, v) > 0:
		if !spaced {
			sc.skipTo = ke
		}
		return match{}
	case spaced || f&kQuoted != 0 || !isLetter(sc.b(v)):
		return match{}
	case colon && !keyQuoted && f&kShaped != 0 && sc.spacedValueEnd(v) < 0:
		return match{}
	}
	if v < len(in) && equalFoldAny(in[v:letterRunEnd(in, v)], netStates[:]...) {
		return match{}
	}
	m, scrubbed := sc.value(KeyValue, vs, false, f&kWords != 0)
	if scrubbed {
		sc.skipTo = ke
	}
	return m
}

// netStates are the states and types of a network that follow the keys
// of networkKeys as often as a network's name does.
var netStates = [...]string{
	"on", "off", "enabled", "disabled", "enable", "disable", "connected", "disconnected",
	"connecting", "disconnecting", "scanning", "associated", "associating", "authenticating",
	"authenticated", "available", "unavailable", "unknown", "idle", "up", "down", "active",
	"inactive", "ok", "lost", "reachable", "unreachable", "none", "null", "nil", "wifi", "wi",
	"wlan", "cellular", "cell", "mobile", "ethernet", "wired", "wireless", "wwan", "lte", "nr",
	"edge", "umts", "hspa", "gprs", "vpn", "bluetooth", "offline", "online", "metered",
	"unmetered", "roaming", "limited", "restricted", "blocked", "weak", "strong", "good", "poor",
	"excellent", "fair", "error", "failed", "failure", "timeout", "ready", "default", "any",
	"not", "no", "is", "was", "changed", "type", "state", "status", "name", "true", "false",
}

// elementValue returns the text at vs of an XML or plist element whose
// name has the flags f, up to the '<' of its end tag, without the blanks
// around it: the whole text, words and all, as a quoted value is read,
// since an element's text ends only there (<ssid>Anna Home</ssid>,
// <string>jane.doe</string> after <key>username</key> is not read). A
// coordinate's element is read as a coordinate. None when the text runs
// over a line, holds a tag, is empty or nullish, or was scrubbed before.
func (sc *scanner) elementValue(f keyFlag, vs int) match {
	in := sc.in
	kind := KeyValue
	switch {
	case f&kCoord != 0 && (isDigit(sc.b(vs)) || sc.b(vs) == '-' || f&(kIdent|kSecret) == 0):
		if !sc.s.on(Coordinates) {
			return match{}
		}
		return sc.coordinateValue(vs, false)
	case f&kSecret != 0 && sc.s.on(Secret):
		kind = Secret
	case f&kIdent == 0 || !sc.s.on(KeyValue):
		return match{}
	}
	ve := vs
	for ve < len(in) && in[ve] != '<' && in[ve] != '\n' && in[ve] != '\r' && ve-vs < maxQuoted {
		ve++
	}
	if sc.b(ve) != '<' || sc.b(ve+1) != '/' {
		return match{}
	}
	for ve > vs && (in[ve-1] == ' ' || in[ve-1] == '\t') {
		ve--
	}
	if ve <= vs || markerAt(in, vs) > 0 || isNullish(in[vs:ve]) {
		return match{}
	}
	if m := sc.valueDetect(vs); m.kind != 0 && m.end >= ve {
		kind = m.kind // <email>jane@example.com</email> is an email
	}
	return match{kind, vs, ve}
}

// plistValue detects the value of a property list entry whose key names
// an identifier or a secret, as iOS prints defaults and configuration
// (<key>username</key><string>jane.doe</string>, the value's element
// on the same line or the next). in[ws:we] is the word between <key> and
// </key>; the value's element is read by elementValue.
func (sc *scanner) plistValue(ws, we int) match {
	in := sc.in
	if ws < len("<key>") || in[ws-len("<key>"):ws] != "<key>" || !strings.HasPrefix(in[we:], "</key>") {
		return match{}
	}
	var k normKey
	k.set(in[ws:we])
	f := sc.s.flags(&k)
	if f&(kIdent|kSecret|kCoord) == 0 {
		return match{}
	}
	p := we + len("</key>")
	for p < len(in) && p-we < 64 && (in[p] == ' ' || in[p] == '\t' || in[p] == '\n' || in[p] == '\r') {
		p++
	}
	if sc.b(p) != '<' {
		return match{}
	}
	e := strings.IndexByte(in[p:min(len(in), p+10)], '>')
	if e < 0 || !slices.Contains(plistValueTags[:], in[p+1:p+e]) {
		return match{}
	}
	return sc.elementValue(f, p+e+1)
}

// plistValueTags are the elements of a property list's scalar values.
var plistValueTags = [...]string{"string", "integer", "real", "data", "date"}

// spacedValue returns the value at vs of a key with the flags f that a
// blank, not '=' or ':', separates from it (fcm_token 9962541186): only
// strong identifier and secret keys count (not places: their values are
// names), and only values that look like ids (see spacedValueEnd) or are
// quoted (SSID "Anna Home", user "anna"), so that prose such as "token
// expired" or "email must not be empty" stays. Single quotes count as
// double ones do: SQL Server and MySQL print the user so (Login failed
// for user 'jsmith'). A marker at vs is a value
// scrubbed before: the key stays as it did then (the scan skips it),
// whatever else its word looks like.
func (sc *scanner) spacedValue(f keyFlag, ke, vs int) match {
	kind := KeyValue
	switch {
	case f&(kWeak|kPlace) != 0 || f&(kIdent|kSecret) == 0:
		return match{}
	case f&kSecret != 0 && sc.s.on(Secret):
		kind = Secret
	case f&kIdent == 0 || !sc.s.on(KeyValue):
		return match{}
	}
	if markerAt(sc.in, vs) > 0 {
		sc.skipTo = ke
		return match{}
	}
	if isQuote(sc.in[vs]) {
		if f&kIdent == 0 && equalFoldAny(sc.in[sc.wordBefore(ke):ke], proseSecretKeys[:]...) {
			return match{} // pass "make distcheck", session "scriptlets"
		}
		m, scrubbed := sc.value(kind, vs, false, false)
		if scrubbed {
			sc.skipTo = ke
		}
		return m
	}
	ve := sc.spacedValueEnd(vs)
	if m := sc.valueDetect(vs); m.kind != 0 && m.end >= ve {
		return m
	}
	return match{kind, vs, ve}
}

// toolErrors are the first words of the errors that a tool whose output
// is a key's one word prints after its name and a colon (see loneKeys):
// whoami: cannot find name for user ID 1000, sh: whoami: not found.
var toolErrors = [...]string{
	"cannot", "command", "not", "no", "extra", "unrecognized", "invalid", "unknown", "missing",
	"failed", "error", "permission", "usage",
}

// randomIDAt reports whether the word at vs looks drawn at random (see
// randomID).
func (sc *scanner) randomIDAt(vs int) bool {
	ve := vs
	for ve < len(sc.in) && isWord(sc.in[ve]) {
		ve++
	}
	return randomID(sc.in[vs:ve])
}

// randomID reports whether w looks drawn at random, as a weak key's value
// after a colon must look to be taken (Firebase Auth's uid: 28 letters and
// digits): 16 or more letters and digits, with upper and lower case
// letters and digits among them, and no run of five or more lower-case
// letters (words in code have them: AbstractFactoryBean2).
func randomID(w string) bool {
	if len(w) < 16 {
		return false
	}
	var upper, lower, digit bool
	run := 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= 'a' && c <= 'z':
			if lower, run = true, run+1; run == 5 {
				return false
			}
			continue
		case isUpper(c):
			upper = true
		case isDigit(c):
			digit = true
		default:
			return false
		}
		run = 0
	}
	return upper && lower && digit
}

// proseSecretKeys are names of secrets that are common words of prose
// too: a quoted text after one of them and a blank is no value (pass
// "make distcheck", session "scriptlets").
var proseSecretKeys = [...]string{"pass", "session", "auth", "sid", "signature", "cookie", "token", "secret"}

// spacedKeyEnd reports whether the key k ends as a name of an
// identifier or a secret may (its last two letters or digits, in any
// case): a cheap test before the key is looked up, as most words of
// prose and of crash logs that a blank follows are no key.
func spacedKeyEnd(k string) bool {
	if len(k) < 2 {
		return false
	}
	a, b := keyEndIndex(k[len(k)-2]), keyEndIndex(k[len(k)-1])
	return a >= 0 && b >= 0 && keyEnds[a*36+b]
}

// keyEndIndex maps a letter, in either case, or a digit to 0-35, and
// anything else to -1.
func keyEndIndex(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= '0' && c <= '9':
		return 26 + int(c-'0')
	}
	return -1
}

// keyEnds holds the last two letters or digits of the names of keyTable
// that a blank may separate from their values (not places') and of the
// fragments.
var keyEnds = func() (t [36 * 36]bool) {
	add := func(w string) {
		if len(w) >= 2 {
			t[keyEndIndex(w[len(w)-2])*36+keyEndIndex(w[len(w)-1])] = true
		}
	}
	for w, f := range keyTable {
		if f&kPlace == 0 {
			add(w)
		}
	}
	for _, f := range identifierFragments {
		add(f.s)
	}
	for _, f := range secretFragments {
		add(f.s)
	}
	return t
}()

// spacedValueEnd returns the end of a value after a key and a blank that
// looks like an id rather than a word, or -1: at least six bytes of
// letters, digits and . _ - + = @, with a digit, a '-' or '_' inside, or
// capitals that do not mark words of three or more letters as names in
// code do (829301, u-xq3fq8jq, ogCPiHHFD2sDt, SrHfwlaqioeGf); not a word
// in any case, camelCase or PascalCase (expired, EXPIRED, sendAction,
// CellForRow), not a marker.
func (sc *scanner) spacedValueEnd(vs int) int {
	in := sc.in
	ve := vs
	digit, joined, upper, lower := false, false, false, false
	for ve < len(in) {
		c := in[ve]
		switch {
		case isDigit(c):
			digit = true
		case isUpper(c):
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c == '-' || c == '_':
			if ve > vs && isWord(sc.b(ve+1)) {
				joined = true
			}
		case c == '.' || c == '+' || c == '=' || c == '@':
		case (c == ':' || c == '|') && ve > vs && isWord(sc.b(ve+1)):
			// a provider's or a kind's prefix: auth0|5f8e...,
			// G:1234567890, A:_a1b2... (Game Center's player ids)
			joined = true
		default:
			goto end
		}
		ve++
	}
end:
	for ve > vs && (in[ve-1] == '.' || in[ve-1] == '-') {
		ve--
	}
	if ve-vs < 6 || markerAt(in, vs) > 0 {
		return -1
	}
	if digit || joined || upper && lower && !wordsInCode(in[vs:ve]) {
		return ve
	}
	return -1
}

// wordsInCode reports whether the letters w are words of three or more
// letters joined as names in code are: camelCase or PascalCase
// (sendAction, CellForRow), the first word perhaps of two (isEnabled),
// and with vowels as words have them: no five consonants in a row, which
// letters drawn at random have (mtxrzqfePgqh).
func wordsInCode(w string) bool {
	consonants := 0
	for i := 0; i < len(w); i++ {
		switch w[i] | 0x20 {
		case 'a', 'e', 'i', 'o', 'u', 'y':
			consonants = 0
		default:
			if consonants++; consonants == 5 {
				return false
			}
		}
	}
	for i := 0; i < len(w); {
		j := i + 1
		for j < len(w) && w[j] >= 'a' && w[j] <= 'z' {
			j++
		}
		if j-i < 3 && !(i == 0 && j-i == 2 && !isUpper(w[0])) {
			return false
		}
		if j < len(w) && !isUpper(w[j]) {
			return false
		}
		i = j
	}
	return true
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
// rest of the line for cookies, or else the bytes up to whitespace, one
// of , ; & ) ] } " ' < >, a marker, or a '?' inside the value (but for
// a secret's), and with words, the words after those (see wordsEnd). If
// a detector recognizes the value, its kind is used instead of kind.
// scrubbed reports a value that is a marker.
func (sc *scanner) value(kind Kind, vs int, toEOL, words bool) (m match, scrubbed bool) {
	in := sc.in
	if vs >= len(in) {
		return match{}, false
	}
	if markerAt(in, vs) > 0 {
		return match{}, true
	}
	if p := indexedItem(in, vs); p > 0 {
		vs = p // the first item of a list as Android prints one
	}
	quoted := false
	ve := vs
	switch c := in[vs]; {
	case isQuote(c):
		vs++
		ve = vs
		for ve < len(in) && in[ve] != c && in[ve] != '\n' && in[ve] != '\r' && in[ve] != '\\' && ve-vs < maxQuoted {
			ve++
		}
		switch {
		case ve-vs == maxQuoted:
			// longer than is read: what is read is the value's, or the
			// next scrubbing, which reads the rest after the marker,
			// would take a value it left
			ve = runeStart(in, vs, ve)
		case sc.b(ve) != c && sc.b(ve) != '\\':
			return match{}, false
		}
		quoted = true
	case c == '\\' && sc.b(vs+1) == '"':
		vs += 2
		ve = vs
		for ve < len(in) && in[ve] != '\\' && in[ve] != '"' && in[ve] != '\n' && in[ve] != '\r' && ve-vs < maxQuoted {
			ve++
		}
		if ve-vs == maxQuoted {
			ve = runeStart(in, vs, ve)
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
		for ve < len(in) && !sc.endsValue(kind, vs, ve) {
			ve++
		}
	}
	if markerAt(in, vs) > 0 {
		return match{}, true
	}
	if ve <= vs || isNullish(in[vs:ve]) {
		return match{}, false
	}
	if words && !quoted && !toEOL {
		ve = sc.wordsEnd(kind, vs, ve)
	}
	if m := sc.valueDetect(vs); m.kind != 0 && m.end >= ve {
		if quoted || toEOL {
			return match{m.kind, vs, ve}, false
		}
		return match{m.kind, vs, m.end}, false
	}
	return match{kind, vs, ve}, false
}

// wordsEnd returns the end of the unquoted value of a key whose value is
// words (see wordsKeys) that starts at vs and whose first word ends at ve:
// it runs on over up to maxValueWords-1 further words that one blank
// each separates from the last and that start with a capital, a digit
// or a letter beyond ASCII, as names, places and postcodes do (Innere
// Stadt, SW1A 1AA, QQ 12 34 56 C, Ávila), or are in irregular case (sTaDt,
// see irregularCase), or are a name's particle before such a word (Rio de
// Janeiro), each up to where endsValue ends a value.
// It stops before a word in lower case, as prose goes on in (ssid=HomeNet
// router ...; not when the first word is in random case, see randomCase:
// case tells nothing then), before a marker, and before a word with '='
// or ':' in it, which is a key of its own (city=Graz Country=AT,
// locality: Wien Country: AT).
func (sc *scanner) wordsEnd(kind Kind, vs, ve int) int {
	in := sc.in
	noisy := randomCase(in[vs:letterRunEnd(in, vs)])
	for n := 1; n < maxValueWords && ve+1 < len(in) && in[ve] == ' ' && ve-vs < maxQuoted; n++ {
		ws := ve + 1
		if !noisy && !nameWordStart(in[ws]) && !sc.particleAt(ws) && !irregularCase(in[ws:letterRunEnd(in, ws)]) || markerAt(in, ws) > 0 {
			break
		}
		we := ws
		for we < len(in) && !sc.endsValue(kind, ws, we) {
			if c := in[we]; c == '=' || c == ':' {
				return ve
			}
			we++
		}
		ve = we
	}
	return ve
}

// maxValueWords is the most words that wordsEnd reads as one value.
const maxValueWords = 6

// nameWordStart reports whether c may start a word of a name, a place or
// a postcode: a capital, a digit, or the first byte of a character beyond
// ASCII.
func nameWordStart(c byte) bool {
	return isUpper(c) || isDigit(c) || c >= utf8.RuneSelf
}

// particleAt reports whether a particle of names and places (de, da, del,
// von, van, der, la, ...) stands at ws, with a blank and a word that
// nameWordStart accepts after it, or one more particle and such a word
// (Rio de Janeiro, Ludwig van Beethoven, rue de la Paix).
func (sc *scanner) particleAt(ws int) bool { return sc.particlesEnd(ws) >= 0 }

// particlesEnd returns where the word after the particles at ws starts,
// as particleAt reads them, or -1 if there are none.
func (sc *scanner) particlesEnd(ws int) int {
	for range 2 {
		we := ws
		for we < len(sc.in) && we-ws < 5 && isLower(sc.in[we]) {
			we++
		}
		if we == ws || sc.b(we) != ' ' || !equalFoldAny(sc.in[ws:we], nameParticles[:]...) {
			return -1
		}
		if nameWordStart(sc.b(we + 1)) {
			return we + 1
		}
		ws = we + 1
	}
	return -1
}

// nameParticles are the particles of particleAt.
var nameParticles = [...]string{
	"de", "da", "do", "dos", "das", "del", "della", "di", "du", "des", "la", "le", "los", "las",
	"von", "van", "der", "den", "ter", "zu", "y", "e", "al", "el", "bin", "ibn",
}

// indexedItem returns where the quoted first item of a list written as
// Android writes an Address's lines starts, [0:"Stephansplatz 1, 1010
// Wien"] with in[vs] its '[', or 0 if there is none.
func indexedItem(in string, vs int) int {
	if in[vs] != '[' {
		return 0
	}
	p := vs + 1
	for p < len(in) && p-vs <= 3 && isDigit(in[p]) {
		p++
	}
	if p == vs+1 || p+1 >= len(in) || in[p] != ':' || in[p+1] != '"' {
		return 0
	}
	return p + 1
}

// maxQuoted bounds the bytes of a quoted value that value reads, and so
// the scan's work per key.
const maxQuoted = 512

// runeStart returns ve, or, when in[ve] continues a character, where
// that character starts, but no earlier than vs.
func runeStart(in string, vs, ve int) int {
	for ve > vs && ve < len(in) && !utf8.RuneStart(in[ve]) {
		ve--
	}
	return ve
}

// endsValue reports whether the unquoted value of a key of kind that
// starts at vs ends at ve: at whitespace or one of , ; & ) ] } " ' < >;
// at a marker, which no finding cuts into; and at a '?' inside the value
// that opens a URL's query for the text after it (after a word or '/',
// see queryPlus), as it will after the value's marker. A secret is taken
// whole, '?' and all.
func (sc *scanner) endsValue(kind Kind, vs, ve int) bool {
	switch c := sc.in[ve]; {
	case class[c]&cValueEnd != 0:
		return true
	case c == '[':
		return markerAt(sc.in, ve) > 0
	case c == '?':
		// (in the second reading of a glued text, a blank that was an
		// underscore is glue, as in the first: there a value may start
		// at a '?' that opens a query in the text as written, and ends
		// there, empty)
		prev := sc.b(ve - 1)
		if sc.gluedAt(ve - 1) {
			prev = '_'
		}
		return kind != Secret && (class[sc.b(ve+1)]&cSpace == 0 || sc.gluedAt(ve+1)) && ve+1 < len(sc.in) &&
			queryMarkAfter(prev)
	}
	return false
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

// isNullish reports whether a value says there is none, or is a flag
// (true, yes: MySQL prints "using password: YES") rather than a value.
func isNullish(v string) bool {
	switch len(v) {
	case 1:
		return v == "-" || v == "+"
	case 2:
		return equalFold(v, "no")
	case 3:
		return equalFold(v, "nil") || equalFold(v, "n/a") || equalFold(v, "yes")
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
//
// In the second reading of a glued text, the first word is read in the
// text with its underscores, as the first reading read it.
func (sc *scanner) authValue(vs int) match {
	in := sc.in
	if sc.glue != "" {
		in = sc.glue
	}
	p := vs
	if isQuote(sc.b(p)) {
		p++
	}
	q, first := p, p
	for q < len(in) && (isWord(in[q]) || in[q] == '-') {
		q++
	}
	if q > p && isLetter(in[p]) && sc.b(q) == ' ' {
		if isScheme(in[p:q]) {
			return match{}
		}
		p = sc.skipSpaces(q, 4)
		if markerAt(sc.in, p) > 0 {
			sc.skipTo = q // the scheme of a credential scrubbed before
			return match{}
		}
	}
	end := sc.credential(p)
	if end < 0 && p != first {
		// No credential after the first word: the first word is the
		// credential ("Authorization: Abc123_xyz789QQ sent").
		p = first
		end = sc.credential(p)
	}
	if end < 0 {
		return match{}
	}
	return match{Token, p, end}
}

// credential returns the end of a credential of at least 8 bytes of
// [A-Za-z0-9._~+/=-] starting at p, or -1. A trailing '.' ends a sentence,
// not the credential, and a plain word ("Bearer expired") is none.
//
// In the second reading of a glued text, the credential is read in the
// text with its underscores, which credentials may hold.
func (sc *scanner) credential(p int) int {
	in := sc.in
	if sc.glue != "" {
		in = sc.glue
	}
	e := p
	for e < len(in) && class[in[e]]&cCred != 0 {
		e++
	}
	for e > p && in[e-1] == '.' {
		e--
	}
	if e-p < 8 || plainWord(in[p:e]) {
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
// coordinates, a single decimal with at least 2 decimals, or degrees in
// fixed point (seven digits or more; any number of digits after a key
// that says so, see fixedPointKey: latitudeE7=-144724 is 0.0144724°S).
func (sc *scanner) coordinateValue(vs int, fixed bool) match {
	p := vs
	if isQuote(sc.b(p)) {
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
	// degrees in fixed point, ten million times over (latitudeE7=482084900,
	// as Android's and Google's location records write them), or a
	// hundred thousand or a million times: seven digits or more
	if e := sc.wordEnd(ds); (e-ds >= 7 || fixed) && e-ds <= 10 && allOf(sc.in[ds:e], isDigit) && sc.b(e) != '.' {
		return match{Coordinates, p, e}
	}
	d, ok := sc.decimalAt(p)
	if !ok || d.frac < 2 {
		return match{}
	}
	return match{Coordinates, p, d.end}
}

// fixedPointKey reports whether the coordinate key k names degrees in
// fixed point, ten million times over (latitudeE7, lngE7).
func fixedPointKey(k string) bool {
	return len(k) > 2 && k[len(k)-1] == '7' && k[len(k)-2]|0x20 == 'e'
}

// isQuote reports whether c is a straight double or single quote.
func isQuote(c byte) bool { return c == '"' || c == '\'' }
