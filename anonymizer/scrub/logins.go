package scrub

// Logins: the names of a computer's or a phone's accounts where no key
// names them, as the id command prints them.

// idOutputKey reports whether the word in[ws:we], which '=' follows, is
// a key of id(1)'s output (uid, gid, euid, egid, groups) and its value
// has id's shape: a number and a name in parentheses
// (uid=1000(jdoe)). Such a key's value is no key's value (see
// idOutputName): the number stays and the name is looked at alone.
func (sc *scanner) idOutputKey(ws, we int) bool {
	if !isIDOutputKey(sc.in[ws:we]) {
		return false
	}
	in := sc.in
	if sc.glue != "" {
		in = sc.glue
	}
	p := we + 1
	d := p
	for p < len(in) && p-d <= maxIDNumber && isDigit(in[p]) {
		p++
	}
	if p == d || p-d > maxIDNumber || p >= len(in) || in[p] != '(' {
		return false
	}
	return idNameEnd(in, p+1) > p+1
}

// idOutputName detects the name of an account or a group in id(1)'s
// output (uid=1000(jdoe) gid=1000(jdoe) groups=1000(jdoe),27(sudo)):
// the word in[ws:we] starts it, after a '(' and a number that follow the
// '=' of an id key (see idOutputKey) or the ',' after an element of its
// list. The name runs to the ')'. The names of the system's own accounts
// and groups (root, sudo, staff, an Android app's u0_a123, macOS's
// _appserverusr) name no one and stay; each other name, a person's
// login or their own group's, is the finding. The end of each element
// is remembered, so the list is read once, in order.
func (sc *scanner) idOutputName(ws int) match {
	in := sc.in
	if sc.glue != "" {
		in = sc.glue // a name with underscores is read whole (u0_a123)
	}
	d := ws - 1 // the '('
	for d > 0 && ws-1-d <= maxIDNumber && isDigit(in[d-1]) {
		d--
	}
	if d == ws-1 || ws-1-d > maxIDNumber || d == 0 {
		return match{}
	}
	switch in[d-1] {
	case '=':
		kw := sc.wordBefore(d - 1)
		if kw == d-1 || !isIDOutputKey(in[kw:d-1]) {
			return match{}
		}
	case ',':
		if sc.idNext != d-1 || sc.idNext == 0 {
			return match{}
		}
	default:
		return match{}
	}
	ne := idNameEnd(in, ws)
	if ne < 0 {
		return match{}
	}
	if !sc.lookahead {
		sc.idNext = ne + 1 // (a lookahead reads words again later)
	}
	if isSystemAccount(in[ws:ne]) {
		return match{}
	}
	return match{UserPath, ws, ne}
}

// maxIDNumber is the most digits of a uid or gid (32 bits).
const maxIDNumber = 10

// idNameEnd returns the index of the ')' that ends the name of id(1)'s
// output starting at p: at most 64 bytes, no parenthesis or line break
// inside, not empty; -1 if there is none.
func idNameEnd(in string, p int) int {
	for e := p; e < len(in) && e-p <= 64; e++ {
		switch in[e] {
		case ')':
			if e == p {
				return -1
			}
			return e
		case '(', '\n', '\r':
			return -1
		}
	}
	return -1
}

// isIDOutputKey reports whether w is a key of id(1)'s output.
func isIDOutputKey(w string) bool {
	switch len(w) {
	case 3, 4, 6:
		return equalFoldAny(w, "uid", "gid", "euid", "egid", "groups")
	}
	return false
}

// isSystemAccount reports whether name is the name of an account or a
// group that a system makes for itself rather than for a person: one of
// systemAccounts, a macOS system account's or group's (_appserverusr,
// com.apple.access_ssh), or an Android app's (u0_a123, u10_a123_cache,
// u0_i7 for an isolated process, all_a123 for an app's shared group).
func isSystemAccount(name string) bool {
	if name[0] == '_' || hasPrefixFold(name, "com.apple.") || androidAppAccount(name) {
		return true
	}
	return equalFoldAny(name, systemAccounts[:]...)
}

