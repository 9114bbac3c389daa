package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/consentry/consentry/internal/tlsconfig/tlstest"
)

// files are the paths a test serves from.
type files struct{ cert, key, ca string }

func newFiles(t *testing.T) files {
	dir := t.TempDir()
	return files{filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")}
}

// replace writes data to name as a rotation does: beside it, then renamed
// over it.
func replace(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

func (f files) write(t *testing.T, kp tlstest.Issued) {
	t.Helper()
	replace(t, f.cert, kp.CertPEM)
	replace(t, f.key, kp.KeyPEM)
}

// serve starts an HTTPS server with s's configuration.
func serve(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = s.TLSConfig()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// handshake is the server's side of one TLS handshake.
type handshake struct {
	st  tls.ConnectionState
	err error
}

// serveOnce loads cfg, listens on loopback with its TLS configuration and
// handshakes the first connection. It returns the listener's address and
// a channel that receives the server's side of that handshake.
func serveOnce(t *testing.T, cfg Config) (string, <-chan handshake) {
	t.Helper()
	s, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan handshake, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- handshake{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		err = tc.Handshake()
		done <- handshake{tc.ConnectionState(), err}
	}()
	return ln.Addr().String(), done
}

// clientConfig trusts roots and presents cert if it is not nil.
func clientConfig(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		RootCAs: roots,
		// httptest fills the server's Certificates with its own, and then
		// crypto/tls calls GetCertificate only for clients that send a
		// server name.
		ServerName: "localhost",
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

// get makes one request on a new connection, trusting roots and presenting
// cert if it is not nil, and returns the serial of the server's
// certificate.
func get(srv *httptest.Server, roots *x509.CertPool, cert *tls.Certificate) (int64, error) {
	return getWith(srv, clientConfig(roots, cert))
}

func getWith(srv *httptest.Server, cfg *tls.Config) (int64, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return 0, err
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

func mustGet(t *testing.T, srv *httptest.Server, roots *x509.CertPool, cert *tls.Certificate) int64 {
	t.Helper()
	serial, err := get(srv, roots, cert)
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

func TestServe(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	f := newFiles(t)
	f.write(t, ca.IssueSerial(10, x509.ExtKeyUsageServerAuth))
	s, err := Load(Config{CertFile: f.cert, KeyFile: f.key})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s)
	if got := mustGet(t, srv, ca.Pool, nil); got != 10 {
		t.Fatalf("served serial %d, want 10", got)
	}
	// Without mutual TLS a client certificate is neither needed nor checked.
	other := tlstest.NewCA(t, "other").IssueSerial(20, x509.ExtKeyUsageClientAuth)
	mustGet(t, srv, ca.Pool, &other.Cert)

	if _, err := get(srv, tlstest.NewCA(t, "other").Pool, nil); err == nil {
		t.Fatal("a client that does not trust the CA connected")
	}
}

// TestServeWithoutServerName serves from a plain TLS listener to a client
// that sends no server name, as clients that dial an IP address do.
func TestServeWithoutServerName(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	f := newFiles(t)
	f.write(t, ca.IssueSerial(10, x509.ExtKeyUsageServerAuth))
	addr, done := serveOnce(t, Config{CertFile: f.cert, KeyFile: f.key, MinVersion: tls.VersionTLS13})
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	serial := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	c.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.st.ServerName != "" || serial != 10 || r.st.Version != tls.VersionTLS13 {
		t.Fatalf("server name %q, serial %d, version %s; want none, 10, TLS 1.3", r.st.ServerName, serial, tls.VersionName(r.st.Version))
	}
}

func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	other := tlstest.NewCA(t, "other")
	f := newFiles(t)
	f.write(t, ca.IssueSerial(10, x509.ExtKeyUsageServerAuth))
	replace(t, f.ca, ca.PEM)
	s, err := Load(Config{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s)

	signed := ca.IssueSerial(20, x509.ExtKeyUsageClientAuth)
	foreign := other.IssueSerial(21, x509.ExtKeyUsageClientAuth)
	serverOnly := ca.IssueSerial(22, x509.ExtKeyUsageServerAuth)
	tests := []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"CA-signed client certificate", &signed.Cert, true},
		{"no client certificate", nil, false},
		{"certificate of another CA", &foreign.Cert, false},
		{"certificate not for client authentication", &serverOnly.Cert, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cfg := clientConfig(ca.Pool, tt.cert)
				cfg.MaxVersion = v
				_, err := getWith(srv, cfg)
				if (err == nil) != tt.ok {
					t.Fatalf("%s: err = %v, want success %v", tls.VersionName(v), err, tt.ok)
				}
				if err != nil && !strings.Contains(err.Error(), "remote error: tls:") {
					t.Fatalf("%s: err = %v, want the server to refuse", tls.VersionName(v), err)
				}
			}
		})
	}
}

func TestRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	f := newFiles(t)
	f.write(t, ca.IssueSerial(1, x509.ExtKeyUsageServerAuth))
	replace(t, f.ca, ca.PEM)
	core, logs := observer.New(zapcore.InfoLevel)
	const reload = 5 * time.Millisecond
	s, err := Load(Config{CertFile: f.cert, KeyFile: f.key, ClientCAFile: f.ca, Reload: reload, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s)
	client := ca.IssueSerial(100, x509.ExtKeyUsageClientAuth)

	// Clients keep connecting throughout; none may fail, whatever is on
	// disk.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := get(srv, ca.Pool, &client.Cert); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stopClients := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopClients()

	want := func(serial int64) {
		t.Helper()
		time.Sleep(3 * reload) // a check is due, and any check of an earlier state is over
		if got := mustGet(t, srv, ca.Pool, &client.Cert); got != serial {
			t.Fatalf("served serial %d, want %d", got, serial)
		}
	}
	failures := func() int { return logs.FilterMessageSnippet("cannot be loaded").Len() }
	want(1)
	f.write(t, ca.IssueSerial(2, x509.ExtKeyUsageServerAuth))
	want(2)

	// Invalid files, each state of each step: the previous certificate is
	// still served, the failure logged once.
	broken := []struct {
		name string
		do   func()
	}{
		{"garbage certificate", func() { replace(t, f.cert, []byte("not PEM")) }},
		{"key of another certificate", func() {
			replace(t, f.cert, ca.IssueSerial(3, x509.ExtKeyUsageServerAuth).CertPEM)
			replace(t, f.key, ca.IssueSerial(4, x509.ExtKeyUsageServerAuth).KeyPEM)
		}},
		{"missing key", func() {
			if err := os.Remove(f.key); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty CA bundle", func() { replace(t, f.ca, nil); f.write(t, ca.IssueSerial(5, x509.ExtKeyUsageServerAuth)) }},
	}
	for _, b := range broken {
		before := failures()
		b.do()
		want(2)
		logged := failures()
		if logged == before {
			t.Fatalf("%s: no failure logged", b.name)
		}
		want(2)
		want(2)
		if n := failures(); n != logged {
			t.Fatalf("%s: the same failure logged %d times", b.name, n-logged+1)
		}
	}

	// Valid again, with a second CA in the bundle: clients of either are
	// accepted.
	ca2 := tlstest.NewCA(t, "ca2")
	client2 := ca2.IssueSerial(101, x509.ExtKeyUsageClientAuth)
	f.write(t, ca.IssueSerial(6, x509.ExtKeyUsageServerAuth))
	replace(t, f.ca, append(append([]byte{}, ca.PEM...), ca2.PEM...))
	want(6)
	mustGet(t, srv, ca.Pool, &client2.Cert)

	// The first CA removed: its clients are refused from the next check on.
	stopClients()
	replace(t, f.ca, ca2.PEM)
	time.Sleep(2 * reload)
	mustGet(t, srv, ca.Pool, &client2.Cert)
	if _, err := get(srv, ca.Pool, &client.Cert); err == nil {
		t.Fatal("a client of a removed CA connected")
	}
	// Serial 2, serial 6 and the CA: serial 6 and the second bundle are
	// two writes, which one check may see together or two checks apart,
	// and the removal of the first CA is one more.
	if n := logs.FilterMessage("TLS certificate loaded").Len(); n < 3 || n > 5 {
		t.Fatalf("%d reloads logged, want 3 to 5 (serial 2, serial 6, the bundles)", n)
	}
}

func TestReloadInterval(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	for _, reload := range []time.Duration{time.Hour, -1} {
		f := newFiles(t)
		f.write(t, ca.IssueSerial(1, x509.ExtKeyUsageServerAuth))
		s, err := Load(Config{CertFile: f.cert, KeyFile: f.key, Reload: reload})
		if err != nil {
			t.Fatal(err)
		}
		srv := serve(t, s)
		f.write(t, ca.IssueSerial(2, x509.ExtKeyUsageServerAuth))
		if got := mustGet(t, srv, ca.Pool, nil); got != 1 {
			t.Fatalf("Reload %v: served serial %d before the check is due, want 1", reload, got)
		}

		// An explicit Reload fails on bad files and keeps the old ones...
		replace(t, f.key, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		if err := s.Reload(); err == nil || !strings.Contains(err.Error(), f.key) {
			t.Fatalf("Reload with a bad key = %v, want an error naming the key file", err)
		}
		if got := mustGet(t, srv, ca.Pool, nil); got != 1 {
			t.Fatalf("served serial %d after a failed reload, want 1", got)
		}
		// ...and loads good ones at once.
		f.write(t, ca.IssueSerial(3, x509.ExtKeyUsageServerAuth))
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, srv, ca.Pool, nil); got != 3 {
			t.Fatalf("served serial %d after Reload, want 3", got)
		}
	}
}

func TestMinVersion(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	f := newFiles(t)
	f.write(t, ca.IssueSerial(1, x509.ExtKeyUsageServerAuth))
	tests := []struct {
		min, clientMax uint16
		ok             bool
	}{
		{0, tls.VersionTLS12, true},
		{0, tls.VersionTLS11, false},
		{tls.VersionTLS13, tls.VersionTLS13, true},
		{tls.VersionTLS13, tls.VersionTLS12, false},
	}
	for _, tt := range tests {
		addr, done := serveOnce(t, Config{CertFile: f.cert, KeyFile: f.key, MinVersion: tt.min})
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS10, MaxVersion: tt.clientMax})
		if err == nil {
			c.Close()
		}
		<-done
		if (err == nil) != tt.ok {
			t.Errorf("server min %s, client max %s: err = %v, want success %v",
				tls.VersionName(tt.min), tls.VersionName(tt.clientMax), err, tt.ok)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	kp := ca.IssueSerial(1, x509.ExtKeyUsageServerAuth)
	otherKey := ca.IssueSerial(2, x509.ExtKeyUsageServerAuth).KeyPEM
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := file("tls.crt", kp.CertPEM), file("tls.key", kp.KeyPEM)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name     string
		cfg      Config
		want     string  // in the error
		wantErrs []error // matched by errors.Is
	}{
		{"no files", Config{}, "both a certificate file and a key file are required", nil},
		{"no key file", Config{CertFile: cert}, "both a certificate file and a key file are required", nil},
		{"TLS 1.1", Config{CertFile: cert, KeyFile: key, MinVersion: tls.VersionTLS11}, "minimum version TLS 1.1 is not supported", nil},
		{"unknown version", Config{CertFile: cert, KeyFile: key, MinVersion: 0x9999}, "minimum version 0x9999 is not supported", nil},
		{"missing certificate", Config{CertFile: missing, KeyFile: key}, "certificate file: stat " + missing, []error{fs.ErrNotExist}},
		{"missing key", Config{CertFile: cert, KeyFile: missing}, "key file: stat " + missing, []error{fs.ErrNotExist}},
		{"missing CA", Config{CertFile: cert, KeyFile: key, ClientCAFile: missing}, "client CA file: stat " + missing, []error{fs.ErrNotExist}},
		{"key of another certificate", Config{CertFile: cert, KeyFile: file("other.key", otherKey)}, "private key does not match public key", nil},
		{"certificate not PEM", Config{CertFile: file("garbage.crt", []byte("garbage")), KeyFile: key}, "garbage.crt with key file " + key + ": tls: failed to find any PEM data in certificate input", nil},
		{"key not PEM", Config{CertFile: cert, KeyFile: file("garbage.key", []byte("garbage"))}, "failed to find any PEM data in key input", nil},
		{"files swapped", Config{CertFile: key, KeyFile: cert}, "PEM inputs may have been switched", nil},
		{"certificate corrupt", Config{CertFile: file("corrupt.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})), KeyFile: key}, "x509:", nil},
		{"empty CA file", Config{CertFile: cert, KeyFile: key, ClientCAFile: file("empty.pem", nil)}, "client CA file " + filepath.Join(dir, "empty.pem") + ": no PEM CERTIFICATE block found", nil},
		{"CA file holds only a key", Config{CertFile: cert, KeyFile: key, ClientCAFile: key}, "no PEM CERTIFICATE block found", nil},
		{"CA file corrupt", Config{CertFile: cert, KeyFile: key, ClientCAFile: file("corrupt-ca.PEM", append(append([]byte{}, ca.PEM...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})...))}, "certificate 2: x509:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.cfg)
			if err == nil || s != nil {
				t.Fatalf("Load = %v, %v; want an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "tlsconfig: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
			for _, target := range tt.wantErrs {
				if !errors.Is(err, target) {
					t.Fatalf("err = %v, want errors.Is %v", err, target)
				}
			}
		})
	}

	if _, err := Load(Config{CertFile: cert, KeyFile: key, ClientCAFile: file("ca.PEM", ca.PEM)}); err != nil {
		t.Fatalf("valid files: %v", err)
	}
}
