package sdk

import (
	"reflect"
	"runtime/debug"
	"strings"
)

// sdkPackage is this package's import path: its frames are never the
// app's.
var sdkPackage = reflect.TypeFor[Client]().PkgPath()

// inAppRules decide which stack frames are the app's own code. Each rule
// is a module or package prefix, matched at a '.' or '/' boundary, that
// includes or excludes frames; the longest matching prefix decides, so
// "github.com/example/notes" can include a module while
// "-github.com/example/notes/third_party" excludes a part of it. A frame
// no rule matches is not the app's.
//
// The defaults, which need no configuration:
//
//   - the main module's path (debug.ReadBuildInfo), for Go programs;
//   - Go's package main;
//   - the app id when it is a reverse-DNS name (com.example.notes), for
//     the JVM and other code that gomobile apps name by their package;
//   - not the SDK's own package, not the Go runtime or standard library.
//
// Config.InAppPrefixes adds rules, and wins a tie with a default, so an
// app can include or exclude what the defaults decide.
type inAppRules struct {
	rules []inAppRule
}

type inAppRule struct {
	prefix  string
	include bool
	// user is set for rules from Config.InAppPrefixes.
	user bool
}

// newInAppRules returns the default rules for the app appID in a program
// whose main module is mainModule (empty if unknown), and the rules of
// prefixes, a comma-separated list of prefixes, each excluding instead
// of including when it starts with '-'.
func newInAppRules(appID, prefixes, mainModule string) inAppRules {
	var r inAppRules
	add := func(prefix string, include, user bool) {
		if prefix != "" {
			r.rules = append(r.rules, inAppRule{prefix: prefix, include: include, user: user})
		}
	}
	if mainModule != "command-line-arguments" { // go run of files
		add(mainModule, true, false)
	}
	add("main", true, false)
	if reverseDNS(appID) {
		add(appID, true, false)
	}
	add(sdkPackage, false, false)
	for _, p := range splitList(prefixes) {
		if rest, ok := strings.CutPrefix(p, "-"); ok {
			add(strings.TrimSpace(rest), false, true)
		} else {
			add(p, true, true)
		}
	}
	return r
}

// mainModulePath returns the main module's path, or "" when the binary
// carries no build information.
func mainModulePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Path
	}
	return ""
}

// inApp reports whether a frame of module is the app's. goFrame says the
// frame is from a Go trace, whose standard library packages (no dot in
// their first path element, package main aside) are never the app's
// unless a rule of Config.InAppPrefixes says so.
func (r inAppRules) inApp(module string, goFrame bool) bool {
	if module == "" {
		return false
	}
	best := -1
	for i, rule := range r.rules {
		if !hasPathPrefix(module, rule.prefix) {
			continue
		}
		if best < 0 || r.beats(rule, r.rules[best]) {
			best = i
		}
	}
	if best < 0 {
		return false
	}
	rule := r.rules[best]
	if goFrame && !rule.user && goStdPackage(module) {
		return false
	}
	return rule.include
}

// beats reports whether rule a decides over rule b: the longer prefix,
// then the app's own rule, then an exclusion.
func (inAppRules) beats(a, b inAppRule) bool {
	switch {
	case len(a.prefix) != len(b.prefix):
		return len(a.prefix) > len(b.prefix)
	case a.user != b.user:
		return a.user
	default:
		return !a.include && b.include
	}
}

// hasPathPrefix reports whether module is prefix or starts with it
// followed by '.' or '/'.
func hasPathPrefix(module, prefix string) bool {
	return module == prefix || strings.HasPrefix(module, prefix) && len(module) > len(prefix) &&
		(module[len(prefix)] == '.' || module[len(prefix)] == '/')
}

// goStdPackage reports whether a Go package path is the runtime's or the
// standard library's: its first element has no dot (package main aside).
func goStdPackage(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	return pkg != "main" && !strings.Contains(first, ".")
}

// reverseDNS reports whether an app id is a reverse-DNS name such as
// com.example.notes: at least two labels, each starting with a letter,
// the first all lower-case letters (a top-level domain).
func reverseDNS(id string) bool {
	labels := strings.Split(id, ".")
	if len(labels) < 2 {
		return false
	}
	for i, l := range labels {
		if l == "" || !isLetter(l[0]) {
			return false
		}
		if i == 0 {
			for j := 0; j < len(l); j++ {
				if l[j] < 'a' || l[j] > 'z' {
					return false
				}
			}
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
