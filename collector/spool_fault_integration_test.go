package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/consentry/consentry/collector/spool"
	"github.com/consentry/consentry/internal/eventgen"
	"github.com/consentry/consentry/internal/faultproxy"
	"github.com/consentry/consentry/internal/tmpfs"
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// restartable returns a data dir and a Config change for the collectors
// of a test that stops one and starts another on the same data: they
// share that data dir and one database, and reach ClickHouse through
// proxy with a 2s read timeout; more (nil: nothing) changes the rest.
func restartable(t testing.TB, proxy *faultproxy.Proxy, more func(*Config)) (dataDir string, mutate func(*Config)) {
	dataDir = t.TempDir()
	db := fmt.Sprintf("consentry_test_%d", dbSeq.Add(1))
	return dataDir, func(c *Config) {
		c.DataDir = dataDir
		c.ClickHouse.Addr = proxy.Addr()
		c.ClickHouse.Database = db
		c.ClickHouse.ReadTimeout = 2 * time.Second
		if more != nil {
			more(c)
		}
	}
}

// volumeFree returns the bytes free on the file system holding dir.
func volumeFree(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// waitAcked waits until tr acknowledged at least n events, failing after
// timeout.
func waitAcked(t *testing.T, tr *traffic, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for tr.ackedCount() < n {
		if time.Now().After(deadline) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			t.Fatalf("%d of %d events acknowledged after %v (refusals %v, last %v)", len(tr.acked), n, timeout, tr.refusals, tr.lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSpoolFullVolumeIntegration runs the collector with its spool on an
// 8 MiB tmpfs and --spool-max-bytes far above it (issue 12, item 1):
//
//   - with ClickHouse healthy, many times the volume flows through the
//     spool (before the fix, shipped records were only freed when the
//     64 MiB segment rolled, so after ~141k events the volume was full and
//     every batch got UNAVAILABLE for good);
//   - with ClickHouse hung, the volume fills with unshipped batches, and
//     ingest is refused (RESOURCE_EXHAUSTED with a retry delay) only once
//     it is truly full;
//   - the collector is stopped and started again on the full volume, and
//     with ClickHouse back it ships everything;
//
// and every event acknowledged on the way is stored once (FINAL).
func TestSpoolFullVolumeIntegration(t *testing.T) {
	const volume = 8 << 20
	vol := tmpfs.Mount(t, volume)
	srv, proxy := proxied(t)
	_, mutate := restartable(t, proxy, func(c *Config) {
		c.Spool.Dir = vol
		c.Spool.MaxBytes = 1 << 30 // far beyond the volume: only free space stops ingest
		c.Spool.RetryMax = 200 * time.Millisecond
	})
	h := newHarness(t, srv, mutate)
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)

	// Healthy: 200k events, well beyond the ~141k the volume holds.
	tr := startTraffic(t, h.app.StoredEventID, h.app.Addr, token, 4, 250, 0)
	waitAcked(t, tr, 200_000, 3*time.Minute)
	tr.mu.Lock()
	healthyRefusals := fmt.Sprint(tr.refusals)
	unavailable := tr.refusals[codes.Unavailable]
	tr.mu.Unlock()
	t.Logf("healthy: %d events acknowledged through an %d-byte volume; refusals %s", tr.ackedCount(), volume, healthyRefusals)
	if unavailable > 0 {
		t.Errorf("%d batches refused UNAVAILABLE with ClickHouse healthy", unavailable)
	}

	// Hung: the volume fills with unshipped batches.
	proxy.Stall()
	proxy.Cut()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		tr.mu.Lock()
		full := tr.refusals[codes.ResourceExhausted]
		tr.mu.Unlock()
		if full >= 20 {
			break
		}
		if time.Now().After(deadline) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			t.Fatalf("no RESOURCE_EXHAUSTED after 2 minutes with ClickHouse hung (refusals %v, last %v, spool %+v)",
				tr.refusals, tr.lastErr, h.app.Spool().Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := h.app.Spool().Stats()
	free := volumeFree(t, vol)
	m := scrape(t, h)
	tr.mu.Lock()
	hungRefusals := fmt.Sprint(tr.refusals)
	unavailableNow := tr.refusals[codes.Unavailable]
	tr.mu.Unlock()
	t.Logf("hung: refusals %s; spool %d bytes unshipped, %d bytes free on the volume (gauge %v, reserve %d)",
		hungRefusals, st.Bytes, free, m["consentry_spool_free_bytes"], st.ReserveBytes)
	if st.Bytes < volume*3/4 {
		t.Errorf("ingest refused with %d bytes unshipped on an %d-byte volume: not truly full", st.Bytes, volume)
	}
	if free > st.ReserveBytes+1<<20 {
		t.Errorf("ingest refused with %d bytes free on the volume, reserve %d", free, st.ReserveBytes)
	}
	if g := int64(m["consentry_spool_free_bytes"]); g < free-256<<10 || g > free+256<<10 {
		t.Errorf("consentry_spool_free_bytes %d, statfs says %d", g, free)
	}
	if err := h.app.Spool().Accepting(); !errors.Is(err, spool.ErrDiskFull) {
		t.Errorf("Accepting on the full volume: %v, want ErrDiskFull", err)
	}
	if n := unavailableNow - unavailable; n > 0 {
		t.Errorf("%d batches refused UNAVAILABLE on a full volume; want RESOURCE_EXHAUSTED", n)
	}
	acked := tr.halt()

	// Stop while ClickHouse hangs: the volume stays full.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	h.stopped = true
	h.app.Shutdown(ctx) // fails: the spool could not ship
	cancel()
	proxy.Resume()

	// Start again on the full volume.
	h2 := newHarness(t, srv, mutate)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h2.app.Spool().WaitShipped(ctx); err != nil {
		t.Fatalf("ship after a restart on a full volume: %v (spool %+v)", err, h2.app.Spool().Stats())
	}
	// Ingest works again.
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 77})
	for range 5 {
		if err := h2.ingestAcked(context.Background(), gen.Batch(100, time.Now()), acked); err != nil {
			t.Fatalf("ingest after the restart: %v", err)
		}
	}
	h2.shipped(t)
	st = h2.app.Spool().Stats()
	m = scrape(t, h2)
	free = volumeFree(t, vol)
	t.Logf("after the restart: spool %+v; gauges: bytes %v, free %v; statfs free %d", st, m["consentry_spool_bytes"], m["consentry_spool_free_bytes"], free)
	if st.Bytes != 0 || m["consentry_spool_bytes"] != 0 {
		t.Errorf("spool bytes %d, gauge %v after shipping everything; want 0", st.Bytes, m["consentry_spool_bytes"])
	}
	if free < volume*3/4 {
		t.Errorf("%d of %d bytes free on the volume after shipping everything", free, volume)
	}
	requireAckedOnce(t, h2.ch, h2.db, acked)
	h2.shutdown()
}

// spoolRecord is where one record of a segment file is, read with the
// layout doc.go documents.
type spoolRecord struct {
	off, size     int64
	payloadOffset int64
	events        int // from the record header (format v2)
}

// spoolRecords lists the records of a segment file, in either format
// version.
func spoolRecords(t *testing.T, path string) []spoolRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []spoolRecord
	switch v := binary.LittleEndian.Uint16(b[4:]); v {
	case 1: // 32-byte segment header; 24-byte record header, length first
		for off := int64(32); off+24 <= int64(len(b)); {
			n := int64(binary.LittleEndian.Uint32(b[off:]))
			recs = append(recs, spoolRecord{off: off, size: 24 + n, payloadOffset: off + 24})
			off += 24 + n
		}
	case 2: // 48-byte segment header; 48-byte record header, magic, then length
		for off := int64(48); off+48 <= int64(len(b)); {
			n := int64(binary.LittleEndian.Uint32(b[off+4:]))
			recs = append(recs, spoolRecord{off: off, size: 48 + n, payloadOffset: off + 48,
				events: int(binary.LittleEndian.Uint32(b[off+8:]))})
			off += 48 + n
		}
	default:
		t.Fatalf("segment format version %d", v)
	}
	return recs
}

// TestSpoolBitFlipIntegration flips one bit inside one spooled record
// while the collector is down (issue 12, item 2): after the restart only
// that record's events are lost, the others ship once.
func TestSpoolBitFlipIntegration(t *testing.T) {
	srv, proxy := proxied(t)
	dataDir, mutate := restartable(t, proxy, nil)
	h := newHarness(t, srv, mutate)
	token := h.token(t, testApp, time.Hour, consentryv1.ScopeAnalytics, consentryv1.ScopeCrashReports, consentryv1.ScopeLocation)
	gen := eventgen.New(eventgen.Config{AppID: testApp, Token: token, Seed: 12})
	proxy.Stall()
	proxy.Cut()
	// One sender: batch i is spool record i.
	const batches, victim = 40, 17
	var perBatch [][]string
	acked := make(map[string]bool)
	for range batches {
		req := gen.Batch(100, time.Now())
		resp, err := h.client.Ingest(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ids := acceptedIDs(h.app.StoredEventID, req, resp)
		perBatch = append(perBatch, ids)
		for _, id := range ids {
			acked[id] = true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	h.stopped = true
	h.app.Shutdown(ctx) // fails: the spool could not ship
	cancel()

	segs, _ := filepath.Glob(filepath.Join(dataDir, "spool", "*.seg"))
	recs := spoolRecords(t, segs[0])
	if len(recs) != batches {
		t.Fatalf("%d records in the segment, want %d", len(recs), batches)
	}
	r := recs[victim]
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	at := r.payloadOffset + (r.off+r.size-r.payloadOffset)/2
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	lost := perBatch[victim]
	for _, id := range lost {
		delete(acked, id)
	}

	proxy.Resume()
	h2 := newHarness(t, srv, mutate)
	h2.shipped(t)
	st := h2.app.Spool().Stats()
	m := scrape(t, h2)
	t.Logf("%d events acknowledged, %d in the damaged record; spool %+v", len(acked)+len(lost), len(lost), st)
	if st.CorruptRecords != 1 || m["consentry_spool_corrupt_records_total"] != 1 {
		t.Errorf("corrupt records %d, metric %v; want 1", st.CorruptRecords, m["consentry_spool_corrupt_records_total"])
	}
	if r.events != len(lost) || st.CorruptEvents != uint64(len(lost)) || m["consentry_spool_corrupt_events_total"] != float64(len(lost)) {
		t.Errorf("corrupt events %d, metric %v, record header %d; want the %d events of the damaged batch",
			st.CorruptEvents, m["consentry_spool_corrupt_events_total"], r.events, len(lost))
	}
	requireAckedOnce(t, h2.ch, h2.db, acked)
	// And nothing else: the damaged record's events are not stored.
	final, _ := storedIDs(t, h2.ch, h2.db)
	for _, id := range lost {
		if final[id] != 0 {
			t.Errorf("event %s of the damaged record is stored", id)
			break
		}
	}
	if len(final) != len(acked) {
		t.Errorf("%d events stored, want the %d acknowledged outside the damaged record", len(final), len(acked))
	}
	h2.shutdown()
}
