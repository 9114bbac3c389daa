package scrub

import (
	"net/netip"
	"strings"
)

// uuid detects a UUID in 8-4-4-4-12 hex form whose first group is the
// word at ws. A longer hex or word run on either side is no UUID.
func (sc *scanner) uuid(ws int) match {
	p := ws + 8
	for _, n := range [...]int{4, 4, 4, 12} {
		if sc.b(p) != '-' {
			return match{}
		}
		p++
		for i := 0; i < n; i++ {
			if !isHex(sc.b(p)) {
				return match{}
			}
			p++
		}
	}
	if isWord(sc.b(p)) {
		return match{}
	}
	return match{UUID, ws, p}
}

// apnsToken detects an APNs device token as iOS printed it until iOS 13
// (NSData's description, which apps logged as the token): '<', eight
// groups of eight hex digits separated by spaces, '>'; the first group is
// the word at ws. The groups are replaced, the brackets stay.
func (sc *scanner) apnsToken(ws int) match {
	p, _, ok := sc.hexGroups(ws, 8, 8, ' ')
	if !ok || sc.b(p) != '>' {
		return match{}
	}
	return match{DeviceID, ws, p}
}

// hexGroups reads at p groups of size hex digits separated by sep, and
// returns where they end and whether they hold a decimal digit; ok is
// false where they are not there.
func (sc *scanner) hexGroups(p, groups, size int, sep byte) (end int, digit, ok bool) {
	for g := 0; g < groups; g++ {
		if g > 0 {
			if sc.b(p) != sep {
				return p, digit, false
			}
			p++
		}
		for i := 0; i < size; i++ {
			c := sc.b(p)
			if !isHex(c) {
				return p, digit, false
			}
			digit = digit || isDigit(c)
			p++
		}
	}
	return p, digit, true
}

// mac detects a MAC address of six groups of two hex digits separated by
// sep (':' or '-'), whose first group is the word at ws. With colons a
// group may be one digit: Apple's and BSD's systems print octets without
// leading zeros (an iOS BSSID: 0:1a:2b:3c:4d:5e).
func (sc *scanner) mac(ws int, sep byte) match {
	if sc.b(ws-1) == sep && (isHex(sc.b(ws-2)) || sc.b(ws-2) == ']') {
		return match{} // inside a longer run
	}
	p := ws
	for g := 0; g < 6; g++ {
		if g > 0 {
			if sc.b(p) != sep {
				return match{}
			}
			p++
		}
		n := 0
		for n < 3 && isHex(sc.b(p+n)) {
			n++
		}
		if n != 2 && (n != 1 || sep != ':') {
			return match{}
		}
		p += n
	}
	if isWord(sc.b(p)) || sc.b(p) == sep && isHex(sc.b(p+1)) {
		return match{}
	}
	return match{MAC, ws, p}
}

// ciscoMAC detects a MAC address in Cisco's notation, three groups of four
// hex digits separated by '.' (001a.2b3c.4d5e), whose first group is the
// word at ws. It needs a digit, so that words such as "dead.beef.cafe"
// stay.
func (sc *scanner) ciscoMAC(ws int) match {
	if sc.b(ws-1) == '.' && isWordOrMarker(sc.b(ws-2)) {
		return match{}
	}
	p, digit, ok := sc.hexGroups(ws, 3, 4, '.')
	if !ok || !digit || isWord(sc.b(p)) || sc.b(p) == '.' && isWord(sc.b(p+1)) {
		return match{}
	}
	return match{MAC, ws, p}
}

