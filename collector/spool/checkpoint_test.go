package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointSlots: writes alternate between the two slots in place
// (the file never grows), the newest valid slot wins, and a torn or
// damaged newest slot falls back to the one before.
func TestCheckpointSlots(t *testing.T) {
	dir := t.TempDir()
	fsys := osFS{}
	ck := checkpoint{id: [idBytes]byte{9}, shipped: 1, pos: position{1, 48}, trusted: true}
	cf, err := createCheckpoint(fsys, dir, ck)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ckName)
	for shipped := uint64(2); shipped <= 5; shipped++ {
		ck.shipped, ck.row = shipped, 10*shipped
		if err := cf.write(ck); err != nil {
			t.Fatal(err)
		}
		if got := readCheckpointFile(t, dir); got != ck {
			t.Fatalf("after writing %d: read %+v", shipped, got)
		}
		if fi, _ := os.Stat(path); fi.Size() != ckFileSize {
			t.Fatalf("checkpoint file is %d bytes, want %d", fi.Size(), ckFileSize)
		}
	}
	if err := cf.close(); err != nil {
		t.Fatal(err)
	}
	// Generation 5 is in slot 1; tear it.
	b, _ := os.ReadFile(path)
	clear(b[ckSlotSize+40 : ckSlotSize+ckSizeV2])
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	got, cf2, found, err := openCheckpoint(fsys, dir)
	if err != nil || !found || got.shipped != 4 {
		t.Fatalf("with the newest slot torn: %+v, %v, %v; want generation 4 (shipped 4)", got, found, err)
	}
	// The next write replaces the torn slot, not the good one.
	got.shipped = 6
	if err := cf2.write(got); err != nil {
		t.Fatal(err)
	}
	cf2.close()
	if got := readCheckpointFile(t, dir); got.shipped != 6 {
		t.Errorf("after writing over the torn slot: %+v", got)
	}
	b, _ = os.ReadFile(path)
	if old, gen, err := parseSlot(b[:ckSizeV2]); err != nil || gen != 4 || old.shipped != 4 {
		t.Errorf("slot 0 holds %+v (generation %d, %v); want generation 4 kept", old, gen, err)
	}
}

// TestCheckpointFromV1 converts a version 1 checkpoint: its content goes to
// slot 1 beside the old record, which the next write replaces.
func TestCheckpointFromV1(t *testing.T) {
	dir := t.TempDir()
	v1 := checkpoint{id: [idBytes]byte{7}, shipped: 3, pos: position{1, 1035}, intent: true, intentEnd: 5}
	path := filepath.Join(dir, ckName)
	if err := os.WriteFile(path, marshalV1(v1), 0o640); err != nil {
		t.Fatal(err)
	}
	ck, cf, found, err := openCheckpoint(osFS{}, dir)
	if err != nil || !found {
		t.Fatalf("open a v1 checkpoint: %v", err)
	}
	if ck != v1 {
		t.Errorf("converted checkpoint %+v, want %+v (not trusted)", ck, v1)
	}
	ck.intent, ck.shipped, ck.trusted = false, 5, true
	if err := cf.write(ck); err != nil {
		t.Fatal(err)
	}
	cf.close()
	b, _ := os.ReadFile(path)
	if _, err := parseCheckpointV1(b); err == nil {
		t.Error("the v1 record is still there after a v2 write")
	}
	if got := readCheckpointFile(t, dir); got != ck {
		t.Errorf("read %+v, want %+v", got, ck)
	}
}
