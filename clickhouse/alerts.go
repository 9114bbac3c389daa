package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/dashboard/alerts"
)

// TableAlertDeliveries is the delivery log of crash alerts (package
// dashboard/alerts), in the private database: the replicas' claims on
// alerts and the outcome of every attempt.
const TableAlertDeliveries = "alert_deliveries"

// alertRetentionDays is how long delivery records are kept on servers
// with TTL. A group still regressed after that long is alerted again
// once.
const alertRetentionDays = 180

var _ alerts.Store = (*Client)(nil)

// alertDeliveriesTable describes alert_deliveries. Records are written
// with the server's time (its "at" default): the earliest claim of an
// alert, by that clock, sends it.
func alertDeliveriesTable(private string) *tableDef {
	return &tableDef{
		name:     TableAlertDeliveries,
		database: private,
		// Every replica reads the claims locally, and a claim is
		// acknowledged only once every replica has it (see RecordAlerts).
		placement: everywhere,
		quorum:    quorumAll,
		comment:   "Crash alert deliveries (package dashboard/alerts): claims of the collector replicas on alerts (the earliest sends) and the outcome of each attempt. Holds what an alert says (group title, counts, versions), never webhook URLs or secrets.",
		engine:    "MergeTree",
		columns: []column{
			{name: "alert_key", typ: stringType(), comment: "The alert: app id, kind (new, regressed, escalating), group fingerprint, episode and webhook name, separated by |."},
			{name: "at", typ: timeType(), comment: "Server time of the record; orders claims.", dflt: "now()"},
			{name: "holder", typ: stringType(), comment: "Id of the collector replica that wrote the record."},
			{name: "app_id", typ: stringType(), comment: "App of the crash group."},
			{name: "state", typ: stringType(), comment: "claimed, failed (next attempt due at next_at), sent or dropped."},
			{name: "attempt", typ: uint32Type(), comment: "Delivery attempt the record is the outcome of, from 1; 0 for a claim."},
			{name: "next_at", typ: timeType(), comment: "When a failed alert is due again; 1970 otherwise."},
			{name: "webhook", typ: stringType(), comment: "Name of the webhook in the alert rules file (never its URL)."},
			{name: "alert", typ: textType(), comment: "The alert as JSON, as the webhook receives it in the json format."},
		},
		day:     "at",
		monthly: true,
		expiry:  fmt.Sprintf("at + toIntervalDay(%d)", alertRetentionDays),
		orderBy: []string{"alert_key", "at", "holder"},
	}
}

// alertsMigration creates alert_deliveries. It is numbered by its caller,
// so it can move when branches merge.
func alertsMigration(version int) Migration {
	return Migration{
		Version:    version,
		Name:       "alert_deliveries: crash alert claims and delivery outcomes in the private database",
		Statements: createPrivateTables(func(s *schema) []*tableDef { return []*tableDef{s.alerts} }),
	}
}

// alertInsert is RecordAlerts' statement in database db: every column
// but at, which the server fills in.
func alertInsert(db string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (alert_key, holder, app_id, state, attempt, next_at, webhook, alert)", db, TableAlertDeliveries)
}

// RecordAlerts implements alerts.Store: one insert, whose rows the server
// stamps with its time.
func (c *Client) RecordAlerts(ctx context.Context, recs []alerts.Record) error {
	if len(recs) == 0 {
		return nil
	}
	op := "record alert deliveries"
	// On a cluster the insert waits for every replica (the table's
	// quorum), so a claim another replica reads after its wait is there.
	err := c.retryQuorum(ctx, c.schema.alerts, func(ctx context.Context) error {
		batch, err := c.conn.PrepareBatch(ctx, alertInsert(c.schema.opts.PrivateDatabase))
		if err != nil {
			return err
		}
		defer batch.Close()
		for _, r := range recs {
			next := r.NextAt
			if next.IsZero() {
				next = time.Unix(0, 0)
			}
			if err := batch.Append(r.Key, r.Holder, r.AppID, string(r.State), r.Attempt, next.UTC(), r.Webhook, string(r.Alert)); err != nil {
				return err
			}
		}
		return batch.Send()
	})
	if err != nil {
		return classify(op, err)
	}
	return nil
}

// alertRow is one row of alert_deliveries as read.
type alertRow struct {
	Key     string    `ch:"alert_key"`
	At      time.Time `ch:"at"`
	Holder  string    `ch:"holder"`
	AppID   string    `ch:"app_id"`
	State   string    `ch:"state"`
	Attempt uint32    `ch:"attempt"`
	NextAt  time.Time `ch:"next_at"`
	Webhook string    `ch:"webhook"`
	Alert   string    `ch:"alert"`
}

// alertChunk is the most keys one query names.
const alertChunk = 500

// alertRecordsQuery is AlertRecords' query for keys in database db.
func alertRecordsQuery(db string, keys []string) query {
	return query{fmt.Sprintf("SELECT alert_key, at, holder, app_id, state, attempt, next_at, webhook, alert FROM %s.%s WHERE alert_key IN %s",
		db, TableAlertDeliveries, inList(keys)), nil}
}

// AlertRecords implements alerts.Store.
func (c *Client) AlertRecords(ctx context.Context, keys []string) ([]alerts.Record, error) {
	var out []alerts.Record
	for start := 0; start < len(keys); start += alertChunk {
		var rows []alertRow
		q := alertRecordsQuery(c.schema.opts.PrivateDatabase, keys[start:min(start+alertChunk, len(keys))])
		if err := c.selectQuery(ctx, &rows, q); err != nil {
			return nil, classify("read alert deliveries", err)
		}
		for _, r := range rows {
			rec := alerts.Record{Key: r.Key, AppID: r.AppID, Holder: r.Holder, State: alerts.State(r.State), Attempt: r.Attempt,
				Webhook: r.Webhook, Alert: []byte(r.Alert), At: r.At}
			if r.NextAt.Unix() > 0 {
				rec.NextAt = r.NextAt
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// heldAlertsQuery is HeldAlerts' query in database db.
func heldAlertsQuery(db, holder string, since time.Time) query {
	return query{fmt.Sprintf("SELECT DISTINCT alert_key FROM %s.%s WHERE holder = ? AND state = 'claimed' AND at >= toDateTime(?, 'UTC') ORDER BY alert_key",
		db, TableAlertDeliveries), []any{holder, int(since.Unix())}}
}

// HeldAlerts implements alerts.Store.
func (c *Client) HeldAlerts(ctx context.Context, holder string, since time.Time) ([]string, error) {
	type row struct {
		Key string `ch:"alert_key"`
	}
	out, err := selectAll(ctx, c, heldAlertsQuery(c.schema.opts.PrivateDatabase, holder, since), func(r row) string { return r.Key })
	if err != nil {
		return nil, classify("read held alerts", err)
	}
	return out, nil
}
