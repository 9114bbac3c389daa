package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/consentry/consentry/pipeline"
)

// On a cluster a Client also talks to each server on its own, for what
// neither ON CLUSTER nor a Distributed table does on every version: wait
// until a deletion is done on every replica, count an erased consent's
// rows on every replica, list partitions on every shard, drop a
// partition on a table's leader replica, and fill the aggregates shard by
// shard. It reaches the servers at the addresses the cluster's
// remote_servers lists (system.clusters), with the Client's credentials.

// hostConns is the pool size of a connection to one server of the
// cluster: its queries are few and small.
const hostConns = 2

// codeUnknownUser is UNKNOWN_USER: 18.16 reports it when a replica that
// is not the leader forwards a DROP PARTITION to the leader as the user
// default, which a locked-down server lacks.
const codeUnknownUser = 192

// host is one server of the cluster.
type host struct {
	// shard and replica number it, from 1, as remote_servers lists it.
	shard, replica int
	addr           string
	conn           driver.Conn
}

func (h *host) String() string {
	return fmt.Sprintf("shard %d replica %d (%s)", h.shard, h.replica, h.addr)
}

// clusterHosts are the servers of the cluster, in remote_servers order.
type clusterHosts struct {
	list []*host

	// turns serializes the quorum inserts into each table.
	mu    sync.Mutex
	turns map[*tableDef]chan struct{}
}

// turn returns the semaphore of t's quorum inserts.
func (hs *clusterHosts) turn(t *tableDef) chan struct{} {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.turns == nil {
		hs.turns = make(map[*tableDef]chan struct{})
	}
	ch, ok := hs.turns[t]
	if !ok {
		ch = make(chan struct{}, 1)
		hs.turns[t] = ch
	}
	return ch
}

// newClusterHosts reads the cluster's servers from the connected server's
// system.clusters and opens a connection pool to each (connecting when
// first used).
func newClusterHosts(ctx context.Context, c *Client) (*clusterHosts, error) {
	var rows []struct {
		Shard   uint32 `ch:"shard_num"`
		Replica uint32 `ch:"replica_num"`
		Host    string `ch:"host_name"`
		Port    uint16 `ch:"port"`
	}
	q := "SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num"
	if err := c.conn.Select(ctx, &rows, q, c.schema.opts.Cluster); err != nil {
		return nil, classify("read the cluster's servers", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cluster %q is not in the server's remote_servers", c.schema.opts.Cluster)
	}
	hs := &clusterHosts{}
	for _, r := range rows {
		addr := net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))
		conn, err := clickhouse.Open(connOptions(c.cfg, []string{addr}, hostConns))
		if err != nil {
			hs.close()
			return nil, fmt.Errorf("open clickhouse %s: %w", addr, err)
		}
		hs.list = append(hs.list, &host{shard: int(r.Shard), replica: int(r.Replica), addr: addr, conn: conn})
	}
	return hs, nil
}

// close closes the connection pools; nil-safe.
func (hs *clusterHosts) close() error {
	if hs == nil {
		return nil
	}
	var errs []error
	for _, h := range hs.list {
		errs = append(errs, h.conn.Close())
	}
	return errors.Join(errs...)
}

// shards returns the number of shards.
func (hs *clusterHosts) shards() int {
	n := 0
	for _, h := range hs.list {
		n = max(n, h.shard)
	}
	return n
}

// each runs fn on every server at once and returns the error of each, in
// the order of hs.list.
func (hs *clusterHosts) each(ctx context.Context, fn func(context.Context, *host) error) []error {
	errs := make([]error, len(hs.list))
	var wg sync.WaitGroup
	for i, h := range hs.list {
		wg.Go(func() {
			if err := fn(ctx, h); err != nil {
				errs[i] = fmt.Errorf("%v: %w", h, err)
			}
		})
	}
	wg.Wait()
	return errs
}