// androidAppAccount reports whether name is an Android app's account or
// group: u<user>_a<app> or u<user>_i<isolated> with an optional "_cache",
// or all_a<app>.
func androidAppAccount(name string) bool {
	digits := func(p int) int {
		s := p
		for p < len(name) && isDigit(name[p]) {
			p++
		}
		if p == s {
			return -1
		}
		return p
	}
	p := 0
	switch {
	case hasPrefixFold(name, "all_a"):
		p = len("all_a")
	case name[0]|0x20 == 'u':
		if p = digits(1); p < 0 || p+2 > len(name) || name[p] != '_' || name[p+1]|0x20 != 'a' && name[p+1]|0x20 != 'i' {
			return false
		}
		p += 2
	default:
		return false
	}
	if p = digits(p); p < 0 {
		return false
	}
	return name[p:] == "" || equalFold(name[p:], "_cache")
}

// systemAccounts are the accounts and groups that Linux distributions,
// macOS and Android make for the system: no person's name.
var systemAccounts = [...]string{
	// Linux
	"root", "daemon", "bin", "sys", "adm", "tty", "disk", "lp", "mail", "news", "uucp", "man",
	"proxy", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio", "dip",
	"www-data", "backup", "operator", "list", "irc", "src", "gnats", "shadow", "utmp", "video",
	"sasl", "plugdev", "staff", "games", "users", "nogroup", "nobody", "wheel", "admin",
	"lpadmin", "sambashare", "docker", "netdev", "bluetooth", "input", "render", "kvm", "libvirt",
	"lxd", "systemd-journal", "messagebus", "syslog", "crontab", "ssh", "polkitd", "avahi",
	"pulse", "rtkit", "scanner", "lpoperator", "postdrop", "postfix", "sshd", "ftp", "mysql",
	"postgres", "nginx", "apache", "http", "git", "ubuntu", "runner", "vagrant", "none",
	// macOS
	"everyone", "localaccounts", "owner", "interactivusers", "netusers", "authedusers",
	"consoleusers", "group", "accessibility", "certusers",
	// Android
	"system", "radio", "graphics", "shell", "cache", "log", "inet", "everybody", "sdcard_rw",
	"sdcard_r", "media_rw", "net_raw", "net_admin", "net_bt", "net_bt_admin", "net_bw_stats",
	"net_bw_acct", "readproc", "wakelock", "uhid", "misc", "mount", "media", "drm", "camera",
	"ext_data_rw", "ext_obb_rw", "vpn", "keystore", "usb", "nfc", "gps", "wifi", "adb",
	"install", "dhcp", "logd", "statsd", "incidentd", "cameraserver", "audioserver",
	"mediacodec", "mediadrm", "webview_zygote",
}

// proseHandle detects a handle after a '@' that starts a word in prose
// (@jdoe1987 liked your note, mention @jane_doe): the word at ws and
// the letters, digits, '_', and inner '.' and '-' after it, as social
// networks' handles are made. The '@' must follow a blank, a bracket, a
// quote or punctuation, not a word (user@host, icon@2x.png,
// java.lang.Object@6d06d69c); after a '/' only a handle with a digit
// counts (settings/@jdoe1987; a profile URL's are profileHandle's, and
// an npm scope has a '/' after it: node_modules/@scope/pkg). The handle
// starts with a letter (not @2x, @0x1f, Swift's @_silgen_name, SQL's
// @__p_0) and no '/', '(', '@', '=', '[' or '{' follows it (@scope/pkg,
// @available(iOS 15, *), @p0='?'). It is one when it has a digit and three letters
// (@jdoe1987), as annotations, attributes and decorators in stack traces
// and code never do (@Override, @objc, @MainActor, @callee_guaranteed),
// or when a word before it says it is one (see handleContext) and it is
// none of those (annotationWords) nor a broadcast (@here, @everyone).
func (sc *scanner) proseHandle(ws int) match {
	in := sc.in
	if sc.glue != "" {
		in = sc.glue // a handle with underscores is read whole
	}
	slash := ws >= 2 && in[ws-2] == '/'
	if ws >= 2 && !handleLead(in[ws-2]) && !slash || !isLetter(in[ws]) {
		return match{}
	}
	letters, digits := 0, 0
	e := ws
	for ; e < len(in) && e-ws <= maxHandle; e++ {
		c := in[e]
		switch {
		case isLetter(c):
			letters++
		case isDigit(c):
			digits++
		case c == '_':
		case (c == '.' || c == '-') && e+1 < len(in) && class[in[e+1]]&cAlnum != 0:
		default:
			goto end
		}
	}
end:
	if e-ws > maxHandle {
		return match{}
	}
	switch sc.b(e) {
	case '/', '\\', '(', '@', '=', '[', '{':
		return match{}
	}
	if digits > 0 && letters >= 3 ||
		!slash && sc.handleContext(ws-1) && !equalFoldAny(in[ws:e], annotationWords[:]...) {
		return match{UserPath, ws, e}
	}
	return match{}
}

