package scrub

import "strings"

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

// A Scrubber replaces identifiers in text with markers. It is immutable
// after [New] and safe for concurrent use. The zero Scrubber has every
// detector enabled and no extra keys.
type Scrubber struct {
	disabled uint32              // bit k is set when Kind k is off
	extraKey map[string]struct{} // normalized Config.ExtraKeys
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
	b.WriteString(in[prev:])
	return b.String()
}

// Find calls fn for each identifier in in, in order, with its kind and its
// byte offsets: in[start:end] is what [Scrubber.String] replaces. Findings
// do not overlap. Find does not allocate when in holds no identifier.
func (s *Scrubber) Find(in string, fn func(k Kind, start, end int)) {
	sc := scanner{s: s, in: in, atSign: -1, pct40: -1}
	for m := sc.next(); m.kind != 0; m = sc.next() {
		fn(m.kind, m.start, m.end)
	}
}