// createDatabase creates database name if missing: ON CLUSTER on a
// cluster, unless every server that answers has it already (an ON
// CLUSTER statement waits for every server, so a collector starting
// while one is down would wait distributed_ddl_task_timeout, 3 minutes
// by default, and fail).
func (c *Client) createDatabase(ctx context.Context, name string) error {
	if c.hosts != nil {
		everywhere, err := c.onEveryServer(ctx, "SELECT count() FROM system.databases WHERE name = "+quote(name))
		if err != nil || everywhere {
			return err
		}
	}
	return c.execDDL(ctx, fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", name, onCluster(c.schema.opts)))
}

// onEveryServer reports whether q, a count, is above 0 on every server of
// the cluster that answers; servers that do not answer are left out, as
// an ON CLUSTER statement reaches them when they are back.
func (c *Client) onEveryServer(ctx context.Context, q string) (bool, error) {
	counts, err := c.countOnEveryReplica(ctx, q)
	if len(counts) == 0 {
		return false, err
	}
	for _, n := range counts {
		if n == 0 {
			return false, nil
		}
	}
	return true, nil
}

// Hosts returns the native addresses of the cluster's servers, shard by
// shard (nil for a single server): what remote_servers lists.
func (c *Client) Hosts() []string {
	if c.hosts == nil {
		return nil
	}
	var out []string
	for _, h := range c.hosts.list {
		out = append(out, h.addr)
	}
	return out
}

// tables returns every table of the schema, k-anonymity's included.
func (c *Client) tables() []*tableDef {
	return append(c.schema.all(), c.kanon.tables()...)
}

// replicas returns the number of servers an insert into a table placed
// everywhere may reach: every server of the cluster, 1 for a single
// server.
func (c *Client) replicas() int {
	if c.hosts == nil {
		return 1
	}
	return len(c.hosts.list)
}

// writeCtx returns ctx with the settings an insert into t needs: on a
// cluster, the insert quorum of a table placed everywhere, bounded by
// ctx's deadline (18.16 waits insert_quorum_timeout for the quorum, 10
// minutes by default).
func (c *Client) writeCtx(ctx context.Context, t *tableDef) context.Context {
	if c.hosts == nil || t.placement != everywhere || t.quorum == noQuorum {
		return ctx
	}
	n := min(2, c.replicas())
	if t.quorum == quorumAll {
		n = c.replicas()
	}
	if n < 2 {
		return ctx
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"insert_quorum":         n,
		"insert_quorum_timeout": int(timeout.Milliseconds()),
	}))
}

// codeQuorumInsertStarted is 18.16's error for a quorum insert while the
// table's previous one has not reached its quorum ("Another quorum
// insert has been already started"): it allows one at a time per table.
const codeQuorumInsertStarted = 286

// insertEverywhere inserts rows into t, a table that a cluster places
// everywhere, with its quorum (writeCtx). 18.16 refuses a quorum insert
// while another one into the table waits for its quorum, before writing
// anything: the insert is tried again, with backoff, until ctx ends. On a
// single server it is insertRows.
func insertEverywhere[R any](ctx context.Context, c *Client, t *rowTable[R], rows []R) error {
	return c.retryQuorum(ctx, t.def, func(ctx context.Context) error { return insertRows(ctx, c.conn, t, rows) })
}