// maxHandle is the length of the longest handle proseHandle reads, a
// little more than social networks allow (30 on Instagram).
const maxHandle = 32

// handleLead reports whether c may stand before the '@' of a handle in
// prose: a blank, a bracket, a quote, or punctuation (also a query's
// '=': ?to=@jdoe1987).
func handleLead(c byte) bool {
	if class[c]&cSpace != 0 {
		return true
	}
	switch c {
	case '(', '[', '{', '<', '>', '"', '\'', ',', ';', ':', '!', '?', '|', '*', '=', '#':
		return true
	}
	return false
}

// handleContext reports whether the '@' at at follows a word and a
// blank that say a handle follows (mention @jane, by @alice, cc @jdoe,
// as @jdoe; see handleWords), or a handle found just before it and ", "
// (cc @jane, @john).
func (sc *scanner) handleContext(at int) bool {
	in := sc.in
	if at < 2 || in[at-1] != ' ' {
		return false
	}
	if in[at-2] == ',' {
		return sc.lastKind == UserPath && sc.last == at-2
	}
	pw := sc.wordBefore(at - 1)
	if pw == at-1 || pw < sc.last || at-1-pw > 10 {
		return false
	}
	return equalFoldAny(in[pw:at-1], handleWords[:]...)
}

// handleWords say that a handle follows them.
var handleWords = [...]string{
	"as", "by", "cc", "bcc", "dm", "ping", "mention", "mentions", "mentioned", "mentioning", "tag",
	"tagged", "follow", "follows", "followed", "following", "unfollow", "unfollowed", "invited",
	"blocked", "muted", "reported", "user", "handle", "username",
}

// annotationWords are annotations, attributes and decorators of Java,
// Kotlin, Swift and Objective-C that stack traces and compilers' messages
// print after a '@', and chat's broadcasts (@here, @everyone): no handle,
// whatever word stands before them (marked as @objc, isolated by
// @MainActor).
var annotationWords = [...]string{
	"objc", "nonobjc", "objcmembers", "mainactor", "globalactor", "escaping", "sendable",
	"synchronized", "available", "discardableresult", "autoclosure", "inlinable",
	"usablefrominline", "frozen", "main", "testable", "override", "nullable", "nonnull", "notnull",
	"deprecated", "suppresswarnings", "suppress", "jvmstatic", "jvmoverloads", "jvmfield",
	"jvmname", "composable", "inject", "test", "property", "interface", "implementation", "end",
	"protocol", "selector", "try", "catch", "finally", "throw", "autoreleasepool", "optional",
	"required", "class", "import", "dynamic", "synthesize", "encode", "published", "state",
	"binding", "environment", "observedobject", "stateobject", "environmentobject",
	"preconcurrency", "unchecked", "convention", "param", "return", "throws", "see", "since",
	"here", "channel", "everyone", "all",
}

// signedInName detects the account a log says it signed in as, the word
// after "logged in as", "signed in as", "logged on as", "log in as",
// "login as", "authenticated as" or "logged in user" (also
// "logged-in user"); in[ws:we] is "as" or "user". The account is a
// handle after '@' (as @jdoe), a word of a login's bytes (jdoe1987,
// jane.doe), quoted or not, an identifier that another detector finds
// (signed in as jane@example.com), or a name of up to three capitalized
// words (signed in as Jane Doe). Roles and words of prose (as guest, as
// admin, as expected, as a different user; see signInStops) are none.
func (sc *scanner) signedInName(ws, we int) match {
	if !sc.signInBefore(ws, we) {
		return match{}
	}
	in := sc.in
	if sc.glue != "" {
		in = sc.glue // a login with underscores is read whole
	}
	vs := we + 1
	if isQuote(sc.b(vs)) {
		vs++
	}
	at := sc.b(vs) == '@'
	if at {
		vs++
	}
	if vs >= len(in) || markerAt(sc.in, vs) > 0 || class[in[vs]]&cAlnum == 0 {
		return match{}
	}
	if !at {
		if m := sc.valueDetect(vs); m.kind != 0 {
			return m
		}
	}
	e := vs
	for e < len(in) && e-vs <= 64 && (isWord(in[e]) || in[e] == '.' || in[e] == '-') {
		e++
	}
	for e > vs && (in[e-1] == '.' || in[e-1] == '-') {
		e--
	}
	if e-vs > 64 || equalFoldAny(in[vs:e], signInStops[:]...) {
		return match{}
	}
	if !at && isUpper(in[vs]) {
		// the surname, and one more name (Jane Doe, Anna Maria Berg)
		for range 2 {
			if sc.b(e) != ' ' {
				break
			}
			ne := nameWordEnd(in, e+1)
			if ne < 0 || equalFoldAny(in[e+1:ne], signInStops[:]...) {
				break
			}
			e = ne
		}
	}
	return match{UserPath, vs, e}
}

