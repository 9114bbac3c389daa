// Package deobfuscate restores the class, method, file and line names
// that R8 or ProGuard obfuscated in an Android app's stack traces, from
// the mapping file the app's build wrote, on the collector: no stack and
// no mapping leaves it for a vendor.
//
// Parse reads a mapping file into a Mapping, a compact lookup from
// obfuscated class, method and line to the original frames, inlined
// frames included. Mapping.Crash rewrites a crash's frames and
// exception type with it. A Cache finds the mapping uploaded for an app
// version and build (docs/dashboard.md, "Deobfuscation"), keeping the
// parsed mappings in use within a memory bound.
//
// The format (ProGuard's, as R8 extends it):
//
//	# {"id":"com.android.tools.r8.mapping","version":"2.2"}
//	com.example.notes.editor.NoteEditor -> c2.b:
//	# {"id":"sourceFile","fileName":"NoteEditor.kt"}
//	    com.example.notes.data.NoteRepository repository -> a
//	    1:3:void save(com.example.notes.data.Note):40:42 -> a
//	    5:5:void com.example.notes.data.Note.requireTitle():52:52 -> a
//	    5:5:void save(com.example.notes.data.Note):43 -> a
//
// A class line maps an original class to its obfuscated name; the member
// lines under it map fields (ignored: stacks hold no fields) and methods.
// A method line may carry the obfuscated line range it covers and the
// original line or range it maps to; consecutive lines with one range
// are an inline chain, innermost first: obfuscated line 5 of c2.b.a is
// Note.requireTitle at line 52, inlined into NoteEditor.save at line 43.
// JSON comments carry metadata: the source file of a class, methods the
// compiler synthesized (left out of retraced stacks), and rewriteFrame
// rules (removeInnerFrames when a given exception is thrown).
// Outlines (com.android.tools.r8.outline) are not followed: a frame in an
// outline retraces to the outline itself.
package deobfuscate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// MaxLineBytes is the longest line a mapping file may have.
const MaxLineBytes = 1 << 20

// ErrInvalid wraps the errors of input that is not a mapping file.
var ErrInvalid = errors.New("not an R8/ProGuard mapping file")

// Mapping is a parsed mapping file: a lookup from obfuscated names to
// original ones. It is immutable and safe for concurrent use.
type Mapping struct {
	// classes are the classes by obfuscated name.
	classes map[string]*class
	// files are the source files of the classes that name one, by
	// original class name.
	files map[string]string
	// id is the pg_map_id header, "" if none.
	id string
	// version is the R8 mapping format version, "" for ProGuard's.
	version string
	// methods counts the method lines.
	methods int
	// size estimates the bytes the Mapping holds.
	size int64
}

// ID returns the mapping's id (the "# pg_map_id:" header R8 writes, which
// R8 also stores in the app), "" if it has none.
func (m *Mapping) ID() string { return m.id }

// FormatVersion returns the R8 mapping format version the file declares,
// "" for ProGuard's format without one.
func (m *Mapping) FormatVersion() string { return m.version }

// Classes returns the number of classes mapped.
func (m *Mapping) Classes() int { return len(m.classes) }

// Methods returns the number of method lines.
func (m *Mapping) Methods() int { return m.methods }

// Size estimates the memory the Mapping holds, in bytes.
func (m *Mapping) Size() int64 { return m.size }

// class is one class line and its methods.
type class struct {
	original string
	// file is the source file the metadata names, "" if none.
	file string
	// methods are the method chains by obfuscated method name, in file
	// order.
	methods map[string][]chain
}

// chain is one obfuscated method line range and the original frames it
// stands for: several when methods were inlined, innermost first; or a
// method line without a range.
type chain struct {
	ranged     bool
	start, end uint32
	frames     []member
	// rewrites are the rewriteFrame rules of the chain's members.
	rewrites []rewrite
}

// member is one method line.
type member struct {
	// class is the original class, "" for the enclosing class's.
	class string
	name  string
	// orig is how many original line numbers the line has: 0, 1 (a
	// line) or 2 (a range).
	orig               uint8
	origStart, origEnd uint32
	synthesized        bool
	minStart, minEnd   uint32
	ranged             bool
}

// rewrite is a rewriteFrame rule: when the exception thrown is throws (a
// JVM descriptor such as Ljava/lang/NullPointerException;), the first
// removeInner frames the chain retraces to are left out.
type rewrite struct {
	throws      string
	removeInner int
}

