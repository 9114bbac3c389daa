// Package fakedata is the one catalogue of made-up but plausible values
// that every generator of fake data draws from: the demo's batches
// (internal/eventgen), the seeded rows of tests and benchmarks
// (internal/seed), and the simulated fleet of SDK devices
// (internal/fleet). Device models, OS versions, places, app releases,
// screens and gestures are listed once, with their shares, so the demo,
// the dashboard's test data and the fleet describe the same app and
// analysts see the same values whichever made the data.
//
// The shares are rough ones of a European-first consumer app. The tables
// are constant: the functions return fresh slices, which callers may
// keep and change.
package fakedata

import "math/rand/v2"

// OS names, as the SDK sends them and the rows store them.
const (
	OSAndroid = "android"
	OSIOS     = "ios"
)

// The note-taking app every generator pretends to be, as its package and
// module names show up in stacks.
const (
	// AppID is the app's id, also the Android package of its code.
	AppID = "com.example.notes"
	// IOSModule is the app's module on iOS.
	IOSModule = "NotesApp"
)

// Weighted is a value with a relative frequency.
type Weighted[T any] struct {
	Weight float64
	Value  T
}

// Of returns v with weight.
func Of[T any](weight float64, v T) Weighted[T] { return Weighted[T]{Weight: weight, Value: v} }

// Pick draws one value of ws, each in proportion to its weight. ws must
// not be empty.
func Pick[T any](r *rand.Rand, ws []Weighted[T]) T {
	return ws[PickIndex(r, len(ws), func(i int) float64 { return ws[i].Weight })].Value
}

// PickIndex draws an index below n, each in proportion to weight(i).
func PickIndex(r *rand.Rand, n int, weight func(i int) float64) int {
	total := 0.0
	for i := range n {
		total += weight(i)
	}
	x := r.Float64() * total
	for i := range n {
		if x -= weight(i); x < 0 {
			return i
		}
	}
	return n - 1
}

// Values returns the values of ws, in order.
func Values[T any](ws []Weighted[T]) []T {
	out := make([]T, len(ws))
	for i, w := range ws {
		out[i] = w.Value
	}
	return out
}

// Device is a device model.
type Device struct {
	// Model is the marketing model name (Android) or the model
	// identifier (iOS).
	Model string
	// Class is "phone" or "tablet".
	Class string
	// OS is OSAndroid or OSIOS.
	OS string
}

// Devices returns the device models and their shares of the devices
// (about 63% Android).
func Devices() []Weighted[Device] {
	android := func(w float64, model string) Weighted[Device] {
		return Weighted[Device]{w, Device{model, "phone", OSAndroid}}
	}
	ios := func(w float64, model, class string) Weighted[Device] {
		return Weighted[Device]{w, Device{model, class, OSIOS}}
	}
	return []Weighted[Device]{
		android(15, "Galaxy A54"), android(11, "Galaxy S23"), android(9, "Pixel 7a"), android(9, "Pixel 8"),
		android(7, "Redmi Note 12"), android(6, "Galaxy A14"), android(4, "OnePlus 11"), android(3, "Fairphone 5"),
		ios(11, "iPhone15,2", "phone"), ios(9, "iPhone14,5", "phone"), ios(7, "iPhone15,4", "phone"),
		ios(5, "iPhone14,7", "phone"), ios(3, "iPhone13,2", "phone"), ios(3, "iPad13,4", "tablet"),
	}
}

// DevicesOf returns the devices of os, with their shares.
func DevicesOf(os string) []Weighted[Device] {
	var out []Weighted[Device]
	for _, d := range Devices() {
		if d.Value.OS == os {
			out = append(out, d)
		}
	}
	return out
}

// OSVersions returns the versions of os (OSAndroid or OSIOS) in use and
// their shares; none for other names.
func OSVersions(os string) []Weighted[string] {
	switch os {
	case OSAndroid:
		return []Weighted[string]{{20, "15"}, {40, "14"}, {25, "13"}, {10, "12"}, {5, "11"}}
	case OSIOS:
		return []Weighted[string]{{35, "18.1"}, {10, "17.5"}, {30, "17.4.1"}, {12, "17.3"}, {13, "16.7.5"}}
	}
	return nil
}

// SDKVersion returns the SDK name and version a device of os reports.
func SDKVersion(os string) string {
	if os == OSIOS {
		return "consentry-ios/1.0.0"
	}
	return "consentry-android/1.0.0"
}

// Place is a city where devices are: its coordinates, the first-level
// region (ISO 3166-2) they lie in, as the collector's offline boundaries
// resolve them, and the locale spoken there.
type Place struct {
	City     string
	Lat, Lon float64
	Country  string // ISO 3166-1 alpha-2
	Region   string // ISO 3166-2
	Locale   string // language and region, e.g. "de-AT"
}

// Places returns the cities devices are in and their shares.
func Places() []Weighted[Place] {
	return []Weighted[Place]{
		{18, Place{"Vienna", 48.2082, 16.3738, "AT", "AT-9", "de-AT"}},
		{6, Place{"Graz", 47.0707, 15.4395, "AT", "AT-6", "de-AT"}},
		{15, Place{"Munich", 48.1372, 11.5756, "DE", "DE-BY", "de-DE"}},
		{12, Place{"Berlin", 52.52, 13.405, "DE", "DE-BE", "de-DE"}},
		{10, Place{"Paris", 48.8566, 2.3522, "FR", "FR-IDF", "fr-FR"}},
		{8, Place{"London", 51.5072, -0.1276, "GB", "GB-ENG", "en-GB"}},
		{6, Place{"Madrid", 40.4168, -3.7038, "ES", "ES-MD", "es-ES"}},
		{6, Place{"New York", 40.7128, -74.006, "US", "US-NY", "en-US"}},
		{5, Place{"San Francisco", 37.7749, -122.4194, "US", "US-CA", "en-US"}},
		{4, Place{"Tokyo", 35.6762, 139.6503, "JP", "JP-13", "ja-JP"}},
		{3, Place{"São Paulo", -23.5505, -46.6333, "BR", "BR-SP", "pt-BR"}},
		{3, Place{"Sydney", -33.8688, 151.2093, "AU", "AU-NSW", "en-AU"}},
	}
}

// Release is a release of the app.
type Release struct {
	Version string // user-visible
	Build   string // build number
}

// Releases returns the app's releases, oldest first. Generators decide
// when each ships and how fast it is adopted.
func Releases() []Release {
	return []Release{
		{"4.11.2", "4110207"},
		{"4.12.0", "4120003"},
		{"4.12.1", "4120104"},
		{"4.13.0", "4130002"},
	}
}

// Screens returns the app's screens and the share of time spent on each.
func Screens() []Weighted[string] {
	return []Weighted[string]{
		{30, "home"}, {28, "editor"}, {15, "search"}, {10, "share"}, {7, "settings"}, {6, "settings.privacy"}, {4, "onboarding/2"},
	}
}

// Gesture is a kind of gesture, as rows store it, with the typical
// duration of one (0 for gestures without a duration).
type Gesture struct {
	Type         string
	PerGestureMs int
}

// Gestures returns the kinds of gestures and their shares.
func Gestures() []Weighted[Gesture] {
	return []Weighted[Gesture]{
		{55, Gesture{"tap", 0}}, {22, Gesture{"scroll", 900}}, {12, Gesture{"swipe", 250}},
		{6, Gesture{"long_press", 800}}, {3, Gesture{"double_tap", 0}}, {2, Gesture{"pinch", 600}},
	}
}
