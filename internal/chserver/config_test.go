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
