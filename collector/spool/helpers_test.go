package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/consentry/consentry/pipeline"
)

// TestMain fails the package if a goroutine outlives the tests: every
// spool a test opens must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ---- rows ----

// eventID makes a unique id from a batch and row number.
func eventID(batch, row int) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[0:], uint64(batch))
	binary.BigEndian.PutUint64(id[8:], uint64(row))
	return id
}

func common(batch, row int) pipeline.Common {
	return pipeline.Common{
		AppID:      "app-" + fmt.Sprint(batch%3),
		EventID:    eventID(batch, row),
		EventTime:  time.Date(2026, 3, 1, 12, 0, 0, batch*1000+row, time.UTC),
		SessionKey: uint64(batch)<<32 | uint64(row),
		QI: pipeline.QI{
			AppVersion:  "1.2.3",
			AppBuild:    "42",
			SDKVersion:  "consentry-android/0.9",
			DeviceClass: "phone",
			DeviceModel: "Pixel 8",
			OSName:      "android",
			OSVersion:   "15",
			Locale:      "de-AT",
			Country:     "AT",
			Region:      "AT-9",
		},
	}
}

// makeRows returns n rows of batch spread over the tables, each with a
// unique event id.
func makeRows(batch, n int) *pipeline.Rows {
	r := &pipeline.Rows{}
	for i := range n {
		c := common(batch, i)
		switch i % 5 {
		case 0:
			r.Sessions = append(r.Sessions, pipeline.SessionRow{Common: c, Phase: "start"})
		case 1:
			r.Gestures = append(r.Gestures, pipeline.GestureRow{Common: c, Type: "tap", Screen: "home", Count: 1})
		case 2:
			r.Crashes = append(r.Crashes, pipeline.CrashRow{Common: c, ExceptionType: "NPE", Fingerprint: uint64(i),
				Frames: []pipeline.Frame{{Module: "app", Function: "main", File: "Main.kt", Line: 7, InApp: true}}})
		case 3:
			r.Customs = append(r.Customs, pipeline.CustomRow{Common: c, Name: "purchase",
				StringKeys: []string{"sku"}, StringValues: []string{"x"}, NumberKeys: []string{"n"}, NumberValues: []float64{1.5}})
		case 4:
			r.Diagnostics = append(r.Diagnostics, pipeline.DiagnosticRow{Common: c, Kind: "app_start", DurationMs: 300})
		}
	}
	return r
}

// rowIDs returns the event ids of every row of r, table by table.
func rowIDs(r *pipeline.Rows) [][16]byte {
	var ids [][16]byte
	for _, x := range r.Sessions {
		ids = append(ids, x.EventID)
	}
	for _, x := range r.Gestures {
		ids = append(ids, x.EventID)
	}
	for _, x := range r.Crashes {
		ids = append(ids, x.EventID)
	}
	for _, x := range r.Customs {
		ids = append(ids, x.EventID)
	}
	for _, x := range r.Diagnostics {
		ids = append(ids, x.EventID)
	}
	return ids
}

// cloneRows deep-copies r through the codec (the spool reuses what it
// passes to Insert).
func cloneRows(t testing.TB, r *pipeline.Rows) *pipeline.Rows {
	b := newEncoder().appendRows(nil, r)
	var out pipeline.Rows
	if err := decodeRows(b, &out); err != nil {
		t.Errorf("clone rows: %v", err)
	}
	return &out
}

