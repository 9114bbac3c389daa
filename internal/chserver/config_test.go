package chserver

import (
	"slices"
	"testing"
)

func TestUsersNetworks(t *testing.T) {
	in := []string{"127.0.0.1", "::1", "10.0.0.0/8", "192.0.2.7/32", "192.0.2.77/24", "2001:db8::/32", "::ffff:10.0.0.0/104"}
	want := []string{"127.0.0.1", "::1", "::ffff:10.0.0.0/104", "::ffff:192.0.2.7/128", "::ffff:192.0.2.0/120", "2001:db8::/32", "::ffff:10.0.0.0/104"}
	if got := usersNetworks(in); !slices.Equal(got, want) {
		t.Errorf("usersNetworks(%q)\n = %q\nwant %q", in, got, want)
	}
}

// TestChoosePorts: the zero ports get distinct free ports, the others
// stay as they are.
func TestChoosePorts(t *testing.T) {
	cfg := Config{HTTPPort: 1, Cluster: &ClusterConfig{}}
	if err := choosePorts(&cfg, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPPort != 1 || cfg.TCPPort == 0 || cfg.Cluster.InterserverPort == 0 || cfg.TCPPort == cfg.Cluster.InterserverPort {
		t.Errorf("ports %d, %d, %d; want a free one, 1, another free one", cfg.TCPPort, cfg.HTTPPort, cfg.Cluster.InterserverPort)
	}
}
