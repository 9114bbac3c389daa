package clickhouse

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/consentry/consentry/consent"
	"github.com/consentry/consentry/pipeline"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The consent store: a Client keeps the registered apps, the revocations
// and the erasure audit log in the tables apps, revocations and erasures
// (migration 4), and erases a consent's rows from the event tables by
// their consent_key column (migration 3).

var _ consent.Store = (*Client)(nil)

// Polling of system.mutations while a deletion runs.
const (
	mutationPollMin = 10 * time.Millisecond
	mutationPollMax = time.Second
)

// maxConsentKeyLen bounds a consent key; the collector's are 64 hex digits.
const maxConsentKeyLen = 256

// PutApp stores a as the newest version of its app. Versions are ordered
// by UpdatedAt, so a later change needs a later UpdatedAt; reads return,
// per app, the version with the latest UpdatedAt. Times are stored in
// whole seconds and must lie between 1970 and 2106.
func (c *Client) PutApp(ctx context.Context, a consent.App) error {
	if err := checkApp(a); err != nil {
		return fmt.Errorf("put app %q: %w", a.ID, err)
	}
	if err := insertEverywhere(ctx, c, c.schema.apps, []consent.App{a}); err != nil {
		return fmt.Errorf("put app %s: %w", a.ID, err)
	}
	return nil
}

// checkApp reports why a cannot be stored.
func checkApp(a consent.App) error {
	var errs []error
	if a.ID == "" {
		errs = append(errs, errors.New("empty app id"))
	}
	if a.KeyHash == "" {
		errs = append(errs, errors.New("empty key hash"))
	}
	if !a.Policy.Valid() {
		errs = append(errs, fmt.Errorf("policy %q: want %s or %s", a.Policy, consent.PolicyAnonymous, consent.PolicyErasable))
	}
	errs = append(errs, checkDateTime("created_at", a.CreatedAt), checkDateTime("updated_at", a.UpdatedAt))
	return errors.Join(errs...)
}

// Apps returns the latest version of every app, ordered by id. On a
// cluster it reads the connected server's replica once it caught up.
func (c *Client) Apps(ctx context.Context) ([]consent.App, error) {
	if err := c.syncReplica(ctx, c.schema.apps.def); err != nil {
		return nil, fmt.Errorf("read apps: %w", err)
	}
	return queryAll(ctx, c, "read apps", appsQuery(c.Database()), func(scan func(...any) error) (consent.App, error) {
		var (
			a      consent.App
			scopes []string
			policy string
		)
		if err := scan(&a.ID, &a.KeyHash, &scopes, &policy, &a.CreatedAt, &a.UpdatedAt); err != nil {
			return a, err
		}
		a.Policy = consent.Policy(policy)
		for _, s := range scopes {
			a.Scopes = append(a.Scopes, consentryv1.Scope(s))
		}
		return a, nil
	})
}

// PutRevocation records r. Recording a consent's revocation again is
// harmless: reads, and the merges of the table, keep the first one (the
// earliest RevokedAt, in whole seconds). r.ConsentHash must be a hex
// SHA-256 (consent.HashConsentID), so a consent id cannot be stored by
// mistake. On a cluster it returns once two servers have it.
func (c *Client) PutRevocation(ctx context.Context, r consent.Revocation) error {
	if err := checkRevocation(r); err != nil {
		return fmt.Errorf("put revocation: %w", err)
	}
	if err := insertEverywhere(ctx, c, c.schema.revocations, []consent.Revocation{r}); err != nil {
		return fmt.Errorf("put revocation: %w", err)
	}
	return nil
}

// checkRevocation reports why r cannot be stored.
func checkRevocation(r consent.Revocation) error {
	var errs []error
	if b, err := hex.DecodeString(r.ConsentHash); err != nil || len(b) != 32 || strings.ToLower(r.ConsentHash) != r.ConsentHash {
		errs = append(errs, errors.New("consent hash is not a lower-case hex SHA-256"))
	}
	if r.AppID == "" {
		errs = append(errs, errors.New("empty app id"))
	}
	errs = append(errs, checkDateTime("revoked_at", r.RevokedAt), checkDateTime("expires_at", r.ExpiresAt))
	return errors.Join(errs...)
}

