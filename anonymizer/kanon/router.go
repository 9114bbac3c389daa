package kanon

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// Router knows the combinations of quasi-identifiers published exactly
// (level 0) for each app and UTC day, and splits rows into those that may
// go straight to the public tables (their class is published, and a
// published class only grows) and those that must be held until the
// release publishes them. It is safe for concurrent use; the collector
// refreshes it from the release log (Refresh).
//
// Classes are kept as 128-bit keyed hashes, 16 bytes each, not as their
// values; the hash seeds are random per Router, so nobody can craft
// colliding values.
type Router struct {
	seeds [2]maphash.Seed

	mu    sync.RWMutex
	exact map[classKey]struct{}
	byDay map[int64][]classKey // UTC day number → its keys, for Prune
}

// classKey is the keyed hash of one exactly published class.
type classKey [2]uint64

// hashed is what a classKey hashes: maphash.Comparable hashes each field,
// strings by their length and bytes, so distinct values cannot run into
// each other.
type hashed struct {
	app string
	day int64
	qi  QI
}

// NewRouter returns a Router that knows no published class.
func NewRouter() *Router {
	return &Router{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		exact: make(map[classKey]struct{}),
		byDay: make(map[int64][]classKey),
	}
}

// DayNumber returns the number of t's UTC day since 1970-01-01.
func DayNumber(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s+1)/86400 - 1
	}
	return s / 86400
}

func (r *Router) key(app string, day int64, q *QI) classKey {
	v := hashed{app: app, day: day, qi: *q}
	return classKey{maphash.Comparable(r.seeds[0], v), maphash.Comparable(r.seeds[1], v)}
}

// Add records that q was published exactly for app on day's UTC day.
func (r *Router) Add(app string, day time.Time, q QI) {
	d := DayNumber(day)
	k := r.key(app, d, &q)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.exact[k]; ok {
		return
	}
	r.exact[k] = struct{}{}
	r.byDay[d] = append(r.byDay[d], k)
}

// Published reports whether q is published exactly for app on day's UTC
// day.
func (r *Router) Published(app string, day time.Time, q QI) bool {
	k := r.key(app, DayNumber(day), &q)
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.exact[k]
	return ok
}

// Prune forgets the classes of the UTC days before before's day.
func (r *Router) Prune(before time.Time) {
	limit := DayNumber(before)
	r.mu.Lock()
	defer r.mu.Unlock()
	for d, keys := range r.byDay {
		if d >= limit {
			continue
		}
		for _, k := range keys {
			delete(r.exact, k)
		}
		delete(r.byDay, d)
	}
}

// Len returns the number of classes known.
func (r *Router) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.exact)
}

// Split returns the rows whose class is published exactly, which may be
// stored at once, and the rest, which must be held. When every row is
// published (the common case once an app's combinations are known) it
// returns rows itself and nil, without copying. Split does not modify
// rows.
func (r *Router) Split(rows *pipeline.Rows) (public, held *pipeline.Rows) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var c routeCache
	var anyHeld bool
	ps, hs := split(r, &c, rows.Sessions, func(x *pipeline.SessionRow) *pipeline.Common { return &x.Common }, &anyHeld)
	pg, hg := split(r, &c, rows.Gestures, func(x *pipeline.GestureRow) *pipeline.Common { return &x.Common }, &anyHeld)
	pc, hc := split(r, &c, rows.Crashes, func(x *pipeline.CrashRow) *pipeline.Common { return &x.Common }, &anyHeld)
	pu, hu := split(r, &c, rows.Customs, func(x *pipeline.CustomRow) *pipeline.Common { return &x.Common }, &anyHeld)
	pd, hd := split(r, &c, rows.Diagnostics, func(x *pipeline.DiagnosticRow) *pipeline.Common { return &x.Common }, &anyHeld)
	if !anyHeld {
		return rows, nil
	}
	return &pipeline.Rows{Sessions: ps, Gestures: pg, Crashes: pc, Customs: pu, Diagnostics: pd},
		&pipeline.Rows{Sessions: hs, Gestures: hg, Crashes: hc, Customs: hu, Diagnostics: hd}
}

// routeCache remembers the last row's answer: the rows of a batch share
// their device columns, and strings decoded from one spool record share
// their bytes, so comparing is cheaper than hashing.
type routeCache struct {
	valid     bool
	app       string
	day       int64
	qi        QI
	published bool
}

// publishedLocked is Published for c, with r.mu held, through cache.
func (r *Router) publishedLocked(cache *routeCache, c *pipeline.Common) bool {
	day := DayNumber(c.EventTime)
	if cache.valid && cache.day == day && cache.app == c.AppID && cache.qi == QIOf(c) {
		return cache.published
	}
	q := QIOf(c)
	_, ok := r.exact[r.key(c.AppID, day, &q)]
	*cache = routeCache{valid: true, app: c.AppID, day: day, qi: q, published: ok}
	return ok
}

// split splits one table's rows. It returns rows itself and nil while no
// row is held, and two parts of rows itself, without copying, while the
// held rows are all after the published ones (every row held, as on a
// new day, included); the parts are capped, so appending to one cannot
// overwrite the other. Only rows that interleave are copied.
func split[R any](r *Router, cache *routeCache, rows []R, common func(*R) *pipeline.Common, anyHeld *bool) (pub, held []R) {
	// first is the index of the first held row; copied tells pub and held
	// are copies (a published row followed a held one).
	first, copied := -1, false
	for i := range rows {
		published := r.publishedLocked(cache, common(&rows[i]))
		switch {
		case copied && published:
			pub = append(pub, rows[i])
		case copied:
			held = append(held, rows[i])
		case published && first >= 0:
			// The first published row after held ones: copy from now on.
			pub = append(make([]R, 0, len(rows)-(i-first)), rows[:first]...)
			pub = append(pub, rows[i])
			held = append(make([]R, 0, len(rows)-first), rows[first:i]...)
			copied = true
		case !published && first < 0:
			first = i
			*anyHeld = true
		}
	}
	switch {
	case first < 0:
		return rows, nil
	case copied:
		return pub, held
	default:
		return rows[:first:first], rows[first:len(rows):len(rows)]
	}
}
