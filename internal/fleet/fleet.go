// Package fleet simulates a fleet of devices, each running a real SDK
// client (package sdk) against a collector: realistic device models, OS
// versions, locations, session lengths, screens and a gesture mix, custom
// events, start-up diagnostics, and a crash rate with a few recurring
// crash signatures, reported as an Android app's uncaught-exception
// handler would (its thread, in the foreground or in the background). It
// relies on the SDK's defaults for what makes a crash worth triaging:
// in-app frames (the app id's package), the app state, breadcrumbs.
// `consentry fleet` and the benchmarks use it.
//
// Devices can come in cohorts that share every quasi-identifier (model,
// OS version, locale, location, app version), so that a collector's
// k-anonymity publishes their rows at once instead of holding them back
// for up to an hour (docs/privacy.md, section 6).
package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/consentry/consentry/internal/fakedata"
	"github.com/consentry/consentry/sdk"
)

// Config configures a simulation.
type Config struct {
	// Endpoint is the collector: gRPC "host:port", or an http(s):// base
	// URL with Transport sdk.TransportHTTP.
	Endpoint string
	// Transport is sdk.TransportGRPC (default) or sdk.TransportHTTP.
	Transport string
	// AppID and AppKey identify the registered app the devices run.
	AppID, AppKey string
	// Devices is the number of devices; default 20.
	Devices int
	// Sessions is the number of sessions each device runs; default 3.
	Sessions int
	// Concurrency bounds the devices running at once; default 16.
	Concurrency int
	// CrashRate is the probability that a session ends in a crash;
	// default 0.05.
	CrashRate float64
	// Cohort is how many devices share their quasi-identifiers (device
	// model, OS version, locale, location and app version): the devices
	// form Devices/Cohort cohorts, each drawn from the distributions and
	// at least Cohort strong, so a collector whose k is at most Cohort
	// stores their rows at once. Default 1: every device is drawn on its
	// own, spread around its city.
	Cohort int
	// Dir holds the devices' storage folders (one each).
	Dir string
	// Seed makes the fleet reproducible.
	Seed uint64
	// GrantTimeout bounds how long a device retries granting consent
	// while the collector does not know the app yet; default 30s.
	GrantTimeout time.Duration
}