// Revocations returns the revocations first recorded at or after since
// whose tokens have not expired at now (ExpiresAt after now), one per
// consent as its first revocation recorded it, ordered by RevokedAt. Times
// have whole seconds.
//
// On a cluster it first makes the connected server's replica catch up
// with every revocation acknowledged before the call (SYSTEM SYNC
// REPLICA), so what it returns is what a single server would: a replica
// that cannot catch up (ZooKeeper away, no copy of a part reachable)
// fails the read, and consent.Revocations then counts as stale.
func (c *Client) Revocations(ctx context.Context, since, now time.Time) ([]consent.Revocation, error) {
	if err := c.syncReplica(ctx, c.schema.revocations.def); err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	return queryAll(ctx, c, "read revocations", revocationsQuery(c.Database(), since, now), func(scan func(...any) error) (consent.Revocation, error) {
		var (
			r     consent.Revocation
			erase uint8
		)
		if err := scan(&r.ConsentHash, &r.AppID, &r.RevokedAt, &r.ExpiresAt, &erase); err != nil {
			return r, err
		}
		r.Erase = erase != 0
		return r, nil
	})
}

// PruneRevocations deletes the revocations whose tokens expired before now
// (in whole seconds) and returns once they are gone. It drops the month
// partitions that expired entirely, which is cheap, and deletes the
// expired rows of the others with a mutation (ALTER TABLE ... DELETE),
// which rewrites the parts of those months: run it hourly or daily rather
// than every few seconds. Reads skip expired revocations anyway; on modern
// servers the table's TTL also drops parts whose rows have all expired.
//
// On a cluster it drops partitions on the leader replica and waits until
// the mutation is done on every server.
func (c *Client) PruneRevocations(ctx context.Context, now time.Time) error {
	o := c.schema.opts
	t := c.schema.revocations.def
	// Every row of a month expires before the next month starts.
	if err := c.dropPartitionsEndedBy(ctx, t, now); err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}

	var expired uint64
	if err := c.conn.QueryRow(ctx, expiredRevocationsQuery(o.Database, now)).Scan(&expired); err != nil {
		return classify("prune revocations: count expired", err)
	}
	if expired == 0 {
		return nil
	}
	cond := "expires_at < " + dateTimeLiteral(now)
	if err := c.conn.Exec(ctx, t.alter(o, "DELETE WHERE "+cond)); err != nil {
		return classify("prune revocations: delete expired", err)
	}
	if err := c.waitMutations(ctx, []string{t.storage(o)}, "expires_at"); err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}
	c.logger.Info("deleted expired revocations", zap.Uint64(logKeyRows, expired))
	return nil
}

