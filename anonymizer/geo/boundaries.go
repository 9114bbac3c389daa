package geo

import (
	_ "embed" // for admin1.bin
	"fmt"
	"math"
	"slices"

	"github.com/consentry/consentry/anonymizer/geo/internal/boundaryfmt"
)

//go:generate go run ./internal/boundarygen -in $GEO_ADMIN1_JSON -out admin1.bin

// admin1 is the encoded first-level boundary dataset; see package
// internal/boundaryfmt for its layout and internal/boundarygen for its
// provenance.
//
//go:embed admin1.bin
var admin1 string

const (
	scale = boundaryfmt.Scale // coordinate units per degree

	// The spatial index is a grid of 1°×1° cells.
	cellSize = 1 * scale
	gridCols = 360
	gridRows = 180
	minX     = -180 * scale
	minY     = -90 * scale

	// maxBands bounds the number of horizontal bands of a region's edge index.
	maxBands = 4096
	// edgesPerBand is the average number of edges per band to aim for.
	edgesPerBand = 4
)

// Boundaries resolves coordinates with an embedded first-level boundary
// dataset. A Boundaries is immutable and safe for concurrent use; load it
// once with [LoadBoundaries] and keep it.
type Boundaries struct {
	// xs and ys hold the vertices of all boundary arcs back to back, in
	// units of 1e-4 degrees. Segment i runs from vertex i to vertex i+1.
	xs, ys  []int32
	regions []region

	// cellStart and cellRegions form, per grid cell, the list of regions
	// whose boundary touches the cell, smallest bounding box first.
	cellStart   []uint32
	cellRegions []uint16
	// cellCover holds, per cell, 1 + the index of the smallest region that
	// covers the whole cell without its boundary touching it, or 0.
	cellCover []uint16
	// known holds the region codes of the dataset.
	known map[string]bool
}

// region is one area of the dataset with its edge index.
type region struct {
	loc                    Location
	minX, minY, maxX, maxY float64 // bounding box, coordinate units
	bandHeight             float64
	// bandStart and edges form, per horizontal band, the list of segments
	// (indices into Boundaries.xs/ys) whose y-extent overlaps the band.
	bandStart []uint32
	edges     []int32
	segments  []int32 // all segments of the region, for building the grid
}

// LoadBoundaries decodes the embedded boundary dataset and builds its
// spatial index. It takes about 0.1 s and keeps about 10 MB of memory;
// callers should load it once and keep the result.
func LoadBoundaries() (*Boundaries, error) {
	b, err := loadBoundaries([]byte(admin1))
	if err != nil {
		return nil, fmt.Errorf("geo: load embedded boundaries: %w", err)
	}
	return b, nil
}

func loadBoundaries(file []byte) (*Boundaries, error) {
	d, err := boundaryfmt.Decode(file)
	if err != nil {
		return nil, err
	}
	if len(d.Regions) > math.MaxUint16-1 {
		return nil, fmt.Errorf("too many regions (%d)", len(d.Regions))
	}
	b := &Boundaries{
		xs:      make([]int32, len(d.Points)),
		ys:      make([]int32, len(d.Points)),
		regions: make([]region, len(d.Regions)),
	}
	for i, p := range d.Points {
		b.xs[i], b.ys[i] = p.X, p.Y
	}
	for i, dr := range d.Regions {
		if err := b.buildRegion(&b.regions[i], d, dr); err != nil {
			return nil, err
		}
	}
	b.buildGrid()
	b.known = make(map[string]bool)
	for i := range b.regions {
		b.regions[i].segments = nil
		if c := b.regions[i].loc.Region; c != "" {
			b.known[c] = true
		}
	}
	return b, nil
}

