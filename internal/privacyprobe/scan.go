package privacyprobe

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// minNeedle is the shortest folded text looked for: "8.8.8.8". Shorter
// parts of identifiers are not looked for on their own.
const minNeedle = 7

// minDigits is the fewest digits a digit-only form has: fewer would match
// digits of unrelated numbers by chance.
const minDigits = 10

// needlesOf returns the folded forms of id looked for in text, and its
// digit-only forms.
func needlesOf(id Identifier) (texts, digits []string) {
	for _, n := range append([]string{id.Value}, id.Needles...) {
		if f := fold(n); len(f) >= minNeedle && !contains(texts, f) {
			texts = append(texts, f)
		}
	}
	for _, d := range id.Digits {
		if len(d) >= minDigits && !contains(digits, d) {
			digits = append(digits, d)
		}
	}
	return texts, digits
}

// allNeedles returns needlesOf(id) as one list.
func allNeedles(id Identifier) []string {
	t, d := needlesOf(id)
	return append(t, d...)
}

// AddSecret adds a pseudo-plant for a value the batches carry that must
// never be stored or logged, such as the consent token (kind ConsentToken)
// or its consent id: value is looked for, and so are needles. For a JWS
// token, each of its segments is looked for too, and every string claim
// of 12 or more characters.
func (pr *Probe) AddSecret(k Kind, field, value string, needles ...string) *Plant {
	id := Identifier{Kind: k, Format: field, Value: value, Needles: needles}
	if parts := strings.Split(value, "."); len(parts) == 3 {
		id.Needles = append(id.Needles, parts...)
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var claims map[string]any
			if json.Unmarshal(b, &claims) == nil {
				for _, v := range claims {
					if s, ok := v.(string); ok && len(s) >= 12 {
						id.Needles = append(id.Needles, s)
					}
				}
			}
		}
	}
	pl := &Plant{ID: len(pr.Plants) + 1, Identifier: id, Context: "-", Field: field, Sent: value, Batch: -1, Event: -1, Outcome: OutcomeAccepted}
	pr.Plants = append(pr.Plants, pl)
	return pl
}

// Forms of a finding: how the text had to be normalised for the planted
// value to show.
const (
	// FormText: in the text, ignoring case, NFKC, zero-width characters.
	FormText = "text"
	// FormDecoded: after URL, JSON, ClickHouse or HTML escapes were
	// decoded.
	FormDecoded = "decoded"
	// FormDigits: its digits, with the separators inside a number
	// ignored.
	FormDigits = "digits"
)

// Find is a planted value found somewhere.
type Find struct {
	// Plant is what was found.
	Plant *Plant
	// Place is where: "clickhouse db.table.column", "collector log",
	// "spool", "clickhouse server log", "clickhouse data", ...
	Place string
	// Where is the row, line or byte within Place of the first finding.
	Where string
	// Form is how the text had to be normalised (FormText, FormDecoded,
	// FormDigits), and Needle the normalised form found.
	Form, Needle string
	// Snippet is the normalised text around the first finding.
	Snippet string
	// Count is how many times it was found in Place.
	Count int
}

// Scanner looks for the values of a probe's plants in text. It is safe
// for concurrent use.
type Scanner struct {
	plants []*Plant
	texts  index
	digits index

	mu       sync.Mutex
	finds    map[findKey]*Find
	collided map[int]string // plant ID → where a baseline scan found it
	scanned  map[string]int64
}

type findKey struct {
	plant int
	place string
}

// NewScanner returns a scanner for the plants of pr (AddSecret's
// included).
func NewScanner(pr *Probe) *Scanner {
	s := &Scanner{plants: pr.Plants, finds: map[findKey]*Find{}, collided: map[int]string{}, scanned: map[string]int64{}}
	s.digits.anywhere = true
	for _, p := range pr.Plants {
		t, d := needlesOf(p.Identifier)
		for _, n := range t {
			s.texts.add(n, p)
		}
		for _, n := range d {
			s.digits.add(n, p)
		}
	}
	return s
}

// Baseline scans text that existed before anything was planted, such as
// a server's tables before the first batch: a plant whose value is found
// in it collides with text that is there anyway, and is left out of the
// findings (Collisions lists it).
func (s *Scanner) Baseline(place, text string) {
	s.scan(place, "", text, true)
}

// Scan looks for every plant in text, which was read from place; where,
// if not empty, says where within place (e.g. "row 3").
func (s *Scanner) Scan(place, where, text string) {
	s.scan(place, where, text, false)
}

// ScanLines scans text line by line, naming the line in findings.
func (s *Scanner) ScanLines(place, text string) {
	line := 0
	for l := range strings.Lines(text) {
		line++
		s.scan(place, "line "+strconv.Itoa(line), l, false)
	}
}

