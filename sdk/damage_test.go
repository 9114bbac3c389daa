package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// storageFiles returns the files directly in dir that hold the SDK's
// keys and state (not the lock, not the queue's folder), by name.
func storageFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() || e.Name() == lockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// copyTree copies the folder src to dst (which must not exist).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOneDamagedByte damages one byte of each file the SDK keeps its
// keys and consent state in, at every position, and deletes each: the
// client still starts with the consent, the token and the queued events
// it had, and puts the damaged file right, so that a later fault in the
// other copy is survived too.
func TestOneDamagedByte(t *testing.T) {
	f := newFakeCollector(t)
	pristine := t.TempDir()
	c := grantedClient(t, f, testConfig(f, pristine), "analytics")
	f.stop() // the events stay queued
	recordTaps(t, c, 3)
	tok := consentToken(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want := storageFiles(t, pristine)
	names := slices.Sorted(maps.Keys(want))
	t.Logf("storage files: %v", names)

	check := func(what, dir, wantLog string) {
		t.Helper()
		cfg := testConfig(f, dir)
		logs := &logRecorder{}
		cfg.Logger = logs
		c, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer c.Close()
		if got := c.ConsentState(); got != StateGranted || consentToken(c) != tok {
			t.Fatalf("%s: state %q, the token kept: %v", what, got, consentToken(c) == tok)
		}
		if st := c.Stats(); st.QueuedEvents != 3 {
			t.Fatalf("%s: %d events queued, want 3", what, st.QueuedEvents)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(logs.all(), func(m string) bool { return strings.Contains(m, wantLog) }) {
			t.Fatalf("%s: no log line says %q: %q", what, wantLog, logs.all())
		}
		got := storageFiles(t, dir)
		for _, n := range names {
			if !bytes.Equal(got[n], want[n]) {
				t.Fatalf("%s: %s not put right", what, n)
			}
		}
	}
	damage := func(dir, name string, edit func(b []byte) []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b = edit(b); b == nil {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	n := 0
	for _, name := range names {
		for off := range len(want[name]) + 1 {
			dir := filepath.Join(t.TempDir(), "s")
			copyTree(t, pristine, dir)
			var what string
			if off == len(want[name]) {
				what = name + " deleted"
				damage(dir, name, func([]byte) []byte { return nil })
			} else {
				what = name + " damaged at byte " + strconv.Itoa(off)
				damage(dir, name, func(b []byte) []byte { b[off] ^= 0xa5; return b })
			}
			if off == len(want[name]) {
				check(what, dir, name+" written from its copy")
			} else {
				check(what, dir, name+" damaged, lost or behind its copy; restored")
			}
			// The file put right, the other copy of the same data can
			// be lost now.
			for _, other := range names {
				if other != name && sameKind(other, name) {
					damage(dir, other, func([]byte) []byte { return nil })
					check(what+", then "+other+" deleted", dir, other+" written from its copy")
				}
			}
			n++
		}
	}
	t.Logf("%d damaged or deleted files survived", n)
}

// sameKind reports whether the storage files a and b are copies of one
// another (the state and its copy, the key and its copy).
func sameKind(a, b string) bool {
	base := func(s string) string { s, _ = strings.CutSuffix(s, copySuffix); return s }
	return base(a) == base(b)
}

// TestDamagedStateKeepsPendingRevocation: a revocation not yet delivered
// when one byte of the state is damaged is still delivered, with its
// erasure, after a restart. Before the state was kept twice, the client
// could not start (ErrStateUnreadable) and the app's way out,
// DeleteStorage, forgot the revocation: the collector kept the data the
// user asked to erase.
func TestDamagedStateKeepsPendingRevocation(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	f.stop()
	if err := c.RevokeConsent(true); err != nil {
		t.Fatal(err)
	}
	c.Close()
	path := filepath.Join(dir, stateFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.restart()
	cfg := testConfig(f, dir)
	c2, err := New(cfg)
	if err != nil {
		t.Fatalf("a damaged byte in the state: %v", err)
	}
	defer c2.Close()
	waitFor(t, 5*time.Second, "the revocation", func() bool { return c2.ConsentState() == StateRevoked })
	f.mu.Lock()
	revokes := slices.Clone(f.revokes)
	f.mu.Unlock()
	if len(revokes) != 1 || !revokes[0].GetErase() {
		t.Fatalf("revokes %v", revokes)
	}
}

// TestStateCopiesNewerWins: after a crash between the writes of the
// state file and its copy, the two hold different states; the newer is
// read, whichever file holds it, and the other is put right.
func TestStateCopiesNewerWins(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	c.Close()
	granted := storageFiles(t, dir)
	c2 := newClient(t, testConfig(f, dir))
	if err := c2.RevokeConsent(false); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	revoked := storageFiles(t, dir)
	for _, newer := range []string{stateFileName, stateFileName + copySuffix} {
		for name, b := range revoked {
			if name != newer && strings.HasPrefix(name, stateFileName) {
				b = granted[name]
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c3 := newClient(t, testConfig(f, dir))
		if got := c3.ConsentState(); got != StateRevoked {
			t.Fatalf("the newer state in %s: read %q, want revoked", newer, got)
		}
		c3.Close()
		if got := storageFiles(t, dir); !bytes.Equal(got[stateFileName], got[stateFileName+copySuffix]) {
			t.Fatalf("the older state (newer in %s) not put right", newer)
		}
	}
}

// TestStateCopyWriteFails: when the copy of the state cannot be written
// (a full disk), the save fails and the files still say what they said
// before it, so a grant reported failed does not come back as a consent
// after a restart. A full disk's replace (revocations) keeps the state
// it could write.
func TestStateCopyWriteFails(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := newClient(t, testConfig(f, dir))
	failCopy := func(path string, data []byte) error {
		if strings.HasSuffix(path, copySuffix) {
			return ErrStorageFull
		}
		return writeFileAtomic(path, data)
	}
	c.mu.Lock()
	c.store.write = failCopy
	c.mu.Unlock()
	if err := c.GrantConsent("analytics"); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("grant with no room for the copy: %v", err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(dir, stateFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the state file after a failed save: %v", err)
	}
	c2 := newClient(t, testConfig(f, dir))
	if got := c2.ConsentState(); got != StateNone {
		t.Fatalf("state %q after a grant that failed, want none", got)
	}
	if err := c2.GrantConsent("analytics"); err != nil {
		t.Fatal(err)
	}
	c2.mu.Lock()
	st := c2.st.clone()
	st.Token, st.Ended = "", StateRevoked
	c2.store.write = failCopy
	err := c2.store.replace(&st)
	c2.mu.Unlock()
	if err != nil {
		t.Fatalf("replace with no room for the copy: %v", err)
	}
	c2.Close()
	c3 := newClient(t, testConfig(f, dir))
	if got := c3.ConsentState(); got != StateRevoked {
		t.Fatalf("state %q after a replace that wrote the state file only, want revoked", got)
	}
	c3.Close()
	if got := storageFiles(t, dir); !bytes.Equal(got[stateFileName], got[stateFileName+copySuffix]) {
		t.Fatal("the copy was not made on the next start")
	}
}

// TestStorageOfEarlierVersions: a folder written by an SDK that kept one
// state file (without a sequence number) and one key file is read, and
// the copies are made.
func TestStorageOfEarlierVersions(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	tok := consentToken(c)
	c.Close()
	key, err := os.ReadFile(filepath.Join(dir, keyFileName))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStateStore(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.open(b)
	if err != nil {
		t.Fatal(err)
	}
	st.Seq = 0 // omitted from the JSON, as earlier versions wrote it
	plain, err := json.Marshal(st)
	if err != nil || bytes.Contains(plain, []byte(`"seq"`)) {
		t.Fatalf("%s %v", plain, err)
	}
	if b, err = sealFrame(nil, s.aead, magicState, plain); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{stateFileName + copySuffix, keyFileName + copySuffix} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	c2 := newClient(t, testConfig(f, dir))
	if c2.ConsentState() != StateGranted || consentToken(c2) != tok {
		t.Fatalf("state %q", c2.ConsentState())
	}
	c2.Close()
	got := storageFiles(t, dir)
	if !bytes.Equal(got[stateFileName], got[stateFileName+copySuffix]) || !bytes.Equal(got[keyFileName+copySuffix], key) {
		t.Fatalf("copies not made: %v", slices.Sorted(maps.Keys(got)))
	}
}

// TestBothCopiesDamaged: with both files of the state damaged the client
// cannot start (ErrStateUnreadable); DeleteStorage removes every file,
// copies and interrupted writes' leftovers included, and the next start
// has no consent.
func TestBothCopiesDamaged(t *testing.T) {
	f := newFakeCollector(t)
	dir := t.TempDir()
	c := grantedClient(t, f, testConfig(f, dir), "analytics")
	c.Close()
	for _, n := range []string{stateFileName, stateFileName + copySuffix} {
		path := filepath.Join(dir, n)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 1
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leftover := filepath.Join(dir, "."+stateFileName+".new-123")
	if err := os.WriteFile(leftover, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(testConfig(f, dir)); !errors.Is(err, ErrStateUnreadable) {
		t.Fatalf("both copies damaged: %v", err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an interrupted write's leftover is kept: %v", err)
	}
	if err := DeleteStorage(dir); err != nil {
		t.Fatal(err)
	}
	if got := storageFiles(t, dir); len(got) != 0 {
		t.Fatalf("left after DeleteStorage: %v", slices.Sorted(maps.Keys(got)))
	}
	c2 := newClient(t, testConfig(f, dir))
	if got := c2.ConsentState(); got != StateNone {
		t.Fatalf("state %q after DeleteStorage", got)
	}
}
