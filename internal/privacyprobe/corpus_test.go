package privacyprobe

import (
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// TestIdentifiersValid checks that generated identifiers are what they
// claim: Luhn-valid IMEIs and cards, mod-97-valid IBANs, parseable
// addresses, well-shaped ids.
func TestIdentifiersValid(t *testing.T) {
	g := &generator{r: rand.New(rand.NewPCG(7, 7))}
	shapes := map[Kind]*regexp.Regexp{
		AndroidID: regexp.MustCompile(`^[0-9a-f]{16}$`),
		AdID:      regexp.MustCompile(`^(?i)[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`),
		MAC:       regexp.MustCompile(`^(?i)([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$|^([0-9a-f]{1,2}:){5}[0-9a-f]{1,2}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$`),
		Email:     regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+(\(at\)| \[at\] )\S+`),
		JWT:       regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`),
	}
	for range 500 {
		for _, k := range Kinds() {
			id := g.identifier(k)
			if id.Kind != k || id.Value == "" || id.Format == "" {
				t.Fatalf("%s: %+v", k, id)
			}
			if re := shapes[k]; re != nil && !re.MatchString(id.Value) {
				t.Errorf("%s (%s) %q has the wrong shape", k, id.Format, id.Value)
			}
			switch k {
			case IMEI:
				if d := onlyDigits(id.Value); len(d) != 15 || !luhnValid(d) {
					t.Errorf("IMEI %q is not 15 Luhn-valid digits", id.Value)
				}
			case HardwareID:
				d := onlyDigits(id.Value)
				switch {
				case strings.HasPrefix(id.Format, "ICCID"):
					if len(d) < 19 || len(d) > 20 || !strings.HasPrefix(d, "89") || !luhnValid(d) {
						t.Errorf("ICCID %q is not 19 or 20 Luhn-valid digits from 89", id.Value)
					}
				case strings.HasPrefix(id.Format, "eSIM"):
					if len(d) != 32 || mod97Digits(d) != 1 {
						t.Errorf("EID %q is not 32 digits with valid check digits", id.Value)
					}
				case !regexp.MustCompile(`^0000[0-9a-f]{4}-[0-9A-F]{16}$|^<([0-9a-f]{8} ){7}[0-9a-f]{8}>$|^/data/app/~~[\w-]{22}==/com\.example\.notes-[\w-]{22}==/`).MatchString(id.Value):
					t.Errorf("%s %q has the wrong shape", id.Format, id.Value)
				}
			case Card:
				if d := onlyDigits(id.Value); len(d) < 13 || len(d) > 19 || !luhnValid(d) {
					t.Errorf("card %q is not Luhn-valid", id.Value)
				}
			case IBAN:
				c := strings.NewReplacer(" ", "", "-", "").Replace(id.Value)
				if !ibanValid(c) {
					t.Errorf("IBAN %q has invalid check digits", id.Value)
				}
				if len(c) != ibanLengths[c[:2]] {
					t.Errorf("IBAN %q has %d characters; %s's have %d", id.Value, len(c), c[:2], ibanLengths[c[:2]])
				}
			case IPv4:
				if a, err := netip.ParseAddr(id.Value); err != nil || !a.Is4() {
					t.Errorf("IPv4 %q: %v", id.Value, err)
				}
			case IPv6:
				if a, err := netip.ParseAddr(id.Value); err != nil || !a.Is6() {
					t.Errorf("IPv6 %q: %v", id.Value, err)
				}
			case Phone:
				if len(id.Digits) == 0 {
					t.Errorf("phone %q (%s) has no digit form of 10+ digits", id.Value, id.Format)
				}
				for _, d := range id.Digits {
					if v := onlyDigits(id.Value); v[len(v)-8:] != d[len(d)-8:] {
						t.Errorf("phone %q (%s): digit form %s unrelated", id.Value, id.Format, d)
					}
				}
			}
		}
	}
	// Known answers.
	if !luhnValid("490154203237518") || luhnValid("490154203237519") {
		t.Error("luhnValid is wrong")
	}
	if !ibanValid("DE89370400440532013000") || ibanValid("DE88370400440532013000") {
		t.Error("ibanValid is wrong")
	}
	if got := ibanCheck("DE", "370400440532013000"); got != "89" {
		t.Errorf("ibanCheck = %s, want 89", got)
	}
}

// ibanLengths are the lengths of the generator's countries' IBANs, as the
// IBAN registry states them.
var ibanLengths = map[string]int{"DE": 22, "AT": 20, "FR": 27, "GB": 22, "NL": 18, "ES": 24, "IT": 27, "CH": 21, "BE": 16, "PL": 28}

func TestKindCoverage(t *testing.T) {
	g := &generator{r: rand.New(rand.NewPCG(3, 3))}
	formats := map[Kind]map[string]bool{}
	for range 2000 {
		for _, k := range Kinds() {
			id := g.identifier(k)
			if formats[k] == nil {
				formats[k] = map[string]bool{}
			}
			formats[k][id.Format] = true
		}
	}
	// Each kind comes in several notations (phones: many countries).
	for _, k := range Kinds() {
		min := 2
		if k == AndroidID {
			min = 1
		}
		if k == Phone {
			min = 40
		}
		if len(formats[k]) < min {
			t.Errorf("%s: only formats %v", k, formats[k])
		}
	}
}

// mod97Digits returns the decimal number d modulo 97.
func mod97Digits(d string) int {
	r := 0
	for _, c := range d {
		r = (r*10 + int(c-'0')) % 97
	}
	return r
}
