package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Detached parts.
//
// A MergeTree table keeps, in its folder's detached/ subfolder, parts that
// are no longer part of the table: those ClickHouse set aside (a damaged
// part a replica replaced with a good copy from another, a part whose
// files were cut found at start, a part a replica did not expect) and
// those an operator detached (ALTER TABLE ... DETACH PARTITION or PART).
// Their files still hold their rows, but no query reads them, no erasure
// (a mutation) rewrites them and no TTL drops them: the rows of a consent
// erased meanwhile stay on disk, past the retention the privacy notice
// promises, until the part is dropped. ClickHouse does not remove them by
// itself (it did for a while, and stopped: some are the only copy of data
// an operator may want back), so the collector reports them
// (docs/operations.md, "Detached parts").

// DetachedPart is a part in the detached folder of a table of the
// collector's databases.
type DetachedPart struct {
	// Server names the server on a cluster; "" without one.
	Server string
	// Database and Table are the table's; Name is the part's folder in
	// detached/, with the reason as its prefix (broken_20261207_1_1_0).
	Database, Table, Name string
	// Reason is why ClickHouse detached it (broken, broken-on-start,
	// unexpected, ignored, noquorum, clone, covered-by-broken, ...), or ""
	// when an operator did.
	Reason string
}

// String names p for a log line: database, table and folder, the reason,
// and the server.
func (p DetachedPart) String() string {
	s := p.Database + "." + p.Table + " " + p.Name
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	if p.Server != "" {
		s += " on " + p.Server
	}
	return s
}

// ErrDetachedUnknown is returned by DetachedParts for a server that does
// not list detached parts (before 19.8, such as Debian's 18.16) and whose
// tables' folders are not on this machine's file system.
var ErrDetachedUnknown = errors.New("the server does not list detached parts (before 19.8) and its data is not on this machine")

// DetachedParts returns the parts in the detached folders of the tables of
// the collector's databases (Database and PrivateDatabase), on the
// connected server or, on a cluster, on every server, except folders that
// a query is working on at the moment (attaching, deleting, tmp-fetch).
// Servers from 19.8 on list them in system.detached_parts; for older
// ones DetachedParts reads the folders (system.tables' data_path) when
// they are on this machine, as a managed ClickHouse's are, and fails
// with ErrDetachedUnknown when they are not. A server that does not
// answer makes it fail, naming the server, with what the others
// reported.
func (c *Client) DetachedParts(ctx context.Context) ([]DetachedPart, error) {
	dbs := []string{c.Database(), c.PrivateDatabase()}
	out, err := onServers(ctx, c, func(ctx context.Context, conn driver.Conn, server string) ([]DetachedPart, error) {
		if c.dialect.listsDetachedParts() {
			return detachedListed(ctx, conn, server, dbs)
		}
		return detachedOnDisk(ctx, conn, server, dbs)
	})
	if err != nil {
		return out, classify("detached parts", err)
	}
	return out, nil
}

// listsDetachedParts reports whether d's servers have
// system.detached_parts (19.8 and later).
func (d Dialect) listsDetachedParts() bool {
	return d.Major > 19 || d.Major == 19 && d.Minor >= 8
}

// detachedListed asks system.detached_parts.
func detachedListed(ctx context.Context, conn driver.Conn, server string, dbs []string) ([]DetachedPart, error) {
	rows, err := conn.Query(ctx, detachedPartsQuery(dbs))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DetachedPart
	for rows.Next() {
		p := DetachedPart{Server: server}
		if err := rows.Scan(&p.Database, &p.Table, &p.Name, &p.Reason); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// detachedPartsQuery lists the detached parts of the tables of dbs but
// those a query is working on. The reason is NULL (on some versions) for
// a folder whose name is no part's; such a folder is listed too.
func detachedPartsQuery(dbs []string) string {
	return fmt.Sprintf(`SELECT database, table, name, coalesce(reason, '') AS why
FROM system.detached_parts
WHERE database IN %s AND why NOT IN %s
ORDER BY database, table, name`, inList(dbs), inList(transientDetach))
}

// detachedOnDisk reads the detached folders of the MergeTree tables of
// dbs, at the paths the server gives, on this machine's file system.
func detachedOnDisk(ctx context.Context, conn driver.Conn, server string, dbs []string) ([]DetachedPart, error) {
	var tables []tableFolder
	q := fmt.Sprintf("SELECT database, name, data_path FROM system.tables WHERE database IN %s AND engine LIKE '%%MergeTree' AND data_path != '' ORDER BY database, name", inList(dbs))
	if err := conn.Select(ctx, &tables, q); err != nil {
		return nil, err
	}
	return readDetached(server, tables)
}

// tableFolder is a table and its folder.
type tableFolder struct {
	Database string `ch:"database"`
	Name     string `ch:"name"`
	Path     string `ch:"data_path"`
}

// readDetached lists the detached folders of tables. A table whose folder
// is not there is on another machine: ErrDetachedUnknown.
func readDetached(server string, tables []tableFolder) ([]DetachedPart, error) {
	var out []DetachedPart
	for _, t := range tables {
		entries, err := os.ReadDir(filepath.Join(t.Path, "detached"))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(t.Path); serr != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.Database, t.Name, ErrDetachedUnknown)
			}
			continue // nothing was ever detached
		}
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Database, t.Name, err)
		}
		for _, e := range entries {
			reason := detachReason(e.Name())
			if !e.IsDir() || slices.Contains(transientDetach, reason) {
				continue
			}
			out = append(out, DetachedPart{Server: server, Database: t.Database, Table: t.Name, Name: e.Name(), Reason: reason})
		}
	}
	return out, nil
}

// detachReason returns the reason a detached part's folder name starts
// with, as ClickHouse names them (broken_20261207_1_1_0), or "" for a
// part an operator detached (20261207_1_1_0).
func detachReason(name string) string {
	prefix, _, ok := strings.Cut(name, "_")
	if ok && slices.Contains(detachReasons, prefix) {
		return prefix
	}
	return ""
}

// detachReasons are the prefixes ClickHouse gives the parts it detaches.
var detachReasons = []string{
	"broken", "broken-on-start", "broken-from-backup", "unexpected", "ignored", "noquorum", "clone",
	"covered-by-broken", "merge-not-byte-identical", "mutate-not-byte-identical",
	"attaching", "deleting", "tmp-fetch",
}

// transientDetach are the reasons of folders that a query (ATTACH, DROP
// DETACHED, FETCH) works on, gone when it ends.
var transientDetach = []string{"attaching", "deleting", "tmp-fetch"}

// onServers runs fn on the connected server or, on a cluster, on every
// server at once, and returns what they all found. A server that fails
// makes it fail, naming the server, with what the others found.
func onServers[T any](ctx context.Context, c *Client, fn func(ctx context.Context, conn driver.Conn, server string) ([]T, error)) ([]T, error) {
	if c.hosts == nil {
		return fn(ctx, c.conn, "")
	}
	found := make([][]T, len(c.hosts.list))
	errs := c.hosts.each(ctx, func(ctx context.Context, h *host) error {
		var err error
		found[slices.Index(c.hosts.list, h)], err = fn(ctx, h.conn, h.String())
		return err
	})
	return slices.Concat(found...), errors.Join(errs...)
}