// retryQuorum runs insert with t's quorum settings, again while 18.16
// refuses it for another quorum insert under way. The Client's own quorum
// inserts into t take turns, so they meet only other clients' there.
func (c *Client) retryQuorum(ctx context.Context, t *tableDef, insert func(context.Context) error) error {
	wctx := c.writeCtx(ctx, t)
	if wctx == ctx {
		return insert(ctx)
	}
	turn := c.hosts.turn(t)
	select {
	case turn <- struct{}{}:
		defer func() { <-turn }()
	case <-ctx.Done():
		return fmt.Errorf("insert into %s: waiting for the previous quorum insert: %w", t.name, ctx.Err())
	}
	wait := 10 * time.Millisecond
	for {
		err := insert(wctx)
		var ex *clickhouse.Exception
		if err == nil || !errors.As(err, &ex) || ex.Code != codeQuorumInsertStarted {
			return err
		}
		timer := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// syncReplica makes the connected server's replica of t, a table placed
// everywhere, catch up with what the other replicas acknowledged before
// the call (SYSTEM SYNC REPLICA: it fetches every part the replication
// log names and runs its queue), so a read afterwards sees every insert
// acknowledged before: what a single server gives. It does nothing
// without a cluster. It fails while ZooKeeper is away or the parts cannot
// be fetched, and waits at most as long as ctx allows.
func (c *Client) syncReplica(ctx context.Context, ts ...*tableDef) error {
	if c.hosts == nil {
		return nil
	}
	for _, t := range ts {
		if t.placement != everywhere {
			continue
		}
		if err := c.conn.Exec(ctx, fmt.Sprintf("SYSTEM SYNC REPLICA %s.%s", t.database, t.storage(c.schema.opts))); err != nil {
			return classify("catch up with "+t.name+"'s replicas", err)
		}
	}
	return nil
}

// dropPartition drops partition id (as system.parts names it) of t's
// storage. On a cluster it runs on the leader replica of each shard of a
// sharded table, and on the leader of a table placed everywhere, without
// ON CLUSTER: the drop replicates to the other replicas, and 18.16 would
// forward it from any other replica to the leader as the user default,
// which the locked-down servers lack. A leader that changes meanwhile
// makes it look again.
func (c *Client) dropPartition(ctx context.Context, t *tableDef, id string) error {
	stmt := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID %s", t.database, t.storage(c.schema.opts), quote(id))
	if c.hosts == nil {
		return c.conn.Exec(ctx, stmt)
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		leaders, err := c.leaders(ctx, t)
		if err != nil {
			return err
		}
		var errs []error
		for _, h := range leaders {
			if err := h.conn.Exec(ctx, stmt); err != nil {
				errs = append(errs, fmt.Errorf("%v: %w", h, err))
			}
		}
		err = errors.Join(errs...)
		var ex *clickhouse.Exception
		if err == nil || attempt == attempts || !errors.As(err, &ex) || ex.Code != codeUnknownUser {
			return err
		}
		c.logger.Info("the leader replica changed while dropping a partition; trying again", zap.String(logKeyTable, t.name))
	}
}

// leaders returns, for a sharded table, the server of each shard that
// leads its replicas of t; for a table placed everywhere, one server that
// leads. Servers that do not answer are left out; a replica set without a
// leader that answers is an error, which a retry may clear.
func (c *Client) leaders(ctx context.Context, t *tableDef) ([]*host, error) {
	o := c.schema.opts
	leads := make([]bool, len(c.hosts.list))
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		var n uint64
		q := "SELECT count() FROM system.replicas WHERE database = ? AND table = ? AND is_leader"
		if err := h.conn.QueryRow(ctx, q, t.database, t.storage(o)).Scan(&n); err != nil {
			return err
		}
		leads[slices.Index(c.hosts.list, h)] = n > 0
		return nil
	})
	var out []*host
	seen := make(map[int]bool)
	for i, h := range c.hosts.list {
		set := h.shard
		if t.placement == everywhere {
			set = 0
		}
		if leads[i] && !seen[set] {
			seen[set] = true
			out = append(out, h)
		}
	}
	want := c.hosts.shards()
	if t.placement == everywhere {
		want = 1
	}
	if len(out) < want {
		return nil, fmt.Errorf("find the leader replicas of %s: %d of %d found: %w (%w)",
			t.name, len(out), want, pipeline.ErrStorageUnavailable, errors.Join(errs...))
	}
	return out, nil
}