func (s *Scanner) scan(place, where, text string, baseline bool) {
	s.mu.Lock()
	s.scanned[place] += int64(len(text))
	s.mu.Unlock()
	hit := func(p *Plant, form, needle, view string, at int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if baseline {
			if _, ok := s.collided[p.ID]; !ok {
				s.collided[p.ID] = place
			}
			return
		}
		k := findKey{p.ID, place}
		if f := s.finds[k]; f != nil {
			f.Count++
			return
		}
		w := where
		if w == "" {
			w = "byte " + strconv.Itoa(at)
		}
		s.finds[k] = &Find{Plant: p, Place: place, Where: w, Form: form, Needle: needle, Snippet: snippet(view, at, len(needle)), Count: 1}
	}
	folded := fold(text)
	s.texts.find(folded, func(p *Plant, n string, at int) { hit(p, FormText, n, folded, at) })
	view := folded
	if d := decode(text); d != text {
		view = fold(d)
		s.texts.find(view, func(p *Plant, n string, at int) { hit(p, FormDecoded, n, view, at) })
	}
	if strings.Contains(text, "+") {
		// A URL query or form, where '+' is a space.
		form := fold(decode(strings.ReplaceAll(text, "+", " ")))
		s.texts.find(form, func(p *Plant, n string, at int) { hit(p, FormDecoded, n, form, at) })
	}
	if len(s.digits.needles) > 0 {
		digitRuns(view, minDigits, func(ds string, at int) {
			s.digits.find(ds, func(p *Plant, n string, _ int) { hit(p, FormDigits, n, view, at) })
		})
	}
}

// snippet returns the text around view[at:at+n], quoted.
func snippet(view string, at, n int) string {
	lo, hi := max(0, at-40), min(len(view), at+n+40)
	for lo > 0 && !utf8.RuneStart(view[lo]) {
		lo--
	}
	for hi < len(view) && !utf8.RuneStart(view[hi]) {
		hi++
	}
	return strconv.Quote(view[lo:hi])
}

// Finds returns what was found, those of plants that collided with a
// baseline left out, ordered by plant and place.
func (s *Scanner) Finds() []Find {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Find
	for _, f := range s.finds {
		if _, ok := s.collided[f.Plant.ID]; ok {
			continue
		}
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Plant.ID != out[j].Plant.ID {
			return out[i].Plant.ID < out[j].Plant.ID
		}
		return out[i].Place < out[j].Place
	})
	return out
}

// Collisions returns the plants a baseline scan found, with where.
func (s *Scanner) Collisions() map[*Plant]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[*Plant]string{}
	for _, p := range s.plants {
		if where, ok := s.collided[p.ID]; ok {
			out[p] = where
		}
	}
	return out
}

// Scanned returns the bytes scanned per place.
func (s *Scanner) Scanned() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.scanned))
	for k, v := range s.scanned {
		out[k] = v
	}
	return out
}

// index finds many needles in text at once: needles are filed by their
// first four bytes, and a bitmap of their first two bytes skips most
// positions with one lookup.
type index struct {
	// anywhere finds needles inside longer runs of digits too (digit-only
	// needles, looked for in a number's digits).
	anywhere bool
	first    [1 << 16 / 64]uint64
	byKey    map[uint32][]int
	needles  []indexed
}

type indexed struct {
	text  string
	plant *Plant
}

func key4(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func (x *index) add(needle string, p *Plant) {
	if len(needle) < 4 {
		panic(fmt.Sprintf("privacyprobe: needle %q too short", needle))
	}
	if x.byKey == nil {
		x.byKey = map[uint32][]int{}
	}
	k := key4(needle, 0)
	x.first[(k&0xffff)/64] |= 1 << (k & 0xffff % 64)
	x.byKey[k] = append(x.byKey[k], len(x.needles))
	x.needles = append(x.needles, indexed{needle, p})
}

// find calls fn for each needle found in s, with where it starts. Unless
// x.anywhere, a needle that starts (ends) with a digit is found only where
// no digit precedes (follows) it, so "10.1.2.3" is not found in
// "110.1.2.34".
func (x *index) find(s string, fn func(p *Plant, needle string, at int)) {
	if len(x.needles) == 0 {
		return
	}
	for i := 0; i+4 <= len(s); i++ {
		k16 := uint32(s[i]) | uint32(s[i+1])<<8
		if x.first[k16/64]&(1<<(k16%64)) == 0 {
			continue
		}
		for _, ni := range x.byKey[key4(s, i)] {
			n := x.needles[ni]
			if !strings.HasPrefix(s[i:], n.text) {
				continue
			}
			if !x.anywhere {
				if isDigit(n.text[0]) && i > 0 && isDigit(s[i-1]) {
					continue
				}
				if end := i + len(n.text); isDigit(n.text[len(n.text)-1]) && end < len(s) && isDigit(s[end]) {
					continue
				}
			}
			fn(n.plant, n.text, i)
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
