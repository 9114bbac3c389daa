package sdk

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Version is the SDK's version, sent as DeviceContext.sdk_version
// ("consentry-go/" + Version).
const Version = "0.1.0"

// sdkName is the DeviceContext.sdk_version and the user agent.
const sdkName = "consentry-go/" + Version

// Transports.
const (
	// TransportGRPC sends over gRPC to Endpoint "host:port". The default.
	TransportGRPC = "grpc"
	// TransportHTTP sends protojson over HTTPS to Endpoint
	// "https://host:port" (POST /v1/ingest and /v1/consent/...).
	TransportHTTP = "http"
)

// Defaults of Config.
const (
	// DefaultMaxBatchEvents is Config.MaxBatchEvents' default.
	DefaultMaxBatchEvents = 100
	// DefaultMaxBatchBytes is Config.MaxBatchBytes' default: 512 KiB.
	DefaultMaxBatchBytes = 512 << 10
	// DefaultFlushIntervalMs is Config.FlushIntervalMs' default: 30 s.
	DefaultFlushIntervalMs = 30_000
	// DefaultMaxQueueBytes is Config.MaxQueueBytes' default: 10 MiB.
	DefaultMaxQueueBytes = 10 << 20
	// DefaultMaxEventAgeMs is Config.MaxEventAgeMs' default: 13 days, a
	// day within the collector's 14-day window.
	DefaultMaxEventAgeMs = 13 * 24 * 60 * 60 * 1000
	// DefaultMinBackoffMs is Config.MinBackoffMs' default: 1 s.
	DefaultMinBackoffMs = 1_000
	// DefaultMaxBackoffMs is Config.MaxBackoffMs' default: 5 minutes.
	DefaultMaxBackoffMs = 5 * 60 * 1000
	// DefaultRequestTimeoutMs is Config.RequestTimeoutMs' default: 15 s.
	DefaultRequestTimeoutMs = 15_000
	// DefaultFlushTimeoutMs is Config.FlushTimeoutMs' default: 30 s.
	DefaultFlushTimeoutMs = 30_000
	// DefaultMaxBreadcrumbs is Config.MaxBreadcrumbs' default.
	DefaultMaxBreadcrumbs = 20
)

// Bounds the collector imposes, which the SDK respects on the device.
const (
	// maxEventsPerBatch is the collector's default batch size limit.
	maxEventsPerBatch = consentryv1.DefaultMaxBatchEvents
	// maxBatchBytesLimit keeps a batch well under the collector's message
	// limit.
	maxBatchBytesLimit = consentryv1.DefaultMaxMessageBytes * 3 / 4
	// collectorMaxAge is the collector's acceptance window; events must be
	// sent well before it ends.
	collectorMaxAge = consentryv1.DefaultMaxEventAge
	// maxNameBytes bounds short strings (names, versions, screens, frame
	// fields, attribute keys).
	maxNameBytes = consentryv1.DefaultMaxNameBytes
	// maxTextBytes bounds free text (crash messages, attribute values).
	maxTextBytes = consentryv1.DefaultMaxTextBytes
	// maxFrames bounds a stack trace.
	maxFrames = consentryv1.DefaultMaxFrames
	// maxAttributes bounds a custom event's attributes.
	maxAttributes = consentryv1.DefaultMaxAttributes
	// maxBreadcrumbs bounds the breadcrumbs a crash carries.
	maxBreadcrumbs = consentryv1.DefaultMaxBreadcrumbs
	// maxBreadcrumbBytes bounds a breadcrumb's name.
	maxBreadcrumbBytes = consentryv1.DefaultMaxBreadcrumbBytes
	// minQueueBytes is the smallest queue cap.
	minQueueBytes = 16 << 10
)

