package scrub

// userPath detects the user name in a home directory path. in[ws:we] is
// the word after a '/' or '\': "Users" (/Users/jane/, C:\Users\jane\,
// \\?\C:\Users\jane), "home" at the root (/home/jane/) or "Documents" of
// C:\Documents and Settings\jane\. Folders that belong to no person, such
// as /Users/Shared/, C:\Users\Public\ or a build machine's /home/runner/,
// are kept.
func (sc *scanner) userPath(ws, we int) match {
	in := sc.in
	w := in[ws:we]
	ns := 0 // start of the name
	switch {
	case w == "Users" || equalFold(w, "users") && (sc.driveBefore(ws-1) || sc.atRoot(ws)):
		ns = we
	case equalFold(w, "home"):
		// only at the root: not /api/home/...
		if !sc.atRoot(ws) {
			return match{}
		}
		ns = we
	case equalFold(w, "documents") && hasPrefixFold(in[we:], " and settings"):
		ns = we + len(" and settings")
	case isAccountsFolder(w) && in[ws-1] == '/' && sc.inAppFolder(ws-1):
		// an account's folder in an Android app's own folder:
		// /data/user/0/com.example.notes/files/accounts/jdoe/
		ns = we
	default:
		return match{}
	}
	if c := sc.b(ns); c != '/' && c != '\\' {
		return match{}
	}
	backslash := in[ns] == '\\'
	ns++
	ne := ns
	for ne < len(in) && class[in[ne]]&cPathEnd == 0 {
		ne++
	}
	if backslash && sc.b(ne) == ' ' {
		// Windows user names may hold spaces: take them if a '\' follows.
		e := ne
		for e < len(in) && e-ns < 64 && (class[in[e]]&cPathEnd == 0 || in[e] == ' ') {
			e++
		}
		if sc.b(e) == '\\' {
			ne = e
		}
	}
	for ne > ns && in[ne-1] == '.' {
		ne--
	}
	if ne == ns || isSharedHome(in[ns:ne]) {
		return match{}
	}
	return match{UserPath, ns, ne}
}

// atRoot reports whether the word at ws starts a path at the root of a
// file system: after a '/' that follows no word (not /api/home/, but
// "/home/", "file:///home/").
func (sc *scanner) atRoot(ws int) bool {
	in := sc.in
	return in[ws-1] == '/' && (ws < 2 || class[in[ws-2]]&(cWord|cLocal) == 0 && in[ws-2] != '~' && in[ws-2] != ']')
}

// isAccountsFolder reports whether w names a folder whose folders are
// named after people: accounts, users, profiles.
func isAccountsFolder(w string) bool {
	if c := w[0] | 0x20; c != 'a' && c != 'u' && c != 'p' {
		return false
	}
	return equalFoldAny(w, "accounts", "account", "users", "user", "profiles", "profile")
}

// inAppFolder reports whether the path that holds the '/' at p runs
// through an Android app's own folder before p: /data/user/N/<pkg>/,
// /data/user_de/N/<pkg>/, /data/data/<pkg>/ or Android/data/<pkg>/ of
// the shared storage.
func (sc *scanner) inAppFolder(p int) bool {
	in := sc.in
	start := p
	for start > 0 && p-start < 512 {
		c := in[start-1]
		if c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' || c == '<' || c == '>' {
			break
		}
		start--
	}
	path := in[start:p]
	for _, root := range [...]string{"/data/user/", "/data/user_de/", "/data/data/", "/android/data/"} {
		for i := 0; i+len(root) <= len(path); i++ {
			if hasPrefixFold(path[i:], root) {
				return true
			}
		}
	}
	return false
}

// driveBefore reports whether a drive such as "C:" ends before the
// separator at p (also glued: cache_C:).
func (sc *scanner) driveBefore(p int) bool {
	return sc.b(p-1) == ':' && isLetter(sc.b(p-2)) && (!isWord(sc.b(p-3)) || sc.b(p-3) == '_')
}

