package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
)

// PrivacyDay is what the privacy report (consentry privacy-report) says
// about one app on one UTC day. Every figure is a count; no value,
// identifier or key is read.
type PrivacyDay struct {
	App string
	Day time.Time

	// RowsStored is the rows of the day in the event tables (before
	// background deduplication of retried batches); RowsHeld the rows
	// waiting for their combination to reach k consents.
	RowsStored, RowsHeld uint64
	// Released is what release passes published of the held rows.
	Released Releases
	// Scrubbed counts identifiers replaced, by detector (and
	// "identifier_key": attributes dropped for their key), in batches
	// received that day.
	Scrubbed map[string]uint64
	// Granted is the consent tokens issued that day.
	Granted uint64
	// Revoked is the consents first revoked that day, ErasureAsked those
	// of them whose revocation asked for erasure.
	Revoked, ErasureAsked uint64
	// Erased is the consents whose rows were erased that day, RowsErased
	// the rows deleted.
	Erased, RowsErased uint64
	// Receipts counts the erasure receipts issued that day by outcome
	// ("erased", "anonymous").
	Receipts map[string]uint64
}

// Releases sums the release log of one app and day.
type Releases struct {
	// Rows is the held rows released; Exact of them as they came (their
	// combination reached k consents), Top at the top level, where every
	// quasi-identifier is unknown.
	Rows, Exact, Top uint64
	// Generalized counts released rows by attribute and rung reached
	// (index 1 and 2; see kanon.Attribute), the top level aside.
	Generalized [kanon.NumAttributes][3]uint64
	// Classes is the classes published.
	Classes uint64
	// SmallestClass is the fewest consents a published class (the top
	// aside) held when the log last counted it; 0 when none was.
	SmallestClass uint64
}

// PrivacyReport returns the privacy report of app ("" for every app) for
// the UTC days from since's day to until's, one PrivacyDay per app and day
// with anything to report, ordered by app and day.
func (c *Client) PrivacyReport(ctx context.Context, app string, since, until time.Time) ([]PrivacyDay, error) {
	from, to := utcDay(since), utcDay(until)
	days := map[[2]string]*PrivacyDay{}
	get := func(a string, d time.Time) *PrivacyDay {
		k := [2]string{a, utcDay(d).Format(time.DateOnly)}
		p := days[k]
		if p == nil {
			p = &PrivacyDay{App: a, Day: utcDay(d), Scrubbed: map[string]uint64{}, Receipts: map[string]uint64{}}
			days[k] = p
		}
		return p
	}
	q := privacyReportQueries(c.schema, c.kanon, app, from, to)
	type dayCount struct {
		App string    `ch:"app_id"`
		Day time.Time `ch:"day"`
		N   uint64    `ch:"n"`
	}
	counts := func(query string, add func(p *PrivacyDay, n uint64)) error {
		return selectEach(ctx, c, "privacy report", query, func(r dayCount) { add(get(r.App, r.Day), r.N) })
	}
	if err := counts(q.stored, func(p *PrivacyDay, n uint64) { p.RowsStored += n }); err != nil {
		return nil, err
	}
	if err := counts(q.held, func(p *PrivacyDay, n uint64) { p.RowsHeld += n }); err != nil {
		return nil, err
	}
	if err := counts(q.smallest, func(p *PrivacyDay, n uint64) { p.Released.SmallestClass = n }); err != nil {
		return nil, err
	}
	if err := c.releaseSums(ctx, q.releases, get); err != nil {
		return nil, err
	}
	type namedCount struct {
		dayCount
		Kind string `ch:"kind"`
		Name string `ch:"name"`
	}
	if err := selectEach(ctx, c, "privacy report: counts", q.counts, func(r namedCount) {
		p := get(r.App, r.Day)
		switch {
		case r.Kind == CountScrub:
			p.Scrubbed[r.Name] += r.N
		case r.Name == "granted":
			p.Granted += r.N
		case strings.HasPrefix(r.Name, "receipt_"):
			p.Receipts[strings.TrimPrefix(r.Name, "receipt_")] += r.N
		}
	}); err != nil {
		return nil, err
	}
	type revoked struct {
		dayCount
		Erase uint64 `ch:"erase_asked"`
	}
	if err := selectEach(ctx, c, "privacy report: revocations", q.revoked, func(r revoked) {
		p := get(r.App, r.Day)
		p.Revoked, p.ErasureAsked = r.N, r.Erase
	}); err != nil {
		return nil, err
	}
	type erased struct {
		dayCount
		Rows uint64 `ch:"erased_rows"`
	}
	if err := selectEach(ctx, c, "privacy report: erasures", q.erased, func(r erased) {
		p := get(r.App, r.Day)
		p.Erased, p.RowsErased = r.N, r.Rows
	}); err != nil {
		return nil, err
	}
	out := make([]PrivacyDay, 0, len(days))
	for _, p := range days {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PrivacyDay) int { return cmp.Or(cmp.Compare(a.App, b.App), a.Day.Compare(b.Day)) })
	return out, nil
}