// parser holds the state of one Parse.
type parser struct {
	m       *Mapping
	cls     *class
	last    *member // the member line before, for its metadata
	lastKey string  // and its chain's obfuscated name
	strs    map[string]string
	line    int
}

// Parse reads a mapping file. It returns an error wrapping ErrInvalid,
// with the line number, for a line that is neither a comment, a class
// line nor a member line, and for a file without a class.
func Parse(r io.Reader) (*Mapping, error) {
	p := &parser{
		m:    &Mapping{classes: make(map[string]*class), files: make(map[string]string)},
		strs: make(map[string]string),
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrInvalid, p.line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrInvalid, p.line+1, MaxLineBytes)
		}
		return nil, fmt.Errorf("read mapping: %w", err)
	}
	if len(p.m.classes) == 0 {
		return nil, fmt.Errorf("%w: no class mapping", ErrInvalid)
	}
	p.m.size += int64(len(p.m.classes))*96 + int64(len(p.m.files))*48
	return p.m, nil
}

// intern returns s, sharing the memory of equal strings.
func (p *parser) intern(s string) string {
	if v, ok := p.strs[s]; ok {
		return v
	}
	s = strings.Clone(s)
	p.strs[s] = s
	p.m.size += int64(len(s)) + 16
	return s
}

func (p *parser) parseLine(line string) error {
	line = strings.TrimRight(line, " \t\r")
	trimmed := strings.TrimLeft(line, " \t")
	switch {
	case trimmed == "":
		return nil
	case strings.HasPrefix(trimmed, "#"):
		p.comment(strings.TrimSpace(trimmed[1:]))
		return nil
	case trimmed != line:
		return p.member(trimmed)
	}
	return p.class(line)
}

// class parses "original.Class -> obfuscated.Name:".
func (p *parser) class(line string) error {
	orig, obf, ok := strings.Cut(line, " -> ")
	obf, colon := strings.CutSuffix(strings.TrimSpace(obf), ":")
	orig = strings.TrimSpace(orig)
	if !ok || !colon || !isClassName(orig) || !isClassName(obf) {
		return fmt.Errorf("%q is not a class mapping (original -> obfuscated:)", clip(line))
	}
	c := &class{original: p.intern(orig), methods: make(map[string][]chain)}
	// A class mapped twice keeps the first, as retrace does.
	if _, dup := p.m.classes[obf]; !dup {
		p.m.classes[p.intern(obf)] = c
	}
	p.cls, p.last = c, nil
	return nil
}

// member parses a field or method line of the current class.
func (p *parser) member(line string) error {
	if p.cls == nil {
		return fmt.Errorf("member %q before any class", clip(line))
	}
	left, obf, ok := strings.Cut(line, " -> ")
	obf = strings.TrimSpace(obf)
	if !ok || obf == "" || strings.ContainsAny(obf, " \t") {
		return fmt.Errorf("%q is not a member mapping (... -> obfuscated)", clip(line))
	}
	var m member
	// "start:end:" before the return type.
	rest := left
	if a, b, tail, ok := twoNumbers(rest); ok {
		m.ranged, m.minStart, m.minEnd, rest = true, a, b, tail
		if m.minStart > m.minEnd {
			// Retrace tolerates an inverted range: it covers the same
			// lines.
			m.minStart, m.minEnd = m.minEnd, m.minStart
		}
	}
	open := strings.IndexByte(rest, '(')
	switch {
	case open < 0 && m.ranged:
		return fmt.Errorf("%q has a line range but no method", clip(line))
	case open < 0:
		// A field: "type name -> obfuscated".
		p.last = nil
		return nil
	}
	closeAt := strings.LastIndexByte(rest, ')')
	sp := strings.LastIndexByte(rest[:open], ' ')
	if closeAt < open || sp < 0 {
		return fmt.Errorf("%q is not a method mapping (type name(args) -> obfuscated)", clip(line))
	}
	qualified := rest[sp+1 : open]
	if qualified == "" {
		return fmt.Errorf("%q has no method name", clip(line))
	}
	if dot := strings.LastIndexByte(qualified, '.'); dot >= 0 {
		m.class, m.name = p.intern(qualified[:dot]), p.intern(qualified[dot+1:])
		if m.class == p.cls.original {
			m.class = ""
		}
	} else {
		m.name = p.intern(qualified)
	}
	if m.name == "" {
		return fmt.Errorf("%q has no method name", clip(line))
	}
	// ":origStart[:origEnd]" after the parameters.
	if tail := strings.TrimSpace(rest[closeAt+1:]); tail != "" {
		nums := strings.Split(strings.TrimPrefix(tail, ":"), ":")
		if !strings.HasPrefix(tail, ":") || len(nums) > 2 {
			return fmt.Errorf("%q: bad original line numbers %q", clip(line), tail)
		}
		for i, n := range nums {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return fmt.Errorf("%q: bad original line number %q", clip(line), n)
			}
			if i == 0 {
				m.origStart, m.origEnd = uint32(v), uint32(v)
			} else {
				m.origEnd = uint32(v)
			}
		}
		m.orig = uint8(len(nums))
	}
	p.add(p.intern(obf), m)
	return nil
}