// ipv6 detects an IPv6 address that starts with the hex word at ws (which
// next follows), or with a "::" right before it. C++ and Rust scopes
// (std::vector, Cache::add) and times (12:30:45) are not addresses: an
// address needs three or more groups or a digit, and must be valid.
func (sc *scanner) ipv6(ws int, next byte) match {
	in := sc.in
	start := ws
	if sc.b(ws-1) == ':' {
		if sc.b(ws-2) == ':' {
			// "::1": the "::" must not follow a word ("Foo::bar") or an
			// address looked at before.
			if c := sc.b(ws - 3); isWordOrMarker(c) || c == ':' || c == '.' || ws-2 < sc.last {
				return match{}
			}
			start = ws - 2
		} else if c := sc.b(ws - 2); isHex(c) || c == ':' {
			return match{} // inside an address looked at before
		} else if c == ']' {
			// After a marker, no address starts here, and the words
			// that follow are not looked at on their own: before the
			// replacement, what followed either was part of a longer
			// candidate, or is a marker now (scrubbing twice changes
			// nothing).
			sc.v6Start, sc.v6End = ws, sc.v6Extent(ws)
			return match{}
		} else if next != ':' {
			return match{}
		}
	}
	if start > sc.v6Start && start < sc.v6End {
		return match{} // inside a candidate looked at before
	}
	p := sc.v6Extent(start)
	sc.v6Start, sc.v6End = start, p
	end := p
	for end > start && in[end-1] == '.' {
		end--
	}
	if end-start >= 2 && in[end-1] == ':' && in[end-2] != ':' {
		end-- // a ':' after the address
	}
	if isWord(sc.b(end)) || sc.b(p) == '[' {
		return match{} // part of a longer word, or of a marker's identifier
	}
	cand := in[start:end]
	if !plausibleIPv6(cand) {
		return match{}
	}
	// The own parser above rules out the errors ParseAddr would allocate.
	if a, err := netip.ParseAddr(cand); err != nil || !a.Is6() {
		return match{}
	}
	if sc.b(end) == '%' { // zone, as in fe80::1%en0
		z := end + 1
		for isWord(sc.b(z)) || sc.b(z) == '.' || sc.b(z) == '-' {
			z++
		}
		if z > end+1 {
			end = z
		}
	}
	return match{IP, start, end}
}

// v6Extent returns the end of the hex digits, ':' and '.' at p: the
// longest IPv6 candidate that starts there. A run is read once: p inside
// the run read last ends where it ends.
func (sc *scanner) v6Extent(p int) int {
	if p >= sc.v6RunStart && p < sc.v6RunEnd {
		return sc.v6RunEnd
	}
	sc.v6RunStart = p
	for p < len(sc.in) && (isHex(sc.in[p]) || sc.in[p] == ':' || sc.in[p] == '.') {
		p++
	}
	sc.v6RunEnd = p
	return p
}

// plausibleIPv6 reports whether s is a valid IPv6 address without a zone
// that has three or more groups or a digit.
func plausibleIPv6(s string) bool {
	groups := 0
	double := false
	digit := false
	i := 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		double = true
		i = 2
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i <= 4 && isHex(s[j]) {
			if isDigit(s[j]) {
				digit = true
			}
			j++
		}
		if j == i || j-i > 4 {
			return false
		}
		if j < len(s) && s[j] == '.' {
			// embedded IPv4 in the last two groups
			if !validIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if groups++; groups > 8 {
			return false // and the work is bounded however long s is
		}
		if j == len(s) {
			break
		}
		if s[j] != ':' {
			return false
		}
		j++
		if j < len(s) && s[j] == ':' {
			if double {
				return false
			}
			double = true
			j++
		} else if j == len(s) {
			return false
		}
		i = j
	}
	if double && groups > 7 || !double && groups != 8 {
		return false
	}
	return digit || groups >= 3
}

// validIPv4 reports whether s is exactly a dotted-quad IPv4 address.
func validIPv4(s string) bool {
	p, parts := 0, 0
	for parts < 4 {
		if parts > 0 {
			if p >= len(s) || s[p] != '.' {
				return false
			}
			p++
		}
		q, ok := octet(s, p)
		if !ok {
			return false
		}
		p = q
		parts++
	}
	return p == len(s)
}

// octet reads the decimal part of a dotted-quad IPv4 address that starts
// at s[p] and returns where the digits after p end. ok reports whether
// they are a part: one to three digits, at most 255, without a leading
// zero.
func octet(s string, p int) (end int, ok bool) {
	q, v := p, 0
	for q < len(s) && isDigit(s[q]) && q-p < 4 {
		v = v*10 + int(s[q]-'0')
		q++
	}
	return q, q > p && q-p <= 3 && v <= 255 && (q-p == 1 || s[p] != '0')
}

