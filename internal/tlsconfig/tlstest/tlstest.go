// Package tlstest makes certificate authorities and certificates for
// tests, as PEM files in a test's temp directory.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority.
type CA struct {
	tb   testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate's PEM file.
	File string
	// PEM is the CA certificate, PEM-encoded.
	PEM []byte
	// Pool holds the CA certificate, for clients that trust it.
	Pool *x509.CertPool
}

// NewCA makes a CA named name.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{tb: tb, cert: cert, key: key, Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	ca.PEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca.File = writeFile(tb, name+"-ca.pem", ca.PEM)
	return ca
}

// Pair is an issued certificate's files and its tls.Certificate.
type Pair struct {
	CertFile, KeyFile string
	Cert              tls.Certificate
}

// Server issues a server certificate for localhost and 127.0.0.1.
func (ca *CA) Server(name string) Pair { return ca.issue(name, x509.ExtKeyUsageServerAuth) }

// Client issues a client certificate.
func (ca *CA) Client(name string) Pair { return ca.issue(name, x509.ExtKeyUsageClientAuth) }

// Issued is a certificate and its key, PEM-encoded in memory, and as a
// tls.Certificate.
type Issued struct {
	CertPEM, KeyPEM []byte
	Cert            tls.Certificate
}

// IssueSerial issues a certificate for localhost and 127.0.0.1 with the
// given serial number and usage, kept in memory: for tests that write the
// files where and when they choose, as a rotation does, and tell
// certificates apart by serial.
func (ca *CA) IssueSerial(serial int64, usage x509.ExtKeyUsage) Issued {
	ca.tb.Helper()
	return ca.mint("localhost", big.NewInt(serial), usage)
}

func (ca *CA) issue(name string, usage x509.ExtKeyUsage) Pair {
	ca.tb.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	c := ca.mint(name, serial, usage)
	return Pair{
		CertFile: writeFile(ca.tb, name+".pem", c.CertPEM),
		KeyFile:  writeFile(ca.tb, name+"-key.pem", c.KeyPEM),
		Cert:     c.Cert,
	}
}

// mint issues a certificate for localhost and 127.0.0.1 named name.
func (ca *CA) mint(name string, serial *big.Int, usage x509.ExtKeyUsage) Issued {
	tb := ca.tb
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	c := Issued{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}
	if c.Cert, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		tb.Fatal(err)
	}
	return c
}

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
