package privacyprobe

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Gap is a known privacy gap: findings it matches are reported as "known
// gap still open" rather than as new. The short form of the adversarial
// test tolerates them; the long form fails on them. Empty fields match
// anything; Format and Place match as prefixes, Field as a part (e.g.
// "event_id").
type Gap struct {
	Kind    Kind
	Format  string
	Context string
	Field   string
	Place   string
	// Why says what is missing, for whoever closes the gap.
	Why string
}

// Matches reports whether f is an instance of g.
func (g Gap) Matches(f Find) bool {
	p := f.Plant
	return (g.Kind == "" || g.Kind == p.Kind) &&
		strings.HasPrefix(p.Format, g.Format) &&
		(g.Context == "" || g.Context == p.Context) &&
		strings.Contains(p.Field, g.Field) &&
		strings.HasPrefix(f.Place, g.Place)
}

// String describes g for the report: what it matches, and why.
func (g Gap) String() string {
	var parts []string
	for _, kv := range [][2]string{{"kind", string(g.Kind)}, {"format", g.Format}, {"context", g.Context}, {"field", g.Field}, {"place", g.Place}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if len(parts) == 0 {
		parts = []string{"anything"}
	}
	return strings.Join(parts, ", ") + ": " + g.Why
}

// Report is the outcome of a probe: what was planted, where it was looked
// for, and what was found.
type Report struct {
	// Probe is what was planted.
	Probe *Probe
	// Finds are what the scanner found (Scanner.Finds).
	Finds []Find
	// Collisions are plants found by a baseline scan, left out.
	Collisions map[*Plant]string
	// Scanned is the bytes scanned per place (Scanner.Scanned).
	Scanned map[string]int64
	// Unscanned lists places that could not be read, with why.
	Unscanned []string
	// Gaps are the known gaps (KnownGaps, usually).
	Gaps []Gap
	// Reproduce is the command that runs the probe again.
	Reproduce string
}

// NewReport returns the report of the scan s of probe pr, with gaps as
// the known gaps.
func NewReport(pr *Probe, s *Scanner, gaps []Gap) *Report {
	return &Report{Probe: pr, Finds: s.Finds(), Collisions: s.Collisions(), Scanned: s.Scanned(), Gaps: gaps}
}

// Classify splits the findings into new ones and those of known gaps, and
// returns the known gaps no finding matched (closed, or not exercised by
// this probe).
func (r *Report) Classify() (fresh, known []Find, unseen []Gap) {
	seen := make([]bool, len(r.Gaps))
	for _, f := range r.Finds {
		matched := false
		for i, g := range r.Gaps {
			if g.Matches(f) {
				seen[i], matched = true, true
				break
			}
		}
		if matched {
			known = append(known, f)
		} else {
			fresh = append(fresh, f)
		}
	}
	for i, g := range r.Gaps {
		if !seen[i] {
			unseen = append(unseen, g)
		}
	}
	return fresh, known, unseen
}

// Accepted returns the plants the collector took in.
func (r *Report) Accepted() []*Plant {
	var out []*Plant
	for _, p := range r.Probe.Plants {
		if p.Accepted() {
			out = append(out, p)
		}
	}
	return out
}

// shortKind names kinds in the table's header.
var shortKind = map[Kind]string{
	Email: "email", Phone: "phone", IPv4: "ipv4", IPv6: "ipv6", MAC: "mac", IMEI: "imei", AdID: "adid",
	AndroidID: "andid", HardwareID: "hwid", Card: "card", IBAN: "iban", Credential: "cred", JWT: "jwt", APIKey: "key",
	UserPath: "path", Coordinates: "coord", KeyValue: "keyval", StreetAddress: "addr", ConsentToken: "token",
}

// WriteTo writes the report for people: the summary, planted and found by
// context and kind, what was scanned, and every finding with where.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	pr := r.Probe
	byTransport := map[Transport]int{}
	for _, bt := range pr.Batches {
		byTransport[bt.Transport]++
	}
	outcomes := map[string]int{}
	for _, p := range pr.Plants {
		outcomes[p.Outcome]++
	}
	fmt.Fprintf(&b, "privacy probe, seed %d: %d batches (", pr.Seed, len(pr.Batches))
	for i, t := range transports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", byTransport[t], t)
	}
	fmt.Fprintf(&b, "), %d plants: %d accepted", len(pr.Plants), outcomes[OutcomeAccepted])
	for _, o := range sortedKeys(outcomes) {
		if o != OutcomeAccepted {
			fmt.Fprintf(&b, ", %d %s", outcomes[o], o)
		}
	}
	b.WriteString("\n")
	if r.Reproduce != "" {
		fmt.Fprintf(&b, "reproduce: %s\n", r.Reproduce)
	}

	found := map[int]bool{}
	for _, f := range r.Finds {
		found[f.Plant.ID] = true
	}
	r.writeTable(&b, found)

	b.WriteString("\nscanned:\n")
	groups := map[string]int64{}
	places := map[string]int{}
	for place, n := range r.Scanned {
		g, _, _ := strings.Cut(place, " ")
		if strings.HasPrefix(place, "clickhouse server log") || strings.HasPrefix(place, "clickhouse data") {
			g = place
			if i := strings.Index(place, ":"); i > 0 {
				g = place[:i]
			}
		}
		groups[g] += n
		places[g]++
	}
	for _, g := range sortedKeys(groups) {
		fmt.Fprintf(&b, "  %-28s %6d places %12d bytes\n", g, places[g], groups[g])
	}
	for _, u := range r.Unscanned {
		fmt.Fprintf(&b, "  not scanned: %s\n", u)
	}

	fresh, known, unseen := r.Classify()
	fmt.Fprintf(&b, "\nfound: %d plants in %d places; %d new findings, %d of known gaps still open\n",
		len(found), len(r.Finds), len(fresh), len(known))
	if len(r.Finds) > 0 {
		b.WriteString("\nfound, by kind and context (plants found / accepted):\n")
		r.writeSummary(&b)
	}
	writeFinds(&b, "NEW", fresh)
	writeFinds(&b, "KNOWN GAP", known)
	if len(unseen) > 0 {
		b.WriteString("\nknown gaps not seen in this run (closed, or not exercised by this seed):\n")
		for _, g := range unseen {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	if len(r.Collisions) > 0 {
		b.WriteString("\nleft out: planted values found before anything was sent:\n")
		for p, where := range r.Collisions {
			fmt.Fprintf(&b, "  #%d %s %q in %s\n", p.ID, p.Kind, p.Value, where)
		}
	}
	var dropped []*Plant
	for _, p := range pr.Plants {
		if !p.Accepted() {
			dropped = append(dropped, p)
		}
	}
	if len(dropped) > 0 {
		b.WriteString("\nplanted but not accepted (proves nothing; not counted above):\n")
		for i, p := range dropped {
			if i == 20 {
				fmt.Fprintf(&b, "  ... and %d more\n", len(dropped)-20)
				break
			}
			fmt.Fprintf(&b, "  #%d %s (%s) in %s, %s: %s\n", p.ID, p.Kind, p.Context, p.Field, p.Outcome, quoteShort(p.Sent))
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// findingJSON is one line of WriteFindings.
type findingJSON struct {
	Seed    uint64 `json:"seed"`
	Known   bool   `json:"known_gap"`
	Plant   int    `json:"plant"`
	Kind    Kind   `json:"kind"`
	Format  string `json:"format"`
	Context string `json:"context"`
	Field   string `json:"field"`
	Value   string `json:"value"`
	Sent    string `json:"sent"`
	Place   string `json:"place"`
	Where   string `json:"where"`
	Form    string `json:"form"`
	Needle  string `json:"needle"`
	Count   int    `json:"count"`
}

// WriteFindings writes every finding as one JSON object per line, for
// tools that group or compare them.
func (r *Report) WriteFindings(w io.Writer) error {
	_, known, _ := r.Classify()
	isKnown := map[findKey]bool{}
	for _, f := range known {
		isKnown[findKey{f.Plant.ID, f.Place}] = true
	}
	enc := json.NewEncoder(w)
	for _, f := range r.Finds {
		p := f.Plant
		if err := enc.Encode(findingJSON{Seed: r.Probe.Seed, Known: isKnown[findKey{p.ID, f.Place}], Plant: p.ID, Kind: p.Kind,
			Format: p.Format, Context: p.Context, Field: p.Field, Value: p.Value, Sent: p.Sent,
			Place: f.Place, Where: f.Where, Form: f.Form, Needle: f.Needle, Count: f.Count}); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
	}
	return nil
}

// writeTable writes accepted/found plants by context (rows) and kind
// (columns).
func (r *Report) writeTable(b *strings.Builder, found map[int]bool) {
	type cell struct{ accepted, found int }
	cells := map[string]map[Kind]*cell{}
	var ctxOrder []string
	kinds := append(Kinds(), ConsentToken)
	for _, c := range contexts {
		ctxOrder = append(ctxOrder, c.Name)
	}
	ctxOrder = append(ctxOrder, ContextAttribute, ContextInteger, ContextDouble, ContextBytes, ContextHeader, ContextConnection, "-")
	for _, p := range r.Probe.Plants {
		if !p.Accepted() {
			continue
		}
		if cells[p.Context] == nil {
			cells[p.Context] = map[Kind]*cell{}
		}
		c := cells[p.Context][p.Kind]
		if c == nil {
			c = &cell{}
			cells[p.Context][p.Kind] = c
		}
		c.accepted++
		if found[p.ID] {
			c.found++
		}
	}
	b.WriteString("\nfound/accepted plants by context and kind:\n")
	fmt.Fprintf(b, "%-32s", "")
	for _, k := range kinds {
		fmt.Fprintf(b, "%7s", shortKind[k])
	}
	b.WriteString("\n")
	for _, c := range ctxOrder {
		if cells[c] == nil {
			continue
		}
		fmt.Fprintf(b, "%-32s", c)
		for _, k := range kinds {
			v := cells[c][k]
			switch {
			case v == nil:
				fmt.Fprintf(b, "%7s", ".")
			case v.found == 0:
				fmt.Fprintf(b, "%7s", fmt.Sprintf("-/%d", v.accepted))
			default:
				fmt.Fprintf(b, "%7s", fmt.Sprintf("%d/%d", v.found, v.accepted))
			}
		}
		b.WriteString("\n")
	}
}

// writeSummary writes the findings grouped by kind and context, with the
// fields and places involved: the list to close gaps from.
func (r *Report) writeSummary(b *strings.Builder) {
	type group struct {
		plants         map[int]bool
		fields, places map[string]bool
		formats, forms map[string]bool
		accepted       int
	}
	groups := map[[2]string]*group{}
	for _, p := range r.Probe.Plants {
		if !p.Accepted() {
			continue
		}
		k := [2]string{string(p.Kind), p.Context}
		if groups[k] == nil {
			groups[k] = &group{plants: map[int]bool{}, fields: map[string]bool{}, places: map[string]bool{}, formats: map[string]bool{}, forms: map[string]bool{}}
		}
		groups[k].accepted++
	}
	var keys [][2]string
	for _, f := range r.Finds {
		p := f.Plant
		k := [2]string{string(p.Kind), p.Context}
		g := groups[k]
		if g == nil {
			continue
		}
		if len(g.plants) == 0 {
			keys = append(keys, k)
		}
		g.plants[p.ID] = true
		g.fields[p.Field] = true
		g.formats[p.Format] = true
		g.forms[f.Form] = true
		g.places[placeGroup(f.Place)] = true
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		g := groups[k]
		fmt.Fprintf(b, "  %-14s %-32s %3d/%-3d  formats: %s\n", k[0], k[1], len(g.plants), g.accepted, joinKeys(g.formats, 6))
		fmt.Fprintf(b, "  %-14s %-32s          fields: %s\n", "", "", joinKeys(g.fields, 6))
		fmt.Fprintf(b, "  %-14s %-32s          found in: %s (as %s)\n", "", "", joinKeys(g.places, 8), joinKeys(g.forms, 3))
	}
}

// writeFinds writes findings plant by plant: at most maxPlantsShown
// plants of each kind and context, and maxPlacesShown places of each.
// placeGroup shortens a place for the summary: a ClickHouse column
// without its database, a file without its name.
func placeGroup(place string) string {
	if rest, ok := strings.CutPrefix(place, "clickhouse "); ok && !strings.HasPrefix(place, "clickhouse data") && !strings.HasPrefix(place, "clickhouse server log") {
		if db, col, ok := strings.Cut(rest, "."); ok && db != "system" {
			return "clickhouse " + col
		}
		return place
	}
	g, _, _ := strings.Cut(place, ":")
	return g
}

func writeFinds(b *strings.Builder, label string, finds []Find) {
	const maxPlantsShown, maxPlacesShown = 3, 3
	if len(finds) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%s findings (at most %d plants per kind and context, %d places per plant):\n", label, maxPlantsShown, maxPlacesShown)
	byPlant := map[int][]Find{}
	var order []*Plant
	for _, f := range finds {
		if byPlant[f.Plant.ID] == nil {
			order = append(order, f.Plant)
		}
		byPlant[f.Plant.ID] = append(byPlant[f.Plant.ID], f)
	}
	shown := map[[2]string]int{}
	hidden := map[[2]string]int{}
	for _, p := range order {
		k := [2]string{string(p.Kind), p.Context}
		if shown[k] == maxPlantsShown {
			hidden[k]++
			continue
		}
		shown[k]++
		where := fmt.Sprintf("batch %d", p.Batch)
		if p.Event >= 0 {
			where += fmt.Sprintf(" event %d", p.Event)
		}
		fmt.Fprintf(b, "  %s #%d %s (%s) %q in context %q, field %s, %s\n      sent %s\n",
			label, p.ID, p.Kind, p.Format, p.Value, p.Context, p.Field, where, quoteShort(p.Sent))
		fs := byPlant[p.ID]
		for i, f := range fs {
			if i == maxPlacesShown {
				fmt.Fprintf(b, "      … and in %d more places\n", len(fs)-maxPlacesShown)
				break
			}
			fmt.Fprintf(b, "      found in %s, %s (%s %q, %d×): %s\n", f.Place, f.Where, f.Form, f.Needle, f.Count, f.Snippet)
		}
	}
	for _, k := range sortedPairs(hidden) {
		fmt.Fprintf(b, "  … %d more %s plants of %s %q found\n", hidden[k], label, k[0], k[1])
	}
}

func sortedPairs(m map[[2]string]int) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	return keys
}

func quoteShort(s string) string {
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinKeys(m map[string]bool, max int) string {
	keys := sortedKeys(m)
	if len(keys) > max {
		return strings.Join(keys[:max], ", ") + fmt.Sprintf(", … (%d)", len(keys))
	}
	return strings.Join(keys, ", ")
}
