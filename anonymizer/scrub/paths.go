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
	case w == "Users" || equalFold(w, "users") && sc.driveBefore(ws-1):
		ns = we
	case w == "home":
		// only at the root: not /api/home/...
		if in[ws-1] != '/' || ws >= 2 && (class[in[ws-2]]&(cWord|cLocal) != 0 || in[ws-2] == '~' || in[ws-2] == ']') {
			return match{}
		}
		ns = we
	case equalFold(w, "documents") && hasPrefixFold(in[we:], " and settings"):
		ns = we + len(" and settings")
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

// driveBefore reports whether a drive such as "C:" ends before the
// separator at p.
func (sc *scanner) driveBefore(p int) bool {
	return sc.b(p-1) == ':' && isLetter(sc.b(p-2)) && !isWord(sc.b(p-3))
}

// isSharedHome reports whether a home folder name belongs to no person.
func isSharedHome(name string) bool {
	for _, s := range sharedHomes {
		if equalFold(name, s) {
			return true
		}
	}
	return false
}

var sharedHomes = [...]string{
	"shared", "public", "default", "default user", "all users", "guest", "defaultaccount",
	"default.migrated", "administrator", "root", "runner", "ubuntu", "build", "builder",
}