// Erase deletes every row of app appID stored under consentKey from the
// event tables, waits until the deletion is complete, records it in the
// erasures table, and returns the rows deleted per event table (every
// event table is named, with 0 where it held none). consentKey must be
// non-empty: the rows of anonymous apps carry none and cannot be erased.
// It may hold letters, digits and "-_.+/=:" (the collector's keys are hex).
//
// The deletion is a mutation (ALTER TABLE ... DELETE) of each table that
// holds such rows; Erase polls system.mutations until they are done, as
// long as ctx allows, then counts again. A mutation left when ctx ends
// still completes on the server; erasing again then finds what is left. Rows that are still there, such
// as rows of a batch accepted before the revocation and stored during the
// deletion, make it fail with an error wrapping
// pipeline.ErrStorageUnavailable: erasing again deletes them. The
// aggregates (sessions_daily) hold no consent key and are not changed.
//
// The audit log gets one row per event table, rows deleted or not, so
// every erasure is on record. If writing it fails after the deletion, the
// error says so and the map still reports what was deleted.
//
// On a cluster the mutations run ON CLUSTER; Erase counts the rows on
// every server (per shard, the most any of its replicas holds, so a
// replica that has not fetched them all yet does not make the receipt
// short), waits until the mutations are done on every server, and counts
// again on every server: the rows are gone from every shard and replica.
// A server that does not answer makes it fail: erasing again finishes.
func (c *Client) Erase(ctx context.Context, appID, consentKey string) (map[string]uint64, error) {
	if appID == "" {
		return nil, errors.New("erase: empty app id")
	}
	if err := checkConsentKey(consentKey); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	o := c.schema.opts
	deleted, err := c.countConsentRows(ctx, appID, consentKey, false)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	var mutated []string
	for _, t := range c.schema.eventTables() {
		if deleted[t.name] == 0 {
			continue
		}
		stmt := t.alter(o, fmt.Sprintf("DELETE WHERE app_id = %s AND %s = %s", quote(appID), columnConsentKey, quote(consentKey)))
		if err := c.conn.Exec(ctx, stmt); err != nil {
			return nil, classify("erase: delete from "+t.name, err)
		}
		mutated = append(mutated, t.storage(o))
	}
	if err := c.waitMutations(ctx, mutated, consentKey); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	left, err := c.countConsentRows(ctx, appID, consentKey, true)
	if err != nil {
		return nil, fmt.Errorf("erase: verify: %w", err)
	}
	var remaining []string
	for _, name := range EventTables() {
		if n := left[name]; n > 0 {
			remaining = append(remaining, fmt.Sprintf("%s: %d", name, n))
		}
	}
	if len(remaining) > 0 {
		return nil, fmt.Errorf("erase: rows remain after the deletion (%s): %w", strings.Join(remaining, ", "), pipeline.ErrStorageUnavailable)
	}

	erasedAt := time.Now().UTC()
	audit := make([]erasureRow, 0, len(deleted))
	var total uint64
	for _, name := range EventTables() {
		audit = append(audit, erasureRow{erasedAt: erasedAt, app: appID, consentKey: consentKey, table: name, rows: deleted[name]})
		total += deleted[name]
	}
	if err := insertEverywhere(ctx, c, c.schema.erasures, audit); err != nil {
		return deleted, fmt.Errorf("erase: rows deleted, but the audit log was not written: %w", err)
	}
	c.logger.Info("erased a consent's rows", zap.String(logKeyApp, appID), zap.Uint64(logKeyRows, total))
	return deleted, nil
}

// checkConsentKey reports why key cannot name a consent's rows. Keys are
// restricted to characters that need no escaping, so the key appears as
// it is in the mutation's command in system.mutations.
func checkConsentKey(key string) error {
	if key == "" {
		return errors.New("empty consent key: rows without one belong to anonymous apps and cannot be erased")
	}
	if len(key) > maxConsentKeyLen {
		return fmt.Errorf("consent key of %d bytes: at most %d", len(key), maxConsentKeyLen)
	}
	for _, r := range key {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("-_.+/=:", r):
		default:
			return fmt.Errorf("consent key contains %q: want letters, digits and -_.+/=:", r)
		}
	}
	return nil
}

// countConsentRows returns the rows of app stored under consentKey, per
// event table: on a cluster, per shard the most that one of its replicas
// holds (replicas converge on the same rows), summed over the shards.
// With left, it returns instead the most any single server holds, for
// the check that nothing is left anywhere.
func (c *Client) countConsentRows(ctx context.Context, app, consentKey string, left bool) (map[string]uint64, error) {
	type count struct {
		Table string `ch:"table_name"`
		Rows  uint64 `ch:"consent_rows"`
	}
	if c.hosts == nil {
		var counts []count
		if err := c.conn.Select(ctx, &counts, consentRowsQuery(c.Database(), EventTables(), "", app, consentKey)); err != nil {
			return nil, classify("count rows", err)
		}
		out := make(map[string]uint64, len(counts))
		for _, n := range counts {
			out[n.Table] = n.Rows
		}
		return out, checkCounts(out)
	}
	q := consentRowsQuery(c.Database(), EventTables(), "_local", app, consentKey)
	var mu sync.Mutex
	perShard := make(map[int]map[string]uint64) // shard → table → most rows
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		var counts []count
		if err := h.conn.Select(ctx, &counts, q); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		key := h.shard
		if left {
			key = len(perShard) + 1 // every server on its own
		}
		if perShard[key] == nil {
			perShard[key] = make(map[string]uint64)
		}
		for _, n := range counts {
			perShard[key][n.Table] = max(perShard[key][n.Table], n.Rows)
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, classify("count rows on every replica", err)
	}
	out := make(map[string]uint64)
	for _, tables := range perShard {
		for name, n := range tables {
			if left {
				out[name] = max(out[name], n)
			} else {
				out[name] += n
			}
		}
	}
	for _, name := range EventTables() {
		if _, ok := out[name]; !ok {
			out[name] = 0
		}
	}
	return out, nil
}

