package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/internal/tmpfs"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// The tests below put the storage folder on a small tmpfs (they skip where
// mounting one is not allowed) and fill it with a file that stands for the
// app's own data, or other apps': a phone's storage fills up for reasons
// the SDK does not control.

// recordSeq records a custom event carrying seq.
func recordSeq(c *Client, seq int) error {
	a := NewAttributes()
	a.PutInt("seq", int64(seq))
	return c.RecordCustom("tick", a)
}

// offlineOnVolume returns a client, granted scopes, whose storage folder
// is on a new tmpfs of size bytes (vol), and its fake collector, stopped;
// a failed send is retried after a minute, so Flush decides when.
func offlineOnVolume(t *testing.T, size int64, scopes string) (vol string, f *fakeCollector, cfg *Config, c *Client) {
	t.Helper()
	vol = tmpfs.Mount(t, size)
	f = newFakeCollector(t)
	cfg = testConfig(f, filepath.Join(vol, "sdk"))
	cfg.MinBackoffMs, cfg.MaxBackoffMs = 60_000, 60_000
	c = grantedClient(t, f, cfg, scopes)
	f.stop()
	return vol, f, cfg, c
}

// recordOnFullDisk has a client of a stopped collector queue events until
// queued bytes are queued, fills the rest of the volume vol, and records
// more events on the full disk, failing t if one fails. It returns how
// many were recorded and the stats, which must count every event as
// queued or evicted, some as evicted.
func recordOnFullDisk(t *testing.T, c *Client, vol string, queued int64, more int) (int, Stats) {
	t.Helper()
	n := 0
	for ; c.Stats().QueuedBytes < queued; n++ {
		if err := recordSeq(c, n); err != nil {
			t.Fatal(err)
		}
	}
	tmpfs.Fill(t, vol, "app-data", 0)
	for end := n + more; n < end; n++ {
		if err := recordSeq(c, n); err != nil {
			t.Fatalf("record %d on a full disk: %v", n, err)
		}
	}
	st := c.Stats()
	if st.DroppedEvicted == 0 || st.QueuedEvents+st.DroppedEvicted != int64(n) {
		t.Fatalf("stats %+v: want evictions that account for all %d events", st, n)
	}
	return n, st
}

// deliverQueued restarts f, flushes c and returns what f accepted,
// failing t unless that is the queued events queued.
func deliverQueued(t testing.TB, f *fakeCollector, c *Client, queued int64) []*consentryv1.Event {
	t.Helper()
	f.restart()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	if int64(len(got)) != queued {
		t.Fatalf("sent %d, want the %d queued", len(got), queued)
	}
	return got
}

// checkNewest fails t unless events carry the seq attributes of the
// newest of n recorded (recordSeq), in order.
func checkNewest(t testing.TB, events []*consentryv1.Event, n int) {
	t.Helper()
	first := n - len(events)
	for i, e := range events {
		if seq := e.GetCustom().GetAttributes()["seq"].GetIntValue(); seq != int64(first+i) {
			t.Fatalf("event %d has seq %d, want %d: the newest, in order", i, seq, first+i)
		}
	}
}

// TestDiskFullDropsOldestToRecord: with the disk full and the queue well
// below its cap, a record drops the oldest queued events to make room (as
// the cap does, counted as evicted) instead of failing, and what is kept
// is the newest, delivered in order.
func TestDiskFullDropsOldestToRecord(t *testing.T) {
	vol, f, cfg, c := offlineOnVolume(t, 4<<20, "analytics")
	// Far below the default cap (10 MiB): room is made a segment at a
	// time, so segments must be small enough for a few to be queued.
	n, st := recordOnFullDisk(t, c, vol, 600<<10, 5000)
	// Sending on a full disk moves the queue's head without needing
	// space.
	tmpfs.Fill(t, vol, "more-app-data", 0)
	f.restart()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := f.accepted()
	checkNewest(t, got, n)
	if st := c.Stats(); st.SentEvents+st.DroppedEvicted != int64(n) {
		t.Errorf("sent %d + evicted %d != %d", st.SentEvents, st.DroppedEvicted, n)
	}
	t.Logf("a full disk kept the newest %d of %d events (%d evicted)", len(got), n, st.DroppedEvicted)
	// The head reached the disk: a restart sends nothing again.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := newClient(t, testConfig(f, cfg.StorageDir)).Stats(); st.QueuedEvents != 0 {
		t.Fatalf("%d events queued again after a restart", st.QueuedEvents)
	}
}