// randRows returns random Rows covering nil and empty slices, unicode and
// invalid UTF-8, zero and extreme times, and extreme numbers.
func randRows(rng *rand.Rand) *pipeline.Rows {
	r := &pipeline.Rows{}
	n := func() int {
		switch rng.IntN(4) {
		case 0:
			return -1 // nil
		case 1:
			return 0
		default:
			return 1 + rng.IntN(4)
		}
	}
	if k := n(); k >= 0 {
		r.Sessions = make([]pipeline.SessionRow, k)
		for i := range r.Sessions {
			r.Sessions[i] = pipeline.SessionRow{Common: randCommon(rng), Phase: randString(rng), DurationMs: randU64(rng), ForegroundMs: randU64(rng)}
		}
	}
	if k := n(); k >= 0 {
		r.Gestures = make([]pipeline.GestureRow, k)
		for i := range r.Gestures {
			r.Gestures[i] = pipeline.GestureRow{Common: randCommon(rng), Type: randString(rng), Screen: randString(rng),
				Count: uint32(randU64(rng)), DurationMs: uint32(randU64(rng))}
		}
	}
	if k := n(); k >= 0 {
		r.Crashes = make([]pipeline.CrashRow, k)
		for i := range r.Crashes {
			c := pipeline.CrashRow{Common: randCommon(rng), ExceptionType: randString(rng), Fingerprint: randU64(rng),
				Message: randString(rng), Thread: randString(rng), Handled: rng.IntN(2) == 0, AppState: randString(rng)}
			if f := n(); f >= 0 {
				c.Frames = make([]pipeline.Frame, f)
				for j := range c.Frames {
					c.Frames[j] = pipeline.Frame{Module: randString(rng), Function: randString(rng), File: randString(rng),
						Line: uint32(randU64(rng)), InApp: rng.IntN(2) == 0}
				}
			}
			if f := n(); f >= 0 {
				c.Breadcrumbs = make([]pipeline.Breadcrumb, f)
				for j := range c.Breadcrumbs {
					c.Breadcrumbs[j] = pipeline.Breadcrumb{Type: randString(rng), Name: randString(rng), OffsetMs: int64(randU64(rng))}
				}
			}
			r.Crashes[i] = c
		}
	}
	if k := n(); k >= 0 {
		r.Customs = make([]pipeline.CustomRow, k)
		for i := range r.Customs {
			c := pipeline.CustomRow{Common: randCommon(rng), Name: randString(rng),
				StringKeys: randStrings(rng, n()), StringValues: randStrings(rng, n()),
				NumberKeys: randStrings(rng, n()), BoolKeys: randStrings(rng, n())}
			if f := n(); f >= 0 {
				c.NumberValues = make([]float64, f)
				for j := range c.NumberValues {
					c.NumberValues[j] = randFloat(rng)
				}
			}
			if f := n(); f >= 0 {
				c.BoolValues = make([]bool, f)
				for j := range c.BoolValues {
					c.BoolValues[j] = rng.IntN(2) == 0
				}
			}
			r.Customs[i] = c
		}
	}
	if k := n(); k >= 0 {
		r.Diagnostics = make([]pipeline.DiagnosticRow, k)
		for i := range r.Diagnostics {
			r.Diagnostics[i] = pipeline.DiagnosticRow{Common: randCommon(rng), Kind: randString(rng),
				DurationMs: uint32(randU64(rng)), StartType: randString(rng), NetworkType: randString(rng), MemoryBytes: randU64(rng)}
		}
	}
	return r
}

var sampleStrings = []string{"", "a", "phone", "de-AT", "Grüße 👋 日本語", "\x00", "\xff\xfe invalid utf-8",
	strings.Repeat("long ", 100), "AT-9", "1.2.3"}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	return sampleStrings[rng.IntN(len(sampleStrings))]
}

func randStrings(rng *rand.Rand, n int) []string {
	if n < 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = randString(rng)
	}
	return ss
}

func randU64(rng *rand.Rand) uint64 {
	switch rng.IntN(4) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	case 2:
		return math.MaxUint32
	default:
		return rng.Uint64() >> rng.UintN(64)
	}
}

func randFloat(rng *rand.Rand) float64 {
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.MaxFloat64, math.Float64frombits(0x7ff8_0000_dead_beef)}
	if rng.IntN(2) == 0 {
		return specials[rng.IntN(len(specials))]
	}
	return rng.NormFloat64() * 1e6
}

func randTime(rng *rand.Rand) time.Time {
	switch rng.IntN(7) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, 0).UTC()
	case 2:
		return time.Unix(math.MaxInt64, 999_999_999).UTC()
	case 3:
		return time.Unix(math.MinInt64, 0).UTC()
	case 4:
		return time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)
	case 5:
		return time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
	default:
		return time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).UTC()
	}
}

