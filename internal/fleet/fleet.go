// Package fleet simulates a fleet of devices, each running a real SDK
// client (package sdk) against a collector: realistic device models, OS
// versions, locations, session lengths, a gesture mix, custom events,
// start-up diagnostics, and a crash rate with a few recurring crash
// signatures. `consentry fleet` and the benchmarks use it.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

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
type weighted[T any] struct {
	w int
	v T
}

func pick[T any](r *rand.Rand, ws []weighted[T]) T {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := r.IntN(total)
	for _, w := range ws {
		if n < w.w {
			return w.v
		}
		n -= w.w
	}
	return ws[len(ws)-1].v
}

// device is one simulated device's fixed traits.
type device struct {
	class, model, os, osVersion, locale string
	lat, lon                            float64
}

type city struct {
	lat, lon float64
	locale   string
}

// The distributions: rough shares of a European-first consumer app.
var (
	androidModels = []weighted[string]{{20, "Galaxy A54"}, {15, "Galaxy S23"}, {12, "Pixel 7a"}, {10, "Pixel 8"}, {10, "Redmi Note 12"}, {8, "Galaxy A14"}, {5, "OnePlus 11"}, {3, "Xperia 10 V"}, {1, "Fairphone 5"}}
	iosModels     = []weighted[string]{{25, "iPhone15,2"}, {20, "iPhone14,5"}, {15, "iPhone15,4"}, {12, "iPhone14,7"}, {8, "iPhone13,2"}, {5, "iPad13,4"}}
	androidOS     = []weighted[string]{{50, "14"}, {30, "13"}, {15, "12"}, {5, "11"}}
	iosOS         = []weighted[string]{{55, "17.4.1"}, {20, "17.3"}, {15, "16.7.5"}, {10, "17.5"}}
	cities        = []weighted[city]{
		{18, city{48.2082, 16.3738, "de-AT"}}, {6, city{47.0707, 15.4395, "de-AT"}}, {15, city{48.1372, 11.5756, "de-DE"}},
		{12, city{52.52, 13.405, "de-DE"}}, {10, city{48.8566, 2.3522, "fr-FR"}}, {8, city{51.5072, -0.1276, "en-GB"}},
		{6, city{40.4168, -3.7038, "es-ES"}}, {6, city{40.7128, -74.006, "en-US"}}, {5, city{37.7749, -122.4194, "en-US"}},
		{4, city{35.6762, 139.6503, "ja-JP"}}, {3, city{-23.5505, -46.6333, "pt-BR"}}, {2, city{-33.8688, 151.2093, "en-AU"}},
	}
	screens  = []weighted[string]{{30, "editor"}, {25, "home"}, {15, "search"}, {10, "settings"}, {10, "share"}, {5, "settings.privacy"}, {5, "onboarding/2"}}
	gestures = []weighted[string]{{65, "tap"}, {20, "scroll"}, {8, "swipe"}, {4, "long_press"}, {2, "double_tap"}, {1, "pinch"}}
	// A few recurring crashes, most frequent first, so crash groups form.
	crashes = []weighted[crash]{
		{50, crash{"java.lang.IllegalStateException", "Fragment NoteEditorFragment not attached to a context", "\tat com.example.notes.NoteEditorFragment.save(NoteEditorFragment.kt:142)\n\tat com.example.notes.NoteEditorFragment.onPause(NoteEditorFragment.kt:88)\n\tat androidx.fragment.app.Fragment.performPause(Fragment.java:3174)"}},
		{25, crash{"java.lang.NullPointerException", "Attempt to invoke virtual method 'int java.lang.String.length()' on a null object reference", "\tat com.example.notes.sync.SyncWorker.doWork(SyncWorker.kt:57)\n\tat androidx.work.CoroutineWorker$startWork$1.invokeSuspend(CoroutineWorker.kt:68)"}},
		{15, crash{"java.lang.OutOfMemoryError", "Failed to allocate a 4194316 byte allocation with 1048576 free bytes", "\tat android.graphics.BitmapFactory.nativeDecodeStream(Native Method)\n\tat com.example.notes.images.ImageCache.decode(ImageCache.kt:211)"}},
		{10, crash{"kotlinx.coroutines.JobCancellationException", "Job was cancelled", "\tat com.example.notes.search.SearchViewModel.query(SearchViewModel.kt:33)"}},
	}
)

type crash struct{ typ, msg, stack string }

