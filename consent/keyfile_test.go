package consent

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestLoadOrCreatePrivateKeyFile: the key is created once, whole (a
// reader never sees a partial file, and racing creators agree), and read
// back on the next call.
func TestLoadOrCreatePrivateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "consent-signing-key.pem")
	const racers = 8
	keys := make([][]byte, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			k, err := LoadOrCreatePrivateKeyFile(path)
			keys[i], errs[i] = k, err
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("creators %d and 0 got different keys", i)
		}
	}
	again, err := LoadOrCreatePrivateKeyFile(path)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files in the key's directory, want only the key (no temporaries left)", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
}

// TestReadKeyFiles: ReadPrivateKeyFile and ReadPublicKeyFile read their
// own PEM block of an Ed25519 key, and refuse a missing file, the other
// block type, a malformed block and a key of another algorithm.
func TestReadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv := mustKey(t).SigningKey
	mustDER := func(der []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, pubDER := mustDER(x509.MarshalPKCS8PrivateKey(priv)), mustDER(x509.MarshalPKIXPublicKey(priv.Public()))
	ecPrivDER, ecPubDER := mustDER(x509.MarshalPKCS8PrivateKey(ec)), mustDER(x509.MarshalPKIXPublicKey(ec.Public()))
	write := func(name, blockType string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	privPath := write("priv.pem", "PRIVATE KEY", privDER)
	pubPath := write("pub.pem", "PUBLIC KEY", pubDER)
	readPriv := func(path string) ([]byte, error) { return ReadPrivateKeyFile(path) }
	readPub := func(path string) ([]byte, error) { return ReadPublicKeyFile(path) }
	tests := []struct {
		name    string
		read    func(string) ([]byte, error)
		path    string
		want    []byte
		wantErr string
	}{
		{"private", readPriv, privPath, priv, ""},
		{"public", readPub, pubPath, priv.Public().(ed25519PublicKey), ""},
		{"private missing", readPriv, filepath.Join(dir, "none.pem"), nil, "read private key: open "},
		{"public missing", readPub, filepath.Join(dir, "none.pem"), nil, "read public key: open "},
		{"private from public block", readPriv, pubPath, nil, "no PEM PRIVATE KEY block"},
		{"public from private block", readPub, privPath, nil, "no PEM PUBLIC KEY block"},
		{"private malformed", readPriv, write("bad-priv.pem", "PRIVATE KEY", []byte("x")), nil, "read private key " + dir},
		{"public malformed", readPub, write("bad-pub.pem", "PUBLIC KEY", []byte("x")), nil, "read public key " + dir},
		{"private ECDSA", readPriv, write("ec-priv.pem", "PRIVATE KEY", ecPrivDER), nil, "not an Ed25519 key"},
		{"public ECDSA", readPub, write("ec-pub.pem", "PUBLIC KEY", ecPubDER), nil, "not an Ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("read %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}
