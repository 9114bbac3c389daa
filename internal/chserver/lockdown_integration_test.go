package chserver_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/chserver"
	"github.com/consentry/consentry/internal/chtest"
)

// httpQuery runs sql over srv's HTTP interface, with basic authorization
// if user is not "", and returns the status code and body.
func httpQuery(t *testing.T, srv *chserver.Server, user, password, rawQuery string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.HTTPAddr()+"/?"+rawQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// TestNoPasswordlessUser: nobody gets in as default, with or without a
// password, over either protocol, nor as a configured user with a wrong
// password; the administrative user gets in with its password over both.
func TestNoPasswordlessUser(t *testing.T) {
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir(), ReadOnlyUser: "analyst", ReadOnlyPassword: "analyst-pw"})
	ctx := context.Background()
	for _, tc := range []struct{ name, user, password string }{
		{"default without a password", "default", ""},
		{"default with a guess", "default", "default"},
		{"no user name", "", ""},
		{"admin without its password", srv.User(), ""},
		{"admin with a wrong password", srv.User(), "wrong"},
		{"read-only user with a wrong password", "analyst", "wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := open(t, srv, tc.user, tc.password).Ping(ctx); err == nil {
				t.Error("native protocol: Ping succeeded")
			}
			code, body := httpQuery(t, srv, tc.user, tc.password, "query=SELECT+1")
			if code == http.StatusOK {
				t.Errorf("HTTP with basic authorization: %d %s", code, body)
			}
			q := url.Values{"query": {"SELECT 1"}, "password": {tc.password}}
			if tc.user != "" {
				q.Set("user", tc.user)
			}
			if code, body := httpQuery(t, srv, "", "", q.Encode()); code == http.StatusOK {
				t.Errorf("HTTP with user and password parameters: %d %s", code, body)
			}
		})
	}
	if err := open(t, srv, srv.User(), srv.Password()).Ping(ctx); err != nil {
		t.Errorf("admin over the native protocol: %v", err)
	}
	if code, body := httpQuery(t, srv, srv.User(), srv.Password(), "query=SELECT+1"); code != http.StatusOK || body != "1" {
		t.Errorf("admin over HTTP: %d %s", code, body)
	}
	if code, body := httpQuery(t, srv, "analyst", "analyst-pw", "query=SELECT+1"); code != http.StatusOK || body != "1" {
		t.Errorf("read-only user over HTTP: %d %s", code, body)
	}
}

// TestFilesPrivate: DataDir is closed to others even if it was open
// before, users.xml is owner-only and holds no password in clear, and a
// generated password is long and random.
func TestFilesPrivate(t *testing.T) {
	chtest.RequireBinary(t)
	dir := filepath.Join(t.TempDir(), "ch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := start(t, chserver.Config{DataDir: dir, ReadOnlyUser: "analyst", ReadOnlyPassword: "analyst-secret-pw"})
	chtest.CheckModes(t, map[string]os.FileMode{
		dir:                              0o700,
		filepath.Join(dir, "users.xml"):  0o600,
		filepath.Join(dir, "config.xml"): 0o600,
		filepath.Join(dir, "log"):        0o700,
		filepath.Join(dir, "data"):       0o700,
		filepath.Join(dir, "user_files"): 0o700,
	})
	users, err := os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{srv.Password(), "analyst-secret-pw"} {
		if strings.Contains(string(users), secret) {
			t.Errorf("users.xml holds a password in clear")
		}
	}
	if strings.Contains(string(users), "<default>\n      <password") {
		t.Error("users.xml defines a default user")
	}
	if len(srv.Password()) < 20 {
		t.Errorf("generated password has %d characters, want at least 20", len(srv.Password()))
	}
	other := start(t, chserver.Config{DataDir: t.TempDir()})
	if other.Password() == srv.Password() {
		t.Error("two servers generated the same password")
	}
}

// listening returns the addresses pid listens on over TCP, from /proc:
// the inodes of its socket descriptors, matched with the LISTEN rows of
// /proc/<pid>/net/tcp and tcp6.
func listening(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot read the server's descriptors: %v", err)
	}
	inodes := make(map[string]bool)
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			addrs = append(addrs, procAddr(t, fields[1]))
		}
		f.Close()
	}
	return addrs
}

// procAddr decodes a /proc/net/tcp address: hex IP in 32-bit words of
// host (little-endian) byte order, colon, hex port.
func procAddr(t *testing.T, s string) string {
	t.Helper()
	ipHex, portHex, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(ipHex)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, _ := strconv.ParseUint(portHex, 16, 16)
	return net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(int(port)))
}

// TestListensOnLoopbackOnly: the server opens exactly its native and HTTP
// ports, on loopback (no interserver or other port).
func TestListensOnLoopbackOnly(t *testing.T) {
	chtest.RequireBinary(t)
	srv := start(t, chserver.Config{DataDir: t.TempDir()})
	got := listening(t, srv.PID())
	want := map[string]bool{srv.Addr(): true, srv.HTTPAddr(): true}
	if len(got) != len(want) {
		t.Errorf("listening on %v, want exactly %s and %s", got, srv.Addr(), srv.HTTPAddr())
	}
	for _, a := range got {
		if !want[a] {
			t.Errorf("listening on %s, which is not %s or %s", a, srv.Addr(), srv.HTTPAddr())
		}
	}
}

// nonLoopbackIPv4 returns an IPv4 address of this machine that is not
// loopback, or "".
func nonLoopbackIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

// TestExposedPortsKeepUsersLocal: with the ports exposed on a wildcard
// address, a connection from a non-loopback address gets in as the
// read-only user if its network is allowed, never as the admin.
func TestExposedPortsKeepUsersLocal(t *testing.T) {
	chtest.RequireBinary(t)
	ip := nonLoopbackIPv4()
	if ip == "" {
		t.Skip("this machine has no non-loopback IPv4 address")
	}
	srv := start(t, chserver.Config{DataDir: t.TempDir(), ListenHost: "0.0.0.0",
		ReadOnlyUser: "analyst", ReadOnlyPassword: "analyst-pw", ReadOnlyNetworks: []string{ip + "/32"}})
	_, port, _ := net.SplitHostPort(srv.Addr())
	dial := func(user, password string) error {
		conn := openAddr(t, net.JoinHostPort(ip, port), user, password)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return conn.Ping(ctx)
	}
	if err := dial("analyst", "analyst-pw"); err != nil {
		t.Errorf("read-only user from %s, an allowed network: %v", ip, err)
	}
	if err := dial(srv.User(), srv.Password()); err == nil {
		t.Errorf("admin got in from %s, a non-loopback address", ip)
	}
	// Loopback is not in the read-only user's networks now.
	if err := open(t, srv, "analyst", "analyst-pw").Ping(context.Background()); err == nil {
		t.Error("read-only user got in from loopback, outside its networks")
	}
}
