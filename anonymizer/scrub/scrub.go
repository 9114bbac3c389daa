package scrub

import (
	"strings"
	"sync"
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
		if sc.renorm {
			return s.normString(in)
		}
		return in
	}
	var b strings.Builder
	b.Grow(len(in) + 16)
	prev := 0
	for ; m.kind != 0; m = sc.next() {
		b.WriteString(in[prev:m.start])
		b.WriteString(m.kind.Marker())
		prev = m.end
	}
	if sc.renorm {
		return s.normString(in)
	}
	b.WriteString(in[prev:])
	return b.String()
}

// normString is String for a text that needs the detection copy.
func (s *Scrubber) normString(in string) string {
	var b strings.Builder
	prev := 0
	s.normFind(in, func(k Kind, start, end int) {
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
	sc := scanner{s: s, in: in, atSign: -1, pct40: -1}
	var buf [8]match
	ms := buf[:0]
	for m := sc.next(); m.kind != 0; m = sc.next() {
		ms = append(ms, m)
	}
	if sc.renorm {
		s.normFind(in, fn)
		return
	}
	for _, m := range ms {
		fn(m.kind, m.start, m.end)
	}
}

// normFind is Find on the detection copy of in: each finding is the span
// of in that the copy's finding came from.
func (s *Scrubber) normFind(in string, fn func(k Kind, start, end int)) {
	nt, _ := s.norms.Get().(*normText)
	if nt == nil {
		nt = &normText{}
	}
	defer func() {
		if cap(nt.b) <= maxPooledNorm {
			s.norms.Put(nt)
		}
	}()
	nt.build(in)
	sc := scanner{s: s, in: nt.text(), atSign: -1, pct40: -1, normed: true}
	prev := 0
	for m := sc.next(); m.kind != 0; m = sc.next() {
		start, end := nt.span(m.start, m.end)
		start = max(start, prev)
		if end <= start {
			continue // inside the units of the previous finding
		}
		fn(m.kind, start, end)
		prev = end
	}
}
