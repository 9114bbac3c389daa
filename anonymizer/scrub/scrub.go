package scrub

import (
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Config configures a [Scrubber]. The zero Config enables every detector.
type Config struct {
	// Disabled lists detectors that are switched off, for operators who
	// accept the risk; by default none is.
	Disabled []Kind
	// ExtraKeys are further attribute-key names that name identifiers.
	// They are normalized like [Scrubber.IsIdentifierKey] does, so
	// "Loyalty-Number" also matches "loyalty_number".
	ExtraKeys []string
}

// A Scrubber replaces identifiers in text with markers. Its configuration
// is immutable after [New], and it is safe for concurrent use. The zero
// Scrubber has every detector enabled and no extra keys. A Scrubber must
// not be copied after first use.
type Scrubber struct {
	disabled uint32              // bit k is set when Kind k is off
	extraKey map[string]struct{} // normalized Config.ExtraKeys
	extraMax int                 // the length of the longest of extraKey
	norms    sync.Pool           // *normText buffers for detection copies
}

// New returns a Scrubber configured by cfg.
func New(cfg Config) *Scrubber {
	s := &Scrubber{}
	for _, k := range cfg.Disabled {
		if k.valid() {
			s.disabled |= 1 << k
		}
	}
	for _, key := range cfg.ExtraKeys {
		var k normKey
		k.set(key)
		if k.n == 0 {
			continue
		}
		if s.extraKey == nil {
			s.extraKey = make(map[string]struct{}, len(cfg.ExtraKeys))
		}
		s.extraKey[string(k.b[:k.n])] = struct{}{}
		s.extraMax = max(s.extraMax, k.n)
	}
	return s
}

// on reports whether the detector of k is enabled.
func (s *Scrubber) on(k Kind) bool { return s.disabled&(1<<k) == 0 }

// String returns in with every identifier replaced by the marker of its
// kind. When in holds no identifier, String returns in itself without
// allocating.
func (s *Scrubber) String(in string) string {
	sc := scanner{s: s, in: in, atSign: -1, pct40: -1}
	m := sc.next()
	if m.kind == 0 {
		switch {
		case sc.renorm:
			return s.slowString(in)
		case sc.glued:
			return s.gluedString(in, nil)
		}
		return in
	}
	// Write the result as the findings come, and keep the first ones in
	// case the text turns out to be glued and its lines are read again.
	var buf [16]match
	ms := buf[:0]
	var b strings.Builder
	b.Grow(len(in) + 16)
	prev := 0
	for ; m.kind != 0; m = sc.next() {
		if len(ms) < cap(ms) {
			ms = append(ms, m)
		}
		b.WriteString(in[prev:m.start])
		b.WriteString(m.kind.Marker())
		prev = m.end
	}
	switch {
	case sc.renorm:
		return s.slowString(in)
	case sc.glued && len(ms) < cap(ms):
		return s.gluedString(in, ms)
	case sc.glued:
		ms, _ = s.find(in, nil)
		return build(in, ms)
	}
	b.WriteString(in[prev:])
	return b.String()
}

// gluedString is String for a text with words glued with underscores
// that needs no detection copy, whose first reading found ms.
func (s *Scrubber) gluedString(in string, ms []match) string {
	nt := s.getNorm()
	defer s.putNorm(nt)
	if ms == nil {
		found := s.gluedFind(nt, in, nt.ms[:0])
		nt.ms = found[:0]
		return build(in, found)
	}
	return build(in, s.gluedFind(nt, in, ms))
}

// build returns in with the findings ms replaced by their markers.
func build(in string, ms []match) string {
	if len(ms) == 0 {
		return in
	}
	var b strings.Builder
	b.Grow(len(in) + 16)
	prev := 0
	for _, m := range ms {
		b.WriteString(in[prev:m.start])
		b.WriteString(m.kind.Marker())
		prev = m.end
	}
	b.WriteString(in[prev:])
	return b.String()
}

// find appends the findings of in to ms, reading words glued with
// underscores a second time (see gluedFind), unless in needs the
// detection copy: then it reports slow, and slowFind must read it.
func (s *Scrubber) find(in string, ms []match) (_ []match, slow bool) {
	sc := scanner{s: s, in: in, atSign: -1, pct40: -1}
	for m := sc.next(); m.kind != 0; m = sc.next() {
		ms = append(ms, m)
	}
	switch {
	case sc.renorm:
		return ms, true
	case sc.glued:
		nt := s.getNorm()
		ms = s.gluedFind(nt, in, ms)
		s.putNorm(nt)
	}
	return ms, false
}

// slowString is String for a text that needs the detection copy.
func (s *Scrubber) slowString(in string) string {
	var b strings.Builder
	prev := 0
	s.slowFind(in, func(k Kind, start, end int) {
		if b.Len() == 0 {
			b.Grow(len(in) + 16)
		}
		b.WriteString(in[prev:start])
		b.WriteString(k.Marker())
		prev = end
	})
	if b.Len() == 0 {
		return in
	}
	b.WriteString(in[prev:])
	return b.String()
}

// Find calls fn for each identifier in in, in order, with its kind and its
// byte offsets: in[start:end] is what [Scrubber.String] replaces. Findings
// do not overlap. Find does not allocate when in holds no identifier.
func (s *Scrubber) Find(in string, fn func(k Kind, start, end int)) {
	var buf [8]match
	ms, slow := s.find(in, buf[:0])
	if slow {
		s.slowFind(in, fn)
		return
	}
	for _, m := range ms {
		fn(m.kind, m.start, m.end)
	}
}

// getNorm returns buffers for a detection copy from the pool.
func (s *Scrubber) getNorm() *normText {
	if nt, _ := s.norms.Get().(*normText); nt != nil {
		return nt
	}
	return &normText{}
}

// putNorm returns nt to the pool, unless its buffers grew large.
func (s *Scrubber) putNorm(nt *normText) {
	if cap(nt.b) <= maxPooledNorm && cap(nt.u) <= maxPooledNorm {
		nt.ms = nt.ms[:0]
		s.norms.Put(nt)
	}
}

// slowFind is Find for a text that needs the detection copy (see
// normalize.go): it reads the copy, and a second time the lines of it
// that have words glued with underscores (see gluedFind). Its buffers
// come from a pool.
func (s *Scrubber) slowFind(in string, fn func(k Kind, start, end int)) {
	nt := s.getNorm()
	defer s.putNorm(nt)
	nt.build(in)
	text := nt.text()
	ms := nt.ms[:0]
	sc := scanner{s: s, in: text, atSign: -1, pct40: -1, normed: true}
	for m := sc.next(); m.kind != 0; m = sc.next() {
		ms = append(ms, m)
	}
	if sc.glued {
		ms = s.gluedFind(nt, text, ms)
	}
	nt.ms = ms
	prev := 0
	for _, m := range ms {
		start, end := nt.span(m.start, m.end)
		start = max(start, prev)
		if end <= start {
			continue // inside the units of the previous finding
		}
		fn(m.kind, start, end)
		prev = end
	}
}

// gluedFind reads each line of text that has a word glued with
// underscores (see gluedWord) a second time, with the underscores of its
// words as spaces, and merges what it finds into ms, the findings of the
// first reading, which it returns. The second reading keeps the keys that
// underscores join whole (see scanner.glue).
func (s *Scrubber) gluedFind(nt *normText, text string, ms []match) []match {
	n := len(ms)
	before := 0 // ms[:before] end before the word looked at
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '_')
		if j < 0 {
			break
		}
		ws := i + j
		for ws > 0 && isWord(text[ws-1]) {
			ws--
		}
		we, bits := readWord(text, ws)
		if !gluedWord(text, ws, we, bits) && !underscoreAfter(text, ms[:n], &before, ws, we) {
			i = we
			continue
		}
		ls := strings.LastIndexByte(text[:ws], '\n') + 1
		le := len(text)
		if k := strings.IndexByte(text[we:], '\n'); k >= 0 {
			le = we + k
		}
		line := text[ls:le]
		nt.u = unglue(nt.u, line)
		sc := scanner{s: s, in: unsafe.String(&nt.u[0], len(nt.u)), atSign: -1, pct40: -1, normed: true, glue: line}
		for m := sc.next(); m.kind != 0; m = sc.next() {
			m.start, m.end = m.start+ls, m.end+ls
			ms = append(ms, m)
		}
		i = le
	}
	return mergeMatches(ms, n)
}

// underscoreAfter reports whether one of the findings ms, in order, ends
// at an underscore of the word text[ws:we]: the marker that replaces the
// finding is glued to the rest of the word (see gluedWord), so the word
// is read a second time now, as it will be when the output is scrubbed
// again. *before counts the findings that end before the word; words come
// in order, so each finding is looked at once or twice.
func underscoreAfter(text string, ms []match, before *int, ws, we int) bool {
	for *before < len(ms) && ms[*before].end < ws {
		*before++
	}
	for j := *before; j < len(ms) && ms[j].end < we; j++ {
		if text[ms[j].end] == '_' {
			return true
		}
	}
	return false
}

// mergeMatches merges the findings ms[:n] and ms[n:], each in order and
// without overlaps, into one list in order: findings that overlap become
// one, of the kind of the one that starts first. It works in place.
func mergeMatches(ms []match, n int) []match {
	if n == 0 || n == len(ms) {
		return ms
	}
	slices.SortStableFunc(ms, func(a, b match) int { return a.start - b.start })
	out := ms[:1]
	for _, m := range ms[1:] {
		last := &out[len(out)-1]
		if m.start < last.end {
			last.end = max(last.end, m.end)
			continue
		}
		out = append(out, m)
	}
	return out
}