func randCommon(rng *rand.Rand) pipeline.Common {
	var id [16]byte
	for i := range id {
		id[i] = byte(rng.UintN(256))
	}
	return pipeline.Common{
		AppID: randString(rng), EventID: id, EventTime: randTime(rng), SessionKey: randU64(rng),
		QI: pipeline.QI{
			AppVersion: randString(rng), AppBuild: randString(rng), SDKVersion: randString(rng),
			DeviceClass: randString(rng), DeviceModel: randString(rng), OSName: randString(rng),
			OSVersion: randString(rng), Locale: randString(rng), Country: randString(rng),
			Region: randString(rng),
		},
		ConsentKey: randString(rng),
	}
}

// rowsEqual compares a and b exactly, floats by their bits (so NaN equals
// itself and -0 differs from 0).
func rowsEqual(a, b *pipeline.Rows) bool {
	return reflect.DeepEqual(floatBits(a), floatBits(b))
}

func floatBits(r *pipeline.Rows) any {
	type custom struct {
		Row  pipeline.CustomRow
		Bits []uint64
	}
	var cs []custom
	if r.Customs != nil {
		cs = []custom{}
	}
	for _, c := range r.Customs {
		x := custom{Row: c}
		if c.NumberValues != nil {
			x.Bits = []uint64{}
			for _, v := range c.NumberValues {
				x.Bits = append(x.Bits, math.Float64bits(v))
			}
			x.Row.NumberValues = []float64{}
		}
		cs = append(cs, x)
	}
	return []any{r.Sessions, r.Gestures, r.Crashes, cs, r.Diagnostics}
}

// ---- inserter ----

// insertCall is one Insert the fake saw.
type insertCall struct {
	token string
	ids   [][16]byte
	rows  *pipeline.Rows
	// unhurried is whether the insert's context was pipeline.Unhurried.
	unhurried bool
}

// fakeInserter records every insert with its token. It deduplicates by
// token like ClickHouse: a repeated token stores nothing again (and the
// test fails if it carries a row the first insert did not). It can fail,
// block, or run a hook.
type fakeInserter struct {
	t  testing.TB
	mu sync.Mutex
	// fail, while non-nil, is returned by Insert.
	fail error
	// block, while non-nil, makes Insert wait for it to close or ctx to end.
	block chan struct{}
	// hook runs before an insert is stored; call counts from 1. It may
	// return an error (the insert is not stored), or set after to run
	// after it is stored.
	hook  func(call int) (err error, after func())
	calls []insertCall
	// stored counts how often each event id was stored.
	stored map[[16]byte]int
	tokens map[string][][16]byte
	n      int
	// noKeep skips keeping rows (benchmarks).
	noKeep bool
}

func newFake(t testing.TB) *fakeInserter {
	return &fakeInserter{t: t, stored: map[[16]byte]int{}, tokens: map[string][][16]byte{}}
}

func (f *fakeInserter) Insert(ctx context.Context, rows *pipeline.Rows, token string) error {
	f.mu.Lock()
	f.n++
	call := f.n
	block, hook, fail := f.block, f.hook, f.fail
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	var after func()
	if hook != nil {
		var err error
		if err, after = hook(call); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.noKeep {
		f.mu.Unlock()
		return nil
	}
	ids := rowIDs(rows)
	f.calls = append(f.calls, insertCall{token: token, ids: ids, rows: cloneRows(f.t, rows), unhurried: pipeline.IsUnhurried(ctx)})
	if prev, ok := f.tokens[token]; ok {
		// A redo sends the same rows, or fewer when the gate now refuses
		// some of them.
		for _, id := range ids {
			if !slices.Contains(prev, id) {
				f.t.Errorf("token %s repeated with rows it did not have", token)
				break
			}
		}
	} else {
		f.tokens[token] = ids
		for _, id := range ids {
			f.stored[id]++
		}
	}
	f.mu.Unlock()
	if after != nil {
		after()
	}
	return nil
}

// newDownFake returns a fake inserter that fails every insert, as when
// ClickHouse is down, until setFail(nil).
func newDownFake(t testing.TB) *fakeInserter {
	f := newFake(t)
	f.setFail(errors.New("clickhouse down"))
	return f
}

func (f *fakeInserter) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeInserter) snapshot() ([]insertCall, map[[16]byte]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), maps(f.stored)
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkExactlyOnce checks that every id in want was stored exactly once,
// that nothing else but ids in maybe was stored, and that, without
// deduplication, duplicates would only come from inserts with identical
// tokens: inserts with one token carry identical rows, and the rows of
// different tokens are disjoint.
func (f *fakeInserter) checkExactlyOnce(t testing.TB, want, maybe [][16]byte) {
	t.Helper()
	calls, stored := f.snapshot()
	for _, id := range want {
		if stored[id] != 1 {
			t.Errorf("row %x stored %d times, want 1", id, stored[id])
		}
	}
	allowed := map[[16]byte]bool{}
	for _, id := range want {
		allowed[id] = true
	}
	for _, id := range maybe {
		allowed[id] = true
	}
	for id, n := range stored {
		if !allowed[id] {
			t.Errorf("row %x stored %d times, never written", id, n)
		}
		if n > 1 {
			t.Errorf("row %x stored %d times", id, n)
		}
	}
	owner := map[[16]byte]string{}
	for _, c := range calls {
		for _, id := range c.ids {
			if tok, ok := owner[id]; ok && tok != c.token {
				t.Errorf("row %x inserted under tokens %s and %s", id, tok, c.token)
			}
			owner[id] = c.token
		}
	}
}

