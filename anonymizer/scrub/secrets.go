package scrub

import (
	"math"
	"strings"
)

// jwt detects a JSON Web Token: "eyJ" and base64url, '.', base64url, and
// optionally '.' and more base64url segments.
func (sc *scanner) jwt(ws int) match {
	p := sc.b64RunEnd(ws)
	if p-ws < 4 || sc.b(p) != '.' {
		return match{}
	}
	q := sc.b64RunEnd(p + 1)
	if q-(p+1) < 4 {
		return match{}
	}
	end := q
	for sc.b(end) == '.' && class[sc.b(end+1)]&cB64 != 0 {
		end = sc.b64RunEnd(end + 1)
	}
	return match{JWT, ws, end}
}

// urlCredentials detects the credentials in a URL's user information,
// which starts at u, right after "scheme://": a user name (perhaps none),
// ':' and a password, up to the last '@' of the URL's authority
// (https://jane:s3cret@example.com/x, redis://:s3cret@cache:6379; the
// last, as the detection copy decodes an encoded '@' in a password). It
// returns the user name (UserPath) and pends the password (Secret); the
// host stays, whatever it is: what follows the '@' does not decide, as
// the host may be a finding of its own (an IP address) that reads
// otherwise once replaced. A user name alone (ftp://jane@example.com) is
// left to the e-mail detector.
func (sc *scanner) urlCredentials(u int) match {
	in := sc.in
	at := -1
authority:
	for p := u; p < len(in); p++ {
		if p-u > maxUserInfo {
			return match{}
		}
		switch in[p] {
		case '/', '?', '#', ' ', '\t', '\r', '\n', '"', '\'', '<', '>', '`', '\\', '[', ']':
			break authority
		case '@':
			at = p
		}
	}
	if at < 0 {
		return match{}
	}
	colon := strings.IndexByte(in[u:at], ':')
	if colon < 0 || u+colon+1 == at {
		return match{}
	}
	colon += u
	pass := match{Secret, colon + 1, at}
	if colon == u || !sc.s.on(UserPath) {
		return pass
	}
	sc.pend = pass
	return match{UserPath, u, colon}
}

// maxUserInfo bounds the user information urlCredentials reads.
const maxUserInfo = 256

// prefixedSecret detects API keys of well-known shapes that start with
// the word in[ws:we]. Their prefixes are matched in any case, as a key
// retyped or logged through something that changed its case is as
// secret.
func (sc *scanner) prefixedSecret(ws, we int, next byte) match {
	in := sc.in
	w := in[ws:we]
	n := len(w)
	end := -1
	switch w[0] | 0x20 {
	case 's', 'p', 'r': // Stripe: sk_live_..., pk_test_..., rk_live_...
		if n >= 18 && w[1]|0x20 == 'k' && w[2] == '_' &&
			(hasPrefixFold(w[3:], "live_") || hasPrefixFold(w[3:], "test_")) {
			end = we
		}
		if (w[0] == 'S' || w[0] == 's') && equalFold(w, "sg") && next == '.' { // SendGrid: SG.<id>.<secret>
			a := sc.b64RunEnd(we + 1)
			if a-(we+1) >= 16 && sc.b(a) == '.' {
				if e := sc.b64RunEnd(a + 1); e-(a+1) >= 16 {
					end = e
				}
			}
		}
	case 'a':
		switch {
		case n == 20 && (hasPrefixFold(w, "akia") || hasPrefixFold(w, "asia")) && allAlnum(w[4:]) &&
			(upperAlnum(w[4:]) || !naturalWord(w) && !lowerAlnum(w)):
			end = we // AWS access key id
		case hasPrefixFold(w, "aiza"): // Google API key
			if e := sc.b64RunEnd(ws); e-ws >= 39 {
				end = e
			}
		}
	case 'g':
		switch {
		case n >= 34 && w[1]|0x20 == 'h' && w[3] == '_' && strings.IndexByte("pousr", w[2]|0x20) >= 0:
			end = we // GitHub: ghp_, gho_, ghu_, ghs_, ghr_
		case n >= 31 && hasPrefixFold(w, "github_pat_"):
			end = we
		case equalFold(w, "glpat") && next == '-': // GitLab
			if e := sc.b64RunEnd(we + 1); e-(we+1) >= 20 {
				end = e
			}
		}
	case 'x': // Slack: xoxb-, xoxa-, xoxp-, xoxr-, xoxs-
		if n == 4 && hasPrefixFold(w, "xox") && strings.IndexByte("baprs", w[3]|0x20) >= 0 && next == '-' {
			if e := sc.b64RunEnd(we); e-ws >= 15 {
				end = e
			}
		}
	}
	if end < 0 {
		return match{}
	}
	return match{Secret, ws, end}
}