// signInBefore reports whether the word in[ws:we], "as" or "user", ends
// a phrase that an account's name follows (see signedInName).
func (sc *scanner) signInBefore(ws, we int) bool {
	in := sc.in
	as := we-ws == 2
	if sc.b(ws-1) != ' ' {
		return false
	}
	p1 := sc.wordBefore(ws - 1)
	if p1 == ws-1 || p1 < sc.last {
		return false
	}
	w1 := in[p1 : ws-1]
	if as && equalFoldAny(w1, "authenticated", "login", "logon", "signin") {
		return true
	}
	if !equalFoldAny(w1, "in", "on") || !as && !equalFold(w1, "in") {
		return false
	}
	if c := sc.b(p1 - 1); c != ' ' && c != '-' {
		return false
	}
	p2 := sc.wordBefore(p1 - 1)
	if p2 == p1-1 || p2 < sc.last {
		return false
	}
	w2 := in[p2 : p1-1]
	if as {
		return equalFoldAny(w2, "logged", "signed", "log", "sign", "logging", "signing", "logs", "signs")
	}
	return equalFoldAny(w2, "logged", "signed")
}

// signInStops are roles and words of prose that follow "signed in as":
// no account's name.
var signInStops = [...]string{
	"guest", "anonymous", "anon", "admin", "administrator", "root", "user", "users", "owner",
	"member", "a", "an", "the", "another", "different", "same", "new", "someone", "nobody",
	"null", "nil", "none", "unknown", "current", "default", "system", "expected", "well",
	"before", "usual", "normal", "needed", "required", "such", "soon", "long", "if", "though",
	"described", "intended", "planned", "shown", "above", "below", "follows", "part", "it",
	"you", "we", "they", "he", "she", "them", "him", "her", "yourself", "is", "was", "has",
	"had", "not", "and", "or", "with", "for", "to", "in", "on", "of", "at", "from", "via",
	"successfully", "failed", "ok",
}

// inviteCode detects the code in the query of an invitation's, a
// referral's or a sign-up's link (myapp://invite?ref=JDOE2024,
// https://example.com/signup?utm_source=x&ref=abc123): the value of the
// parameter in[ws:we], ref, code or invite, after the '?' or '&' before
// it, when the last segment of the link's path before the '?', at most
// maxInviteQuery bytes back, names one (see inviteSegments). Programs
// give each member their own code, so it names the member who shared
// it. Elsewhere ref stays: a git ref, an object's reference or a
// campaign's (ref=refs/heads/main, ?ref=producthunt).
func (sc *scanner) inviteCode(ws, we int) match {
	in := sc.in
	if !equalFoldAny(in[ws:we], "ref", "code", "invite") {
		return match{}
	}
	q := ws - 1
	for q >= 0 && ws-q <= maxInviteQuery && in[q] != '?' {
		if c := in[q]; class[c]&cSpace != 0 || c == '"' || c == '\'' || c == '<' || c == '>' {
			return match{}
		}
		q--
	}
	if q < 0 || in[q] != '?' {
		return match{}
	}
	ss := q
	for ss > 0 && q-ss <= 12 && (isWord(in[ss-1]) || in[ss-1] == '-') {
		ss--
	}
	if ss == q || ss == 0 || in[ss-1] != '/' || !equalFoldAny(in[ss:q], inviteSegments[:]...) {
		return match{}
	}
	m, _ := sc.value(KeyValue, we+1, false, false)
	return m
}

// maxInviteQuery bounds how far back inviteCode looks for the '?' of the
// query that holds a code, so the scan stays linear.
const maxInviteQuery = 256

// inviteSegments are the segments of a link's path that name an
// invitation, a referral or a sign-up.
var inviteSegments = [...]string{
	"invite", "invites", "invitation", "invitations", "referral", "referrals", "refer", "join",
	"signup", "sign-up", "sign_up", "register", "registration",
}
