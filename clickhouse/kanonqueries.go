package clickhouse

import (
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/anonymizer/kanon"
)

// The k-anonymity queries, built as text like the others (queries.go), so
// the tests run the same text on ClickHouse 18.16 and on 26.x (chDB).

// qiList is the quasi-identifier columns, comma-separated.
var qiList = strings.Join(qiColumns[:], ", ")

// dateLiteral returns day's UTC day as a Date expression.
func dateLiteral(day time.Time) string {
	return "toDate(" + quote(day.UTC().Format(time.DateOnly)) + ")"
}

// unitCondition selects the rows of unit u.
func unitCondition(u kanon.Unit) string {
	return fmt.Sprintf("app_id = %s AND event_date = %s", quote(u.App), dateLiteral(u.Day))
}

// heldUnitsQuery lists the apps and days with held rows.
func heldUnitsQuery(k *kanonSchema) string {
	parts := make([]string, len(k.held))
	for i, h := range k.held {
		parts[i] = fmt.Sprintf("SELECT DISTINCT app_id, event_date FROM %s.%s", h.database, h.name)
	}
	return fmt.Sprintf("SELECT DISTINCT app_id, event_date FROM (\n%s\n) ORDER BY event_date, app_id", strings.Join(parts, "\nUNION ALL\n"))
}

// publicIDs returns a subquery of the event ids of held table held (in
// heldDB), in rows cond selects, that its event table event (in db) holds
// already. It reads the event table's event ids in cond's range, but
// keeps only those of held rows: the set built stays as small as the held
// rows, however large the app's day is.
//
// It names the storage tables (publicIDsOf): on a cluster, where the
// query around it reads a Distributed table, each shard runs the
// subquery on its own rows, which is exact because held rows live on the
// shard of their event (the same shard key), and cheap; ClickHouse would
// refuse a Distributed table there (distributed_product_mode), and 18.16
// takes no string setting over the native protocol from clickhouse-go
// to allow it.
func publicIDs(db, event, heldDB, held, cond string) string {
	return fmt.Sprintf("SELECT event_id FROM %s.%s WHERE %s AND event_id IN (SELECT event_id FROM %s.%s WHERE %s)",
		db, event, cond, heldDB, held, cond)
}

// publicIDsOf is publicIDs for held table held and its event table,
// through their storage tables (the same as their names on one server).
func publicIDsOf(o SchemaOptions, db string, held *tableDef, cond string) string {
	event := strings.TrimPrefix(held.name, HeldTablePrefix)
	if held.distributed(o) {
		event += "_local"
	}
	return publicIDs(db, event, held.database, held.storage(o), cond)
}

// erasedCondition is true for rows of a consent whose rows were erased:
// they are never published, and deleted from the held tables.
func erasedCondition(db string) string {
	return fmt.Sprintf("consent_key IN (SELECT consent_key FROM %s.%s)", db, TableErasures)
}

// heldGroupsQuery returns u's held rows grouped by combination, member
// and staleness (already public, or of an erased consent), with their
// count and first held time.
func heldGroupsQuery(k *kanonSchema, db string, u kanon.Unit) string {
	cond := unitCondition(u)
	parts := make([]string, len(k.held))
	for i, h := range k.held {
		parts[i] = fmt.Sprintf(`SELECT %[1]s, member,
    toUInt8(event_id IN (%[2]s) OR %[3]s) AS stale,
    count() AS n, min(held_at) AS first_held
FROM %[4]s.%[5]s
WHERE %[6]s
GROUP BY %[1]s, member, stale`, qiList, publicIDsOf(k.opts, db, h, cond), erasedCondition(db), h.database, h.name, cond)
	}
	return fmt.Sprintf(`SELECT %[1]s, member, stale, sum(n) AS held_rows, min(first_held) AS first
FROM (
%[2]s
)
GROUP BY %[1]s, member, stale`, qiList, strings.Join(parts, "\nUNION ALL\n"))
}

// releaseColumns are the release log's columns as Releases reads them.
func releaseColumns() string {
	cols := []string{"pass_id", "level", qiList}
	for a := range kanon.NumAttributes {
		cols = append(cols, "rung_"+kanon.Attribute(a).String())
	}
	return strings.Join(append(cols, "top", "consents", "held_rows", "is_new", "expired_before", "released_at"), ", ")
}

// releasesQuery returns u's release log.
func releasesQuery(k *kanonSchema, u kanon.Unit) string {
	t := k.releases.def
	return fmt.Sprintf("SELECT %s FROM %s.%s WHERE %s ORDER BY released_at, pass_id, level", releaseColumns(), t.database, t.name, unitCondition(u))
}

// donePassesQuery returns the passes that completed their moves of u.
func donePassesQuery(k *kanonSchema, u kanon.Unit) string {
	t := k.done.def
	return fmt.Sprintf("SELECT DISTINCT pass_id FROM %s.%s WHERE %s", t.database, t.name, unitCondition(u))
}

// publishedQuery returns the classes published exactly, by passes whose
// moves completed at or after loggedAfter, for event days from since on.
func publishedQuery(k *kanonSchema, since, loggedAfter time.Time) string {
	r, d := k.releases.def, k.done.def
	return fmt.Sprintf(`SELECT DISTINCT app_id, event_date, %[1]s
FROM %[2]s.%[3]s
WHERE level = 0 AND event_date >= %[4]s
  AND (pass_id, app_id, event_date) IN (
    SELECT pass_id, app_id, event_date FROM %[5]s.%[6]s WHERE event_date >= %[4]s AND done_at >= %[7]s)`,
		qiList, r.database, r.name, dateLiteral(since), d.database, d.name, dateTimeLiteral(loggedAfter))
}

