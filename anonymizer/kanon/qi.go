package kanon

import (
	"strconv"
	"strings"

	"github.com/consentry/consentry/pipeline"
)

// QI is the combination of quasi-identifiers a stored row carries
// (pipeline.QI). The equivalence class of a row is the set of consents
// whose rows carry the same QI for the same app and UTC day.
type QI pipeline.QI

// QIOf returns the quasi-identifiers of c.
func QIOf(c *pipeline.Common) QI { return QI(c.QI) }

// Apply sets c's quasi-identifier columns to q.
func (q QI) Apply(c *pipeline.Common) { c.QI = pipeline.QI(q) }

// Values returns q's values in the order of Columns.
func (q QI) Values() [NumColumns]string {
	return [NumColumns]string{q.AppVersion, q.AppBuild, q.SDKVersion, q.DeviceClass, q.DeviceModel,
		q.OSName, q.OSVersion, q.Locale, q.Country, q.Region}
}

// QIFromValues is the inverse of QI.Values.
func QIFromValues(v [NumColumns]string) QI {
	return QI{AppVersion: v[0], AppBuild: v[1], SDKVersion: v[2], DeviceClass: v[3], DeviceModel: v[4],
		OSName: v[5], OSVersion: v[6], Locale: v[7], Country: v[8], Region: v[9]}
}

// NumColumns is the number of quasi-identifier columns.
const NumColumns = 10

// Columns returns the names of the stored columns that hold the
// quasi-identifiers, in the order of QI.Values.
func Columns() [NumColumns]string {
	return [NumColumns]string{"app_version", "app_build", "sdk_version", "device_class", "device_model",
		"os_name", "os_version", "locale", "country", "region"}
}

// Attribute is a quasi-identifier with its own generalization ladder. Each
// step of a Hierarchy takes one attribute one rung up its ladder.
type Attribute uint8

// The attributes, with their ladders (rung 0 is the exact value):
const (
	// Model is the device model: exact → "other".
	Model Attribute = iota
	// Locale is the UI locale: "de-AT" → "de" → "".
	Locale
	// Location is the country and first-level region: AT / AT-9 → AT /
	// "" → "" / "".
	Location
	// OS is the OS version: "14.0.1" → "14" → "other".
	OS
	// App is the app version, with the build and SDK version that name it
	// as precisely: "4.12.0" (build 4120003, SDK consentry-go/0.1.0) →
	// "4.12" (no build, no SDK version) → "other".
	App

	// NumAttributes is the number of attributes.
	NumAttributes = int(App) + 1
)

var attributeNames = [NumAttributes]string{"model", "locale", "location", "os", "app"}

// attributeRungs is the top rung of each attribute's ladder.
var attributeRungs = [NumAttributes]uint8{Model: 1, Locale: 2, Location: 2, OS: 2, App: 2}

// String returns the attribute's name as hierarchies spell it, e.g. "os".
func (a Attribute) String() string {
	if int(a) < NumAttributes {
		return attributeNames[a]
	}
	return "attribute(" + strconv.Itoa(int(a)) + ")"
}

// Rungs returns the number of rungs above the exact value on a's ladder.
func (a Attribute) Rungs() int { return int(attributeRungs[a]) }

// Placeholders stored for generalized values.
const (
	// Other stands for a device model, OS version or app version
	// generalized away.
	Other = "other"
	// Unknown stands for a device class or OS name at the top level,
	// where every quasi-identifier is unknown; it is also what the
	// anonymizer stores for an unspecified enum.
	Unknown = "unknown"
)

// Generalization says how far each attribute of a row is generalized:
// the rung reached on each ladder, or Top, where every quasi-identifier,
// the device class and OS name included, is unknown.
type Generalization struct {
	// Rungs holds, per Attribute, the rung reached: 0 is the exact value.
	Rungs [NumAttributes]uint8
	// Top is set at the top level: the row says no more than "a user of
	// this app on this day".
	Top bool
}

// Exact reports whether g keeps every value as it is.
func (g Generalization) Exact() bool { return g == Generalization{} }

// Apply returns q generalized as g says. Empty values stay empty (there is
// nothing to generalize), except at the top, where every column holds the
// same constant, so that the top level is one class.
func (g Generalization) Apply(q QI) QI {
	if g.Top {
		return TopQI()
	}
	switch g.Rungs[Model] {
	case 0:
	default:
		q.DeviceModel = otherUnlessEmpty(q.DeviceModel)
	}
	switch g.Rungs[Locale] {
	case 0:
	case 1:
		q.Locale, _, _ = strings.Cut(q.Locale, "-")
	default:
		q.Locale = ""
	}
	switch g.Rungs[Location] {
	case 0:
	case 1:
		q.Region = ""
	default:
		q.Country, q.Region = "", ""
	}
	switch g.Rungs[OS] {
	case 0:
	case 1:
		q.OSVersion = MajorVersion(q.OSVersion)
	default:
		q.OSVersion = otherUnlessEmpty(q.OSVersion)
	}
	switch g.Rungs[App] {
	case 0:
	case 1:
		q.AppVersion, q.AppBuild, q.SDKVersion = MajorMinorVersion(q.AppVersion), "", ""
	default:
		q.AppVersion, q.AppBuild, q.SDKVersion = otherUnlessEmpty(q.AppVersion), "", ""
	}
	return q
}

// TopQI returns the quasi-identifiers every row of the top level carries.
func TopQI() QI {
	return QI{AppVersion: Other, DeviceClass: Unknown, DeviceModel: Other, OSName: Unknown, OSVersion: Other}
}

func otherUnlessEmpty(v string) string {
	if v == "" {
		return ""
	}
	return Other
}

// MajorVersion returns the leading number of a version, e.g. "17" for
// "17.4.1"; a version without a leading digit becomes Other, and "" stays
// "". (SQL: if(v = ”, ”, if(match(v, '^[0-9]'), extract(v, '^[0-9]+'),
// 'other')).)
func MajorVersion(v string) string {
	if v == "" {
		return ""
	}
	end := digits(v, 0)
	if end == 0 {
		return Other
	}
	return v[:end]
}

// MajorMinorVersion returns the first two numbers of a version with its
// "v" prefix, if any, e.g. "4.12" for "4.12.0.3" and "v2.1" for
// "v2.1.0-beta"; a version without a leading digit becomes Other, and ""
// stays "". (SQL: extract(v, '^[vV]?[0-9]+(?:\.[0-9]+)?').)
func MajorMinorVersion(v string) string {
	if v == "" {
		return ""
	}
	start := 0
	if v[0] == 'v' || v[0] == 'V' {
		start = 1
	}
	end := digits(v, start)
	if end == start {
		return Other
	}
	if end+1 < len(v) && v[end] == '.' {
		if e := digits(v, end+1); e > end+1 {
			end = e
		}
	}
	return v[:end]
}

// digits returns the end of the run of ASCII digits in v from start.
func digits(v string, start int) int {
	i := start
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	return i
}
