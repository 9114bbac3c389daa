package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for localhost and its key,
// both PEM.
func testCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "consentry test"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// alertRules is a valid alert rules file (docs/dashboard.md).
const alertRules = `{
  "webhooks": {"oncall": {"url": "https://pager.example.com/consentry", "format": "json", "secret": "a secret of 16 bytes or more"}},
  "apps": {"com.example.notes": [{"webhook": "oncall", "events": ["new", "regressed"]}]}
}
`

// secretFiles are the contents, by the variable that names the file, of
// the files a deployment passes to consentryd.
func secretFiles(t *testing.T) map[string][]byte {
	t.Helper()
	cert, key := testCert(t)
	return map[string][]byte{
		"CONSENTRY_TLS_CERT":                 cert,
		"CONSENTRY_TLS_KEY":                  key,
		"CONSENTRY_TLS_CLIENT_CA":            cert,
		"CONSENTRY_CLICKHOUSE_PASSWORD_FILE": []byte("a password\n"),
		"CONSENTRY_ALERT_RULES":              []byte(alertRules),
		// consentryd opens the database when it starts and reads it
		// when it reloads; --check-config only opens it.
		"CONSENTRY_GEOIP_DB": []byte("not read by the check"),
	}
}

// writeSecretFiles writes, owner-only, the files of secretFiles into a
// temporary folder, and returns their paths by variable.
func writeSecretFiles(t *testing.T) map[string]string {
	t.Helper()
	dir, paths := t.TempDir(), map[string]string{}
	for name, b := range secretFiles(t) {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// flagDefault returns the default of consentryd's flag name, as its
// --help prints it.
func flagDefault(t *testing.T, name string) string {
	t.Helper()
	out, _ := command(t, t.TempDir(), []string{}, false, consentryd, "--help")
	m := regexp.MustCompile(`(?s)\n  -` + regexp.QuoteMeta(name) + ` [^\n]*\n[^\n]*\(default "?([^")]*)"?\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("consentryd --help gives no default for --%s", name)
	}
	return m[1]
}