// ipv4 detects a dotted-quad IPv4 address starting with the word at ws.
// A port after it is kept. A dotted quad is an address unless its context
// proves it is a version (see versionContext); parts that cannot be an
// address (4.12.0.300, 4.012.0.3, 1.2.3.4.5) are no address to begin with.
func (sc *scanner) ipv4(ws int) match {
	in := sc.in
	if sc.b(ws-1) == '.' && isWordOrMarker(sc.b(ws-2)) {
		return match{}
	}
	p := ws
	for part := 0; part < 4; part++ {
		if part > 0 {
			if sc.b(p) != '.' {
				return match{}
			}
			p++
		}
		q, ok := octet(in, p)
		if !ok || isWord(sc.b(q)) {
			return match{}
		}
		p = q
	}
	if sc.b(p) == '.' && isWordOrMarker(sc.b(p+1)) {
		return match{} // a longer dotted run
	}
	if sc.versionContext(ws, p) {
		return match{}
	}
	return match{IP, ws, p}
}

// libraryName reports whether tok names a library, framework or package
// file, e.g. libfoo.so or Notes.framework.
func libraryName(tok string) bool {
	for _, ext := range []string{".so", ".dylib", ".dll", ".framework", ".jar", ".aar", ".apk", ".exe", ".app", ".a"} {
		if len(tok) > len(ext) && strings.EqualFold(tok[len(tok)-len(ext):], ext) {
			return true
		}
	}
	return false
}

// versionContext reports whether the context of the dotted number
// in[start:end] proves that it is a version, not an address:
//
//   - a pre-release or build suffix: 4.12.0.3-beta, 4.12.0.3+build5;
//   - a product token before a '/' that names a known library, SDK,
//     runtime or browser (okhttp/4.12.0.3, Dalvik/4.0.0.1), or any
//     product token followed by a User-Agent comment naming a platform
//     (MyApp/4.12.0.3 (Android 14; Pixel 8));
//   - a library or package file before it in parentheses: libfoo.so
//     (4.12.0.3);
//   - a version word before it: version 4.12.0.3, Build: 4.12.0.3,
//     ver=4.12.0.3, "appVersion":"4.12.0.3".
//
// Anything else is an address, so that a screen named settings/192.0.2.10
// or a path /hosts/10.1.2.3 loses it. (A "v" glued to the number, as in
// v4.12.0.3, makes it a word the detector does not read as an address.)
// Context before the number counts only after the previous finding: where
// a finding was, scrubbing again sees a marker.
func (sc *scanner) versionContext(start, end int) bool {
	in := sc.in
	// pre-release or build suffix: 4.12.0.3-beta, 4.12.0.3+build5
	if c := sc.b(end); (c == '-' || c == '+') && (isLetter(sc.b(end+1)) || sc.b(end+1) == '[') {
		return true
	}
	switch sc.b(start - 1) {
	case '/':
		// the product token: letters, digits, '.', '_' and '-'
		t := start - 1
		for t > 0 && (isWord(in[t-1]) || in[t-1] == '.' || in[t-1] == '-') {
			t--
		}
		if t < sc.last || t == start-1 || !isWord(in[start-2]) {
			return false
		}
		return isProductName(in[t:start-1]) || sc.userAgentComment(end)
	case '(':
		// libfoo.so (4.12.0.3), Notes (4.12.0.3)
		if sc.b(end) != ')' || sc.b(start-2) != ' ' {
			break
		}
		t := sc.tokenBefore(start - 2)
		if t < sc.last || t == start-2 || !isWord(in[start-3]) {
			break
		}
		// Only a library or package name makes it a version: "Server
		// (203.0.113.7)" and "consentry-go/0.1.0 (203.0.113.7)" are
		// addresses.
		if libraryName(in[t : start-2]) {
			return true
		}
	}
	// a version word before: version 4.12.0.3, Version: 4.12.0.3, ver=4.12.0.3
	p := start
	for i := 0; i < 3 && p > 0; i++ {
		if c := in[p-1]; c == ' ' || c == '\t' || c == ':' || c == '=' || c == '"' {
			p--
		} else {
			break
		}
	}
	if p == start && start > 0 {
		return false
	}
	ws := sc.wordBefore(p)
	// a word in brackets may be a marker's: name=[id] 10.1.2.3
	return ws < p && ws >= sc.last && !(sc.b(ws-1) == '[' && sc.b(p) == ']') && isVersionWord(in[ws:p])
}

