package scrub

import (
	"slices"
	"strings"
)

// Profiles of people where no key names them. Web paths name people two
// ways: a REST path names the account it is about after the collection
// of accounts (GET /v1/users/48213/avatar,
// https://api.example.com/accounts/jdoe/settings), and a social network's
// profile URL names a person in its first segment
// (https://instagram.com/alice.smith, https://www.tiktok.com/@alice_smith).
// Network errors print both. And an object of a person, as toString
// prints it, names them by its id (User(id=48213, ...)).

// pathAccount detects the segment after the collection of accounts that
// the word in[ws:we] names (users, accounts, customers, ...; see
// isAccountsCollection) when a '/' follows it, in a web path: a URL of a
// scheme other than file, or a path that an HTTP method or an API's
// segment (api, v1, rest) starts. A file's path is none: Android's
// /data/user/0/ and a source tree's .../profile/ProfileView.swift stay.
// So do the signed-in user, actions, templates and a single digit
// (Google's account index, /u/0/): see accountSegment. A segment that
// another detector recognizes whole (an e-mail address) is of its kind.
func (sc *scanner) pathAccount(ws, we int) match {
	in := sc.in
	vs := we + 1
	ve := vs
	for ve < len(in) && class[in[ve]]&cPathEnd == 0 {
		if ve-vs == maxAccountSegment {
			return match{} // no account's name: a secret's, if anything (see secrets.go)
		}
		ve++
	}
	for ve > vs && in[ve-1] == '.' {
		ve--
	}
	if !accountSegment(in[vs:ve]) || !sc.webPath(ws-1) {
		return match{}
	}
	if m := sc.valueDetect(vs); m.kind != 0 && m.end >= ve {
		return m // an e-mail address, a UUID: its own kind
	}
	return match{KeyValue, vs, ve}
}

// contactLookup reports whether the word in[ws:we] is the "lookup" of a
// contact's URI in Android's contacts provider
// (content://com.android.contacts/contacts/lookup/0r5-2B4D29/17), whose
// next segment, the lookup key, is made from the contact's name or its
// account's id for the contact.
func (sc *scanner) contactLookup(ws, we int) bool {
	const parent = "/contacts/"
	return we-ws == 6 && equalFold(sc.in[ws:we], "lookup") && ws >= len(parent) && equalFold(sc.in[ws-len(parent):ws], parent)
}

// maxAccountSegment bounds the bytes of a path's segment read as an
// account.
const maxAccountSegment = 128

// isAccountsCollection reports whether w names a collection of accounts
// or people in a web path.
func isAccountsCollection(w string) bool {
	switch w[0] | 0x20 {
	case 'u', 'a', 'p', 'm', 'c', 'e', 's':
		return equalFoldAny(w, accountsCollections[:]...)
	}
	return false
}

var accountsCollections = [...]string{
	"u", "user", "users", "account", "accounts", "profile", "profiles", "people", "person", "persons",
	"member", "members", "customer", "customers", "patient", "patients", "player", "players",
	"employee", "employees", "student", "students",
}

// accountSegment reports whether the path segment s, after a collection
// of accounts, names one: not empty, no single digit, no template
// ({id}, :id, <id>, *, $1), no marker, and no word that names the
// signed-in user, an action or a sub-collection (me, search, login, ...).
func accountSegment(s string) bool {
	switch {
	case s == "" || len(s) == 1 && isDigit(s[0]):
		return false
	case s[0] == '{' || s[0] == ':' || s[0] == '<' || s[0] == '*' || s[0] == '$' || s[0] == '[' || hasPrefixFold(s, "%7b"):
		return false
	}
	return !isReservedSegment(s) && !isSharedHome(s)
}

// isReservedSegment reports whether s is a word that, after a collection
// of accounts, names no account: the signed-in user, an action or a
// sub-collection.
func isReservedSegment(s string) bool {
	if len(s) > 16 {
		return false
	}
	var b [16]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUpper(c):
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		b[i] = c
	}
	_, ok := reservedSegments[string(b[:len(s)])]
	return ok
}

var reservedSegments = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range []string{
		"me", "self", "current", "mine", "my", "all", "any", "none", "null", "nil", "undefined", "unknown",
		"search", "list", "lookup", "find", "query", "filter", "count", "stats", "summary", "exists", "check",
		"new", "create", "add", "edit", "update", "delete", "remove", "batch", "bulk", "import", "export",
		"login", "logout", "signin", "sign_in", "signout", "sign_out", "signup", "sign_up", "register",
		"auth", "authenticate", "token", "tokens", "session", "sessions", "password", "reset", "verify",
		"confirm", "confirmation", "activate", "invite", "invites", "invitation", "invitations",
		"settings", "preferences", "profile", "profiles", "avatar", "avatars", "photo", "photos",
		"notifications", "permissions", "roles", "groups", "teams", "devices", "sync", "status",
		"active", "inactive", "online", "recent", "top", "popular", "suggested", "suggestions",
		"recommended", "blocked", "muted", "following", "followers", "friends", "nearby", "available",
		"validate", "validation", "default", "anonymous", "guest", "public", "private", "shared",
		"index", "home", "feed", "info", "details", "edit_profile", "id", "ids", "by_id", "by_email",
		"by_name", "v1", "v2", "v3", "api", "graphql", "health", "ping", "version", "config",
	} {
		m[w] = struct{}{}
	}
	return m
}()

