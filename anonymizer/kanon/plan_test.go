package kanon

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// dev returns pixel with the given changes: "model=X", "os=Y", ...
func dev(changes ...string) QI {
	q := pixel
	for _, c := range changes {
		k, v, _ := strings.Cut(c, "=")
		switch k {
		case "model":
			q.DeviceModel = v
		case "os":
			q.OSVersion = v
		case "locale":
			q.Locale = v
		case "region":
			q.Region = v
		case "app":
			q.AppVersion = v
		default:
			panic(k)
		}
	}
	return q
}

// held returns a group of one row of member held ago before t0.
func held(q QI, member uint64, ago time.Duration) Group {
	return Group{QI: q, Member: member, Rows: 1, FirstHeld: t0.Add(-ago)}
}

func input(groups []Group, log []Release, done ...uint64) planInput {
	d := map[uint64]bool{}
	for _, p := range done {
		d[p] = true
	}
	return planInput{k: 3, delay: time.Hour, now: t0, pass: 7, groups: groups, log: log, done: d}
}

// assignments returns "level:model/os/locale/region/app" per combination
// moved, keyed by the combination's model.
func assignments(p Plan) map[string]string {
	out := map[string]string{}
	for _, m := range p.Moves {
		for _, c := range m.Combos {
			g := m.Generalization.Apply(c)
			out[c.DeviceModel+"|"+c.OSVersion+"|"+c.Region] = fmt.Sprintf("%d:%s/%s/%s/%s/%s", m.Level, g.DeviceModel, g.OSVersion, g.Locale, g.Region, g.AppVersion)
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	pub := func(level int, q QI) Release {
		return Release{Pass: 1, Class: Class{level, q}, ReleasedAt: t0.Add(-2 * time.Hour)}
	}
	for _, tt := range []struct {
		name   string
		groups []Group
		log    []Release
		want   map[string]string
		// newClasses is the number of classes the plan publishes.
		newClasses int
	}{
		{
			name:   "k consents publish a combination exactly at once",
			groups: []Group{held(dev(), 1, time.Minute), held(dev(), 2, time.Minute), held(dev(), 3, 0)},
			want:   map[string]string{"Pixel 8|14.0.1|AT-9": "0:Pixel 8/14.0.1/de-AT/AT-9/4.12.0"}, newClasses: 1,
		},
		{
			name:   "fewer than k consents wait for the delay",
			groups: []Group{held(dev(), 1, 59*time.Minute), held(dev(), 2, time.Minute), held(dev(), 2, 0)},
			want:   map[string]string{},
		},
		{
			name:   "rows without a member are not counted",
			groups: []Group{held(dev(), 1, 0), held(dev(), 2, 0), held(dev(), 0, 0)},
			want:   map[string]string{},
		},
		{
			name:   "a combination published exactly takes new rows at once",
			groups: []Group{held(dev(), 9, 0)},
			log:    []Release{pub(0, dev())},
			want:   map[string]string{"Pixel 8|14.0.1|AT-9": "0:Pixel 8/14.0.1/de-AT/AT-9/4.12.0"},
		},
		{
			name: "after the delay, the finest level whose class reaches k",
			// Two models, one consent each, and a third differing in the
			// region too: model → other makes a class of two; the region
			// goes at level 3, where the three meet.
			groups: []Group{
				held(dev("model=A"), 1, 2*time.Hour), held(dev("model=B"), 2, 2*time.Hour),
				held(dev("model=C", "region=AT-6"), 3, 2*time.Hour),
			},
			want: map[string]string{
				"A|14.0.1|AT-9": "3:other/14.0.1/de//4.12.0", "B|14.0.1|AT-9": "3:other/14.0.1/de//4.12.0",
				"C|14.0.1|AT-6": "3:other/14.0.1/de//4.12.0",
			},
			newClasses: 1,
		},
		{
			name: "a class with an expired combination takes the others in it",
			groups: []Group{
				held(dev("model=A"), 1, 2*time.Hour), held(dev("model=B"), 2, time.Minute), held(dev("model=C"), 3, time.Minute),
				held(dev("model=D", "os=15"), 4, time.Minute), // not in the class, not expired: stays
			},
			want: map[string]string{
				"A|14.0.1|AT-9": "1:other/14.0.1/de-AT/AT-9/4.12.0", "B|14.0.1|AT-9": "1:other/14.0.1/de-AT/AT-9/4.12.0",
				"C|14.0.1|AT-9": "1:other/14.0.1/de-AT/AT-9/4.12.0",
			},
			newClasses: 1,
		},
		{
			name: "a published class takes an expired combination that would not reach k alone",
			groups: []Group{
				held(dev("model=A"), 1, 2*time.Hour),
				held(dev("model=B", "os=15"), 2, time.Minute), // waits
			},
			log:  []Release{pub(4, dev("model=other", "os=14", "locale=de", "region="))},
			want: map[string]string{"A|14.0.1|AT-9": "4:other/14/de//4.12.0"},
		},
		{
			name: "a unique combination goes to the top",
			// A meets the other only at level 9, where they are two.
			groups: []Group{held(dev("model=A", "app=9.9.9"), 1, 2*time.Hour), held(dev(), 2, time.Minute)},
			want:   map[string]string{"A|14.0.1|AT-9": "10:other/other///other"}, newClasses: 1,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(input(tt.groups, tt.log))
			if got := assignments(p); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("moved\n%v\nwant\n%v", got, tt.want)
			}
			n := 0
			for _, r := range p.Releases {
				if r.New {
					n++
				}
				if r.Pass != 7 || !r.ReleasedAt.Equal(t0) || !r.ExpiredBefore.Equal(t0.Add(-time.Hour)) {
					t.Errorf("release %+v: wrong pass or times", r)
				}
			}
			if n != tt.newClasses {
				t.Errorf("%d new classes, want %d: %+v", n, tt.newClasses, p.Releases)
			}
		})
	}
}

