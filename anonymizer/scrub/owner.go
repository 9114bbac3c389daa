package scrub

// deviceOwner detects the owner's name in a device's default name, which
// Bluetooth, AirDrop and network logs print: a name and "'s" before a
// device's word (Jane's iPhone, Jane Doe's AirPods), or, in a host name
// made from one, a name ending in "s" joined by '-' to the device's word
// (Janes-MacBook-Pro.local, Jane-Does-iPhone). The word at ws, which ends
// at we, is the name's last word; one capitalized word before it may be
// the name's too. The name is the finding; "'s" and the device stay. A
// host name in lower case needs a local domain after it
// (janes-macbook.local), as "versions-iphone" is no name.
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

// deviceWordEnd returns the end of the device's word at p (iPhone,
// MacBook, Galaxy, ... in any case, not followed by a letter), -1 if
// there is none.
func deviceWordEnd(in string, p int) int {
	e := p
	for e < len(in) && isLetter(in[e]) {
		e++
	}
	if e == p || !equalFoldAny(in[p:e], deviceWords[:]...) {
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