// Config configures a Client. Only Endpoint, AppID, AppKey, StorageDir and
// ConsentTextVersion are required; zero values take the defaults. Durations
// are in milliseconds so that the struct binds with gomobile.
type Config struct {
	// Endpoint is the collector: "host:port" for gRPC, a base URL
	// "https://host:port" for HTTP. Required.
	Endpoint string
	// Transport is TransportGRPC ("grpc", the default) or TransportHTTP
	// ("http").
	Transport string
	// AppID is the app's id as registered with the collector, e.g.
	// "com.example.notes". Required.
	AppID string
	// AppKey is the app key `consentry apps add` issued. Required. It is
	// sent only with GrantConsent and never logged.
	AppKey string
	// StorageDir is a folder private to the app (Android: Context.filesDir
	// + "/consentry"; iOS: Application Support) that holds the queue and
	// the consent state. Created if missing. Required. Only one Client may
	// use it at a time.
	StorageDir string
	// ConsentTextVersion names the consent text the user saw, e.g.
	// "2026-11" (1 to 64 printable characters). Required: the collector
	// records it in the token.
	ConsentTextVersion string

	// Insecure sends in plaintext (gRPC without TLS, or an http:// base
	// URL). For local development only.
	Insecure bool
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system's.
	CAFile string
	// CACertPEM is PEM certificate authorities to trust instead of the
	// system's, for apps that bundle them; used with CAFile's.
	CACertPEM []byte
	// ServerName overrides the name the server's certificate is checked
	// against.
	ServerName string

	// AppVersion is the app's user-visible version, e.g. "4.12.0".
	AppVersion string
	// AppBuild is the app's build number, e.g. "4120003".
	AppBuild string
	// DeviceClass is "phone", "tablet", "watch", "tv", "desktop", "car" or
	// "other"; empty means unknown.
	DeviceClass string
	// DeviceModel is the marketing model name, e.g. "Pixel 8" or
	// "iPhone15,2". Never a device's name or serial.
	DeviceModel string
	// OSName is "android", "ios", "ipados", "watchos", "tvos", "macos",
	// "windows", "linux", "harmonyos" or "other"; empty means unknown.
	OSName string
	// OSVersion is the system version, e.g. "17.4.1".
	OSVersion string
	// Locale is the UI locale as a BCP 47 tag, e.g. "de-AT".
	Locale string

	// MaxBatchEvents is the most events in one batch (1 to 1000). Default
	// DefaultMaxBatchEvents; a batch is sent as soon as this many are
	// queued.
	MaxBatchEvents int
	// MaxBatchBytes is the most encoded event bytes in one batch (at most
	// 3 MiB). Default DefaultMaxBatchBytes; a batch is sent as soon as
	// about this many bytes are queued.
	MaxBatchBytes int
	// FlushIntervalMs is the longest an event waits in the queue before it
	// is sent in a batch that is not full. Default DefaultFlushIntervalMs.
	FlushIntervalMs int64
	// MaxQueueBytes caps the queue on disk; beyond it the oldest events
	// are dropped (counted as evicted). Default DefaultMaxQueueBytes; at
	// least 16 KiB.
	MaxQueueBytes int64
	// MaxEventAgeMs is how old a queued event may get; older ones are
	// dropped, not sent. Default DefaultMaxEventAgeMs (13 days); at most
	// the collector's 14-day window.
	MaxEventAgeMs int64
	// QueueKey is the 32-byte key that encrypts the queue and the consent
	// state. Mobile apps should generate it once and keep it in the
	// Android Keystore or the iOS Keychain, and pass the same key on every
	// start. If nil, the SDK generates one and keeps it in
	// StorageDir/queue.key and its copy (mode 0600), which protects against other apps
	// but not against someone who can read the app's files.
	QueueKey []byte

	// MinBackoffMs is the first retry delay after a failed send. Default
	// DefaultMinBackoffMs.
	MinBackoffMs int64
	// MaxBackoffMs caps the retry delay (a server's RetryInfo or
	// Retry-After may ask for longer, and is honoured). Default
	// DefaultMaxBackoffMs.
	MaxBackoffMs int64
	// RequestTimeoutMs bounds one request to the collector. Default
	// DefaultRequestTimeoutMs.
	RequestTimeoutMs int64
	// FlushTimeoutMs bounds Flush, and the final flush of Close. Default
	// DefaultFlushTimeoutMs.
	FlushTimeoutMs int64

	// InAppPrefixes is a comma-separated list of module or package
	// prefixes whose stack frames are the app's own code (in_app), e.g.
	// "MyApp" (an iOS app's binary image) or "github.com/example/notes";
	// a prefix starting with '-' excludes frames instead, e.g.
	// "-github.com/example/notes/third_party". They add to the defaults,
	// which need no configuration: the main module's path and package
	// main in Go programs, and the app id's package (com.example.notes)
	// when it is a reverse-DNS name; never the SDK's own frames, the Go
	// runtime's or the standard library's. The longest matching prefix
	// decides.
	InAppPrefixes string
	// MaxBreadcrumbs is how many breadcrumbs (the last screen views,
	// gestures and custom events) the SDK keeps in memory and sends with
	// a crash. Default DefaultMaxBreadcrumbs; at most 100, the
	// collector's limit; -1 keeps none.
	MaxBreadcrumbs int
	// Logger receives the SDK's log messages; nil means none. Messages
	// hold counts, codes and reasons, never payloads, tokens or keys.
	Logger Logger

	// now returns the wall-clock time; nil means time.Now. For tests.
	now func() time.Time
}

