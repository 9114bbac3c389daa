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