// webPath reports whether the '/' at slash is in a web path: a URL whose
// scheme is not file, or a path that starts with an API's segment (api,
// rest, v1, v2, ...) or follows an HTTP method (GET /users/48213).
func (sc *scanner) webPath(slash int) bool {
	in := sc.in
	start := slash
	for start > 0 && slash-start < 512 {
		c := in[start-1]
		if class[c]&cSpace != 0 || c == '"' || c == '\'' || c == '<' || c == '>' || c == '(' || c == '`' || c == '=' {
			break
		}
		if c == '/' && start >= 3 && in[start-2] == '/' && in[start-3] == ':' {
			// scheme://: a URL, unless of a file
			return start < 7 || !equalFold(in[start-7:start-3], "file")
		}
		start--
	}
	if in[start] != '/' {
		return false
	}
	seg := start + 1
	end := seg
	for end < len(in) && isWord(in[end]) {
		end++
	}
	first := in[seg:end]
	if equalFoldAny(first, "api", "rest") || len(first) >= 2 && len(first) <= 3 && first[0]|0x20 == 'v' && allOf(first[1:], isDigit) {
		return true
	}
	if start < 2 || in[start-1] != ' ' {
		return false
	}
	ms := sc.wordBefore(start - 1)
	return equalFoldAny(in[ms:start-1], "get", "post", "put", "patch", "delete", "head", "options")
}

// profileHandle detects the handle in a social network's profile URL,
// the word at ws being the first segment of its path: the segment itself
// on networks whose first segment is a profile (instagram.com/alice.smith,
// x.com/jdoe, t.me/alice), the segment after "in" on LinkedIn, and the
// name after a '@' (tiktok.com/@alice, medium.com/@alice/post, and on
// any host a path that is only /@name or /@name/<number>, as Mastodon's;
// scoped npm packages, /@babel/core, stay). The networks' own pages
// (explore, intent, watch, ...) stay.
func (sc *scanner) profileHandle(ws int) match {
	in := sc.in
	at := in[ws-1] == '@'
	slash := ws - 1
	if at {
		slash--
	}
	host, ok := sc.urlHost(slash)
	if !ok {
		return match{}
	}
	net := socialNetwork(host)
	vs := ws
	switch {
	case at:
		if net == nil || !net.at {
			// any host: /@name, /@name/109876543210
			e := handleEnd(in, vs)
			if e < len(in) && in[e] == '/' && !(e+1 < len(in) && isDigit(in[e+1])) {
				return match{}
			}
		}
	case net == nil:
		return match{}
	case net.prefix != "":
		e := handleEnd(in, ws)
		if !equalFold(in[ws:e], net.prefix) || sc.b(e) != '/' {
			return match{}
		}
		vs = e + 1
	case !net.first:
		return match{}
	}
	ve := handleEnd(in, vs)
	if ve == vs || markerAt(in, vs) > 0 || !at && (isReservedSegment(in[vs:ve]) || equalFoldAny(in[vs:ve], socialPages[:]...)) {
		return match{}
	}
	return match{UserPath, vs, ve}
}

// profileHostEnd reports whether in[:slash] ends in the top-level domain
// of a social network's host (.com, .me, .net): a cheap test before the
// host is read, as a file's path has a '/' after most words.
func profileHostEnd(in string, slash int) bool {
	for _, tld := range networkTLDs {
		if slash >= len(tld) && equalFold(in[slash-len(tld):slash], tld) {
			return true
		}
	}
	return false
}

// handleEnd returns the end of a handle that starts at p: letters,
// digits, '_', '-' and '.', but a trailing '.'.
func handleEnd(in string, p int) int {
	e := p
	for e < len(in) && e-p < 64 && (isWord(in[e]) || in[e] == '.' || in[e] == '-') {
		e++
	}
	for e > p && in[e-1] == '.' {
		e--
	}
	return e
}

// urlHost returns the host of the URL whose path starts with the '/' at
// slash: the text after "//" and before slash, without a port.
func (sc *scanner) urlHost(slash int) (string, bool) {
	in := sc.in
	hs := slash
	for hs > 0 && slash-hs < 253 {
		c := in[hs-1]
		if !isWord(c) && c != '.' && c != '-' && c != ':' {
			break
		}
		hs--
	}
	if hs == slash || hs < 2 || in[hs-1] != '/' || in[hs-2] != '/' {
		return "", false
	}
	host := in[hs:slash]
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			host = host[:i]
			break
		}
	}
	return host, true
}