// userAgentComment reports whether a User-Agent comment that names a
// platform follows the product version that ends at p: " (Android 14",
// " (Linux; U; ...", " (iPhone; iOS 17.4".
func (sc *scanner) userAgentComment(p int) bool {
	if sc.b(p) != ' ' || sc.b(p+1) != '(' {
		return false
	}
	in := sc.in
	for q := p + 2; q < len(in) && q < p+66 && in[q] != ')'; q++ {
		if !isLetter(in[q]) || isLetter(sc.b(q-1)) {
			continue
		}
		if equalFoldAny(in[q:sc.wordEnd(q)], platformWords[:]...) {
			return true
		}
	}
	return false
}

// platformWords name platforms in User-Agent comments.
var platformWords = [...]string{
	"android", "ios", "iphone", "ipad", "ipod", "ipados", "linux", "windows", "macintosh", "macos",
	"darwin", "cpu", "watchos", "tvos", "harmonyos", "x11", "mobile",
}

// isProductName reports whether tok, the product token of a
// product/version pair, names a library, SDK, runtime, tool or browser
// that writes its version that way, or ends in "sdk".
func isProductName(tok string) bool {
	if len(tok) > 3 && equalFold(tok[len(tok)-3:], "sdk") {
		return true
	}
	return equalFoldAny(tok, productNames[:]...)
}

// productNames are product tokens of User-Agent strings and version
// banners of the libraries, SDKs, runtimes and browsers of mobile apps.
var productNames = [...]string{
	// HTTP clients and networking
	"okhttp", "okhttp3", "okio", "retrofit", "volley", "cronet", "ktor", "ktor-client", "alamofire",
	"afnetworking", "cfnetwork", "nsurlsession", "urlsession", "apache-httpclient", "httpclient",
	"go-http-client", "python-requests", "python-urllib", "curl", "libcurl", "wget", "axios", "node-fetch",
	"undici", "dart", "dio", "grpc-java-okhttp", "grpc-java-netty", "grpc-go", "grpc-objc", "grpc-c",
	"grpc-swift", "grpc-dart", "grpc-node", "grpc-kotlin", "openssl", "boringssl",
	// platforms and runtimes
	"dalvik", "darwin", "android", "ios", "ipados", "watchos", "tvos", "macos", "linux", "windows",
	"java", "jre", "jdk", "kotlin", "swift", "mono", "dotnet", "node", "hermes", "jsc", "v8", "art",
	// browsers and web views
	"mozilla", "applewebkit", "webkit", "chrome", "chromium", "crios", "safari", "mobile", "version",
	"firefox", "fxios", "gecko", "edge", "edg", "edga", "edgios", "opera", "opr", "samsungbrowser",
	"ucbrowser", "yabrowser", "webview",
	// cross-platform frameworks and SDKs
	"flutter", "react-native", "reactnative", "expo", "xamarin", "maui", "unity", "unityplayer",
	"cordova", "capacitor", "ionic", "firebase", "crashlytics", "sentry", "sentry.java.android",
	"sentry.cocoa", "sentry-cocoa", "bugsnag", "datadog", "appcenter", "realm", "sqlite", "zlib",
	"consentry", "consentry-go", "consentry-android", "consentry-ios", "consentry-swift", "consentry-kotlin",
	"gradle", "cocoapods", "xcode",
}

// tokenBefore returns the start of the token that ends at end: the bytes
// before end up to whitespace, a quote, a bracket of code or a separator
// of keys and paths.
func (sc *scanner) tokenBefore(end int) int {
	p := end
	for p > 0 {
		switch c := sc.in[p-1]; c {
		case ' ', '\t', '\n', '\r', '"', '\'', '(', ')', '{', '}', '<', '>', ',', ';', '=', '/', '\\', '|', '`':
			return p
		}
		p--
	}
	return p
}

// isVersionWord reports whether w is a word that is followed by a
// version: "version" (also as the end of a word, as in "appVersion"),
// "ver", "build", "release" and the like.
func isVersionWord(w string) bool {
	if len(w) >= 7 && equalFold(w[len(w)-7:], "version") {
		return true
	}
	return equalFoldAny(w, versionWords[:]...)
}

var versionWords = [...]string{
	"ver", "vers", "build", "release", "rev", "revision", "firmware", "fw", "sdk", "os",
	"ios", "android", "kernel", "baseband", "bootloader", "chrome", "webview", "release_version",
}