// ---- file system ----

var errCrashed = errors.New("process crashed (test)")

// testFS wraps the real file system to fail like a full disk (writes of
// files whose name ends in faultSuffix fail with ENOSPC once budget bytes
// were written, syncs fail while failSync) or to simulate a crash: crash
// freezes every mutating operation and truncates each file to what was
// synced, dropping what only the page cache held.
type testFS struct {
	osFS
	mu          sync.Mutex
	faultSuffix string
	budget      int64 // bytes writable before ENOSPC; < 0: unlimited
	failSync    bool
	failCreate  bool // creating a faultSuffix file fails with ENOSPC
	// syncGate, while non-nil, holds syncs of faultSuffix files until it
	// is closed; syncing reports each held sync.
	syncGate chan struct{}
	syncing  chan struct{}
	frozen   bool
	durable  map[string]int64
	locks    []io.Closer
	// volume, when not "", makes the directory a small volume of capacity
	// bytes: the blocks its files use (st_blocks, so punched holes and
	// deleted files give space back) count against it, and a write that
	// would extend a file past what is free fails with ENOSPC and writes
	// nothing. Overwrites inside a file need no space, as on ext4.
	volume   string
	capacity int64
}

// volumeUsed returns the bytes the volume's files occupy. t.mu is held.
func (t *testFS) volumeUsed() int64 {
	ents, err := os.ReadDir(t.volume)
	if err != nil {
		panic(err)
	}
	var used int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		used += fi.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return used
}

// setVolume turns dir into a volume of capacity bytes; capacity < 0 means
// exactly what its files use now (no free byte).
func (t *testFS) setVolume(dir string, capacity int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.volume = dir
	if capacity < 0 {
		capacity = t.volumeUsed()
	}
	t.capacity = capacity
}

// volumeFree returns the free bytes of the volume.
func (t *testFS) volumeFree() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.capacity - t.volumeUsed()
}

func newTestFS() *testFS {
	return &testFS{faultSuffix: segSuffix, budget: -1, durable: map[string]int64{}}
}

func (t *testFS) set(fn func(*testFS)) {
	t.mu.Lock()
	fn(t)
	t.mu.Unlock()
}

func (t *testFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen && flag&(os.O_CREATE|os.O_RDWR|os.O_WRONLY|os.O_TRUNC) != 0 {
		return nil, errCrashed
	}
	if t.failCreate && flag&os.O_CREATE != 0 && strings.HasSuffix(name, t.faultSuffix) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	f, err := t.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if _, ok := t.durable[name]; !ok || flag&os.O_TRUNC != 0 {
		size := int64(0)
		if flag&os.O_CREATE == 0 || flag&os.O_EXCL == 0 {
			size, _ = f.Size()
		}
		if flag&os.O_TRUNC != 0 {
			size = 0
		}
		t.durable[name] = size
	}
	return &testFile{fs: t, name: name, f: f}, nil
}

func (t *testFS) Remove(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	delete(t.durable, name)
	return t.osFS.Remove(name)
}