// buildRegion fills r from the dataset region dr: its location, bounding
// box and banded edge index.
func (b *Boundaries) buildRegion(r *region, d *boundaryfmt.Dataset, dr boundaryfmt.Region) error {
	r.loc = Location{Country: dr.Country, Region: dr.Code}
	if !validCountry(dr.Country) || (dr.Code != "" && !validRegion(dr.Country, dr.Code)) {
		return fmt.Errorf("region %q/%q: invalid code", dr.Country, dr.Code)
	}
	r.minX, r.minY = math.Inf(1), math.Inf(1)
	r.maxX, r.maxY = math.Inf(-1), math.Inf(-1)
	for _, ai := range dr.Arcs {
		start := d.ArcStarts[ai]
		end := start + len(d.Arc(ai))
		for i := start; i < end; i++ {
			x, y := float64(b.xs[i]), float64(b.ys[i])
			r.minX, r.maxX = min(r.minX, x), max(r.maxX, x)
			r.minY, r.maxY = min(r.minY, y), max(r.maxY, y)
			if i+1 < end {
				r.segments = append(r.segments, int32(i))
			}
		}
	}
	if len(r.segments) == 0 {
		return fmt.Errorf("region %s %s: no boundary", dr.Country, dr.Code)
	}

	// Horizontal segments never cross a horizontal ray: leave them out of
	// the band index (the grid still needs them).
	nb := min(maxBands, max(1, len(r.segments)/edgesPerBand))
	r.bandHeight = math.Ceil((r.maxY - r.minY + 1) / float64(nb))
	bandRange := func(s int32) (lo, hi int) {
		y1, y2 := float64(b.ys[s]), float64(b.ys[s+1])
		lo = int((min(y1, y2) - r.minY) / r.bandHeight)
		hi = int((max(y1, y2) - r.minY) / r.bandHeight)
		return min(lo, nb-1), min(hi, nb-1)
	}
	r.bandStart = make([]uint32, nb+1)
	for _, s := range r.segments {
		if b.ys[s] == b.ys[s+1] {
			continue
		}
		lo, hi := bandRange(s)
		for k := lo; k <= hi; k++ {
			r.bandStart[k+1]++
		}
	}
	for k := 1; k <= nb; k++ {
		r.bandStart[k] += r.bandStart[k-1]
	}
	r.edges = make([]int32, r.bandStart[nb])
	fill := slices.Clone(r.bandStart[:nb])
	for _, s := range r.segments {
		if b.ys[s] == b.ys[s+1] {
			continue
		}
		lo, hi := bandRange(s)
		for k := lo; k <= hi; k++ {
			r.edges[fill[k]] = s
			fill[k]++
		}
	}
	return nil
}