// TestPlanNewClassesReachK checks, over random inputs, what every plan
// promises: a class it publishes has at least k consents (the top level
// aside), every combination moved is stored as its level generalizes it,
// and nothing younger than the delay goes to the top.
func TestPlanNewClassesReachK(t *testing.T) {
	models := []string{"A", "B", "C", "D"}
	oses := []string{"13", "14.0.1", "14.1"}
	regions := []string{"AT-9", "AT-6", "DE-BY"}
	for seed := range 300 {
		r := newRand(uint64(seed))
		var groups []Group
		for range 1 + r.IntN(40) {
			q := dev("model="+models[r.IntN(len(models))], "os="+oses[r.IntN(len(oses))], "region="+regions[r.IntN(len(regions))])
			groups = append(groups, held(q, uint64(1+r.IntN(12)), time.Duration(r.IntN(120))*time.Minute))
		}
		in := input(groups, nil)
		p := plan(in)
		top := Hierarchy{}.Top()
		for _, rel := range p.Releases {
			if rel.New && rel.Level < top && rel.Consents < uint64(in.k) {
				t.Fatalf("seed %d: new class %+v has %d consents", seed, rel.Class, rel.Consents)
			}
		}
		for _, m := range p.Moves {
			for _, c := range m.Combos {
				cl := Class{m.Level, m.Generalization.Apply(c)}
				if !slices.ContainsFunc(p.Releases, func(r Release) bool { return r.Class == cl }) {
					t.Fatalf("seed %d: %+v moved to %+v, which is not logged", seed, c, cl)
				}
				if m.Level == top {
					first := in.now
					for _, g := range groups {
						if g.QI == c && g.FirstHeld.Before(first) {
							first = g.FirstHeld
						}
					}
					if first.After(in.now.Add(-in.delay)) {
						t.Fatalf("seed %d: %+v held %v ago went to the top", seed, c, in.now.Sub(first))
					}
				}
			}
		}
	}
}

// TestPlanRecoversUnfinishedPass checks that a pass that logged its
// decisions and failed before moving every row is completed as it
// decided, even when, by now, the rows would form a finer class.
func TestPlanRecoversUnfinishedPass(t *testing.T) {
	// Pass 5 published A, B, C at level 3 and moved part of their rows.
	level3 := Hierarchy{}.Generalize(dev("model=A"), 3)
	log := []Release{{Pass: 5, Class: Class{3, level3}, New: true, Consents: 3, ExpiredBefore: t0.Add(-90 * time.Minute), ReleasedAt: t0.Add(-30 * time.Second)}}
	groups := []Group{
		held(dev("model=A"), 1, 2*time.Hour), // rows of A that pass 5 did not move
		// Since, two more consents of B's exact model: level 1 now
		// reaches k with A.
		held(dev("model=B"), 4, 2*time.Hour), held(dev("model=B"), 5, 2*time.Hour),
	}
	p := plan(input(groups, log))
	got := assignments(p)
	if got["A|14.0.1|AT-9"] != "3:other/14.0.1/de//4.12.0" {
		t.Errorf("A went to %s, want level 3 as pass 5 decided", got["A|14.0.1|AT-9"])
	}
	// B maps into pass 5's class too: joining it is harmless (classes only
	// grow), and B's rows may be rows pass 5 decided on.
	if got["B|14.0.1|AT-9"] != "3:other/14.0.1/de//4.12.0" {
		t.Errorf("B went to %s", got["B|14.0.1|AT-9"])
	}
	if !slices.Equal(p.Recovered, []uint64{5}) {
		t.Errorf("recovered %v, want [5]", p.Recovered)
	}
	// Once pass 5 is done, the same rows form the finer class.
	p = plan(input(groups, log, 5))
	if got := assignments(p); got["A|14.0.1|AT-9"] != "1:other/14.0.1/de-AT/AT-9/4.12.0" {
		t.Errorf("with pass 5 done, A went to %s, want level 1", got["A|14.0.1|AT-9"])
	}
	// An unfinished pass's top class takes only rows that had waited the
	// delay when it ran: these had not, and form a class of their own now.
	topLog := []Release{{Pass: 6, Class: Class{10, TopQI()}, ExpiredBefore: t0.Add(-90 * time.Minute), ReleasedAt: t0.Add(-30 * time.Second)}}
	p = plan(input([]Group{held(dev("model=X"), 1, 70*time.Minute), held(dev("model=Y"), 2, 70*time.Minute), held(dev("model=Z"), 3, 70*time.Minute)}, topLog))
	if len(p.Moves) != 1 || p.Moves[0].Level != 1 {
		t.Errorf("rows held after pass 6's limit: %+v, want level 1", p.Moves)
	}
}

func TestPlanKOne(t *testing.T) {
	in := input([]Group{held(dev(), 0, 0), held(dev("model=X"), 1, 0)}, nil)
	in.k = 1
	p := plan(in)
	if len(p.Moves) != 1 || p.Moves[0].Level != 0 || len(p.Moves[0].Combos) != 2 {
		t.Errorf("k=1: %+v, want everything exact", p.Moves)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6b616e6f6e)) }
