package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/pipeline"
)

// distinct returns the counts an aggregate of rows must hold, counting
// each event id once: per crash group, "crashes fatal sessions
// fatal_sessions"; per day, "starts ends sessions".
func distinct(rows *pipeline.Rows) (groups, days map[string]string) {
	type set = map[any]bool
	type group struct{ crashes, fatal, sessions, fatalSessions set }
	gs := make(map[uint64]*group)
	for _, c := range rows.Crashes {
		g := gs[c.Fingerprint]
		if g == nil {
			g = &group{set{}, set{}, set{}, set{}}
			gs[c.Fingerprint] = g
		}
		g.crashes[c.EventID] = true
		if c.SessionKey != 0 {
			g.sessions[c.SessionKey] = true
		}
		if !c.Handled {
			g.fatal[c.EventID] = true
			if c.SessionKey != 0 {
				g.fatalSessions[c.SessionKey] = true
			}
		}
	}
	groups = make(map[string]string)
	for fp, g := range gs {
		groups[strconv.FormatUint(fp, 10)] = fmt.Sprint(len(g.crashes), len(g.fatal), len(g.sessions), len(g.fatalSessions))
	}
	type day struct{ starts, ends, sessions set }
	ds := make(map[string]*day)
	for _, s := range rows.Sessions {
		k := s.EventTime.UTC().Format(time.DateOnly)
		d := ds[k]
		if d == nil {
			d = &day{set{}, set{}, set{}}
			ds[k] = d
		}
		if s.Phase == "start" {
			d.starts[s.EventID] = true
		} else {
			d.ends[s.EventID] = true
		}
		if s.SessionKey != 0 {
			d.sessions[s.SessionKey] = true
		}
	}
	days = make(map[string]string)
	for k, d := range ds {
		days[k] = fmt.Sprint(len(d.starts), len(d.ends), len(d.sessions))
	}
	return groups, days
}

// queryFunc runs a query whose columns are all strings and returns its
// rows.
type queryFunc func(t *testing.T, sql string) [][]string

// connQuery is a queryFunc on c's connection.
func connQuery(c *Client) queryFunc {
	return func(t *testing.T, sql string) [][]string {
		t.Helper()
		return stringRows(t, c, sql)
	}
}

// aggregateFuncRE finds the function of an AggregateFunction column type.
var aggregateFuncRE = regexp.MustCompile(`^AggregateFunction\((\w+),`)

// merged returns the expressions that read columns of db.table with the
// -Merge function of their own types (sumMerge(crashes), ...), as the
// column comments tell analysts to, whatever the schema's version. Where
// crash_groups_daily has the handled key instead of the fatal and
// fatal_sessions columns, they are read as its comments say:
// <f>MergeIf(crashes, handled = 0), uniqMergeIf(sessions, handled = 0).
func merged(t *testing.T, query queryFunc, db, table string, columns ...string) string {
	t.Helper()
	types := make(map[string]string)
	for _, r := range query(t, fmt.Sprintf("SELECT name, type FROM system.columns WHERE database = '%s' AND table = '%s'", db, table)) {
		types[r[0]] = r[1]
	}
	fn := func(col string) string {
		m := aggregateFuncRE.FindStringSubmatch(types[col])
		if m == nil {
			t.Fatalf("%s.%s.%s: type %q is not an aggregate function", db, table, col, types[col])
		}
		return m[1]
	}
	var exprs []string
	for _, col := range columns {
		var expr string
		switch _, ok := types[col]; {
		case !ok && col == "fatal" && types["handled"] != "":
			expr = fmt.Sprintf("%sMergeIf(crashes, handled = 0)", fn("crashes"))
		case !ok && col == "fatal_sessions" && types["handled"] != "":
			expr = fmt.Sprintf("%sMergeIf(sessions, handled = 0)", fn("sessions"))
		default:
			expr = fmt.Sprintf("%sMerge(%s)", fn(col), col)
		}
		exprs = append(exprs, "toString("+expr+")")
	}
	return strings.Join(exprs, ", ")
}

// aggregates reads db's aggregates as distinct returns them.
func aggregates(t *testing.T, query queryFunc, db string) (groups, days map[string]string) {
	t.Helper()
	read := func(table, key string, columns ...string) map[string]string {
		q := fmt.Sprintf("SELECT toString(%s), %s FROM %s.%s GROUP BY %s", key, merged(t, query, db, table, columns...), db, table, key)
		out := make(map[string]string)
		for _, r := range query(t, q) {
			out[r[0]] = strings.Join(r[1:], " ")
		}
		return out
	}
	return read(TableCrashGroupsDaily, columnFingerprint, "crashes", "fatal", "sessions", "fatal_sessions"),
		read(TableSessionsDaily, "event_date", "starts", "ends", "sessions")
}

// checkAggregates fails t unless db's aggregates count each event of
// rows once.
func checkAggregates(t *testing.T, query queryFunc, db string, rows *pipeline.Rows) {
	t.Helper()
	wantGroups, wantDays := distinct(rows)
	groups, days := aggregates(t, query, db)
	for _, c := range []struct {
		name      string
		got, want map[string]string
		columns   string
	}{
		{TableCrashGroupsDaily, groups, wantGroups, "crashes fatal sessions fatal_sessions"},
		{TableSessionsDaily, days, wantDays, "starts ends sessions"},
	} {
		keys := make([]string, 0, len(c.want))
		for k := range c.want {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if c.got[k] != c.want[k] {
				t.Errorf("%s %s: %s = %s, want %s (each event once)", c.name, k, c.columns, c.got[k], c.want[k])
			}
		}
		if len(c.got) != len(c.want) {
			t.Errorf("%s: %d keys %v, want %d", c.name, len(c.got), c.got, len(c.want))
		}
	}
}

// TestAggregatesCountEachEventOnceIntegration stores events again, as an
// SDK resends a batch whose answer it lost and as the spool repeats an
// insert after a crash (whose deduplication token 18.16 ignores), and
// checks that sessions_daily and crash_groups_daily count each event id
// once, before and after ClickHouse merges the repeated rows.
func TestAggregatesCountEachEventOnceIntegration(t *testing.T) {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	all := retryRows(day, 60)
	part := &pipeline.Rows{Crashes: all.Crashes[10:25], Sessions: all.Sessions[20:50]}
	type step func(ctx context.Context, c *Client) error
	insert := func(rows *pipeline.Rows) step {
		return func(ctx context.Context, c *Client) error { return c.Insert(ctx, rows) }
	}
	redo := func(ctx context.Context, c *Client) error { return c.InsertDedup(ctx, all, "spool:1:60") }
	merge := func(ctx context.Context, c *Client) error {
		for _, table := range []string{TableCrashes, TableSessions, TableCrashGroupsDaily, TableSessionsDaily} {
			if err := c.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", c.Database(), table)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"once", []step{insert(all)}},
		{"resent", []step{insert(all), insert(all)}},
		{"resent three times", []step{insert(all), insert(all), insert(all)}},
		{"resent in part", []step{insert(all), insert(part)}},
		{"redone by the spool", []step{redo, redo}},
		{"resent and merged", []step{insert(all), insert(all), merge}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := migrated(t, Config{})
			ctx := context.Background()
			for _, s := range tc.steps {
				if err := s(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			checkAggregates(t, connQuery(c), c.Database(), all)
		})
	}
}