// NewConfig returns a Config with the required fields set and the rest at
// their defaults, for callers (such as gomobile bindings) that prefer a
// constructor.
func NewConfig(endpoint, appID, appKey, storageDir, consentTextVersion string) *Config {
	return &Config{
		Endpoint: endpoint, AppID: appID, AppKey: appKey, StorageDir: storageDir,
		ConsentTextVersion: consentTextVersion,
	}
}

// Log levels passed to Logger.Log.
const (
	// LevelDebug: retries, splits, per-batch details.
	LevelDebug = 0
	// LevelInfo: consent changes, purges, resuming a queue.
	LevelInfo = 1
	// LevelWarn: batches refused for good, the consent ended.
	LevelWarn = 2
	// LevelError: the queue or the state could not be written.
	LevelError = 3
)

// Logger receives the SDK's log messages. Implementations must be safe for
// concurrent use and must not block for long. It has a single method so
// that it binds with gomobile (an Android or iOS class can implement it).
type Logger interface {
	// Log logs msg at level (LevelDebug to LevelError).
	Log(level int, msg string)
}

// settings is a validated Config with defaults applied.
type settings struct {
	Config
	flushInterval  time.Duration
	maxEventAge    time.Duration
	minBackoff     time.Duration
	maxBackoff     time.Duration
	requestTimeout time.Duration
	flushTimeout   time.Duration
	inApp          inAppRules
	device         *consentryv1.DeviceContext
}

// validate checks cfg and returns it with defaults applied.
func (cfg *Config) validate() (*settings, error) {
	if cfg == nil {
		return nil, errors.New("no config")
	}
	s := &settings{Config: *cfg}
	c := &s.Config
	c.QueueKey = append([]byte(nil), cfg.QueueKey...)
	c.CACertPEM = append([]byte(nil), cfg.CACertPEM...)
	c.setDefaults()
	errs := append(c.checkConnection(), c.checkIdentity()...)
	devClass, osName, devErrs := c.checkDevice()
	errs = append(errs, devErrs...)
	errs = append(errs, c.checkLimits()...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	s.flushInterval = ms(c.FlushIntervalMs)
	s.maxEventAge = ms(c.MaxEventAgeMs)
	s.minBackoff = ms(c.MinBackoffMs)
	s.maxBackoff = ms(c.MaxBackoffMs)
	s.requestTimeout = ms(c.RequestTimeoutMs)
	s.flushTimeout = ms(c.FlushTimeoutMs)
	s.inApp = newInAppRules(c.AppID, c.InAppPrefixes, mainModulePath())
	if c.now == nil {
		c.now = time.Now
	}
	if c.Logger == nil {
		c.Logger = nopLogger{}
	}
	s.device = &consentryv1.DeviceContext{
		AppId: c.AppID, AppVersion: c.AppVersion, AppBuild: c.AppBuild, SdkVersion: sdkName,
		DeviceClass: consentryv1.DeviceClass(devClass), DeviceModel: c.DeviceModel,
		OsName: consentryv1.OsName(osName), OsVersion: c.OSVersion, Locale: c.Locale,
	}
	return s, nil
}

// setDefaults fills in the zero fields that have defaults.
func (c *Config) setDefaults() {
	c.Transport = cmp.Or(c.Transport, TransportGRPC)
	c.MaxBatchEvents = cmp.Or(c.MaxBatchEvents, DefaultMaxBatchEvents)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, DefaultMaxBatchBytes)
	c.FlushIntervalMs = cmp.Or(c.FlushIntervalMs, DefaultFlushIntervalMs)
	c.MaxQueueBytes = cmp.Or(c.MaxQueueBytes, DefaultMaxQueueBytes)
	c.MaxEventAgeMs = cmp.Or(c.MaxEventAgeMs, DefaultMaxEventAgeMs)
	c.MinBackoffMs = cmp.Or(c.MinBackoffMs, DefaultMinBackoffMs)
	c.MaxBackoffMs = cmp.Or(c.MaxBackoffMs, DefaultMaxBackoffMs)
	c.RequestTimeoutMs = cmp.Or(c.RequestTimeoutMs, DefaultRequestTimeoutMs)
	c.FlushTimeoutMs = cmp.Or(c.FlushTimeoutMs, DefaultFlushTimeoutMs)
	c.MaxBreadcrumbs = cmp.Or(c.MaxBreadcrumbs, DefaultMaxBreadcrumbs)
}