// TestDiskFullWithNothingQueued: a queue gives its disk space back as
// soon as what it held is sent; a record on a full disk fails with
// ErrStorageFull when nothing of the SDK's can be dropped, and succeeds
// once space is free again.
func TestDiskFullWithNothingQueued(t *testing.T) {
	vol := tmpfs.Mount(t, 1<<20)
	f := newFakeCollector(t)
	cfg := testConfig(f, filepath.Join(vol, "sdk"))
	c := grantedClient(t, f, cfg, "analytics")
	const n = 2000
	for i := range n {
		if err := recordSeq(c, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(cfg.StorageDir, queueDirName, "*"+segSuffix)); len(segs) != 0 {
		t.Fatalf("segments %v left after everything was sent", segs)
	}
	ballast := tmpfs.Fill(t, vol, "app-data", 0)
	if err := recordSeq(c, n); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("record on a full disk with nothing queued: %v, want ErrStorageFull", err)
	}
	if st := c.Stats(); st.RecordedEvents != n || st.QueuedEvents != 0 {
		t.Fatalf("stats %+v: the failed record counted", st)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if err := recordSeq(c, n); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := len(f.accepted()); got != n+1 {
		t.Fatalf("collector got %d events, want %d", got, n+1)
	}
}

// TestRevocationSavedOnFullDisk: a revocation on a full disk is saved (the
// purge frees the queue's space; where the queue held none, the old
// state's own space is used), so a restart does not bring the consent
// back, and the revocation is delivered once the collector is reachable.
func TestRevocationSavedOnFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		queued int // events queued when the disk fills
	}{
		{"queue purged", 3000},
		{"nothing queued", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol, f, cfg, c := offlineOnVolume(t, 1<<20, "analytics,crash_reports")
			for i := range tc.queued {
				if err := recordSeq(c, i); err != nil {
					t.Fatal(err)
				}
			}
			tmpfs.Fill(t, vol, "app-data", 0)
			if err := c.RevokeConsent(true); err != nil {
				t.Fatalf("revoke on a full disk: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Logf("close: %v", err)
			}
			// The app restarts, the disk still full.
			c2 := newClient(t, testConfig(f, cfg.StorageDir))
			if got := c2.ConsentState(); got != StateRevokePending {
				t.Fatalf("after a restart the consent is %q, want %q", got, StateRevokePending)
			}
			if err := recordSeq(c2, 0); err != nil {
				t.Fatal(err)
			}
			if st := c2.Stats(); st.QueuedEvents != 0 || st.PendingRevocations != 1 {
				t.Fatalf("stats %+v: want nothing queued and the revocation pending", st)
			}
			f.restart()
			// (A dial begun before the restart may still fail one try.)
			waitFor(t, 10*time.Second, "the revocation delivered", func() bool { return c2.Flush() == nil })
			if f.revokeCount() != 1 || len(f.accepted()) != 0 || c2.ConsentState() != StateRevoked {
				t.Fatalf("collector got %d revocations and %d events, consent %q; want 1, 0, %q",
					f.revokeCount(), len(f.accepted()), c2.ConsentState(), StateRevoked)
			}
		})
	}
}

// TestQueueHeadMovesOnFullDisk: acknowledging records on a full disk
// moves the head on disk too (it is overwritten in place, needing no
// space), so a restart does not send them again.
func TestQueueHeadMovesOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	q := openTestQueue(t, dir, minQueueBytes*64, &testStats{})
	appendScreens(t, q, names(0, 300)...)
	tmpfs.Fill(t, dir, "app-data", 0)
	b, _ := screens(t, q, 100)
	mustAck(t, q, b, len(b.items))
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	q2 := openTestQueue(t, dir, minQueueBytes*64, &testStats{})
	if n, _ := q2.size(); n != 200 {
		t.Fatalf("%d records queued after a restart, want 200", n)
	}
}

// TestNewOnFullDisk: a first start on a full disk, which cannot write the
// consent state, fails with ErrStorageFull.
func TestNewOnFullDisk(t *testing.T) {
	vol := tmpfs.Mount(t, 1<<20)
	f := newFakeCollector(t)
	tmpfs.Fill(t, vol, "app-data", 0)
	c, err := New(testConfig(f, filepath.Join(vol, "sdk")))
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, ErrStorageFull) {
		t.Fatalf("New on a full disk: %v, want ErrStorageFull", err)
	}
}

// TestGrantOnFullDiskMakesRoom: a new consent on a full disk drops the
// oldest queued events to make room for the state, as a record does,
// instead of failing.
func TestGrantOnFullDiskMakesRoom(t *testing.T) {
	vol, f, cfg, c := offlineOnVolume(t, 4<<20, "analytics,crash_reports")
	for i := 0; c.Stats().QueuedBytes < 1<<20; i++ {
		if err := recordSeq(c, i); err != nil {
			t.Fatal(err)
		}
	}
	tmpfs.Fill(t, vol, "app-data", 0)
	f.restart()
	if err := c.GrantConsent("analytics"); err != nil {
		t.Fatalf("grant on a full disk: %v", err)
	}
	if st := c.Stats(); st.DroppedEvicted == 0 {
		t.Fatalf("stats %+v: want evictions", st)
	}
	if err := c.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	c2 := newClient(t, testConfig(f, cfg.StorageDir))
	if got := c2.ConsentState(); got != StateGranted || c2.Scopes() != "analytics" {
		t.Fatalf("after a restart: %q %q, want the new consent", got, c2.Scopes())
	}
}

