package main

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/consentry/consentry/anonymizer/geo/internal/boundaryfmt"
)

type point = boundaryfmt.Point

// regionKey identifies an output region.
type regionKey struct {
	country, region string
}

// ring is a closed ring without its closing point (ring[0] != ring[len-1]).
type ring []point

// feature is one classified GeoJSON feature: its key and all rings of all
// its polygons (outer rings and holes alike; lookups use the even-odd rule).
type feature struct {
	key   regionKey
	rings []ring
}

// options controls simplification.
type options struct {
	tolerance float64 // Douglas–Peucker tolerance in coordinate units
	minArea   float64 // rings with a smaller area (square units) are dropped
}

// arc is a polyline shared by one or more rings, in canonical direction.
type arc struct {
	orig   []point // quantized source points
	simple []point // simplified points
	tol    float64 // tolerance used for simple
}

// ringArcs describes a ring as the arcs it is made of.
type ringArcs struct {
	key  regionKey
	arcs []int
}

// quantize converts a GeoJSON ring to units of 1e-4 degrees, removing
// consecutive duplicates and the closing point.
func quantize(coords [][]float64) (ring, error) {
	r := make(ring, 0, len(coords))
	for _, c := range coords {
		if len(c) < 2 {
			return nil, fmt.Errorf("position with %d coordinates", len(c))
		}
		lon, lat := c[0], c[1]
		if !(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90) {
			return nil, fmt.Errorf("position (%v, %v) out of range", lon, lat)
		}
		p := point{X: int32(math.Round(lon * boundaryfmt.Scale)), Y: int32(math.Round(lat * boundaryfmt.Scale))}
		if len(r) > 0 && r[len(r)-1] == p {
			continue
		}
		r = append(r, p)
	}
	for len(r) > 1 && r[0] == r[len(r)-1] {
		r = r[:len(r)-1]
	}
	return r, nil
}

// area returns the absolute shoelace area of a closed polyline in square
// units.
func area(pts []point) float64 {
	var s float64
	for i := range pts {
		j := (i + 1) % len(pts)
		s += float64(pts[i].X)*float64(pts[j].Y) - float64(pts[j].X)*float64(pts[i].Y)
	}
	return math.Abs(s) / 2
}

// buildDataset turns classified features into the output dataset:
//
//  1. Vertices where the borders of two or more rings meet or diverge are
//     junctions. Every ring is cut at its junctions into arcs, so that a
//     border shared by two rings becomes one arc used by both.
//  2. Each arc is simplified once (Douglas–Peucker, endpoints fixed), so
//     neighbouring regions keep identical borders: simplification opens no
//     gaps and creates no overlaps between them.
//  3. Rings whose area is negligible are dropped; rings that simplification
//     collapsed get their arcs re-simplified with a smaller tolerance.
//  4. All rings of a region are merged: an arc used an even number of times
//     within one region (an internal border between merged features) is
//     dropped, which leaves the even-odd interior unchanged.
func buildDataset(features []feature, opt options) (*boundaryfmt.Dataset, error) {
	junction := findJunctions(features)

	var arcs []*arc
	arcIndex := make(map[string]int)
	intern := func(pts []point, rotate bool) int {
		canon := canonical(pts, rotate)
		k := pointsKey(canon)
		if i, ok := arcIndex[k]; ok {
			return i
		}
		arcIndex[k] = len(arcs)
		arcs = append(arcs, &arc{orig: canon})
		return len(arcs) - 1
	}

	var rings []ringArcs
	for _, f := range features {
		// Drop negligible rings, but never a feature's largest ring, so
		// that tiny territories (e.g. the Vatican) do not vanish.
		areas := make([]float64, len(f.rings))
		largest := -1
		for i, r := range f.rings {
			if len(r) < 3 {
				continue
			}
			areas[i] = area(r)
			if largest < 0 || areas[i] > areas[largest] {
				largest = i
			}
		}
		for i, r := range f.rings {
			if len(r) < 3 || areas[i] == 0 || (areas[i] < opt.minArea && i != largest) {
				continue
			}
			rings = append(rings, ringArcs{key: f.key, arcs: splitRing(r, junction, intern)})
		}
	}

	for _, a := range arcs {
		a.tol = opt.tolerance
		a.simple = simplify(a.orig, a.tol)
	}
	// Re-simplify the arcs of collapsed rings with a smaller tolerance until
	// every ring keeps at least three distinct vertices.
	for pass := 0; ; pass++ {
		changed := false
		for _, r := range rings {
			if distinctVertices(r.arcs, arcs) >= 3 {
				continue
			}
			for _, ai := range r.arcs {
				a := arcs[ai]
				if len(a.simple) < len(a.orig) {
					a.tol /= 2
					if a.tol < 1 {
						a.tol = 0
					}
					a.simple = simplify(a.orig, a.tol)
					changed = true
				}
			}
		}
		if !changed {
			break
		}
		if pass > 64 {
			return nil, fmt.Errorf("ring simplification did not converge")
		}
	}

	// Merge per region: keep arcs used an odd number of times.
	uses := make(map[regionKey]map[int]int)
	for _, r := range rings {
		m := uses[r.key]
		if m == nil {
			m = make(map[int]int)
			uses[r.key] = m
		}
		for _, ai := range r.arcs {
			m[ai]++
		}
	}
	keys := make([]regionKey, 0, len(uses))
	for k := range uses {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b regionKey) int {
		return cmp.Or(cmp.Compare(a.country, b.country), cmp.Compare(a.region, b.region))
	})

	d := new(boundaryfmt.Dataset)
	renumber := make(map[int]int)
	for _, k := range keys {
		var refs []int
		for ai, n := range uses[k] {
			if n%2 == 1 {
				refs = append(refs, ai)
			}
		}
		if len(refs) == 0 {
			continue
		}
		slices.Sort(refs) // deterministic first-use order
		out := make([]int, 0, len(refs))
		for _, ai := range refs {
			ni, ok := renumber[ai]
			if !ok {
				ni = len(d.ArcStarts)
				renumber[ai] = ni
				d.ArcStarts = append(d.ArcStarts, len(d.Points))
				d.Points = append(d.Points, arcs[ai].simple...)
			}
			out = append(out, ni)
		}
		slices.Sort(out)
		d.Regions = append(d.Regions, boundaryfmt.Region{Country: k.country, Code: k.region, Arcs: out})
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("generated dataset is invalid: %w", err)
	}
	return d, nil
}

