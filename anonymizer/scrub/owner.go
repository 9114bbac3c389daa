package scrub

import "slices"

// deviceOwner detects the owner's name in a device's default name, which
// Bluetooth, AirDrop and network logs print: a name and "'s" before a
// device's word (Jane's iPhone, Jane Doe's AirPods), a capitalized name
// ending in "s" and a blank before it, as Swedish, Danish and Norwegian
// name devices (Annas iPhone; only where the device's name ends after
// the device's word, as English verbs end in "s" too: Requires iPhone
// 12, Suggests laptop-detect), or, in a host name made from one, a name
// ending in "s" joined by '-' to the device's word
// (Janes-MacBook-Pro.local, Jane-Does-iPhone). The word at ws, which ends
// at we, is the name's last word; one capitalized word before it may be
// the name's too. The name is the finding; "'s" and the device stay. A
// host name in lower case needs a local domain after it
// (janes-macbook.local), as "versions-iphone" is no name. For a name
// after the device's word (iPhone von Anna) see ownerAfterDevice.
func (sc *scanner) deviceOwner(ws, we int) match {
	in := sc.in
	if !allOf(in[ws:we], isLetter) || equalFoldAny(in[ws:we], ownerStopWords[:]...) {
		return match{}
	}
	possessive := sc.b(we) == '\''
	var dev int // where the device's word starts
	switch {
	case possessive && sc.b(we+1)|0x20 == 's' && sc.b(we+2) == ' ':
		dev = we + 3
	case sc.b(we) == '-' && we-ws >= 3 && in[we-1]|0x20 == 's':
		dev = we + 1
	case sc.b(we) == ' ' && we-ws >= 4 && in[we-1] == 's' && isUpper(in[ws]) && !isUpper(in[ws+1]) &&
		!equalFoldAny(in[ws:we-1], ownerStopWords[:]...) && !equalFoldAny(in[ws:we], pluralStopWords[:]...):
		if e := deviceWordEnd(in, we+1); e < 0 || e < len(in) && !deviceNameEnd(in[e]) {
			return match{}
		}
		return match{UserPath, ws, we} // Annas iPhone
	default:
		return match{}
	}
	end := deviceWordEnd(in, dev)
	if end < 0 {
		return match{}
	}
	if !possessive && !isUpper(in[ws]) && !localDomainAt(in, end) {
		return match{}
	}
	start := ws
	// one more word of the name: Jane Doe's, Jane-Does-iPhone
	if sep := sc.b(ws - 1); isUpper(in[ws]) && (possessive && sep == ' ' || !possessive && sep == '-') {
		if ps := sc.wordBefore(ws - 1); ps < ws-1 && ps >= sc.last && isUpper(in[ps]) && allOf(in[ps:ws-1], isLetter) &&
			!equalFoldAny(in[ps:ws-1], ownerStopWords[:]...) {
			start = ps
		}
	}
	return match{UserPath, start, we}
}

// deviceNameEnd reports whether c may end a device's name as a log
// quotes or lists it: a quote, a closing bracket, a comma, a semicolon
// or a line break.
func deviceNameEnd(c byte) bool {
	switch c {
	case '"', '\'', ')', ']', ',', ';', '\n', '\r':
		return true
	}
	return false
}

// ownerAfterDevice detects the owner's name after a device's word, the
// word in[ws:we], as iOS names devices in German, French, Spanish,
// Italian, Dutch and Portuguese (iPhone von Anna, iPad de María, MacBook
// Pro di Marco): after at most two words of the model (Pro, Max, S23,
// 15), a preposition of ownerPrepositions and a blank, a name that starts
// with a capital or a letter beyond ASCII, and one more such word (its
// surname). The name is the finding.
func (sc *scanner) ownerAfterDevice(ws, we int) match {
	in := sc.in
	if sc.b(we) != ' ' || deviceWordEnd(in, ws) != we {
		return match{}
	}
	p := we + 1
	for model := 0; ; model++ {
		e := p
		for e < len(in) && e-p < 8 && isWord(in[e]) {
			e++
		}
		if e == p || sc.b(e) != ' ' {
			return match{}
		}
		if equalFoldAny(in[p:e], ownerPrepositions[:]...) && in[p] >= 'a' {
			p = e + 1
			break
		}
		if model == 2 || !isUpper(in[p]) && !isDigit(in[p]) && !equalFold(in[p:e], "mini") {
			return match{}
		}
		p = e + 1
	}
	end := nameWordEnd(in, p)
	if end < 0 || equalFoldAny(in[p:end], ownerStopWords[:]...) {
		return match{}
	}
	if sc.b(end) == ' ' {
		if e := nameWordEnd(in, end+1); e > 0 {
			end = e
		}
	}
	return match{UserPath, p, end}
}

// nameWordEnd returns the end of a word of a person's name at p: a
// capital or a character beyond ASCII, then letters, such characters and
// inner dashes and apostrophes (María, Anne-Marie, O'Brien), at most 40
// bytes and not followed by a digit or '_'; -1 if there is none.
func nameWordEnd(in string, p int) int {
	if p >= len(in) || !isUpper(in[p]) && in[p] < 0xc3 {
		return -1
	}
	e := p + 1
	for e < len(in) && e-p <= 40 {
		c := in[e]
		switch {
		case isLetter(c) || c >= 0x80:
		case (c == '-' || c == '\'') && e+1 < len(in) && (isLetter(in[e+1]) || in[e+1] >= 0xc3):
		default:
			goto end
		}
		e++
	}
end:
	if e-p > 40 || e < len(in) && (isDigit(in[e]) || in[e] == '_') {
		return -1
	}
	return e
}

