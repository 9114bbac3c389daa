package consent

import (
	"bytes"
	"os"
	"path/filepath"
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
