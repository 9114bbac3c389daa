package scrub

import (
	"fmt"
	"strings"
	"testing"
)

// vocabulary is what random crash text is made of: words, frames, paths,
// numbers and hex addresses. It has no word that makes the scrubber keep
// an identifier on purpose, such as "version" before a dotted quad or a
// key before a value, and its decimals have at most two decimals.
var vocabulary = []string{
	"at", "in", "failed", "Fatal", "error:", "Index", "out", "of", "range", "Thread", "main",
	"crashed", "Caused", "by:", "java.lang.IllegalStateException:", "NullPointerException",
	"com.example.notes.NoteEditor.save(NoteEditor.kt:42)", "kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)",
	"0x0000000100a8c000", "0x1a2b3c000", "+", "1234", "(abort+164)", "#00", "pc", "000000000004f7c4",
	"/system/lib64/libc.so", "/data/user/0/com.example.notes/files/db", "BuildId:",
	"3f2504e04f8941d39a0c0305e82c3301", "UIKitCore", "-[UIApplication sendEvent:]", "42", "7", "2026",
	"12:30:45.123", "2026-11-29", "4.12.0", "120.0.6099.129", "12.5", "0.25", "2147483648", "1764412245",
	"std::vector<int>::at", "Foo::bar", "->", "...", "[", "]", "{", "}", "(", ")", "=", ":", "-", "/", "@",
	"@objc", "icon@2x.png", "retry", "sync", "notes", "NoteEditorViewController.swift:212", "SIGSEGV",
	"EXC_BAD_ACCESS", "KERN_INVALID_ADDRESS", "Notes[4821:1207]", "okhttp3.internal.http2.Http2Stream",
	"AbstractSingletonProxyFactoryBean", "ümlaut", "日本語", "\"quoted\"", "'single'", "x", "ab", "deadbeef",
}

// separators join the words of random text.
var separators = []string{" ", " ", " ", "  ", "\n", ", ", ": ", "\t", "; ", " | ", "(", ")", ".", "/"}

// plantSeparators surround planted identifiers; they keep them apart from
// the words around them.
var plantSeparators = []string{"\n", ", ", ": ", "; ", "\t", " | ", " -> ", "\n\t"}

// TestPlantedIdentifiers builds random realistic text with random
// identifiers of every kind planted in it, and checks that each planted
// identifier is covered by findings and gone from the output.
func TestPlantedIdentifiers(t *testing.T) {
	s := New(Config{})
	g := newGen(20261129)
	kinds := Kinds()
	const cases = 3000
	perKind := map[Kind]int{}
	for i := range cases {
		var b strings.Builder
		type spot struct {
			p     planted
			start int
		}
		var spots []spot
		for range 5 + g.r.IntN(30) {
			if g.r.IntN(6) == 0 {
				p := g.any(kinds[g.r.IntN(len(kinds))])
				b.WriteString(g.pick(plantSeparators...))
				spots = append(spots, spot{p, b.Len() + p.secretAt()})
				b.WriteString(p.text)
				b.WriteString(g.pick(plantSeparators...))
			} else {
				b.WriteString(g.pick(vocabulary...))
				b.WriteString(g.pick(separators...))
			}
		}
		in := b.String()
		out := s.String(in)
		stripped := stripMarkers(out)
		for _, sp := range spots {
			perKind[sp.p.kind]++
			if !covered(s, in, sp.start, sp.start+len(sp.p.secret)) || strings.Count(stripped, sp.p.secret) >= strings.Count(in, sp.p.secret) {
				t.Errorf("case %d: planted %s %q not removed:\nin:  %q\nout: %q", i, sp.p.kind, sp.p.text, in, out)
			}
		}
		if again := s.String(out); again != out {
			t.Errorf("case %d: not idempotent:\nin:    %q\nout:   %q\nagain: %q", i, in, out, again)
		}
		if t.Failed() && i > 20 {
			break
		}
	}
	for _, k := range kinds {
		if perKind[k] < 50 {
			t.Errorf("only %d identifiers of kind %s planted", perKind[k], k)
		}
	}
	t.Log(fmt.Sprint("planted per kind: ", perKind))
}

// stripMarkers returns s without its markers.
func stripMarkers(s string) string {
	for _, k := range Kinds() {
		s = strings.ReplaceAll(s, k.Marker(), "")
	}
	return s
}