func (t *testFS) Rename(oldpath, newpath string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	if err := t.osFS.Rename(oldpath, newpath); err != nil {
		return err
	}
	t.durable[newpath] = t.durable[oldpath]
	delete(t.durable, oldpath)
	return nil
}

func (t *testFS) SyncDir(dir string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	return t.osFS.SyncDir(dir)
}

func (t *testFS) Statfs(dir string) (free, total int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.volume != "" && filepath.Clean(dir) == filepath.Clean(t.volume) {
		return max(t.capacity-t.volumeUsed(), 0), t.capacity, nil
	}
	return t.osFS.Statfs(dir)
}

func (t *testFS) Lock(name string) (io.Closer, error) {
	l, err := t.osFS.Lock(name)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.locks = append(t.locks, l)
	t.mu.Unlock()
	return onceCloser{c: l, once: new(sync.Once)}, nil
}

type onceCloser struct {
	c    io.Closer
	once *sync.Once
}

func (o onceCloser) Close() error {
	var err error
	o.once.Do(func() { err = o.c.Close() })
	return err
}

// crash simulates the process dying: from now on nothing reaches the disk,
// every file loses what was not synced, and the directory lock is released.
func (t *testFS) crash() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.frozen = true
	for name, size := range t.durable {
		if err := os.Truncate(name, size); err != nil && !errors.Is(err, fs.ErrNotExist) {
			panic(err)
		}
	}
	for _, l := range t.locks {
		_ = l.Close()
	}
}

type testFile struct {
	fs   *testFS
	name string
	f    file
}