// secretFirst reports whether a key of a well-known shape may start with c.
func secretFirst(c byte) bool {
	switch c | 0x20 {
	case 's', 'p', 'r', 'a', 'g', 'x':
		return true
	}
	return false
}

// allAlnum reports whether s holds only ASCII letters and digits.
func allAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cAlnum == 0 {
			return false
		}
	}
	return true
}

// lowerAlnum reports whether s holds only lower-case letters and digits.
func lowerAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z') && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// upperAlnum reports whether s holds only upper-case letters and digits.
func upperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// genericSecret detects a long random string in the run of
// [A-Za-z0-9_+/-] (and trailing '=' padding) that holds the word at ws.
//
// A run is found at its first word and ends where another identifier
// starts. A run that is a path (two or more of its '/'-separated segments
// are natural words, such as "data" or "CoreSimulator") is looked at
// segment by segment; any other run as a whole. When a segment is a
// secret, the rest of the run is a new run, and the part before it is
// judged again on its own: that is how the text is seen when it is
// scrubbed again, so scrubbing twice changes nothing.
func (sc *scanner) genericSecret(ws int) match {
	in := sc.in
	start := ws
	// A run may start with base64 punctuation before the word.
	for start > sc.last && (in[start-1] == '+' || in[start-1] == '-') {
		start--
	}
	if ws < sc.secretEnd {
		// inside a path run: look at the segment that starts here
		if !sc.secretPath || in[start-1] != '/' {
			return match{}
		}
		end := start
		for end < sc.secretEnd && in[end] != '/' {
			end++
		}
		if !looksSecret(in[start:end]) {
			return match{}
		}
		m := match{Secret, start, end}
		sc.secretEnd = end // what follows is a new run
		if before := in[sc.secretStart:start]; !sc.inValue && !isPathLike(before) && looksSecret(before) {
			sc.pend = m
			return match{Secret, sc.secretStart, start}
		}
		return m
	}
	// A finding inside a run ends what the run's secret may be (below),
	// and the words after it are looked at again: where the bytes of the
	// run end is read once (DE89...000-abc-DE89...000-abc-... in one run).
	if ws < sc.secretRunFrom || ws >= sc.secretRunEnd {
		sc.secretRunFrom, sc.secretRunEnd = ws, sc.classEnd(ws, cSecret)
	}
	end := sc.secretRunEnd
	if pad := sc.padEnd(end); pad > end && !isWord(sc.b(pad)) && sc.b(pad) != '[' && sc.b(pad) != '"' && sc.b(pad) != '\'' {
		end = pad // base64 padding, not the '=' of a key
	}
	sc.secretStart, sc.secretEnd, sc.secretPath = start, end, false
	if end-start < 32 {
		return match{}
	}
	end = sc.firstFinding(sc.wordEnd(ws), end)
	sc.secretEnd = end
	run := in[start:end]
	if isPathLike(run) {
		sc.secretPath = true
		run = run[:strings.IndexByte(run, '/')]
	}
	if !looksSecret(run) {
		// Digits glued with '_' to a random rest (+0000000_Az19...Zay):
		// the digits may be a phone number that the glued reading finds,
		// and after its marker the rest, '_' and all, is a run of its
		// own, judged without the digits that kept the whole run's
		// entropy low.
		if u := strings.IndexByte(run, '_'); u > 0 && allOf(strings.TrimLeft(run[:u], "+-"), isDigit) && looksSecret(run[u:]) {
			sc.secretEnd = start + len(run)
			return match{Secret, start + u, start + len(run)}
		}
		return match{}
	}
	sc.secretEnd = start + len(run) // what follows is a new run
	return match{Secret, start, start + len(run)}
}

