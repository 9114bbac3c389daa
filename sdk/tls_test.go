package sdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// selfSigned returns a certificate for name and its PEM.
func selfSigned(t *testing.T, name string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLS(t *testing.T) {
	const name = "collector.test"
	cert, certPEM := selfSigned(t, name)
	f := &fakeCollector{t: t, ids: map[string]int{}, revoked: map[string]bool{},
		serverOpts: []grpc.ServerOption{grpc.Creds(credentials.NewServerTLSFromCert(&cert))}}
	f.start("127.0.0.1:0")
	f.httpSrv = httptest.NewUnstartedServer(http.HandlerFunc(f.serveHTTP))
	f.httpSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	f.httpSrv.StartTLS()
	t.Cleanup(func() {
		f.stop()
		f.httpSrv.Close()
	})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(*Config)
	}{
		{"grpc CA file", func(c *Config) { c.CAFile = caFile }},
		{"grpc CA PEM", func(c *Config) { c.CACertPEM = certPEM }},
		{"http CA PEM", func(c *Config) { c.Transport, c.Endpoint, c.CACertPEM = TransportHTTP, f.httpSrv.URL, certPEM }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(f, t.TempDir())
			cfg.Insecure, cfg.ServerName = false, name
			tc.set(cfg)
			c := grantedClient(t, f, cfg, "analytics")
			if err := c.RecordGesture("tap", "home", 1, 0); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Without the CA, the system roots do not trust the certificate: no
	// consent, and a retryable error (it may be a captive portal).
	cfg := testConfig(f, t.TempDir())
	cfg.Insecure, cfg.ServerName = false, name
	c := newClient(t, cfg)
	if err := c.GrantConsent("analytics"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("grant with an untrusted certificate: %v", err)
	}
	cfg = testConfig(f, t.TempDir())
	cfg.Insecure, cfg.CACertPEM = false, []byte("not a certificate")
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad CA PEM: %v", err)
	}
}