// add appends m to the chain it continues, or starts a new one.
func (p *parser) add(obf string, m member) {
	p.m.methods++
	p.m.size += 64
	chains := p.cls.methods[obf]
	if n := len(chains); n > 0 && m.ranged && p.last != nil && p.lastKey == obf {
		if c := &chains[n-1]; c.ranged && c.start == m.minStart && c.end == m.minEnd {
			c.frames = append(c.frames, m)
			p.last = &c.frames[len(c.frames)-1]
			return
		}
	}
	// A chain, its frames slice, and the chains slice's and map's growth
	// (measured with BenchmarkParse: the heap a Mapping takes).
	p.m.size += 112
	chains = append(chains, chain{ranged: m.ranged, start: m.minStart, end: m.minEnd, frames: []member{m}})
	p.cls.methods[obf] = chains
	c := &chains[len(chains)-1]
	p.last, p.lastKey = &c.frames[0], obf
}

// metaRE finds a JSON comment's id; R8 writes keys and strings with
// double or single quotes.
var (
	metaIDRE   = regexp.MustCompile(`["']?id["']?\s*:\s*["']([^"']*)["']`)
	metaFileRE = regexp.MustCompile(`["']fileName["']\s*:\s*["']([^"']*)["']`)
	metaVerRE  = regexp.MustCompile(`["']version["']\s*:\s*["']([^"']*)["']`)
	throwsRE   = regexp.MustCompile(`throws\((L[^;()]+;)\)`)
	removeRE   = regexp.MustCompile(`removeInnerFrames\((\d+)\)`)
)

// comment applies a comment's metadata: the header's map id and format
// version, a class's source file, a class's or method's synthesized
// mark, a method's rewriteFrame rule. Other comments are ignored.
func (p *parser) comment(text string) {
	if id, ok := strings.CutPrefix(text, "pg_map_id:"); ok {
		p.m.id = p.intern(strings.TrimSpace(id))
		return
	}
	if !strings.HasPrefix(text, "{") {
		return
	}
	id := metaIDRE.FindStringSubmatch(text)
	if id == nil {
		return
	}
	switch id[1] {
	case "com.android.tools.r8.mapping":
		if v := metaVerRE.FindStringSubmatch(text); v != nil {
			p.m.version = p.intern(v[1])
		}
	case "sourceFile":
		if f := metaFileRE.FindStringSubmatch(text); f != nil && p.cls != nil && p.last == nil && f[1] != "" {
			p.cls.file = p.intern(f[1])
			p.m.files[p.cls.original] = p.cls.file
		}
	case "com.android.tools.r8.synthesized":
		if p.last != nil {
			p.last.synthesized = true
		}
	case "com.android.tools.r8.rewriteFrame":
		if p.last == nil {
			return
		}
		t, r := throwsRE.FindStringSubmatch(text), removeRE.FindStringSubmatch(text)
		if t == nil || r == nil {
			return
		}
		n, err := strconv.Atoi(r[1])
		if err != nil || n < 1 {
			return
		}
		chains := p.cls.methods[p.lastKey]
		c := &chains[len(chains)-1]
		c.rewrites = append(c.rewrites, rewrite{throws: p.intern(t[1]), removeInner: n})
	}
}

// twoNumbers parses "a:b:" at the start of s.
func twoNumbers(s string) (a, b uint32, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || !isDigits(s[:i]) {
		return 0, 0, s, false
	}
	j := strings.IndexByte(s[i+1:], ':')
	if j <= 0 || !isDigits(s[i+1:i+1+j]) {
		return 0, 0, s, false
	}
	x, err1 := strconv.ParseUint(s[:i], 10, 32)
	y, err2 := strconv.ParseUint(s[i+1:i+1+j], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, s, false
	}
	return uint32(x), uint32(y), s[i+2+j:], true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isClassName reports whether s looks like a JVM class name: no spaces,
// no parentheses or colons.
func isClassName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t():;,")
}

// clip shortens a line for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