// A network is a social network whose profile URLs name a person.
type network struct {
	host string
	// first: the first segment of a path is a profile (x.com/jdoe).
	first bool
	// at: a first segment after '@' is a profile (tiktok.com/@alice).
	at bool
	// prefix: the segment after it is a profile (linkedin.com/in/jdoe).
	prefix string
}

var networks = [...]network{
	{host: "instagram.com", first: true},
	{host: "twitter.com", first: true},
	{host: "x.com", first: true},
	{host: "facebook.com", first: true},
	{host: "fb.com", first: true},
	{host: "t.me", first: true},
	{host: "threads.net", at: true},
	{host: "threads.com", at: true},
	{host: "tiktok.com", at: true},
	{host: "medium.com", at: true},
	{host: "youtube.com", at: true},
	{host: "linkedin.com", prefix: "in"},
}

// networkTLDs are the top-level domains of networks' hosts, with their
// dot: .com, .me, .net.
var networkTLDs = func() []string {
	var tlds []string
	for _, n := range networks {
		if tld := n.host[strings.LastIndexByte(n.host, '.'):]; !slices.Contains(tlds, tld) {
			tlds = append(tlds, tld)
		}
	}
	return tlds
}()

// socialNetwork returns the network whose host, or a subdomain of it
// (www., m., mobile.), host is, or nil.
func socialNetwork(host string) *network {
	for i := range networks {
		n := &networks[i]
		if len(host) < len(n.host) || !equalFold(host[len(host)-len(n.host):], n.host) {
			continue
		}
		if len(host) == len(n.host) || host[len(host)-len(n.host)-1] == '.' {
			return n
		}
	}
	return nil
}

// socialPages are first segments of the networks' own pages, which name
// no one.
var socialPages = [...]string{
	"explore", "p", "reel", "reels", "stories", "accounts", "direct", "tv", "hashtag", "intent", "i",
	"share", "sharer", "sharer.php", "dialog", "watch", "groups", "events", "pages", "marketplace",
	"gaming", "profile.php", "messages", "joinchat", "addstickers", "proxy", "s", "c", "hashtags",
	"legal", "privacy", "terms", "about", "help", "policies", "tos", "jobs", "business", "ads",
	"developers", "oauth", "plugins", "tr", "embed", "feed", "results", "shorts", "playlist",
	"channel", "live", "music", "premium", "compose", "notifications", "topics", "tag", "tags",
	"flow", "settings", "home", "login", "signup", "search", "share.php",
}

// isPersonField reports whether k is a field that names the person of a
// person's object (see personObject), though elsewhere it names nothing
// (id, handle) or too often something else (name, login, uid).
func isPersonField(k string) bool {
	return equalFoldAny(k, "id", "handle", "name", "login", "uid")
}

// personObject reports whether the key at ws is a field of an object of
// a person, an account or a device as toString prints one: the nearest
// unclosed bracket before it on its line follows the name of a type
// whose last word names one (User(id=48213, ...), Account [id=...],
// CustomerEntity(id: ...), UserProfile{...}), after an optional suffix
// such as Entity, Dto or Model.
func (sc *scanner) personObject(ws int) bool {
	in := sc.in
	depth := 0
	for p := ws - 1; p >= 0 && ws-p < 512; p-- {
		switch in[p] {
		case ')', '}', ']':
			depth++
		case '(', '{', '[':
			if depth > 0 {
				depth--
				continue
			}
			e := p
			if e > 0 && in[e-1] == ' ' {
				e-- // Account [id=...]
			}
			s := sc.wordBefore(e)
			return s < e && personType(in[s:e])
		case '\n', '\r':
			return false
		}
	}
	return false
}

// personType reports whether the type name w, without a suffix of data
// classes (Entity, Dto, Model, ...), ends in a word that names a person,
// an account or a device: User, AppUser, UserProfile, CustomerEntity.
// Case is ignored: in random case (meMBERDTo) capitals tell no words
// apart, and reading a boundary into them would miss the type. Names
// that end in such a word without being one (Pauser) are rare, and all
// they lose is the value of an id or name field.
func personType(w string) bool {
	for _, suf := range typeSuffixes {
		if len(w) > len(suf) && strings.EqualFold(w[len(w)-len(suf):], suf) {
			w = w[:len(w)-len(suf)]
			break
		}
	}
	for _, pt := range personTypes {
		if len(w) >= len(pt) && equalFold(w[len(w)-len(pt):], pt) {
			return true
		}
	}
	return false
}

// typeSuffixes end the names of data classes without naming what they
// hold.
var typeSuffixes = [...]string{"Entity", "Dto", "Model", "Data", "Info", "Details", "Record", "Impl", "Object"}

// personTypes are last words of type names whose objects are a person,
// an account or a device.
var personTypes = [...]string{
	"user", "customer", "account", "member", "person", "profile", "patient", "player", "contact",
	"employee", "student", "owner", "recipient", "author", "subscriber", "passenger", "rider",
	"buyer", "seller", "participant", "attendee", "device", "installation",
}
