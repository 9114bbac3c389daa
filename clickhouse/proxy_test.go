package clickhouse

import (
	"testing"

	"github.com/consentry/consentry/internal/faultproxy"
)

// proxiedClient returns a client of a new, migrated test database on the
// shared server, through a new fault proxy, and the proxy. cfg sets the
// client's other fields.
func proxiedClient(t *testing.T, cfg Config) (*Client, *faultproxy.Proxy) {
	t.Helper()
	db := testDB(t)
	migrated(t, Config{Database: db})
	p := faultproxy.StartForTest(t, shared.Addr())
	cfg.Addr, cfg.Database = p.Addr(), db
	return openClient(t, cfg), p
}

// refuse drops the proxy's connections and closes new ones, as a
// restarting server does.
func refuse(p *faultproxy.Proxy) {
	p.Refuse(true)
	p.Cut()
}