// isSharedHome reports whether a home folder name belongs to no person.
func isSharedHome(name string) bool {
	return equalFoldAny(name, sharedHomes[:]...)
}

var sharedHomes = [...]string{
	"shared", "public", "default", "default user", "all users", "guest", "defaultaccount",
	"default.migrated", "administrator", "root", "runner", "ubuntu", "build", "builder",
}

// installDirs detects the random names Android gives an app's install
// folders (since Android 8; the outer one since 11), which differ between
// installs of the same app and so name an install:
// /data/app/~~2zPOOUcyyxvkBKyf4ncyqA==/com.example.notes-qh63ZqVw9GXQGEtiEHnmDg==/lib/arm64/libnotes.so.
// in[ws:we] is the word "app" after "/data/". It returns the first random
// name and pends the package folder's (com.example.notes stays); a
// numbered folder of older versions (com.example.notes-1) is no finding.
func (sc *scanner) installDirs(ws, we int) match {
	in := sc.in
	if ws < 6 || !equalFold(in[ws-6:ws], "/data/") || sc.b(we) != '/' {
		return match{}
	}
	var outer match
	p := we + 1
	if sc.b(p) == '~' && sc.b(p+1) == '~' {
		e := randomDirEnd(in, p+2)
		if e < 0 || sc.b(e) != '/' {
			return match{}
		}
		outer = match{DeviceID, p + 2, e}
		p = e + 1
	}
	// the package's folder: its name, '-' and a random name
	var inner match
	for q := p; q < len(in) && q-p <= 256 && isPackageByte(in[q]); q++ {
		if q+1 < len(in) && in[q+1] == '-' {
			if e := randomDirEnd(in, q+2); e > 0 && (e == len(in) || in[e] == '/' || class[in[e]]&cPathEnd != 0) {
				inner = match{DeviceID, q + 2, e}
			}
			break
		}
	}
	if outer.kind == 0 {
		return inner
	}
	if inner.kind != 0 {
		sc.pend = inner
	}
	return outer
}

// randomDirEnd returns the end of a random folder name at in[p]: 16 to
// 64 characters of URL-safe base64, or 8 or more that end in its '='
// padding, with a digit or letters of both cases (not a word), or -1.
func randomDirEnd(in string, p int) int {
	e := p
	upper, lower, digit := false, false, false
chars:
	for ; e < len(in) && e-p <= 64; e++ {
		switch c := in[e]; {
		case isUpper(c):
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case isDigit(c):
			digit = true
		case c == '-' || c == '_' || c == '=':
		default:
			break chars
		}
	}
	if e-p < 16 && !(e-p >= 8 && in[e-1] == '=') || e-p > 64 || !digit && !(upper && lower) {
		return -1
	}
	return e
}

// isPackageByte reports whether c may be part of an Android package's
// name (letters, digits, '_' and '.').
func isPackageByte(c byte) bool { return isWord(c) || c == '.' }

// volumeID detects the serial number of a removable volume (an SD card,
// a USB drive) where Android names its folder after it:
// /storage/1A2B-3C4D/, /mnt/media_rw/1A2B-3C4D/, and the externalstorage
// provider's tree/1A2B-3C4D:DCIM and document/1A2B-3C4D%3A… URIs. A card
// keeps it for life, so it names a device as an id does. in[ws:ws+4] is
// its first half, after a '/' and before a '-'.
func (sc *scanner) volumeID(ws int) match {
	in := sc.in
	e, _, ok := sc.hexGroups(ws, 2, 4, '-')
	if !ok || isWord(sc.b(e)) || sc.b(e) == '-' {
		return match{}
	}
	for _, folder := range [...]string{"/storage", "/media_rw", "/tree", "/document"} {
		if ws-1 >= len(folder) && equalFold(in[ws-1-len(folder):ws-1], folder) {
			return match{DeviceID, ws, e}
		}
	}
	return match{}
}