// partitions returns the active partition ids of t's storage in ascending
// order: the connected server's, or on a cluster the union over every
// server that answers.
func (c *Client) partitions(ctx context.Context, t *tableDef) ([]string, error) {
	q := "SELECT DISTINCT partition_id FROM system.parts WHERE database = ? AND table = ? AND active"
	list := func(ctx context.Context, conn driver.Conn) ([]string, error) {
		var parts []struct {
			ID string `ch:"partition_id"`
		}
		if err := conn.Select(ctx, &parts, q, t.database, t.storage(c.schema.opts)); err != nil {
			return nil, err
		}
		ids := make([]string, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		return ids, nil
	}
	if c.hosts == nil {
		ids, err := list(ctx, c.conn)
		if err != nil {
			return nil, classify("list partitions of "+t.name, err)
		}
		slices.Sort(ids)
		return ids, nil
	}
	var (
		mu  sync.Mutex
		all []string
	)
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		ids, err := list(ctx, h.conn)
		mu.Lock()
		all = append(all, ids...)
		mu.Unlock()
		return err
	})
	for _, err := range errs {
		if err != nil {
			// The partitions of a server that is away are on its
			// replicas too, and a drop reaches it when it is back.
			c.logger.Warn("a server did not list its partitions", zap.String(logKeyTable, t.name), zap.Error(err))
		}
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return err == nil }) {
		return nil, fmt.Errorf("list partitions of %s: %w", t.name, errors.Join(errs...))
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// redactMarker returns a mutation's failure text with marker replaced by
// "[marker]": a failure may quote the mutation's command, and an
// erasure's marker is the consent key, which errors and logs must not
// hold.
func redactMarker(failure, marker string) string {
	if marker == "" {
		return failure
	}
	return strings.ReplaceAll(failure, marker, "[marker]")
}

// pendingMutations returns, per server (the connected one, or every
// server of the cluster), how many mutations of tables whose command
// contains marker are unfinished there, with their parts left and the
// last failure; a server that does not answer counts as unfinished.
func (c *Client) pendingMutations(ctx context.Context, tables []string, marker string) ([]string, error) {
	q := pendingMutationsQuery(c.dialect, c.Database(), tables, marker)
	check := func(ctx context.Context, conn driver.Conn) (string, error) {
		var (
			pending uint64
			parts   int64
			failure string
		)
		if err := conn.QueryRow(ctx, q).Scan(&pending, &parts, &failure); err != nil {
			return "", err
		}
		if pending == 0 {
			return "", nil
		}
		s := fmt.Sprintf("%d mutations unfinished, %d parts to do", pending, parts)
		if failure != "" {
			s += ", last failure: " + redactMarker(failure, marker)
		}
		return s, nil
	}
	if c.hosts == nil {
		s, err := check(ctx, c.conn)
		if err != nil {
			return nil, classify("wait for the deletion", err)
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	states := make([]string, len(c.hosts.list))
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		s, err := check(ctx, h.conn)
		if s != "" {
			states[slices.Index(c.hosts.list, h)] = fmt.Sprintf("%v: %s", h, s)
		}
		return err
	})
	var out []string
	for i, s := range states {
		switch {
		case errs[i] != nil:
			out = append(out, fmt.Sprintf("%v", errs[i]))
		case s != "":
			out = append(out, s)
		}
	}
	return out, nil
}

// countOnEveryReplica runs q, a query of one UInt64, on every server of
// the cluster, and returns the count of each that answered; the error
// names those that did not.
func (c *Client) countOnEveryReplica(ctx context.Context, q string) (counts map[*host]uint64, err error) {
	counts = make(map[*host]uint64, len(c.hosts.list))
	var mu sync.Mutex
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		var n uint64
		if err := h.conn.QueryRow(ctx, q).Scan(&n); err != nil {
			return err
		}
		mu.Lock()
		counts[h] = n
		mu.Unlock()
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return counts, classify("count on every replica", err)
	}
	return counts, nil
}

// ReplicaCounts returns, for a test or an operator, how many rows each
// server of the cluster holds in table's storage (its own rows, not
// through the Distributed table), by address; for a single server, the
// connected one's under "". table is a name of Tables or EventTables.
func (c *Client) ReplicaCounts(ctx context.Context, table string) (map[string]uint64, error) {
	i := slices.IndexFunc(c.tables(), func(t *tableDef) bool { return t.name == table })
	if i < 0 {
		return nil, fmt.Errorf("replica counts: unknown table %q", table)
	}
	t := c.tables()[i]
	q := fmt.Sprintf("SELECT count() FROM %s.%s", t.database, t.storage(c.schema.opts))
	if c.hosts == nil {
		var n uint64
		if err := c.conn.QueryRow(ctx, q).Scan(&n); err != nil {
			return nil, classify("replica counts", err)
		}
		return map[string]uint64{"": n}, nil
	}
	counts, err := c.countOnEveryReplica(ctx, q)
	out := make(map[string]uint64, len(counts))
	for h, n := range counts {
		out[h.addr] = n
	}
	return out, err
}
