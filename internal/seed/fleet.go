package seed

import (
	"math"

	"github.com/consentry/consentry/internal/fakedata"
)

// The fleet: what devices, places and app versions the sessions come from.
// These tables are constant data; nothing modifies them.

// OS names, as the rows store them.
const (
	osAndroid = fakedata.OSAndroid
	osIOS     = fakedata.OSIOS
)

// RareModel is the device model seen in only one to three sessions of the
// rows Rows makes, below any sensible k of the generalization of rare
// values.
const RareModel = "Xperia 1 V"

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

// appVersion is a release of the app (internal/fakedata's Releases) and
// the day it ships.
type appVersion struct {
	name, build string
	// release returns the day index the version ships on, given the
	// number of days; earlier than 0 means installed from the start.
	release func(days int) int
}

// appVersions are fakedata's releases, 4.11.2 to 4.13.0, with the days
// they ship on.
var appVersions = func() []appVersion {
	release := []func(days int) int{
		func(int) int { return -60 },
		func(int) int { return -3 },
		func(days int) int { return days/2 - 1 },
		func(days int) int { return days - 3 },
	}
	var out []appVersion
	for i, r := range fakedata.Releases() {
		out = append(out, appVersion{r.Version, r.Build, release[i]})
	}
	return out
}()

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

// The devices, places, screens and gestures are internal/fakedata's; the
// rare device and place below are not in it, so each is seen only where
// Rows puts it.
var (
	devices    = fakedata.Devices()
	places     = fakedata.Places()
	screens    = fakedata.Screens()
	gestures   = fakedata.Gestures()
	rareDevice = fakedata.Device{Model: RareModel, Class: "phone", OS: fakedata.OSAndroid}
	rarePlace  = fakedata.Place{City: "Akureyri", Country: RareCountry, Region: RareRegion, Locale: "is-IS"}
)

// hourWeights is how sessions spread over the UTC hours of a day.
var hourWeights = []float64{2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 9, 7, 5, 3}
