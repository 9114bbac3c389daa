package sdk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// testStats counts what a queue reports.
type testStats struct{ evicted, corrupt int }

func (s *testStats) addEvicted(n int) { s.evicted += n }
func (s *testStats) addCorrupt(n int) { s.corrupt += n }

func openTestQueue(t *testing.T, dir string, maxBytes int64, st *testStats) *queue {
	t.Helper()
	aead, err := newAEAD(bytes.Repeat([]byte{3}, keySize))
	if err != nil {
		t.Fatal(err)
	}
	q, err := openQueue(dir, 42, aead, maxBytes, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.close() })
	return q
}

// appendScreens appends gesture records whose screens are the names.
func appendScreens(t *testing.T, q *queue, names ...string) {
	t.Helper()
	for _, n := range names {
		plain, err := encodeRecord(nil, 1, 0, &consentryv1.Event{
			EventId: bytes.Repeat([]byte{1}, 16), CreatedAtUnixMs: 1,
			Payload: &consentryv1.Event_Gesture{Gesture: &consentryv1.Gesture{Type: consentryv1.GestureType_GESTURE_TYPE_TAP, Screen: n}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.append(plain, false); err != nil {
			t.Fatal(err)
		}
	}
}

// screens peeks up to n records and returns their screens (corrupt ones
// as "!"), without removing them.
func screens(t *testing.T, q *queue, n int) (*batch, []string) {
	t.Helper()
	b, err := q.peek(n, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return nil, nil
	}
	var out []string
	for _, it := range b.items {
		if it.corrupt {
			out = append(out, "!")
			continue
		}
		out = append(out, it.rec.event.GetGesture().GetScreen())
	}
	return b, out
}

// names returns the screen names s<from> to s<to-1>, in order.
func names(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("s%d", i))
	}
	return out
}

func TestQueueAckSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st := &testStats{}
	q := openTestQueue(t, dir, 1<<20, st)
	appendScreens(t, q, names(0, 10)...)
	b, got := screens(t, q, 4)
	if !slices.Equal(got, names(0, 4)) {
		t.Fatalf("peeked %v", got)
	}
	mustAck(t, q, b, 4)
	if n, _ := q.size(); n != 6 {
		t.Fatalf("%d queued after ack, want 6", n)
	}
	q.close()
	q2 := openTestQueue(t, dir, 1<<20, st)
	if _, got := screens(t, q2, 100); !slices.Equal(got, names(4, 10)) {
		t.Fatalf("after reopen %v", got)
	}
	if st.evicted != 0 || st.corrupt != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestQueueRepairKeepsHead(t *testing.T) {
	dir := t.TempDir()
	st := &testStats{}
	q := openTestQueue(t, dir, 1<<20, st)
	appendScreens(t, q, names(0, 10)...)
	b, _ := screens(t, q, 3)
	mustAck(t, q, b, 3)
	all, _ := screens(t, q, 100)
	q.close()
	// Corrupt record 1 (acknowledged) and record 6 (queued).
	segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	frameSize := int(all.items[0].end.off - all.items[0].start.off)
	data[frameSize+20] ^= 1
	data[6*frameSize+20] ^= 1
	if err := os.WriteFile(segs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	q2 := openTestQueue(t, dir, 1<<20, st)
	_, got := screens(t, q2, 100)
	if want := []string{"s3", "s4", "s5", "s7", "s8", "s9"}; !slices.Equal(got, want) {
		t.Fatalf("after repair %v, want %v", got, want)
	}
	if st.corrupt != 2 {
		t.Errorf("%d corrupt, want 2", st.corrupt)
	}
}

func TestQueueSegmentsRollEvictAndDelete(t *testing.T) {
	dir := t.TempDir()
	st := &testStats{}
	q := openTestQueue(t, dir, minQueueBytes, st)
	appendScreens(t, q, names(0, 600)...)
	n, size := q.size()
	if size > minQueueBytes || st.evicted == 0 || n+st.evicted != 600 {
		t.Fatalf("%d queued, %d bytes, %d evicted", n, size, st.evicted)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	if len(segs) < 2 || len(segs) > int(minQueueBytes/segmentSize(minQueueBytes))+2 {
		t.Errorf("%d segments for a %d-byte cap", len(segs), minQueueBytes)
	}
	b, got := screens(t, q, 1000)
	if !slices.Equal(got, names(600-n, 600)) {
		t.Fatalf("queue holds %v...", got[:3])
	}
	mustAck(t, q, b, len(b.items))
	// A drained queue gives its space back at once, the segment this
	// process appended to included; the next record starts a new one.
	segs, _ = filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	if n, _ := q.size(); n != 0 || len(segs) != 0 {
		t.Fatalf("%d queued, segments %v after acknowledging everything", n, segs)
	}
	appendScreens(t, q, "after")
	if _, got := screens(t, q, 10); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("queue holds %v after a drain and a record", got)
	}
}

func TestQueueEvictionDuringSend(t *testing.T) {
	st := &testStats{}
	q := openTestQueue(t, t.TempDir(), minQueueBytes, st)
	appendScreens(t, q, names(0, 100)...)
	b, _ := screens(t, q, 50)
	appendScreens(t, q, names(100, 400)...) // evicts the batch's records from disk
	if b.evicted != 50 {
		t.Fatalf("%d of the batch evicted, want 50", b.evicted)
	}
	before := st.evicted
	mustAck(t, q, b, 50) // accepted after all: not evicted
	if st.evicted != before-50 {
		t.Fatalf("evicted %d after the ack, want %d", st.evicted, before-50)
	}
	n, _ := q.size()
	if st.evicted+n+50 != 400 {
		t.Fatalf("%d evicted + %d queued + 50 sent != 400", st.evicted, n)
	}
}

func TestQueueResetStartsEpoch(t *testing.T) {
	dir := t.TempDir()
	st := &testStats{}
	q := openTestQueue(t, dir, 1<<20, st)
	appendScreens(t, q, names(0, 5)...)
	aead, _ := newAEAD(bytes.Repeat([]byte{4}, keySize))
	n, err := q.reset(43, aead)
	if err != nil || n != 5 {
		t.Fatalf("reset: %d %v", n, err)
	}
	appendScreens(t, q, "after")
	q.close()
	segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	if ep, _, _ := parseSegmentName(filepath.Base(segs[0])); ep != 43 {
		t.Fatalf("segment of epoch %d", ep)
	}
	// Opening with the earlier epoch deletes the later one's files as
	// leftovers: a crash between the state write and the purge.
	q2 := openTestQueue(t, dir, 1<<20, st)
	if n, _ := q2.size(); n != 0 {
		t.Fatalf("%d records of another epoch", n)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*")); len(segs) != 0 {
		t.Fatalf("stale segments %v", segs)
	}
}

// A drained queue leaves a head past every segment; segments of a later
// process must not reuse lower numbers, or a crash before that process
// writes its head would make the next open delete them as consumed.
func TestQueueNumbersNeverReused(t *testing.T) {
	dir := t.TempDir()
	st := &testStats{}
	q := openTestQueue(t, dir, 1<<20, st)
	appendScreens(t, q, "a")
	b, _ := screens(t, q, 10)
	mustAck(t, q, b, 1)
	q.close()
	q2 := openTestQueue(t, dir, 1<<20, st) // deletes the consumed segment
	q2.close()
	q3 := openTestQueue(t, dir, 1<<20, st)
	appendScreens(t, q3, "crash")
	// The process dies before it writes its head.
	q4, err := openQueue(dir, 42, q3.aead, 1<<20, st)
	if err != nil {
		t.Fatal(err)
	}
	defer q4.close()
	if _, got := screens(t, q4, 10); !slices.Equal(got, []string{"crash"}) {
		t.Fatalf("after the crash: %v", got)
	}
}

// mustAck acknowledges the first n items of b and fails the test if the
// queue could not record it.
func mustAck(t *testing.T, q *queue, b *batch, n int) {
	t.Helper()
	if err := q.ack(b, n); err != nil {
		t.Fatalf("ack %d: %v", n, err)
	}
}
