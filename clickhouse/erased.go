package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Rows of erased consents stored again.
//
// An erasure deletes a consent's rows from the tables as they are. Rows
// can come back behind it: a backup taken before the erasure and
// restored after it, a detached part attached back, a replica rebuilt
// from an old copy. ErasedWithRows finds them by the erasure log, and
// erasing those consents again removes them (consentry reapply-erasures).

// ErasedConsent is a consent the erasure log records as erased, with
// rows in the event tables all the same.
type ErasedConsent struct {
	AppID      string `ch:"app_id"`
	ConsentKey string `ch:"consent_key"`
	// Rows is how many of its rows are stored (on a cluster, the most
	// any one server holds).
	Rows uint64 `ch:"consent_rows"`
}

// ErasedWithRows returns, ordered by app and key, the consents whose
// erasure the erasures table records at or after since (the zero time
// for the whole log, which keeps DefaultAuditRetentionDays) and that have
// rows in an event table, on the connected server or, on a cluster, on
// any server. It reads the consent_key column of every event table
// whole: an audit to run on demand, not in a loop.
func (c *Client) ErasedWithRows(ctx context.Context, since time.Time) ([]ErasedConsent, error) {
	suffix := ""
	if c.hosts != nil {
		suffix = "_local"
	}
	q := erasedWithRowsQuery(c.Database(), c.schema.erasures.def.database, EventTables(), suffix, since)
	found, err := onServers(ctx, c, func(ctx context.Context, conn driver.Conn, _ string) ([]ErasedConsent, error) {
		var out []ErasedConsent
		return out, conn.Select(ctx, &out, q)
	})
	if err != nil {
		return nil, classify("find erased consents' rows", err)
	}
	most := map[[2]string]uint64{}
	for _, e := range found {
		k := [2]string{e.AppID, e.ConsentKey}
		most[k] = max(most[k], e.Rows)
	}
	out := make([]ErasedConsent, 0, len(most))
	for _, k := range slices.SortedFunc(maps.Keys(most), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	}) {
		out = append(out, ErasedConsent{AppID: k[0], ConsentKey: k[1], Rows: most[k]})
	}
	return out, nil
}

// erasedWithRowsQuery counts, per app and consent key, the rows of tables
// in db (with suffix: "_local" on a cluster's servers) of consents erased
// at or after since by the erasures table in auditDB.
func erasedWithRowsQuery(db, auditDB string, tables []string, suffix string, since time.Time) string {
	erased := fmt.Sprintf("SELECT app_id, consent_key FROM %s.%s WHERE erased_at >= %s AND consent_key != ''",
		auditDB, TableErasures, dateTimeLiteral(since))
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf("SELECT app_id, %s AS consent_key, count() AS n FROM %s.%s%s WHERE %s != '' AND (app_id, %s) IN (%s) GROUP BY app_id, %s",
			columnConsentKey, db, t, suffix, columnConsentKey, columnConsentKey, erased, columnConsentKey)
	}
	return fmt.Sprintf(`SELECT app_id, consent_key, toUInt64(sum(n)) AS consent_rows
FROM (
%s
)
GROUP BY app_id, consent_key
ORDER BY app_id, consent_key`, strings.Join(parts, "\nUNION ALL\n"))
}