// qiExprs returns, for each quasi-identifier column, the SQL expression
// of its value generalized as g says; it computes what
// kanon.Generalization.Apply does, and the tests check the two agree on
// both kinds of server.
func qiExprs(g kanon.Generalization) [kanon.NumColumns]string {
	if g.Top {
		var out [kanon.NumColumns]string
		for i, v := range kanon.TopQI().Values() {
			out[i] = quote(v)
		}
		return out
	}
	otherUnlessEmpty := func(col string) string { return fmt.Sprintf("if(%s = '', '', %s)", col, quote(kanon.Other)) }
	// leading keeps what extract finds at the start of col, if match
	// finds a digit there, as kanon.MajorVersion and MajorMinorVersion do.
	leading := func(col, match, extract string) string {
		return fmt.Sprintf("if(%[1]s = '', '', if(match(%[1]s, %[2]s), extract(%[1]s, %[3]s), %[4]s))",
			col, quote(match), quote(extract), quote(kanon.Other))
	}
	e := qiColumns // the exact values
	switch g.Rungs[kanon.App] {
	case 0:
	case 1:
		e[0], e[1], e[2] = leading("app_version", `^[vV]?[0-9]`, `^[vV]?[0-9]+(?:\.[0-9]+)?`), "''", "''"
	default:
		e[0], e[1], e[2] = otherUnlessEmpty("app_version"), "''", "''"
	}
	if g.Rungs[kanon.Model] > 0 {
		e[4] = otherUnlessEmpty("device_model")
	}
	switch g.Rungs[kanon.OS] {
	case 0:
	case 1:
		e[6] = leading("os_version", `^[0-9]`, `^[0-9]+`)
	default:
		e[6] = otherUnlessEmpty("os_version")
	}
	switch g.Rungs[kanon.Locale] {
	case 0:
	case 1:
		e[7] = "splitByChar('-', locale)[1]"
	default:
		e[7] = "''"
	}
	switch g.Rungs[kanon.Location] {
	case 0:
	case 1:
		e[9] = "''"
	default:
		e[8], e[9] = "''", "''"
	}
	return e
}

// moveStatement returns the INSERT ... SELECT that copies u's held rows of
// combos from held into event table t, generalized as g says, leaving out
// rows t already holds and rows of erased consents. The generalized
// values are expressions without aliases: an alias named like a column
// would replace the column in the WHERE clause.
func moveStatement(o SchemaOptions, t, held *tableDef, db string, u kanon.Unit, g kanon.Generalization, combos []kanon.QI) string {
	exprs := qiExprs(g)
	byName := make(map[string]string, len(exprs))
	for i, name := range qiColumns {
		byName[name] = exprs[i]
	}
	sel := make([]string, len(t.columns))
	for i, col := range t.columns {
		if e, ok := byName[col.name]; ok {
			sel[i] = e
		} else {
			sel[i] = col.name
		}
	}
	tuples := make([]string, len(combos))
	for i, c := range combos {
		vals := c.Values()
		tuples[i] = inList(vals[:])
	}
	cond := unitCondition(u)
	return fmt.Sprintf(`INSERT INTO %[1]s.%[2]s (%[3]s)
SELECT %[4]s
FROM %[5]s.%[6]s
WHERE %[7]s
  AND (%[8]s) IN (%[9]s)
  AND event_id NOT IN (%[10]s)
  AND NOT %[11]s`,
		db, t.name, strings.Join(t.columnNames(), ", "), strings.Join(sel, ", "),
		held.database, held.name, cond, qiList, strings.Join(tuples, ", "), publicIDsOf(o, db, held, cond), erasedCondition(db))
}

// staleCondition selects the rows of held table held, of units, that its
// event table holds already, and every held row of an erased consent.
// eventStorage and heldStorage name the tables the mutation compares: on
// a cluster, the shard's storage tables.
func staleCondition(db string, held *tableDef, eventStorage, heldStorage string, units []kanon.Unit) string {
	pairs := make([]string, len(units))
	for i, u := range units {
		pairs[i] = fmt.Sprintf("(%s, %s)", quote(u.App), dateLiteral(u.Day))
	}
	cond := "(app_id, event_date) IN (" + strings.Join(pairs, ", ") + ")"
	return fmt.Sprintf("(%s AND event_id IN (%s)) OR %s", cond, publicIDs(db, eventStorage, held.database, heldStorage, cond), erasedCondition(db))
}

// heldRowsQuery counts app's held rows.
func heldRowsQuery(k *kanonSchema, app string) string {
	parts := make([]string, len(k.held))
	for i, h := range k.held {
		parts[i] = fmt.Sprintf("SELECT count() AS n FROM %s.%s WHERE app_id = %s", h.database, h.name, quote(app))
	}
	return fmt.Sprintf("SELECT toUInt64(sum(n)) FROM (\n%s\n)", strings.Join(parts, "\nUNION ALL\n"))
}

// kanonQueries returns the text of every k-anonymity query, for tests to
// run on each server.
func kanonQueries(k *kanonSchema, s *schema) []string {
	u := kanon.Unit{App: "com.example.notes", Day: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}
	db := s.opts.Database
	qs := []string{
		heldUnitsQuery(k), heldGroupsQuery(k, db, u), releasesQuery(k, u), donePassesQuery(k, u),
		publishedQuery(k, u.Day, u.Day), heldRowsQuery(k, u.App),
	}
	h := kanon.Hierarchy{}
	for level := 0; level <= h.Top(); level++ {
		for i, t := range s.eventTables() {
			qs = append(qs, moveStatement(k.opts, t, k.held[i], db, u, h.At(level), []kanon.QI{{AppVersion: "4.12.0"}, {Locale: "it's"}}))
		}
	}
	return qs
}