func newDevice(r *rand.Rand) device {
	c := pick(r, cities)
	d := device{class: "phone", locale: c.locale,
		// Devices are spread around the city.
		lat: c.lat + (r.Float64()-0.5)*0.2, lon: c.lon + (r.Float64()-0.5)*0.2}
	if r.IntN(100) < 62 {
		d.os, d.model, d.osVersion = "android", pick(r, androidModels), pick(r, androidOS)
	} else {
		d.os, d.model, d.osVersion = "ios", pick(r, iosModels), pick(r, iosOS)
		if d.model == "iPad13,4" {
			d.class = "tablet"
		}
	}
	return d
}

func (c Config) withDefaults() Config {
	if c.Devices == 0 {
		c.Devices = 20
	}
	if c.Sessions == 0 {
		c.Sessions = 3
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.CrashRate == 0 {
		c.CrashRate = 0.05
	}
	if c.GrantTimeout == 0 {
		c.GrantTimeout = 30 * time.Second
	}
	return c
}

// Run simulates the fleet: every device grants consent, runs its
// sessions, and closes its client, which flushes its queue.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Endpoint == "" || cfg.AppID == "" || cfg.AppKey == "" || cfg.Dir == "" {
		return Result{}, errors.New("fleet: endpoint, app id, app key and dir are required")
	}
	start := time.Now()
	var (
		mu   sync.Mutex
		res  = Result{Devices: cfg.Devices}
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, cfg.Concurrency)
	)
	for i := range cfg.Devices {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			st, crashes, err := runDevice(ctx, cfg, i, r)
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

// runDevice runs one device's sessions and returns its SDK statistics.
func runDevice(ctx context.Context, cfg Config, i int, r *rand.Rand) (sdk.Stats, int, error) {
	d := newDevice(r)
	sc := sdk.NewConfig(cfg.Endpoint, cfg.AppID, cfg.AppKey, filepath.Join(cfg.Dir, fmt.Sprintf("device-%04d", i)), "fleet-1")
	sc.Transport = cfg.Transport
	sc.Insecure = true
	sc.AppVersion = pick(r, []weighted[string]{{60, "4.12.1"}, {30, "4.12.0"}, {10, "4.11.2"}})
	sc.AppBuild = "41201"
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

// session records one session and reports whether it ended in a crash.
func session(c *sdk.Client, r *rand.Rand, crashRate float64) (bool, error) {
	if err := c.StartSession(); err != nil {
		return false, err
	}
	start := pick(r, []weighted[string]{{70, "cold"}, {25, "warm"}, {5, "hot"}})
	// Start-up time: log-normal around 600 ms for cold starts.
	ms := int64(math.Exp(math.Log(600)+0.4*r.NormFloat64())) / map[string]int64{"cold": 1, "warm": 3, "hot": 8}[start]
	net := pick(r, []weighted[string]{{70, "wifi"}, {28, "cellular"}, {2, "none"}})
	if err := c.RecordDiagnostic("app_start", ms, start, net, 0); err != nil {
		return false, err
	}
	// Gestures: about 12 per session, on a few screens.
	for range 1 + r.IntN(24) {
		kind := pick(r, gestures)
		n := 1
		if kind == "scroll" {
			n = 1 + r.IntN(5)
		}
		if err := c.RecordGesture(kind, pick(r, screens), n, int64(80+r.IntN(400))); err != nil {
			return false, err
		}
	}
	if r.IntN(3) == 0 {
		a := sdk.NewAttributes()
		a.PutString("format", pick(r, []weighted[string]{{60, "pdf"}, {30, "markdown"}, {10, "html"}}))
		a.PutInt("pages", int64(1+r.IntN(30)))
		a.PutBool("dark_mode", r.IntN(2) == 0)
		if err := c.RecordCustom("export", a); err != nil {
			return false, err
		}
	}
	if r.IntN(20) == 0 {
		if err := c.RecordDiagnostic("memory_warning", 0, "", net, int64(200+r.IntN(300))<<20); err != nil {
			return false, err
		}
	}
	cr := r.Float64() < crashRate
	if cr {
		k := pick(r, crashes)
		if err := c.RecordCrash(k.typ, k.msg, k.stack, false); err != nil {
			return false, err
		}
	}
	// Session length: log-normal, median about 3 minutes; the fleet does
	// not wait that long, it says how long the session was.
	return cr, c.EndSessionAfter(min(int64(math.Exp(math.Log(180_000)+0.9*r.NormFloat64())), 4*3_600_000))
}