// TestDiskFullCompactsTheOnlySegment: a queue that fits in the one segment
// being appended to makes room on a full disk too: the segment is
// rewritten in place without its older half.
func TestDiskFullCompactsTheOnlySegment(t *testing.T) {
	vol, f, cfg, c := offlineOnVolume(t, 1<<20, "analytics")
	const queued = 100 << 10
	if segmentSize(DefaultMaxQueueBytes) <= queued {
		t.Fatalf("segments of %d bytes: the queue would not be in one", segmentSize(DefaultMaxQueueBytes))
	}
	n, st := recordOnFullDisk(t, c, vol, queued, 3000)
	// The compacted segment reads back whole after a restart.
	if err := c.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	c2 := newClient(t, testConfig(f, cfg.StorageDir))
	if st2 := c2.Stats(); st2.QueuedEvents != st.QueuedEvents || st2.DroppedCorrupt != 0 {
		t.Fatalf("after a restart %+v, want the %d queued before and nothing corrupt", st2, st.QueuedEvents)
	}
	got := deliverQueued(t, f, c2, st.QueuedEvents)
	checkNewest(t, got, n)
	t.Logf("one segment on a full disk kept the newest %d of %d events", len(got), n)
}

// TestQueueCompactsUnderABatchInFlight: compacting the only segment moves
// the cursors of the batch being sent with its records, so acknowledging
// the batch afterwards removes exactly its records.
func TestQueueCompactsUnderABatchInFlight(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	st := &testStats{}
	q := openTestQueue(t, dir, 10<<20, st)
	appendScreens(t, q, names(0, 300)...)
	b, _ := screens(t, q, 200) // in flight
	tmpfs.Fill(t, dir, "app-data", 0)
	i := 300
	for ; st.evicted == 0; i++ {
		appendScreens(t, q, names(i, i+1)...) // succeeds: room is made
	}
	if b.evicted < 150 || b.evicted >= len(b.items) {
		t.Fatalf("%d of the batch's %d records evicted, want the oldest half of the queue, not all of the batch", b.evicted, len(b.items))
	}
	mustAck(t, q, b, len(b.items))
	_, got := screens(t, q, 1000)
	if want := names(200, i); !slices.Equal(got, want) {
		t.Fatalf("queue holds %d records from %v, want %d from %v", len(got), got[:1], len(want), want[:1])
	}
}

// TestQueueCompactsSentRecordsFirst: when what was sent fills half the
// only segment, compacting it on a full disk frees that and drops nothing
// queued.
func TestQueueCompactsSentRecordsFirst(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	st := &testStats{}
	q := openTestQueue(t, dir, 10<<20, st)
	appendScreens(t, q, names(0, 300)...)
	b, _ := screens(t, q, 200)
	mustAck(t, q, b, len(b.items))
	tmpfs.Fill(t, dir, "app-data", 0)
	appendScreens(t, q, names(300, 400)...) // more than the last page's free end
	if _, got := screens(t, q, 1000); st.evicted != 0 || !slices.Equal(got, names(200, 400)) {
		t.Fatalf("%d evicted, queue holds %d records from %v; want none evicted, 200 from s200", st.evicted, len(got), got[:1])
	}
}

// TestQueueCompactionCutShort: a process that dies part way through a
// compaction's copy loses none of the records it kept: after a restart
// the queue holds each of them, in order, some perhaps twice (the
// collector deduplicates them by event id).
func TestQueueCompactionCutShort(t *testing.T) {
	for _, cut := range []int{0, 1, 1000, -1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := tmpfs.Mount(t, 1<<20)
			st := &testStats{}
			q := openTestQueue(t, dir, 10<<20, st)
			appendScreens(t, q, names(0, 300)...)
			tmpfs.Fill(t, dir, "app-data", 0)
			errCrash := errors.New("crashed")
			q.testHookCopy = func(path string, keep []byte) error {
				n := cut
				if n < 0 || n > len(keep) {
					n = len(keep) // all copied, not yet truncated
				}
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				defer f.Close()
				if _, err := f.WriteAt(keep[:n], 0); err != nil {
					return err
				}
				return errCrash
			}
			// The record that needs room fails: the compaction did not end.
			plain, err := encodeRecord(nil, 1, 0, &consentryv1.Event{EventId: bytes.Repeat([]byte{1}, 16), CreatedAtUnixMs: 1})
			if err != nil {
				t.Fatal(err)
			}
			for err == nil {
				err = q.append(plain, false)
			}
			q.closeFiles() // the process dies
			if st.evicted == 0 {
				t.Fatal("the compaction dropped nothing")
			}
			q2 := openTestQueue(t, dir, 10<<20, &testStats{})
			_, got := screens(t, q2, 10_000)
			have := map[string]bool{}
			for _, g := range got {
				have[g] = true
			}
			for _, want := range names(st.evicted, 300) {
				if !have[want] {
					t.Fatalf("after a crash in the copy, %s is lost (%d records read back)", want, len(got))
				}
			}
			if have["!"] {
				t.Errorf("a corrupt record read back")
			}
			t.Logf("cut after %d bytes: %d records read back for the %d kept", cut, len(got), 300-st.evicted)
		})
	}
}
