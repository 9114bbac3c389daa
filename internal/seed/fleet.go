package seed

import "math"

// The fleet: what devices, places and app versions the sessions come from.
// These tables are constant data; nothing modifies them.

// OS names, as the rows store them.
const (
	osAndroid = "android"
	osIOS     = "ios"
)

// RareModel is the device model seen in only one to three sessions of the
// rows Rows makes, below any sensible k of the generalization of rare
// values.
const RareModel = "Xperia 10 V"

// RareCountry and RareRegion are the country and region seen in only one
// to three sessions of the rows Rows makes.
const (
	RareCountry = "IS"
	RareRegion  = "IS-1"
)

// Versions returns the app versions of the rows, oldest first: 4.11.2 and
// 4.12.0 are installed when the rows begin and fade, 4.12.1 ships about
// half way through, 4.13.0 three days before the end.
func Versions() []string {
	names := make([]string, len(appVersions))
	for i, v := range appVersions {
		names[i] = v.name
	}
	return names
}

// appVersion is a release of the app.
type appVersion struct {
	name, build string
	// release returns the day index the version ships on, given the
	// number of days; earlier than 0 means installed from the start.
	release func(days int) int
}

var appVersions = []appVersion{
	{"4.11.2", "4110207", func(int) int { return -60 }},
	{"4.12.0", "4120003", func(int) int { return -3 }},
	{"4.12.1", "4120104", func(days int) int { return days/2 - 1 }},
	{"4.13.0", "4130002", func(days int) int { return days - 3 }},
}

// Indexes into appVersions, for the bug catalogue.
const (
	v4112 = iota
	v4120
	v4121
	v4130
)

// versionWeights returns the share of sessions of each app version on day
// d of days: a version is adopted over four days after it ships and fades
// by 30% a day once its successor ships.
func versionWeights(d, days int) []float64 {
	w := make([]float64, len(appVersions))
	for i, v := range appVersions {
		rel := v.release(days)
		if d < rel {
			continue
		}
		w[i] = min(1, float64(d-rel+1)/4)
		if i+1 < len(appVersions) {
			if next := appVersions[i+1].release(days); d >= next {
				w[i] *= math.Pow(0.7, float64(d-next+1))
			}
		}
	}
	return w
}

// weighted is a name with a relative frequency.
type weighted struct {
	name   string
	weight float64
}

// device is a device model with the OS versions it runs.
type device struct {
	model, class, os string
	weight           float64
	osVersions       []weighted
}

var (
	androidVersions = []weighted{{"13", 25}, {"14", 45}, {"15", 30}}
	iosVersions     = []weighted{{"17.4.1", 35}, {"18.1", 65}}

	devices = []device{
		{"Pixel 8", "phone", osAndroid, 18, androidVersions},
		{"Pixel 7a", "phone", osAndroid, 12, androidVersions},
		{"Galaxy S23", "phone", osAndroid, 14, androidVersions},
		{"Galaxy A54", "phone", osAndroid, 16, androidVersions},
		{"iPhone15,2", "phone", osIOS, 18, iosVersions},
		{"iPhone14,5", "phone", osIOS, 14, iosVersions},
		{"iPad13,4", "tablet", osIOS, 8, iosVersions},
	}
	rareDevice = device{RareModel, "phone", osAndroid, 0, []weighted{{"14", 1}}}
)

// place is a coarse location and the locale that goes with it.
type place struct {
	country, region, locale string
	weight                  float64
}

var (
	places = []place{
		{"AT", "AT-9", "de-AT", 30},
		{"DE", "DE-BY", "de-DE", 30},
		{"FR", "FR-IDF", "fr-FR", 14},
		{"US", "US-CA", "en-US", 16},
		{"JP", "JP-13", "ja-JP", 10},
	}
	rarePlace = place{RareCountry, RareRegion, "is-IS", 0}
)

// hourWeights is how sessions spread over the UTC hours of a day.
var hourWeights = []float64{2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 9, 7, 5, 3}

// gestureType is a gesture with the typical duration of one, 0 for
// gestures without a duration.
type gestureType struct {
	name         string
	weight       float64
	perGestureMs int
}

var gestureTypes = []gestureType{
	{"tap", 50, 0},
	{"scroll", 25, 900},
	{"swipe", 15, 250},
	{"long_press", 10, 800},
}

var screens = []weighted{
	{"home", 35},
	{"editor", 30},
	{"search", 15},
	{"settings.privacy", 8},
	{"share", 12},
}
