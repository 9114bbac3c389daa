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
