package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/dashboard/triage"
)

// decisionRow is a triage decision as crash_group_status holds it.
type decisionRow struct {
	Fingerprint uint64    `ch:"fingerprint"`
	State       string    `ch:"status"`
	ResolvedIn  string    `ch:"resolved_in"`
	ChangedBy   string    `ch:"changed_by"`
	ChangedAt   time.Time `ch:"changed_at"`
}

// decision returns r as app's triage.Decision.
func (r decisionRow) decision(app string) triage.Decision {
	return triage.Decision{AppID: app, Fingerprint: r.Fingerprint, State: triage.State(r.State),
		ResolvedIn: r.ResolvedIn, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
}

// latestDecisionsQuery is LatestDecisions' query.
func latestDecisionsQuery(db, app string, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf(`SELECT fingerprint, argMax(status, version) AS status, argMax(resolved_in, version) AS resolved_in,
    argMax(changed_by, version) AS changed_by, argMax(changed_at, version) AS changed_at
FROM %s.%s WHERE %s GROUP BY fingerprint`, db, TableCrashGroupStatus, where), vals}
}

// LatestDecisions implements triage.Backend.
func (c *Client) LatestDecisions(ctx context.Context, app string, groups []uint64) (map[uint64]triage.Decision, error) {
	var rows []decisionRow
	if err := c.selectQuery(ctx, &rows, latestDecisionsQuery(c.Database(), app, groups)); err != nil {
		return nil, fmt.Errorf("latest decisions: %w", err)
	}
	out := make(map[uint64]triage.Decision, len(rows))
	for _, r := range rows {
		out[r.Fingerprint] = r.decision(app)
	}
	return out, nil
}

// decisionHistoryQuery is DecisionHistory's query.
func decisionHistoryQuery(db, app string, group uint64, limit int) query {
	return query{fmt.Sprintf(`SELECT fingerprint, status, resolved_in, changed_by, changed_at FROM %s.%s
WHERE app_id = ? AND fingerprint = ? ORDER BY version DESC LIMIT ?`, db, TableCrashGroupStatus), []any{app, group, limit}}
}

// DecisionHistory implements triage.Backend.
func (c *Client) DecisionHistory(ctx context.Context, app string, group uint64, limit int) ([]triage.Decision, error) {
	out, err := selectAll(ctx, c, decisionHistoryQuery(c.Database(), app, group, limit), func(r decisionRow) triage.Decision { return r.decision(app) })
	if err != nil {
		return nil, fmt.Errorf("decision history: %w", err)
	}
	return out, nil
}

// RecordDecisions implements triage.Backend: it validates ds and appends
// them to crash_group_status in one insert.
func (c *Client) RecordDecisions(ctx context.Context, ds []triage.Decision) error {
	return recordValid(ctx, c, c.schema.crashStatus, ds, "record decisions")
}

// changeRow is a change as crash_group_changes holds it.
type changeRow struct {
	Fingerprint uint64    `ch:"fingerprint"`
	Kind        string    `ch:"kind"`
	Value       string    `ch:"value"`
	MergedInto  uint64    `ch:"merged_into"`
	ChangedBy   string    `ch:"changed_by"`
	ChangedAt   time.Time `ch:"changed_at"`
}

// change returns r as app's triage.Change.
func (r changeRow) change(app string) triage.Change {
	return triage.Change{AppID: app, Fingerprint: r.Fingerprint, Kind: triage.ChangeKind(r.Kind), Value: r.Value,
		MergedInto: r.MergedInto, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt}
}

// latestChangesQuery is LatestChanges' query. (The kind is not selected:
// an aggregate named kind would replace the column in WHERE.)
func latestChangesQuery(db, app string, kind triage.ChangeKind, groups []uint64) query {
	where, vals := appGroups(app, groups)
	return query{fmt.Sprintf(`SELECT fingerprint, argMax(value, version) AS value, argMax(merged_into, version) AS merged_into,
    argMax(changed_by, version) AS changed_by, argMax(changed_at, version) AS changed_at
FROM %s.%s WHERE %s AND kind = ? GROUP BY fingerprint`, db, TableCrashGroupChanges, where), append(vals, string(kind))}
}

// LatestChanges implements triage.Backend.
func (c *Client) LatestChanges(ctx context.Context, app string, kind triage.ChangeKind, groups []uint64) (map[uint64]triage.Change, error) {
	var rows []changeRow
	if err := c.selectQuery(ctx, &rows, latestChangesQuery(c.Database(), app, kind, groups)); err != nil {
		return nil, fmt.Errorf("latest changes: %w", err)
	}
	out := make(map[uint64]triage.Change, len(rows))
	for _, r := range rows {
		r.Kind = string(kind)
		out[r.Fingerprint] = r.change(app)
	}
	return out, nil
}

// changeHistoryQuery is ChangeHistory's query: the changes of groups, and
// of the groups ever merged into one of them.
func changeHistoryQuery(db, app string, groups []uint64, limit int) query {
	in := placeholders(len(groups))
	vals := append(append(append([]any{app}, args(groups)...), app, string(triage.ChangeMerge)), args(groups)...)
	return query{fmt.Sprintf(`SELECT fingerprint, kind, value, merged_into, changed_by, changed_at FROM %[1]s.%[2]s
WHERE app_id = ? AND (fingerprint IN (%[3]s)
    OR fingerprint IN (SELECT fingerprint FROM %[1]s.%[2]s WHERE app_id = ? AND kind = ? AND merged_into IN (%[3]s)))
ORDER BY version DESC LIMIT ?`, db, TableCrashGroupChanges, in), append(vals, limit)}
}

// ChangeHistory implements triage.Backend.
func (c *Client) ChangeHistory(ctx context.Context, app string, groups []uint64, limit int) ([]triage.Change, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	out, err := selectAll(ctx, c, changeHistoryQuery(c.Database(), app, groups, limit), func(r changeRow) triage.Change { return r.change(app) })
	if err != nil {
		return nil, fmt.Errorf("change history: %w", err)
	}
	return out, nil
}

// RecordChanges implements triage.Backend: it validates cs and appends
// them to crash_group_changes in one insert.
func (c *Client) RecordChanges(ctx context.Context, cs []triage.Change) error {
	return recordValid(ctx, c, c.schema.crashChanges, cs, "record changes")
}

// recordValid validates rows, returning the first error as it is, and
// appends them to t in one insert; what names the insert in its error.
func recordValid[R interface{ Validate() error }](ctx context.Context, c *Client, t *rowTable[R], rows []R, what string) error {
	for _, r := range rows {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	if err := insertRows(ctx, c.conn, t, rows); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