// checkCounts reports an event table missing from counts.
func checkCounts(counts map[string]uint64) error {
	for _, name := range EventTables() {
		if _, ok := counts[name]; !ok {
			return fmt.Errorf("count rows: no count for %s", name)
		}
	}
	return nil
}

// waitMutations polls system.mutations until no mutation of tables (in
// the database) whose command contains marker is unfinished, on the
// connected server or, on a cluster, on every server, or ctx ends.
func (c *Client) waitMutations(ctx context.Context, tables []string, marker string) error {
	if len(tables) == 0 {
		return nil
	}
	wait := mutationPollMin
	for {
		pending, err := c.pendingMutations(ctx, tables, marker)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("wait for the deletion in %s: %s: %w", strings.Join(tables, ", "), strings.Join(pending, "; "), ctx.Err())
		case <-timer.C:
		}
		wait = min(2*wait, mutationPollMax)
	}
}

// checkDateTime reports an error unless t, named name, fits a DateTime:
// after 1970-01-01 and up to 2106-02-07 UTC.
func checkDateTime(name string, t time.Time) error {
	if s := t.Unix(); s <= 0 || s > math.MaxUint32 {
		return fmt.Errorf("%s %s is outside 1970 to 2106", name, t.UTC().Format(time.RFC3339))
	}
	return nil
}

// ErasedConsentKeys returns the consent keys whose rows were erased
// (recorded in the erasures table) at or after since. A collector keeps
// them so that rows it accepted before a revocation, and still holds in
// its spool, are not stored after the erasure. On a cluster it reads the
// connected server's replica once it caught up, as Revocations does.
func (c *Client) ErasedConsentKeys(ctx context.Context, since time.Time) (map[string]struct{}, error) {
	if err := c.syncReplica(ctx, c.schema.erasures.def); err != nil {
		return nil, fmt.Errorf("read erased consent keys: %w", err)
	}
	var rows []struct {
		Key string `ch:"consent_key"`
	}
	q := fmt.Sprintf("SELECT DISTINCT consent_key FROM %s.%s WHERE erased_at >= toDateTime(%d)",
		c.schema.erasures.def.database, TableErasures, since.Unix())
	if err := c.conn.Select(ctx, &rows, q); err != nil {
		return nil, classify("read erased consent keys", err)
	}
	keys := make(map[string]struct{}, len(rows))
	for _, r := range rows {
		keys[r.Key] = struct{}{}
	}
	return keys, nil
}

// UnsweptErasures returns, oldest first, up to limit consents whose
// first erasure recorded at or after since was complete at or before
// dueBy, and whose latest erasure was complete less than gap (rounded up
// to whole seconds) after the first: erasures whose second sweep is not on record
// (consent.Service derives its resweeps from them). Times are whole
// seconds, as the erasures table keeps them.
func (c *Client) UnsweptErasures(ctx context.Context, since, dueBy time.Time, gap time.Duration, limit int) ([]consent.Erasure, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := c.syncReplica(ctx, c.schema.erasures.def); err != nil {
		return nil, fmt.Errorf("read unswept erasures: %w", err)
	}
	var rows []struct {
		App   string    `ch:"app_id"`
		Key   string    `ch:"consent_key"`
		First time.Time `ch:"first_erased_at"`
		Last  time.Time `ch:"last_erased_at"`
	}
	q := fmt.Sprintf(`SELECT app_id, consent_key, min(erased_at) AS first_erased_at, max(erased_at) AS last_erased_at
FROM %s.%s
WHERE erased_at >= %s
GROUP BY app_id, consent_key
HAVING first_erased_at <= %s AND last_erased_at < first_erased_at + %d
ORDER BY first_erased_at, consent_key
LIMIT %d`, c.schema.erasures.def.database, TableErasures, dateTimeLiteral(since), dateTimeLiteral(dueBy),
		int64((gap+time.Second-1)/time.Second), limit)
	if err := c.conn.Select(ctx, &rows, q); err != nil {
		return nil, classify("read unswept erasures", err)
	}
	out := make([]consent.Erasure, len(rows))
	for i, r := range rows {
		out[i] = consent.Erasure{AppID: r.App, ConsentKey: r.Key, First: r.First.UTC(), Last: r.Last.UTC()}
	}
	return out, nil
}