// isPathLike reports whether at least two '/'-separated segments of run
// are natural words.
func isPathLike(run string) bool {
	words := 0
	for run != "" {
		seg := run
		if i := strings.IndexByte(run, '/'); i >= 0 {
			seg, run = run[:i], run[i+1:]
		} else {
			run = ""
		}
		if naturalWord(seg) {
			if words++; words == 2 {
				return true
			}
		}
	}
	return false
}

// padEnd returns the end of up to two '=' at p.
func (sc *scanner) padEnd(p int) int {
	for i := 0; i < 2 && sc.b(p) == '='; i++ {
		p++
	}
	return p
}

// firstFinding returns the start of the first finding of the other
// detectors at the words in in[from:to], or to. It also asks the words
// after to that an e-mail address found from them could reach back from
// into in[from:to]: its local part runs back over the bytes that end a
// run (an 'é', a '.') as far as 64 bytes before its '@'. Those words are
// at most 64 bytes past to, so the scan stays linear.
func (sc *scanner) firstFinding(from, to int) int {
	if sc.lookahead {
		return to
	}
	sc.lookahead = true
	defer func() { sc.lookahead = false }()
	in := sc.in
	for p := from; p < to || p < len(in) && p < to+64 && reachesBack(in[p]); {
		if !isWord(in[p]) {
			p++
			continue
		}
		ws := p
		var bits uint16
		p, bits = readWord(in, p)
		if m := sc.word(ws, p, bits); m.kind != 0 && m.start < to {
			return max(m.start, from)
		}
	}
	return to
}

// naturalWord reports whether s is a word of three or more letters that
// is lower case (data), upper case (DCIM), or made of capitalized words of
// three or more letters (CoreSimulator), as folder names are and pieces of
// random strings hardly are.
func naturalWord(s string) bool {
	if len(s) < 3 {
		return false
	}
	lower, upper := true, true
	for i := 0; i < len(s); i++ {
		lower = lower && s[i] >= 'a' && s[i] <= 'z'
		upper = upper && isUpper(s[i])
	}
	if lower || upper {
		return true
	}
	for i := 0; i < len(s); {
		if !isUpper(s[i]) {
			return false
		}
		j := i + 1
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		if j-i < 3 {
			return false
		}
		i = j
	}
	return true
}

// looksSecret reports whether s looks like a random secret: at least 32
// bytes with upper- and lower-case letters and three digits, not only hex
// digits, with a Shannon entropy of at least 4 bits per byte, and not made
// mostly of word-like parts as identifiers in code are
// (Java_com_example_notes_NativeBridge_render+164).
func looksSecret(s string) bool {
	if len(s) < 32 {
		return false
	}
	var upper, lower, digits int
	hexOnly := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUpper(c):
			upper++
		case c >= 'a' && c <= 'z':
			lower++
		case isDigit(c):
			digits++
		}
		if !isHex(c) && c != '-' {
			hexOnly = false
		}
	}
	if hexOnly || upper == 0 || lower == 0 || digits < 3 {
		return false
	}
	return entropy(s) >= 4.0 && wordShare(s) < 0.5
}

// entropy returns the Shannon entropy of the bytes of s, in bits per byte.
func entropy(s string) float64 {
	var counts [256]int32
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// wordShare returns the share of the bytes of s that belong to word-like
// parts: runs of four or more letters that are lower case after an
// optional capital (Bridge, render) or all upper case (JSON). Identifiers
// in code are mostly made of them; random strings, whose case changes
// every other letter, hardly.
func wordShare(s string) float64 {
	inWords := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !isLetter(c) {
			i++
			continue
		}
		j := i + 1
		if isUpper(c) {
			for j < len(s) && isUpper(s[j]) {
				j++
			}
			if j-i > 1 && j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
				j-- // the last capital starts the next part (JSONParser)
			}
		}
		if j == i+1 || !isUpper(c) {
			for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
				j++
			}
		}
		// A word is 4 or more letters; an all-capital run counts only up
		// to 6 letters (JSON, HTTP): longer ones are rare in code but
		// common in keys (...EXAMPLEKEY).
		if n := j - i; n >= 4 && (n <= 6 || !isUpper(s[j-1])) {
			inWords += n
		}
		i = j
	}
	return float64(inWords) / float64(len(s))
}