// buildGrid fills the cell index: the regions whose boundary touches each
// cell, and the region, if any, that covers a cell entirely.
func (b *Boundaries) buildGrid() {
	const nCells = gridCols * gridRows
	last := make([]int32, nCells) // 1 + last region added to the cell
	forEachRegionCell := func(fn func(cell int, ri int)) {
		clear(last)
		for ri := range b.regions {
			for _, s := range b.regions[ri].segments {
				segmentCells(float64(b.xs[s]), float64(b.ys[s]), float64(b.xs[s+1]), float64(b.ys[s+1]), func(c int) {
					if last[c] != int32(ri+1) {
						last[c] = int32(ri + 1)
						fn(c, ri)
					}
				})
			}
		}
	}
	b.cellStart = make([]uint32, nCells+1)
	forEachRegionCell(func(c, _ int) { b.cellStart[c+1]++ })
	for c := 1; c <= nCells; c++ {
		b.cellStart[c] += b.cellStart[c-1]
	}
	b.cellRegions = make([]uint16, b.cellStart[nCells])
	fill := slices.Clone(b.cellStart[:nCells])
	forEachRegionCell(func(c, ri int) {
		b.cellRegions[fill[c]] = uint16(ri)
		fill[c]++
	})

	// Try smaller regions first, so that an enclave that the data does not
	// cut out of its surrounding region (e.g. the Vatican) wins.
	bboxArea := func(ri uint16) float64 {
		r := &b.regions[ri]
		return (r.maxX - r.minX) * (r.maxY - r.minY)
	}
	for c := range nCells {
		slices.SortStableFunc(b.cellRegions[b.cellStart[c]:b.cellStart[c+1]], func(p, q uint16) int {
			return compareFloat(bboxArea(p), bboxArea(q))
		})
	}

	// A region whose boundary does not touch a cell either covers it
	// entirely or not at all: test the cell centre.
	b.cellCover = make([]uint16, nCells)
	for ri := range b.regions {
		r := &b.regions[ri]
		c0, r0 := cellOf(r.minX, r.minY)
		c1, r1 := cellOf(r.maxX, r.maxY)
		for row := r0; row <= r1; row++ {
			for col := c0; col <= c1; col++ {
				c := row*gridCols + col
				if slices.Contains(b.cellRegions[b.cellStart[c]:b.cellStart[c+1]], uint16(ri)) {
					continue
				}
				if cur := b.cellCover[c]; cur != 0 && bboxArea(cur-1) <= bboxArea(uint16(ri)) {
					continue
				}
				cx := minX + (float64(col)+0.5)*cellSize
				cy := minY + (float64(row)+0.5)*cellSize
				if b.contains(r, cx, cy) {
					b.cellCover[c] = uint16(ri + 1)
				}
			}
		}
	}
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cellOf returns the grid column and row of a point in coordinate units.
func cellOf(x, y float64) (col, row int) {
	col = int((x - minX) / cellSize)
	row = int((y - minY) / cellSize)
	return max(0, min(gridCols-1, col)), max(0, min(gridRows-1, row))
}

// segmentCells calls fn for every grid cell that the segment (x1,y1)–(x2,y2)
// touches, and possibly a few neighbouring ones: cells are widened by one
// coordinate unit so that segments on a cell border belong to both cells.
func segmentCells(x1, y1, x2, y2 float64, fn func(cell int)) {
	const eps = 1
	if x1 > x2 {
		x1, y1, x2, y2 = x2, y2, x1, y1
	}
	c0, _ := cellOf(x1-eps, 0)
	c1, _ := cellOf(x2+eps, 0)
	for col := c0; col <= c1; col++ {
		lo := max(x1, minX+float64(col)*cellSize-eps)
		hi := min(x2, minX+float64(col+1)*cellSize+eps)
		ya, yb := y1, y2
		if x2 > x1 {
			ya = y1 + (lo-x1)*(y2-y1)/(x2-x1)
			yb = y1 + (hi-x1)*(y2-y1)/(x2-x1)
		}
		if ya > yb {
			ya, yb = yb, ya
		}
		_, r0 := cellOf(0, ya-eps)
		_, r1 := cellOf(0, yb+eps)
		for row := r0; row <= r1; row++ {
			fn(row*gridCols + col)
		}
	}
}

// Lookup returns the location of the point at latitude lat and longitude
// lon, in degrees (WGS 84). Points outside every region (at sea, or invalid:
// NaN, infinite or out of range) yield the zero Location; Lookup never
// guesses the nearest region. Points inside a country whose subdivision is
// unknown yield a Location with an empty Region. Longitudes 180 and -180
// denote the same meridian.
//
// Lookup does not allocate and is safe for concurrent use.
func (b *Boundaries) Lookup(lat, lon float64) Location {
	if !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) { // also rejects NaN
		return Location{}
	}
	loc, ok := b.locate(lon*scale, lat*scale)
	if !ok && (lon == 180 || lon == -180) {
		loc, _ = b.locate(-lon*scale, lat*scale)
	}
	return loc
}

// locate finds the region containing (x, y), in coordinate units.
func (b *Boundaries) locate(x, y float64) (Location, bool) {
	col, row := cellOf(x, y)
	c := row*gridCols + col
	for _, ri := range b.cellRegions[b.cellStart[c]:b.cellStart[c+1]] {
		if r := &b.regions[ri]; b.contains(r, x, y) {
			return r.loc, true
		}
	}
	if cover := b.cellCover[c]; cover != 0 {
		return b.regions[cover-1].loc, true
	}
	return Location{}, false
}

// contains reports whether (x, y) lies inside r by the even-odd rule: it
// counts the crossings of a ray from the point towards +x with the edges of
// the point's band.
func (b *Boundaries) contains(r *region, x, y float64) bool {
	if x < r.minX || x > r.maxX || y < r.minY || y > r.maxY {
		return false
	}
	k := int((y - r.minY) / r.bandHeight)
	k = min(k, len(r.bandStart)-2)
	in := false
	for _, s := range r.edges[r.bandStart[k]:r.bandStart[k+1]] {
		y1, y2 := float64(b.ys[s]), float64(b.ys[s+1])
		if (y1 > y) != (y2 > y) {
			x1, x2 := float64(b.xs[s]), float64(b.xs[s+1])
			if x < x1+(y-y1)*(x2-x1)/(y2-y1) {
				in = !in
			}
		}
	}
	return in
}

// KnownRegion reports whether code is a first-level region of the
// dataset, e.g. true for "FR-IDF" and false for "FR-75" (a département,
// one level finer) or a made-up code.
func (b *Boundaries) KnownRegion(code string) bool { return b.known[code] }

// locations returns the locations of all regions in the dataset.
func (b *Boundaries) locations() []Location {
	locs := make([]Location, len(b.regions))
	for i, r := range b.regions {
		locs[i] = r.loc
	}
	return locs
}