// findJunctions returns the set of vertices at which rings meet or diverge:
// a vertex is a junction if, over all its occurrences, it has more than two
// distinct neighbours.
func findJunctions(features []feature) map[point]bool {
	type nb struct {
		a, b     point
		junction bool
	}
	seen := make(map[point]*nb)
	for _, f := range features {
		for _, r := range f.rings {
			n := len(r)
			for i, v := range r {
				p, q := r[(i+n-1)%n], r[(i+1)%n]
				e := seen[v]
				if e == nil {
					seen[v] = &nb{a: p, b: q}
					continue
				}
				if !((e.a == p && e.b == q) || (e.a == q && e.b == p)) {
					e.junction = true
				}
			}
		}
	}
	j := make(map[point]bool)
	for v, e := range seen {
		if e.junction {
			j[v] = true
		}
	}
	return j
}

// splitRing cuts r at its junctions into arcs and returns their indices. A
// ring without junctions becomes a single closed arc.
func splitRing(r ring, junction map[point]bool, intern func(pts []point, rotate bool) int) []int {
	start := -1
	for i, v := range r {
		if junction[v] {
			start = i
			break
		}
	}
	if start < 0 {
		closed := make([]point, 0, len(r)+1)
		closed = append(closed, r...)
		closed = append(closed, r[0])
		return []int{intern(closed, true)}
	}
	n := len(r)
	var ids []int
	cur := []point{r[start]}
	for k := 1; k <= n; k++ {
		v := r[(start+k)%n]
		cur = append(cur, v)
		if junction[v] {
			ids = append(ids, intern(cur, false))
			cur = []point{v}
		}
	}
	return ids
}

// canonical returns pts in a direction and, for closed arcs when rotate is
// set, a rotation that do not depend on which ring the arc came from, so that
// shared arcs are recognised and simplified identically. Arcs that start at a
// junction are not rotated: their endpoints must stay fixed.
func canonical(pts []point, rotate bool) []point {
	less := func(a, b point) int {
		return cmp.Or(cmp.Compare(a.X, b.X), cmp.Compare(a.Y, b.Y))
	}
	if rotate && pts[0] == pts[len(pts)-1] && len(pts) > 2 {
		// Closed arc: start at the smallest vertex.
		body := pts[:len(pts)-1]
		m := 0
		for i := range body {
			if less(body[i], body[m]) < 0 {
				m = i
			}
		}
		rot := make([]point, 0, len(pts))
		rot = append(rot, body[m:]...)
		rot = append(rot, body[:m]...)
		if less(rot[len(rot)-1], rot[1]) < 0 {
			slices.Reverse(rot[1:])
		}
		return append(rot, rot[0])
	}
	rev := slices.Clone(pts)
	slices.Reverse(rev)
	if slices.CompareFunc(rev, pts, less) < 0 {
		return rev
	}
	return slices.Clone(pts)
}

func pointsKey(pts []point) string {
	b := make([]byte, 0, 8*len(pts))
	for _, p := range pts {
		b = binary.LittleEndian.AppendUint32(b, uint32(p.X))
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Y))
	}
	return string(b)
}

// distinctVertices counts the distinct vertices of a ring assembled from
// simplified arcs.
func distinctVertices(ids []int, arcs []*arc) int {
	seen := make(map[point]bool)
	for _, ai := range ids {
		for _, p := range arcs[ai].simple {
			seen[p] = true
		}
	}
	return len(seen)
}

// simplify applies the Douglas–Peucker algorithm to a polyline, keeping both
// endpoints. Closed polylines (first == last) are handled by measuring
// distances to the endpoint.
func simplify(pts []point, tol float64) []point {
	n := len(pts)
	if n <= 2 || tol <= 0 {
		return slices.Clone(pts)
	}
	keep := make([]bool, n)
	keep[0], keep[n-1] = true, true
	type span struct{ i, j int }
	stack := []span{{0, n - 1}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		best, bestD := -1, tol
		for k := s.i + 1; k < s.j; k++ {
			if d := segDist(pts[k], pts[s.i], pts[s.j]); d > bestD {
				best, bestD = k, d
			}
		}
		if best >= 0 {
			keep[best] = true
			stack = append(stack, span{s.i, best}, span{best, s.j})
		}
	}
	out := make([]point, 0, n/4+2)
	for i, p := range pts {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out
}

// segDist returns the distance from p to the segment a–b.
func segDist(p, a, b point) float64 {
	px, py := float64(p.X), float64(p.Y)
	ax, ay := float64(a.X), float64(a.Y)
	dx, dy := float64(b.X)-ax, float64(b.Y)-ay
	l2 := dx*dx + dy*dy
	if l2 == 0 {
		return math.Hypot(px-ax, py-ay)
	}
	t := ((px-ax)*dx + (py-ay)*dy) / l2
	t = max(0, min(1, t))
	return math.Hypot(px-(ax+t*dx), py-(ay+t*dy))
}
