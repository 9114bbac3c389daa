package kanon

import (
	"strings"
	"testing"
)

func TestVersions(t *testing.T) {
	for _, tt := range []struct{ in, major, majorMinor string }{
		{"", "", ""},
		{"17.4.1", "17", "17.4"},
		{"14", "14", "14"},
		{"4.12.0.3", "4", "4.12"},
		{"v2.1.0-beta", Other, "v2.1"},
		{"V3", Other, "V3"},
		{"4.", "4", "4"},
		{"4.x", "4", "4"},
		{"beta", Other, Other},
		{"v", Other, Other},
		{"10.0.2.15", "10", "10.0"},
		{"١٤", Other, Other}, // non-ASCII digits are not version numbers
	} {
		if got := MajorVersion(tt.in); got != tt.major {
			t.Errorf("MajorVersion(%q) = %q, want %q", tt.in, got, tt.major)
		}
		if got := MajorMinorVersion(tt.in); got != tt.majorMinor {
			t.Errorf("MajorMinorVersion(%q) = %q, want %q", tt.in, got, tt.majorMinor)
		}
	}
}

// pixel is a realistic exact combination.
var pixel = QI{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone",
	DeviceModel: "Pixel 8", OSName: "android", OSVersion: "14.0.1", Locale: "de-AT", Country: "AT", Region: "AT-9"}

func TestDefaultHierarchyLevels(t *testing.T) {
	h := Hierarchy{}
	if h.String() != DefaultHierarchy || h.Top() != 10 {
		t.Fatalf("zero hierarchy = %q with top %d, want %q with top 10", h.String(), h.Top(), DefaultHierarchy)
	}
	// Each level of the default hierarchy, applied to one device.
	want := []QI{
		pixel,
		{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14.0.1", Locale: "de-AT", Country: "AT", Region: "AT-9"},
		{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14.0.1", Locale: "de", Country: "AT", Region: "AT-9"},
		{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14.0.1", Locale: "de", Country: "AT"},
		{AppVersion: "4.12.0", AppBuild: "4120003", SDKVersion: "consentry-go/0.1.0", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14", Locale: "de", Country: "AT"},
		{AppVersion: "4.12", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14", Locale: "de", Country: "AT"},
		{AppVersion: "4.12", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14", Country: "AT"},
		{AppVersion: "4.12", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "14"},
		{AppVersion: "4.12", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "other"},
		{AppVersion: "other", DeviceClass: "phone", DeviceModel: "other", OSName: "android", OSVersion: "other"},
		TopQI(),
	}
	for level, w := range want {
		if got := h.Generalize(pixel, level); got != w {
			t.Errorf("level %d: %+v\nwant %+v", level, got, w)
		}
	}
	if got := h.Generalize(pixel, 99); got != TopQI() {
		t.Errorf("beyond the top: %+v", got)
	}
	if !h.At(0).Exact() || h.At(1).Exact() || !h.At(h.Top()).Top {
		t.Error("At: exact and top levels misreported")
	}
}

func TestGeneralizeKeepsEmptyValues(t *testing.T) {
	h := Hierarchy{}
	empty := QI{DeviceClass: "unknown", OSName: "unknown"}
	for level := range h.Top() {
		if got := h.Generalize(empty, level); got != empty {
			t.Errorf("level %d: %+v, want the empty values kept", level, got)
		}
	}
	// The top level is one class, whatever the values.
	if h.Generalize(empty, h.Top()) != h.Generalize(pixel, h.Top()) {
		t.Error("top level differs between combinations")
	}
}

func TestParseHierarchy(t *testing.T) {
	for _, tt := range []struct{ in, err string }{
		{"model,locale,location,os,app,locale,location,os,app", ""},
		{" app , model ", ""},
		{"os", ""},
		{"", "unknown attribute"},
		{"model,model", "model appears 2 times"},
		{"os,os,os", "os appears 3 times"},
		{"region", `unknown attribute "region"`},
	} {
		h, err := ParseHierarchy(tt.in)
		if tt.err == "" {
			if err != nil {
				t.Errorf("ParseHierarchy(%q): %v", tt.in, err)
				continue
			}
			if h2, err := ParseHierarchy(h.String()); err != nil || h2.String() != h.String() {
				t.Errorf("ParseHierarchy(%q).String() = %q does not parse back: %v", tt.in, h.String(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseHierarchy(%q) = %v, want an error containing %q", tt.in, err, tt.err)
		}
	}
	// Attributes that never reach their last rung go to unknown at the top
	// only.
	h := MustParseHierarchy("app")
	if h.Top() != 2 || h.Generalize(pixel, 1).Locale != "de-AT" || h.Generalize(pixel, 1).AppVersion != "4.12" {
		t.Errorf("hierarchy app: top %d, level 1 %+v", h.Top(), h.Generalize(pixel, 1))
	}
}

func FuzzParseHierarchy(f *testing.F) {
	f.Add(DefaultHierarchy)
	f.Add("os,,app")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHierarchy(s)
		if err != nil {
			return
		}
		g := h.At(h.Top() - 1)
		for a := range NumAttributes {
			if int(g.Rungs[a]) > Attribute(a).Rungs() {
				t.Fatalf("%q: %s beyond its ladder", s, Attribute(a))
			}
		}
		if h2 := MustParseHierarchy(h.String()); h2.String() != h.String() {
			t.Fatalf("%q does not round-trip", s)
		}
	})
}
