package faultproxy

import "testing"

// StartForTest starts a proxy to target for the test tb, closed when tb
// ends; it fails tb if the proxy cannot start.
func StartForTest(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := Start(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}
