package spool

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// copyDir copies the files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestUpgradeFromV1 opens a spool the previous release left behind
// (testdata/v1spool, see testdata/README.md: records 0–29 in v1 segments,
// a v1 checkpoint at 3 with an intent up to 5): the intent is redone with
// its token, records 5–29 ship, 0–2 do not, new records go to a v2
// segment, and once shipped the v1 files are gone and the checkpoint is
// v2. The gate sees the v1 records as received when they were written.
func TestUpgradeFromV1(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "v1spool"))
	fake := newFake(t)
	gate := newGate()
	gate.setHorizon(time.Now())
	cfg := testConfig(t, dir, fake)
	cfg.Gate = gate
	s := mustOpen(t, cfg)
	if st := s.Stats(); st.PendingRecords != 27 {
		t.Errorf("%d records pending after opening the v1 spool, want 27", st.PendingRecords)
	}
	waitShipped(t, s)
	var want [][16]byte
	for b := 3; b < 30; b++ {
		want = append(want, rowIDs(makeRows(b, 4))...)
	}
	gate.setHorizon(time.Now().Add(time.Hour))
	want = append(want, writeBatches(t, s, 100, 103, 4)...)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)

	fake.checkExactlyOnce(t, want, nil)
	calls, _ := fake.snapshot()
	if len(calls) == 0 || calls[0].token != "886a76dfe04608c4613baaaac4287ff5:3:5" || len(calls[0].ids) != 8 {
		t.Errorf("first insert %+v; want the v1 intent redone: token 886a76dfe04608c4613baaaac4287ff5:3:5, records 3 and 4", calls[:min(len(calls), 1)])
	}
	if s.ID() != "886a76dfe04608c4613baaaac4287ff5" {
		t.Errorf("spool id %s changed", s.ID())
	}
	if st.CorruptRecords != 0 || st.Bytes != 0 {
		t.Errorf("stats %+v", st)
	}
	gate.mu.Lock()
	for _, o := range gate.admits[:27] {
		if o.ConsentHash != ([32]byte{}) || o.ConsentKey != "" || o.Received.Before(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("v1 record's origin %+v; want none but the write time", o)
			break
		}
	}
	gate.mu.Unlock()
	for _, seg := range segFiles(t, dir) {
		if h := segHeaderOf(t, seg); h.version != segV2 {
			t.Errorf("segment %s of version %d left after shipping", filepath.Base(seg), h.version)
		}
	}
	if ck := readCheckpointFile(t, dir); !ck.trusted || ck.shipped != 33 {
		t.Errorf("checkpoint %+v; want v2 at 33", ck)
	}

	reopenShipsNothing(t, cfg)
}