// Result sums up a simulation.
type Result struct {
	// Devices that ran.
	Devices int
	// Recorded, Sent and Dropped events, summed over the devices' SDK
	// statistics.
	Recorded, Sent, Dropped int64
	// Crashes recorded.
	Crashes int
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// weighted is a value with a relative frequency.
type weighted[T any] = fakedata.Weighted[T]

// pick draws one of ws by weight.
func pick[T any](r *rand.Rand, ws []weighted[T]) T { return fakedata.Pick(r, ws) }

// device is one simulated device's fixed traits: its quasi-identifiers
// and its location.
type device struct {
	class, model, os, osVersion, locale string
	appVersion, appBuild                string
	lat, lon                            float64
}

// The devices, places, screens and gestures are internal/fakedata's;
// the fleet runs the three releases before the newest, mostly the latest.
var (
	versions = func() []weighted[fakedata.Release] {
		rel := fakedata.Releases()
		return []weighted[fakedata.Release]{fakedata.Of(60, rel[2]), fakedata.Of(30, rel[1]), fakedata.Of(10, rel[0])}
	}()
	// A few recurring crashes, most frequent first, so crash groups form.
	// Their frames are com.example.notes's, the app id the fleet runs by
	// default: the SDK marks them in-app without configuration.
	crashes = []weighted[crash]{
		fakedata.Of(50, crash{"java.lang.IllegalStateException", "Fragment NoteEditorFragment not attached to a context", "\tat com.example.notes.NoteEditorFragment.save(NoteEditorFragment.kt:142)\n\tat com.example.notes.NoteEditorFragment.onPause(NoteEditorFragment.kt:88)\n\tat androidx.fragment.app.Fragment.performPause(Fragment.java:3174)", "main", false}),
		fakedata.Of(25, crash{"java.lang.NullPointerException", "Attempt to invoke virtual method 'int java.lang.String.length()' on a null object reference", "\tat com.example.notes.sync.SyncWorker.doWork(SyncWorker.kt:57)\n\tat androidx.work.CoroutineWorker$startWork$1.invokeSuspend(CoroutineWorker.kt:68)", "WorkManager-worker-1", true}),
		fakedata.Of(15, crash{"java.lang.OutOfMemoryError", "Failed to allocate a 4194316 byte allocation with 1048576 free bytes", "\tat android.graphics.BitmapFactory.nativeDecodeStream(Native Method)\n\tat com.example.notes.images.ImageCache.decode(ImageCache.kt:211)\n\tat com.example.notes.images.ImageCache.get(ImageCache.kt:97)", "main", false}),
		fakedata.Of(10, crash{"kotlinx.coroutines.JobCancellationException", "Job was cancelled", "\tat com.example.notes.search.SearchViewModel.query(SearchViewModel.kt:33)\n\tat kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)", "DefaultDispatcher-worker-2", false}),
	}
)

// crash is a recurring crash: its exception, stack, the thread it
// happens on, and whether it happens in the background, after the
// session (a sync job), rather than while the user uses the app.
type crash struct {
	typ, msg, stack, thread string
	background              bool
}

// newDevice draws a device's traits; spread places it around its city
// rather than at its centre.
func newDevice(r *rand.Rand, spread bool) device {
	c := pick(r, fakedata.Places())
	d := device{locale: c.Locale, lat: c.Lat, lon: c.Lon}
	if spread {
		d.lat, d.lon = c.Lat+(r.Float64()-0.5)*0.2, c.Lon+(r.Float64()-0.5)*0.2
	}
	v := pick(r, versions)
	d.appVersion, d.appBuild = v.Version, v.Build
	m := pick(r, fakedata.Devices())
	d.class, d.model, d.os, d.osVersion = m.Class, m.Model, m.OS, pick(r, fakedata.OSVersions(m.OS))
	return d
}

func (c Config) withDefaults() Config {
	c.Devices = cmp.Or(c.Devices, 20)
	c.Sessions = cmp.Or(c.Sessions, 3)
	c.Concurrency = cmp.Or(c.Concurrency, 16)
	c.CrashRate = cmp.Or(c.CrashRate, 0.05)
	c.Cohort = cmp.Or(c.Cohort, 1)
	c.GrantTimeout = cmp.Or(c.GrantTimeout, 30*time.Second)
	return c
}

// devices returns the fleet's devices. Device i draws its traits from its
// own random source (the seed and i), or in cohorts from its cohort's,
// i modulo the number of cohorts.
func (c Config) devices() []device {
	out := make([]device, c.Devices)
	cohorts := max(c.Devices/c.Cohort, 1)
	for i := range out {
		if c.Cohort > 1 {
			out[i] = newDevice(rand.New(rand.NewPCG(c.Seed, 1<<32|uint64(i%cohorts))), false)
		} else {
			out[i] = newDevice(rand.New(rand.NewPCG(c.Seed, 1<<32|uint64(i))), true)
		}
	}
	return out
}

// Run simulates the fleet: every device grants consent, runs its
// sessions, and closes its client, which flushes its queue.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Endpoint == "" || cfg.AppID == "" || cfg.AppKey == "" || cfg.Dir == "" {
		return Result{}, errors.New("fleet: endpoint, app id, app key and dir are required")
	}
	if cfg.Devices < 0 || cfg.Cohort < 1 {
		return Result{}, errors.New("fleet: devices must not be negative, cohorts at least 1")
	}
	devices := cfg.devices()
	start := time.Now()
	var (
		mu   sync.Mutex
		res  = Result{Devices: cfg.Devices}
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, cfg.Concurrency)
	)
	for i, d := range devices {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			st, crashes, err := runDevice(ctx, cfg, i, d, r)
			mu.Lock()
			defer mu.Unlock()
			res.Recorded += st.RecordedEvents
			res.Sent += st.SentEvents
			res.Dropped += st.DroppedEvicted + st.DroppedTooOld + st.DroppedPermanentError + st.DroppedServer + st.DroppedPurged
			res.Crashes += crashes
			if err != nil && len(errs) < 5 {
				errs = append(errs, fmt.Errorf("device %d: %w", i, err))
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, errors.Join(errs...)
}

// runDevice runs the sessions of device i, d, and returns its SDK
// statistics. The SDK runs with its defaults, as an app that sets only
// the device description would.
func runDevice(ctx context.Context, cfg Config, i int, d device, r *rand.Rand) (sdk.Stats, int, error) {
	sc := sdk.NewConfig(cfg.Endpoint, cfg.AppID, cfg.AppKey, filepath.Join(cfg.Dir, fmt.Sprintf("device-%04d", i)), "fleet-1")
	sc.Transport = cfg.Transport
	sc.Insecure = true
	sc.AppVersion, sc.AppBuild = d.appVersion, d.appBuild
	sc.DeviceClass, sc.DeviceModel, sc.OSName, sc.OSVersion, sc.Locale = d.class, d.model, d.os, d.osVersion, d.locale
	c, err := sdk.New(sc)
	if err != nil {
		return sdk.Stats{}, 0, err
	}
	crashes := 0
	err = func() error {
		if err := grant(ctx, c, cfg.GrantTimeout); err != nil {
			return err
		}
		if err := c.SetLocation(d.lat, d.lon); err != nil {
			return err
		}
		for range cfg.Sessions {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			crashed, err := session(c, r, cfg.CrashRate)
			if err != nil {
				return err
			}
			if crashed {
				crashes++
			}
		}
		return nil
	}()
	closeErr := c.Close()
	st := c.Stats()
	return st, crashes, errors.Join(err, closeErr)
}

// grant grants consent, retrying while the collector does not know the
// app yet (it reloads its registry every few seconds).
func grant(ctx context.Context, c *sdk.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.GrantConsent(sdk.ScopeAnalytics + "," + sdk.ScopeCrashReports + "," + sdk.ScopeLocation)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// session records one session and reports whether it ended in a crash:
// the user moves through a few screens (each a screen view, a breadcrumb)
// and makes gestures on them; a crash of the foreground ends the session,
// one of the background (a sync job) follows it.
func session(c *sdk.Client, r *rand.Rand, crashRate float64) (bool, error) {
	if err := c.StartSession(); err != nil {
		return false, err
	}
	start := pick(r, []weighted[string]{fakedata.Of(70, "cold"), fakedata.Of(25, "warm"), fakedata.Of(5, "hot")})
	// Start-up time: log-normal around 600 ms for cold starts.
	ms := int64(math.Exp(math.Log(600)+0.4*r.NormFloat64())) / map[string]int64{"cold": 1, "warm": 3, "hot": 8}[start]
	net := pick(r, []weighted[string]{fakedata.Of(70, "wifi"), fakedata.Of(28, "cellular"), fakedata.Of(2, "none")})
	if err := c.RecordDiagnostic("app_start", ms, start, net, 0); err != nil {
		return false, err
	}
	// Screens: a few per session, about 12 gestures in all.
	for range 1 + r.IntN(5) {
		screen := pick(r, fakedata.Screens())
		if err := c.RecordScreenView(screen); err != nil {
			return false, err
		}
		for range r.IntN(6) {
			kind := pick(r, fakedata.Gestures()).Type
			n := 1
			if kind == "scroll" {
				n = 1 + r.IntN(5)
			}
			if err := c.RecordGesture(kind, screen, n, int64(80+r.IntN(400))); err != nil {
				return false, err
			}
		}
	}
	if r.IntN(3) == 0 {
		a := sdk.NewAttributes()
		a.PutString("format", pick(r, []weighted[string]{fakedata.Of(60, "a4"), fakedata.Of(30, "letter"), fakedata.Of(10, "a5")}))
		a.PutInt("pages", int64(1+r.IntN(30)))
		a.PutBool("dark_mode", r.IntN(2) == 0)
		if err := c.RecordCustom("export_pdf", a); err != nil {
			return false, err
		}
	}
	if r.IntN(20) == 0 {
		if err := c.RecordDiagnostic("memory_warning", 0, "", net, int64(200+r.IntN(300))<<20); err != nil {
			return false, err
		}
	}
	var k *crash
	if r.Float64() < crashRate {
		k = new(pick(r, crashes))
	}
	if k != nil && !k.background {
		if err := recordCrash(c, k); err != nil {
			return false, err
		}
	}
	// Session length: log-normal, median about 3 minutes; the fleet does
	// not wait that long, it says how long the session was.
	if err := c.EndSessionAfter(min(int64(math.Exp(math.Log(180_000)+0.9*r.NormFloat64())), 4*3_600_000)); err != nil {
		return false, err
	}
	if k != nil && k.background {
		if err := recordCrash(c, k); err != nil {
			return false, err
		}
	}
	return k != nil, nil
}

// recordCrash reports k as an Android app's uncaught-exception handler
// does: with the thread's name; the SDK adds the app state and the
// breadcrumbs.
func recordCrash(c *sdk.Client, k *crash) error {
	rep := sdk.NewCrashReport(k.typ, k.msg, k.stack)
	rep.Thread = k.thread
	return c.RecordCrashReport(rep)
}