func (f *testFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

func (f *testFile) Punch(off, n int64) error {
	t := f.fs
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	return f.f.Punch(off, n)
}
func (f *testFile) Size() (int64, error) { return f.f.Size() }
func (f *testFile) Close() error         { return f.f.Close() }

func (f *testFile) faulty() bool { return strings.HasSuffix(f.name, f.fs.faultSuffix) }

func (f *testFile) WriteAt(p []byte, off int64) (int, error) {
	t := f.fs
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return 0, errCrashed
	}
	if t.budget >= 0 && f.faulty() && int64(len(p)) > t.budget {
		n, _ := f.f.WriteAt(p[:t.budget], off)
		t.budget = 0
		return n, &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	if t.budget >= 0 && f.faulty() {
		t.budget -= int64(len(p))
	}
	if t.volume != "" && filepath.Dir(f.name) == filepath.Clean(t.volume) {
		size, err := f.f.Size()
		if err != nil {
			return 0, err
		}
		const block = 4096
		blocks := func(n int64) int64 { return (n + block - 1) / block }
		if need := (blocks(off+int64(len(p))) - blocks(size)) * block; need > 0 && t.volumeUsed()+need > t.capacity {
			return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
		}
	}
	return f.f.WriteAt(p, off)
}

func (f *testFile) Sync() error {
	t := f.fs
	t.mu.Lock()
	if gate := t.syncGate; gate != nil && f.faulty() {
		syncing := t.syncing
		t.mu.Unlock()
		syncing <- struct{}{}
		<-gate
		t.mu.Lock()
	}
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	if t.failSync && f.faulty() {
		return &fs.PathError{Op: "sync", Path: f.name, Err: syscall.ENOSPC}
	}
	if err := f.f.Sync(); err != nil {
		return err
	}
	size, err := f.f.Size()
	if err != nil {
		return err
	}
	t.durable[f.name] = size
	return nil
}

func (f *testFile) Truncate(size int64) error {
	t := f.fs
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frozen {
		return errCrashed
	}
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	t.durable[f.name] = min(t.durable[f.name], size)
	return nil
}

// ---- spool helpers ----

func testConfig(t testing.TB, dir string, ins Inserter) Config {
	return Config{
		Dir:      dir,
		Inserter: ins,
		RetryMin: time.Millisecond,
		RetryMax: 5 * time.Millisecond,
		Logger:   zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

func mustOpen(t testing.TB, cfg Config) *Spool {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustClose(t testing.TB, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func waitShipped(t testing.TB, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitShipped(ctx); err != nil {
		t.Fatalf("WaitShipped: %v (stats %+v)", err, s.Stats())
	}
}

// shipAll opens the spool of cfg, waits until it has shipped everything
// and closes it. It returns its stats from before Close and its id.
func shipAll(t testing.TB, cfg Config) (Stats, string) {
	t.Helper()
	s := mustOpen(t, cfg)
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	return st, s.ID()
}

// reopenShipsNothing opens the spool of cfg again with a new fake
// inserter and checks that nothing is pending and nothing is inserted:
// every record was shipped, and the checkpoint passed it, before. It
// returns the reopened spool's stats from before Close and its id.
func reopenShipsNothing(t testing.TB, cfg Config) (Stats, string) {
	t.Helper()
	fake := newFake(t)
	cfg.Inserter = fake
	s := mustOpen(t, cfg)
	if st := s.Stats(); st.PendingRecords != 0 {
		t.Errorf("%d records pending after reopening", st.PendingRecords)
	}
	waitShipped(t, s)
	st := s.Stats()
	mustClose(t, s)
	if calls, _ := fake.snapshot(); len(calls) != 0 {
		t.Errorf("%d inserts after reopening, want 0", len(calls))
	}
	return st, s.ID()
}

// writeBatches writes batches [from, to) of n rows each and returns the
// ids written.
func writeBatches(t testing.TB, s *Spool, from, to, n int) [][16]byte {
	t.Helper()
	var ids [][16]byte
	for b := from; b < to; b++ {
		r := makeRows(b, n)
		if err := s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
			t.Fatalf("Write batch %d: %v", b, err)
		}
		ids = append(ids, rowIDs(r)...)
	}
	return ids
}

// writeConcurrently runs writers goroutines; writer w writes the records
// makeRows(w*1000+i, 1+i%maxRows) for i below each. It returns the ids of
// the rows acknowledged and of all the rows written. A writer stops at
// its first failed Write, a test error unless crashing (nil: never) is
// closed.
func writeConcurrently(t testing.TB, s *Spool, writers, each, maxRows int, crashing <-chan struct{}) (acked, all [][16]byte) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := makeRows(w*1000+i, 1+i%maxRows)
				mu.Lock()
				all = append(all, rowIDs(r)...)
				mu.Unlock()
				if err := s.Write(context.Background(), r, pipeline.Origin{}); err != nil {
					select {
					case <-crashing:
					default:
						t.Errorf("Write: %v", err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, rowIDs(r)...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked, all
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// segHeaderOf returns the header of a segment file.
func segHeaderOf(t testing.TB, path string) segHeader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseSegHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func firstSeqOf(t testing.TB, path string) uint64 { return segHeaderOf(t, path).firstSeq }

// frameOffsets returns the offsets of the records of a segment file.
func frameOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := segHeaderOf(t, path)
	var offs []int64
	if h.version == segV1 {
		for off := int64(segHeaderSizeV1); off+frameHeaderSizeV1 <= int64(len(b)); {
			offs = append(offs, off)
			off += frameHeaderSizeV1 + int64(binary.LittleEndian.Uint32(b[off:]))
		}
		return offs
	}
	for off := int64(segHeaderSizeV2); off+frameHeaderSizeV2 <= int64(len(b)); {
		offs = append(offs, off)
		off += frameHeaderSizeV2 + int64(binary.LittleEndian.Uint32(b[off+4:]))
	}
	return offs
}

// encodeRecord returns a complete v2 record of rows from origin with
// sequence seq after row rows, for a segment with frame key key.
func encodeRecord(key [segKeyBytes]byte, origin pipeline.Origin, rows *pipeline.Rows, seq, row uint64) []byte {
	b := make([]byte, frameHeaderSizeV2)
	b = appendOrigin(b, origin)
	b = newEncoder().appendRows(b, rows)
	sealFrame(b, keyCRC(key), crc32c(b[frameHeaderSizeV2:]), uint32(rows.Len()), seq, row, time.Now().UnixNano())
	return b
}

// readCheckpointFile returns the newest checkpoint in dir.
func readCheckpointFile(t testing.TB, dir string) checkpoint {
	t.Helper()
	f, err := osFS{}.OpenFile(filepath.Join(dir, ckName), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ck, _, err := readCheckpoint(f)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// flipBit inverts bit of the byte at off of the file path.
func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1 << bit
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
