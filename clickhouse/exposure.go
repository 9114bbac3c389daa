package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.uber.org/zap"
)

// probeTimeout bounds each login PasswordlessReaders tries.
const probeTimeout = 5 * time.Second

// PasswordlessReaders returns, as "user@host", the users that log in to
// a server of the Client's without a password and can read its private
// database, whose daily salts and secret fingerprints must be the
// collector's alone. It tries "default" (which a fresh ClickHouse has,
// without a password), the user the Client connects as, and every user
// a server lists without a password (system.users, ClickHouse 20.4+), on
// every configured address and, on a cluster, every server of it. What
// it cannot do (a refused login, a denied read, an unreachable server)
// does not count.
func (c *Client) PasswordlessReaders(ctx context.Context) []string {
	users := []string{DefaultUsername, c.cfg.Username}
	var listed []string
	q := "SELECT name FROM system.users WHERE position(toString(auth_type), 'no_password') > 0"
	if rows, err := c.conn.Query(ctx, q); err == nil {
		for rows.Next() {
			var name string
			if rows.Scan(&name) == nil {
				listed = append(listed, name)
			}
		}
		rows.Close()
	}
	users = append(users, listed...)
	slices.Sort(users)
	users = slices.Compact(users)

	addrs := c.cfg.Addrs()
	if c.hosts != nil {
		for _, h := range c.hosts.list {
			addrs = append(addrs, h.addr)
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)

	// Every login at once: a start waits for one round of them, not
	// for each in turn.
	found := make([]string, len(addrs)*len(users))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		for j, user := range users {
			wg.Go(func() {
				if c.readsPrivate(ctx, addr, user) {
					found[i*len(users)+j] = user + "@" + addr
				}
			})
		}
	}
	wg.Wait()
	var exposed []string
	for _, f := range found {
		if f != "" {
			exposed = append(exposed, f)
		}
	}
	return exposed
}

// readsPrivate reports whether user logs in to the server at addr
// without a password and reads the private database there.
func (c *Client) readsPrivate(ctx context.Context, addr, user string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cfg := c.cfg
	cfg.Username, cfg.Password, cfg.DialTimeout = user, "", probeTimeout
	conn, err := clickhouse.Open(connOptions(cfg, []string{addr}, 1))
	if err != nil {
		return false
	}
	defer conn.Close()
	t := c.schema.salts.def
	var n uint64
	err = conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", t.database, t.name)).Scan(&n)
	if err != nil {
		c.logger.Debug("a password-less login cannot read the private database", zap.String("user", user), zap.String(logKeyServer, addr), zap.Error(err))
		return false
	}
	return true
}