// ownerPrepositions say "of" before an owner's name in devices' default
// names (German, French, Spanish, Portuguese, Italian, Dutch).
var ownerPrepositions = [...]string{"von", "de", "di", "da", "do", "van"}

// deviceWordEnd returns the end of the device's word at p (iPhone,
// MacBook, Galaxy, ... in any case, not followed by a letter), -1 if
// there is none.
func deviceWordEnd(in string, p int) int {
	e := p
	for e < len(in) && isLetter(in[e]) {
		e++
	}
	if !deviceWordShapes.has(in[p:e]) || !equalFoldAny(in[p:e], deviceWords[:]...) {
		return -1
	}
	return e
}

// localDomainAt reports whether a local network's domain (.local, .lan,
// .home) follows at p, after the rest of a host name's label, which is at
// most 63 bytes long (so that the scan stays linear).
func localDomainAt(in string, p int) bool {
	for s := p; p < len(in) && p-s < 63 && (isWord(in[p]) || in[p] == '-'); p++ {
	}
	if p >= len(in) || in[p] != '.' {
		return false
	}
	e := p + 1
	for e < len(in) && isLetter(in[e]) {
		e++
	}
	return equalFoldAny(in[p+1:e], "local", "lan", "home")
}

// deviceWords are the words of devices' default names after their
// owner's name.
var deviceWords = [...]string{
	"iphone", "ipad", "ipod", "macbook", "imac", "mac", "airpods", "homepod", "watch", "galaxy",
	"pixel", "phone", "tablet", "laptop", "kindle", "surface", "pc", "computer", "desktop",
	"apple", "echo", // Apple Watch, Apple TV; Alexa's Echo Dot
}

// deviceWordShapes holds the lengths and first letters of deviceWords: a
// cheap test before a word is looked up.
var deviceWordShapes = shapesOf(deviceWords[:])

// wordShapes has bit c&31 of entry n set when a word of a list has n
// letters and starts with c.
type wordShapes [16]uint32

// shapesOf returns the shapes of the lower-case words ws.
func shapesOf(ws []string) (t wordShapes) {
	for _, w := range ws {
		t[len(w)] |= 1 << (w[0] & 31)
	}
	return t
}

// has reports whether a word of the list may be w, in any case: one of
// w's length starts with w's first letter.
func (t *wordShapes) has(w string) bool {
	return len(w) > 0 && len(w) < len(t) && t[len(w)]&(1<<(w[0]&31)) != 0
}

// ownerStopWords are words before "'s" and a device's word that name no
// owner: companies, pronouns, roles (Apple's iPhone, it's iPhone only,
// the user's iPhone).
var ownerStopWords = [...]string{
	"apple", "google", "samsung", "microsoft", "amazon", "huawei", "xiaomi", "it", "that", "there",
	"here", "what", "who", "let", "today", "everyone", "someone", "anyone", "one", "user", "users",
	"app", "device", "owner", "customer", "company", "team", "world", "with", "from", "to", "and",
	"for", "by", "on", "of", "the", "my", "your", "our", "he", "she",
}

// pluralStopWords are capitalized words ending in "s" that may stand
// before a device's word and name no owner (Settings iPhone, Devices
// iPad, Photos Mac).
var pluralStopWords = [...]string{
	"settings", "devices", "photos", "notes", "maps", "contacts", "files", "news", "tips", "books",
	"podcasts", "apps", "tools", "docs", "tests", "options", "details", "specs", "accessories",
	"this", "its", "his", "hers", "yours", "ours", "theirs", "was", "has", "is", "as", "us",
}

// titledName detects a person's name after a courtesy title, the word
// in[ws:we], in letters, support tickets and messages that end up in
// crash reports (Mr. Smith, Dr Jane Doe, Frau Müller, Mme Dupont, Sra.
// García, Dhr. van Dijk): the title as written (capitalized, with or
// without a period), one blank, and up to three words of a name
// (nameWordEnd), with particles between them (van, de, von). The name is
// the finding; the title stays. Titles that are also common words or
// abbreviations in logs (Miss, Fr, Hr, Sig, M.) are not read.
func (sc *scanner) titledName(ws, we int) match {
	in := sc.in
	if !slices.Contains(courtesyTitles[:], in[ws:we]) {
		return match{}
	}
	p := we
	if sc.b(p) == '.' {
		p++
	}
	if sc.b(p) != ' ' {
		return match{}
	}
	start, first := p+1, p+1
	if e := sc.particlesEnd(first); e >= 0 {
		first = e
	}
	end := nameWordEnd(in, first)
	if end < 0 || equalFoldAny(in[first:end], ownerStopWords[:]...) {
		return match{}
	}
	for range 2 {
		next := end + 1
		if sc.b(end) != ' ' {
			break
		}
		if e := sc.particlesEnd(next); e >= 0 {
			next = e
		}
		e := nameWordEnd(in, next)
		if e < 0 {
			break
		}
		end = e
	}
	return match{UserPath, start, end}
}

// titleShapes has, per length, a bit for the first letter of each
// courtesy title of that length (bit c&31 of its first letter c): the
// scan calls titledName only for words of such a shape.
var titleShapes = func() (shapes [6]uint32) {
	for _, t := range courtesyTitles {
		shapes[len(t)] |= 1 << (t[0] & 31)
	}
	return shapes
}()

// courtesyTitles are the titles of titledName, case-sensitive.
var courtesyTitles = [...]string{
	"Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Sir", "Dame", // English
	"Herr", "Frau", // German
	"Mme", "Mlle", // French
	"Sra", "Srta", // Spanish
	"Dott", "Sigra", // Italian
	"Dhr", "Mevr", // Dutch
}