// releaseSums adds the release log's sums to the days.
func (c *Client) releaseSums(ctx context.Context, query string, get func(string, time.Time) *PrivacyDay) error {
	return queryEach(ctx, c, "privacy report: release log", query, func(scan func(...any) error) error {
		var (
			app         string
			day         time.Time
			r           Releases
			generalized [kanon.NumAttributes][2]uint64
		)
		dest := []any{&app, &day, &r.Rows, &r.Exact, &r.Top, &r.Classes}
		for a := range generalized {
			dest = append(dest, &generalized[a][0], &generalized[a][1])
		}
		if err := scan(dest...); err != nil {
			return err
		}
		for a, g := range generalized {
			r.Generalized[a][1], r.Generalized[a][2] = g[0], g[1]
		}
		p := get(app, day)
		r.SmallestClass = p.Released.SmallestClass
		p.Released = r
		return nil
	})
}

// reportQueries are the privacy report's queries.
type reportQueries struct {
	stored, held, releases, smallest, counts, revoked, erased string
}

// privacyReportQueries returns the report's queries for app ("" for all)
// and the days from to to.
func privacyReportQueries(s *schema, k *kanonSchema, app string, from, to time.Time) reportQueries {
	db := s.opts.Database
	appCond := func(col string) string {
		if app == "" {
			return ""
		}
		return fmt.Sprintf(" AND %s = %s", col, quote(app))
	}
	dayCond := func(expr string) string {
		return fmt.Sprintf("%s BETWEEN %s AND %s", expr, dateLiteral(from), dateLiteral(to))
	}
	perDay := func(tables []string) string {
		parts := make([]string, len(tables))
		for i, t := range tables {
			parts[i] = fmt.Sprintf("SELECT app_id, event_date AS day, count() AS n FROM %s WHERE %s%s GROUP BY app_id, day", t, dayCond("event_date"), appCond("app_id"))
		}
		return fmt.Sprintf("SELECT app_id, day, toUInt64(sum(n)) AS n FROM (\n%s\n) GROUP BY app_id, day", strings.Join(parts, "\nUNION ALL\n"))
	}
	var public, held []string
	for i, t := range s.eventTables() {
		public = append(public, db+"."+t.name)
		held = append(held, k.held[i].database+"."+k.held[i].name)
	}
	rl := k.releases.def
	var rungs []string
	for a := range kanon.NumAttributes {
		col := "rung_" + kanon.Attribute(a).String()
		rungs = append(rungs,
			fmt.Sprintf("sumIf(held_rows, top = 0 AND %s = 1) AS %s_1", col, col),
			fmt.Sprintf("sumIf(held_rows, top = 0 AND %s = 2) AS %s_2", col, col))
	}
	where := dayCond("event_date") + appCond("app_id")
	return reportQueries{
		stored: perDay(public),
		held:   perDay(held),
		releases: fmt.Sprintf(`SELECT app_id, event_date AS day, sum(held_rows) AS released_rows,
    sumIf(held_rows, level = 0) AS exact_rows, sumIf(held_rows, top = 1) AS top_rows, toUInt64(countIf(is_new = 1)) AS classes,
    %s
FROM %s.%s
WHERE %s
GROUP BY app_id, day`, strings.Join(rungs, ",\n    "), rl.database, rl.name, where),
		// A class's size is at least the largest count the log made of it.
		smallest: fmt.Sprintf(`SELECT app_id, day, min(class_consents) AS n FROM (
    SELECT app_id, event_date AS day, level, %s, max(consents) AS class_consents
    FROM %s.%s
    WHERE top = 0 AND %s
    GROUP BY app_id, day, level, %s)
GROUP BY app_id, day`, qiList, rl.database, rl.name, where, qiList),
		counts: fmt.Sprintf("SELECT app_id, day, kind, name, toUInt64(sum(events)) AS n FROM %s.%s WHERE %s%s GROUP BY app_id, day, kind, name",
			k.counts.def.database, k.counts.def.name, dayCond("day"), appCond("app_id")),
		// A consent counts once, on the day it was first revoked.
		revoked: fmt.Sprintf(`SELECT first_app AS app_id, toDate(first_revoked_at) AS day, count() AS n, toUInt64(sum(first_erase)) AS erase_asked
FROM (
    SELECT consent_hash, argMin(app_id, revoked_at) AS first_app, min(revoked_at) AS first_revoked_at, argMin(erase, revoked_at) AS first_erase
    FROM %s.%s
    GROUP BY consent_hash)
WHERE %s%s
GROUP BY app_id, day`, db, TableRevocations, dayCond("toDate(first_revoked_at)"), appCond("first_app")),
		erased: fmt.Sprintf("SELECT app_id, toDate(erased_at) AS day, uniqExact(consent_key) AS n, toUInt64(sum(rows)) AS erased_rows FROM %s.%s WHERE %s%s GROUP BY app_id, day",
			db, TableErasures, dayCond("toDate(erased_at)"), appCond("app_id")),
	}
}