// checkConnection checks the transport and the endpoint.
func (c *Config) checkConnection() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Transport {
	case TransportGRPC, TransportHTTP:
	default:
		bad("transport %q is not %q or %q", c.Transport, TransportGRPC, TransportHTTP)
	}
	if c.Endpoint == "" {
		bad("endpoint is required")
	} else if c.Transport == TransportHTTP {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("endpoint %q is not a base URL https://host[:port]", c.Endpoint)
		case u.Scheme == "http" && !c.Insecure:
			bad("endpoint %q is plaintext HTTP: use https, or set Insecure for local development", c.Endpoint)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("endpoint %q must not have a query, fragment or user", c.Endpoint)
		}
	}
	return errs
}

// checkIdentity checks the app, its key, the storage and the consent
// text version.
func (c *Config) checkIdentity() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !consentryv1.ValidAppID(c.AppID) {
		bad("app id %q is not 1-128 letters, digits, '.', '_' or '-'", c.AppID)
	}
	if c.AppKey == "" {
		bad("app key is required")
	}
	if c.StorageDir == "" {
		bad("storage dir is required")
	}
	if !consentryv1.ValidConsentTextVersion(c.ConsentTextVersion) {
		bad("consent text version must be 1-64 printable characters")
	}
	if n := len(c.QueueKey); n != 0 && n != keySize {
		bad("queue key has %d bytes, want %d", n, keySize)
	}
	return errs
}

// checkDevice checks the device description and returns its enums.
func (c *Config) checkDevice() (devClass, osName int32, errs []error) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range []struct{ name, v string }{
		{"app version", c.AppVersion}, {"app build", c.AppBuild}, {"device model", c.DeviceModel},
		{"OS version", c.OSVersion}, {"locale", c.Locale},
	} {
		if len(f.v) > maxNameBytes {
			bad("%s is %d bytes, at most %d", f.name, len(f.v), maxNameBytes)
		}
	}
	devClass, ok := enumValue(c.DeviceClass, "DEVICE_CLASS_", consentryv1.DeviceClass_value)
	if !ok {
		bad("device class %q is not phone, tablet, watch, tv, desktop, car or other", c.DeviceClass)
	}
	osName, ok = enumValue(c.OSName, "OS_NAME_", consentryv1.OsName_value)
	if !ok {
		bad("OS name %q is not android, ios, ipados, watchos, tvos, macos, windows, linux, harmonyos or other", c.OSName)
	}
	return devClass, osName, errs
}

// checkLimits checks batching, queue, age and timing limits.
func (c *Config) checkLimits() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.MaxBatchEvents < 1 || c.MaxBatchEvents > maxEventsPerBatch:
		bad("max batch events %d is not 1-%d", c.MaxBatchEvents, maxEventsPerBatch)
	case c.MaxBatchBytes < 1024 || c.MaxBatchBytes > maxBatchBytesLimit:
		bad("max batch bytes %d is not 1 KiB-3 MiB", c.MaxBatchBytes)
	}
	if c.MaxQueueBytes < minQueueBytes {
		bad("max queue bytes %d is below %d", c.MaxQueueBytes, minQueueBytes)
	}
	if c.MaxEventAgeMs < 0 || time.Duration(c.MaxEventAgeMs)*time.Millisecond > collectorMaxAge {
		bad("max event age %d ms is not within the collector's 14-day window", c.MaxEventAgeMs)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"flush interval", c.FlushIntervalMs}, {"min backoff", c.MinBackoffMs}, {"max backoff", c.MaxBackoffMs},
		{"request timeout", c.RequestTimeoutMs}, {"flush timeout", c.FlushTimeoutMs},
	} {
		if f.v < 1 || f.v > math.MaxInt64/int64(time.Millisecond) {
			bad("%s %d ms is out of range", f.name, f.v)
		}
	}
	if c.MaxBackoffMs < c.MinBackoffMs {
		bad("max backoff %d ms is below min backoff %d ms", c.MaxBackoffMs, c.MinBackoffMs)
	}
	if c.MaxBreadcrumbs < -1 || c.MaxBreadcrumbs > maxBreadcrumbs {
		bad("max breadcrumbs %d is not -1 (none) to %d", c.MaxBreadcrumbs, maxBreadcrumbs)
	}
	return errs
}

type nopLogger struct{}

func (nopLogger) Log(int, string) {}

// enumValue maps a lower-case name such as "double_tap" to the value of
// prefix+"DOUBLE_TAP". The empty name is 0 (unspecified); an unknown one
// or an explicit "unspecified" is not ok.
func enumValue(name, prefix string, values map[string]int32) (int32, bool) {
	if name == "" {
		return 0, true
	}
	v, ok := values[prefix+strings.ToUpper(strings.TrimSpace(name))]
	if !ok || v == 0 {
		return 0, false
	}
	return v, true
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
