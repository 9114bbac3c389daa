package privacyprobe

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is a kind of identifier the probe plants.
type Kind string

// The kinds of identifiers planted. Each is generated afresh for every
// plant from the probe's seed.
const (
	// Email is an e-mail address: plain, plus-addressed, on a subdomain,
	// or with non-ASCII letters (IDN).
	Email Kind = "email"
	// Phone is a phone number of one of several countries, in one of its
	// national or international notations, with or without separators.
	Phone Kind = "phone"
	// IPv4 is an IPv4 address, public or private.
	IPv4 Kind = "ipv4"
	// IPv6 is an IPv6 address: full, compressed, IPv4-mapped or with a
	// zone.
	IPv6 Kind = "ipv6"
	// MAC is a hardware address with colons, dashes or dots.
	MAC Kind = "mac"
	// IMEI is a Luhn-valid 15-digit IMEI, grouped or not.
	IMEI Kind = "imei"
	// AdID is an advertising id: an IDFA (upper case) or GAID (lower
	// case) UUID.
	AdID Kind = "advertising_id"
	// AndroidID is a 64-bit ANDROID_ID in 16 hex digits.
	AndroidID Kind = "android_id"
	// HardwareID is a device's, SIM's or install's id in a shape of its
	// own: an iOS UDID, a SIM card's ICCID (bare or in the groups printed
	// on the card), an eSIM's EID, an APNs token as iOS printed it, or
	// the random names of an Android app's install folders.
	HardwareID Kind = "hardware_id"
	// Card is a Luhn-valid payment card number of a real scheme's shape.
	Card Kind = "card"
	// IBAN is an IBAN with valid mod-97 check digits.
	IBAN Kind = "iban"
	// Credential is an HTTP Bearer or Basic credential.
	Credential Kind = "credential"
	// JWT is a JSON Web Token.
	JWT Kind = "jwt"
	// APIKey is an API key of a known shape (AWS, Stripe, GitHub, Google,
	// Slack, SendGrid).
	APIKey Kind = "api_key"
	// UserPath is a file path holding a user name.
	UserPath Kind = "user_path"
	// Coordinates are a precise latitude and longitude, in decimal
	// degrees or degrees, minutes and seconds.
	Coordinates Kind = "coordinates"
	// KeyValue is the value of an identifier-named key (device_id=...,
	// "user_id": ...), in text or as a custom event attribute.
	KeyValue Kind = "id_key_value"
	// StreetAddress is where someone lives: a street address with its
	// house number in one of the orders countries write one, a UK
	// postcode, or a place finer than a region of two words
	// after a place's key (locality: Kolvarin Drestel).
	StreetAddress Kind = "street_address"
	// ConsentToken is the batch's consent token; it is not planted but
	// looked for, as the collector must never log or store it.
	ConsentToken Kind = "consent_token"
)

// Kinds returns every kind the generator plants (ConsentToken is only
// looked for).
func Kinds() []Kind {
	return []Kind{Email, Phone, IPv4, IPv6, MAC, IMEI, AdID, AndroidID, HardwareID, Card, IBAN, Credential, JWT, APIKey, UserPath, Coordinates, KeyValue, StreetAddress}
}

// Identifier is one generated identifier.
type Identifier struct {
	// Kind is its kind.
	Kind Kind
	// Format is its notation within the kind, e.g. "DE mobile, national".
	Format string
	// Value is the identifier as written, e.g. "0151 23456789".
	Value string
	// Needles are further strings that must not appear wherever Value
	// must not: other notations of the same identifier (a MAC with dashes
	// for one with colons, an IPv6 address compressed) and the parts that
	// identify on their own (the user name of a path, the credential
	// after "Bearer").
	Needles []string
	// Digits are digit-only forms (at least 10 digits) looked for with
	// the separators inside numbers ignored: a phone number's national
	// and international digits, a card's or IMEI's digits.
	Digits []string
}

// generator draws identifiers from a seeded source.
type generator struct {
	r *rand.Rand
}

func (g *generator) intn(n int) int { return g.r.IntN(n) }

func (g *generator) pick(s []string) string { return s[g.r.IntN(len(s))] }

// digits returns n random decimal digits.
func (g *generator) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

// digitsFrom returns one digit from set followed by n-1 random digits.
func (g *generator) digitsFrom(set string, n int) string {
	return string(set[g.r.IntN(len(set))]) + g.digits(n-1)
}

const (
	lowerHex   = "0123456789abcdef"
	alnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base64url  = alnum + "-_"
	upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

func (g *generator) chars(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[g.r.IntN(len(set))]
	}
	return string(b)
}

// identifier returns a fresh identifier of kind k.
func (g *generator) identifier(k Kind) Identifier {
	var id Identifier
	switch k {
	case Email:
		id = g.email()
	case Phone:
		id = g.phone()
	case IPv4:
		id = g.ipv4()
	case IPv6:
		id = g.ipv6()
	case MAC:
		id = g.mac()
	case IMEI:
		id = g.imei()
	case AdID:
		id = g.adID()
	case AndroidID:
		id = g.androidIDIdentifier()
	case HardwareID:
		id = g.hardwareID()
	case Card:
		id = g.card()
	case IBAN:
		id = g.iban()
	case Credential:
		id = g.credential()
	case JWT:
		id = g.jwt()
	case APIKey:
		id = g.apiKey()
	case UserPath:
		id = g.userPath()
	case Coordinates:
		id = g.coordinates()
	case KeyValue:
		id = g.keyValue()
	case StreetAddress:
		id = g.streetAddress()
	default:
		panic(fmt.Sprintf("privacyprobe: no generator for kind %q", k))
	}
	id.Kind = k
	return id
}

var (
	firstNames = []string{"jane", "maria", "jorge", "aarav", "yuki", "fatima", "oluwaseun", "ingrid", "mateusz", "siobhan",
		"thanh", "ahmed", "camille", "dmitri", "priya", "kwame", "lucia", "henrik", "mei", "rafael", "anneliese", "tomasz"}
	lastNames = []string{"doe", "kowalczyk", "nguyen", "okafor", "schneider", "fernandes", "yamamoto", "obrien", "haddad",
		"lindqvist", "moreau", "petrov", "sharma", "mensah", "rossi", "johansson", "castillo", "wojcik", "tanaka", "dubois"}
	idnLocals  = []string{"jörg.müller", "zoë.ålund", "françois.gérard", "łukasz.żółć", "ñandú.peña"}
	idnDomains = []string{"bücher.example", "exämple.de", "müller-post.at", "café.example.fr"}
	domains    = []string{"example.com", "mail.example.org", "corp.example.net", "example.co.uk", "post.example.de", "example.io"}
	words      = []string{"notes", "sync", "cloud", "river", "falcon", "orbit", "maple", "cobalt", "harbor", "quartz"}
)

// userName returns a distinctive login name, such as "mkowalczyk841":
// three or more random digits keep the names of one probe apart.
func (g *generator) userName() string {
	f, l := g.pick(firstNames), g.pick(lastNames)
	switch g.intn(5) {
	case 0:
		return f + l + g.digits(3)
	case 1:
		return f[:1] + l + g.digits(3+g.intn(2))
	case 2:
		return f + "." + l + g.digits(3)
	case 3:
		return f + "_" + l + g.digits(3)
	default:
		return f + l[:3] + g.digits(4)
	}
}

func (g *generator) email() Identifier {
	f, l := g.pick(firstNames), g.pick(lastNames)
	var id Identifier
	var local string
	switch g.intn(6) {
	case 0:
		id.Format = "plain"
		local = f + "." + l + g.digits(3)
		id.Value = local + "@" + g.pick(domains)
	case 1:
		id.Format = "plus-addressed"
		local = f + l + g.digits(3)
		id.Value = local + "+" + g.pick(words) + "@" + g.pick(domains)
	case 2:
		id.Format = "subdomain"
		local = f[:1] + "_" + l + g.digits(3)
		id.Value = local + "@" + g.pick(words) + ".eu.mail." + g.pick(domains)
	case 3:
		id.Format = "IDN local part"
		local = g.pick(idnLocals) + g.digits(3)
		id.Value = local + "@" + g.pick(domains)
	case 4:
		// as people write them to fool harvesters
		id.Format = "at and dot in brackets"
		local = f + "." + l + g.digits(3)
		d := g.pick(domains)
		if g.intn(2) == 0 {
			id.Value = local + "(at)" + d
		} else {
			id.Value = local + " [at] " + strings.ReplaceAll(d, ".", " [dot] ")
		}
	default:
		id.Format = "IDN domain"
		local = f + "." + l + g.digits(3)
		id.Value = local + "@" + g.pick(idnDomains)
	}
	id.Needles = []string{local}
	return id
}

// phoneFormat is one way of writing a national number.
type phoneFormat struct {
	country string
	cc      string // country calling code
	trunk   string // national trunk prefix, "0" or ""
	nsn     func(g *generator) string
	// layouts render a number: each gets the country code, trunk prefix
	// and NSN and returns the text.
	layouts []phoneLayout
}

type phoneLayout struct {
	name   string
	render func(cc, trunk, nsn string) string
}

func group(s string, sizes ...int) []string {
	var out []string
	for _, n := range sizes {
		out = append(out, s[:n])
		s = s[n:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

var phoneFormats = []phoneFormat{
	{country: "US", cc: "1", trunk: "", nsn: func(g *generator) string {
		return g.digitsFrom("23456789", 1) + g.digits(2) + g.digitsFrom("23456789", 1) + g.digits(6)
	}, layouts: []phoneLayout{
		{"(xxx) xxx-xxxx", func(_, _, n string) string { return "(" + n[:3] + ") " + n[3:6] + "-" + n[6:] }},
		{"xxx-xxx-xxxx", func(_, _, n string) string { return n[:3] + "-" + n[3:6] + "-" + n[6:] }},
		{"xxx.xxx.xxxx", func(_, _, n string) string { return n[:3] + "." + n[3:6] + "." + n[6:] }},
		{"+1 xxx xxx xxxx", func(_, _, n string) string { return "+1 " + n[:3] + " " + n[3:6] + " " + n[6:] }},
		{"1-xxx-xxx-xxxx", func(_, _, n string) string { return "1-" + n[:3] + "-" + n[3:6] + "-" + n[6:] }},
		{"10 digits", func(_, _, n string) string { return n }},
		{"E.164", func(_, _, n string) string { return "+1" + n }},
	}},
	{country: "UK", cc: "44", trunk: "0", nsn: func(g *generator) string { return "7" + g.digitsFrom("1345789", 1) + g.digits(8) }, layouts: []phoneLayout{
		{"07xxx xxxxxx", func(_, t, n string) string { return t + n[:4] + " " + n[4:] }},
		{"+44 7xxx xxxxxx", func(c, _, n string) string { return "+" + c + " " + n[:4] + " " + n[4:] }},
		{"E.164", func(c, _, n string) string { return "+" + c + n }},
		{"national, no separators", func(_, t, n string) string { return t + n }},
		{"+44 (0)7xxx xxxxxx", func(c, t, n string) string { return "+" + c + " (" + t + ")" + n[:4] + " " + n[4:] }},
	}},
	{country: "UK landline", cc: "44", trunk: "0", nsn: func(g *generator) string { return "20" + g.digitsFrom("378", 1) + g.digits(7) }, layouts: []phoneLayout{
		{"020 xxxx xxxx", func(_, t, n string) string { return t + n[:2] + " " + n[2:6] + " " + n[6:] }},
		{"+44 20 xxxx xxxx", func(c, _, n string) string { return "+" + c + " " + n[:2] + " " + n[2:6] + " " + n[6:] }},
	}},
	{country: "DE", cc: "49", trunk: "0", nsn: func(g *generator) string {
		return "1" + g.pick([]string{"51", "52", "60", "62", "70", "76"}) + g.digits(8)
	}, layouts: []phoneLayout{
		{"0151 xxxxxxxx", func(_, t, n string) string { return t + n[:3] + " " + n[3:] }},
		{"+49 151 xxxxxxxx", func(c, _, n string) string { return "+" + c + " " + n[:3] + " " + n[3:] }},
		{"0151-xxxxxxxx", func(_, t, n string) string { return t + n[:3] + "-" + n[3:] }},
		{"0151/xxxxxxxx", func(_, t, n string) string { return t + n[:3] + "/" + n[3:] }},
		{"E.164", func(c, _, n string) string { return "+" + c + n }},
		{"national, no separators", func(_, t, n string) string { return t + n }},
		{"0049 151 xxxxxxxx", func(c, _, n string) string { return "00" + c + " " + n[:3] + " " + n[3:] }},
	}},
	{country: "DE landline", cc: "49", trunk: "0", nsn: func(g *generator) string { return "30" + g.digitsFrom("123456789", 1) + g.digits(7) }, layouts: []phoneLayout{
		{"(030) xxxxxxxx", func(_, t, n string) string { return "(" + t + n[:2] + ") " + n[2:] }},
		{"030 xxxx xxxx", func(_, t, n string) string { return t + n[:2] + " " + n[2:6] + " " + n[6:] }},
		{"+49 30 xxxxxxxx", func(c, _, n string) string { return "+" + c + " " + n[:2] + " " + n[2:] }},
	}},
	{country: "FR", cc: "33", trunk: "0", nsn: func(g *generator) string { return g.digitsFrom("67", 1) + g.digits(8) }, layouts: []phoneLayout{
		{"06 xx xx xx xx", func(_, t, n string) string { return strings.Join(group(t+n, 2, 2, 2, 2), " ") }},
		{"06.xx.xx.xx.xx", func(_, t, n string) string { return strings.Join(group(t+n, 2, 2, 2, 2), ".") }},
		{"+33 6 xx xx xx xx", func(c, _, n string) string {
			return "+" + c + " " + n[:1] + " " + strings.Join(group(n[1:], 2, 2, 2), " ")
		}},
		{"+33 (0)6 xx xx xx xx", func(c, t, n string) string {
			return "+" + c + " (" + t + ")" + n[:1] + " " + strings.Join(group(n[1:], 2, 2, 2), " ")
		}},
		{"national, no separators", func(_, t, n string) string { return t + n }},
		{"E.164", func(c, _, n string) string { return "+" + c + n }},
	}},
	{country: "IN", cc: "91", trunk: "0", nsn: func(g *generator) string { return g.digitsFrom("6789", 1) + g.digits(9) }, layouts: []phoneLayout{
		{"+91 xxxxx xxxxx", func(c, _, n string) string { return "+" + c + " " + n[:5] + " " + n[5:] }},
		{"0xxxxx xxxxx", func(_, t, n string) string { return t + n[:5] + " " + n[5:] }},
		{"10 digits", func(_, _, n string) string { return n }},
		{"+91-xxxxxxxxxx", func(c, _, n string) string { return "+" + c + "-" + n }},
	}},
	{country: "JP", cc: "81", trunk: "0", nsn: func(g *generator) string { return g.pick([]string{"70", "80", "90"}) + g.digits(8) }, layouts: []phoneLayout{
		{"090-xxxx-xxxx", func(_, t, n string) string { return t + n[:2] + "-" + n[2:6] + "-" + n[6:] }},
		{"+81 90-xxxx-xxxx", func(c, _, n string) string { return "+" + c + " " + n[:2] + "-" + n[2:6] + "-" + n[6:] }},
		{"national, no separators", func(_, t, n string) string { return t + n }},
		{"E.164", func(c, _, n string) string { return "+" + c + n }},
	}},
	{country: "BR", cc: "55", trunk: "0", nsn: func(g *generator) string {
		return g.pick([]string{"11", "21", "31", "41", "51", "61"}) + "9" + g.digits(8)
	}, layouts: []phoneLayout{
		{"(11) 9xxxx-xxxx", func(_, _, n string) string { return "(" + n[:2] + ") " + n[2:7] + "-" + n[7:] }},
		{"+55 11 9xxxx-xxxx", func(c, _, n string) string { return "+" + c + " " + n[:2] + " " + n[2:7] + "-" + n[7:] }},
		{"11 digits", func(_, _, n string) string { return n }},
		{"E.164", func(c, _, n string) string { return "+" + c + n }},
	}},
	{country: "AT", cc: "43", trunk: "0", nsn: func(g *generator) string { return "6" + g.pick([]string{"50", "60", "64", "76", "99"}) + g.digits(7) }, layouts: []phoneLayout{
		{"+43 664 xxxxxxx", func(c, _, n string) string { return "+" + c + " " + n[:3] + " " + n[3:] }},
		{"0664 xxxxxxx", func(_, t, n string) string { return t + n[:3] + " " + n[3:] }},
		{"0664/xxx xx xx", func(_, t, n string) string { return t + n[:3] + "/" + strings.Join(group(n[3:], 3, 2), " ") }},
		{"(+43) 664 xxxxxxx", func(c, _, n string) string { return "(+" + c + ") " + n[:3] + " " + n[3:] }},
	}},
	{country: "ES", cc: "34", trunk: "", nsn: func(g *generator) string { return g.digitsFrom("67", 1) + g.digits(8) }, layouts: []phoneLayout{
		{"+34 6xx xx xx xx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 3, 2, 2), " ") }},
		{"6xx xxx xxx", func(_, _, n string) string { return strings.Join(group(n, 3, 3), " ") }},
	}},
	{country: "JP landline", cc: "81", trunk: "0", nsn: func(g *generator) string { return g.pick([]string{"3", "6"}) + g.digits(8) }, layouts: []phoneLayout{
		{"03-xxxx-xxxx", func(_, t, n string) string { return t + n[:1] + "-" + n[1:5] + "-" + n[5:] }},
	}},
	{country: "KR landline", cc: "82", trunk: "0", nsn: func(g *generator) string { return "2" + g.digitsFrom("23456789", 1) + g.digits(6) }, layouts: []phoneLayout{
		{"02-xxx-xxxx", func(_, t, n string) string { return t + n[:1] + "-" + n[1:4] + "-" + n[4:] }},
	}},
	{country: "RU", cc: "7", trunk: "8", nsn: func(g *generator) string { return "9" + g.digits(9) }, layouts: []phoneLayout{
		{"8 9xx xxx-xx-xx", func(_, t, n string) string { return t + " " + n[:3] + " " + n[3:6] + "-" + n[6:8] + "-" + n[8:] }},
		{"national, no separators", func(_, t, n string) string { return t + n }},
		{"+7 9xx xxx xx xx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 3, 3, 2), " ") }},
	}},
	{country: "IT", cc: "39", trunk: "", nsn: func(g *generator) string { return "3" + g.digits(9) }, layouts: []phoneLayout{
		{"3xx xxx xxxx", func(_, _, n string) string { return strings.Join(group(n, 3, 3), " ") }},
		{"10 digits", func(_, _, n string) string { return n }},
		{"+39 3xx xxx xxxx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 3, 3), " ") }},
	}},
	{country: "PL", cc: "48", trunk: "", nsn: func(g *generator) string { return g.digitsFrom("5678", 1) + g.digits(8) }, layouts: []phoneLayout{
		{"5xx xxx xxx", func(_, _, n string) string { return strings.Join(group(n, 3, 3), " ") }},
		{"+48 5xx xxx xxx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 3, 3), " ") }},
	}},
	{country: "NL", cc: "31", trunk: "0", nsn: func(g *generator) string { return "6" + g.digits(8) }, layouts: []phoneLayout{
		{"06-xxxxxxxx", func(_, t, n string) string { return t + n[:1] + "-" + n[1:] }},
		{"06 xxxxxxxx", func(_, t, n string) string { return t + n[:1] + " " + n[1:] }},
		{"+31 6 xxxxxxxx", func(c, _, n string) string { return "+" + c + " " + n[:1] + " " + n[1:] }},
	}},
	{country: "MX", cc: "52", trunk: "", nsn: func(g *generator) string { return g.pick([]string{"55", "33", "81"}) + g.digits(8) }, layouts: []phoneLayout{
		{"55 xxxx xxxx", func(_, _, n string) string { return strings.Join(group(n, 2, 4), " ") }},
		{"+52 55 xxxx xxxx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 2, 4), " ") }},
	}},
	{country: "CN", cc: "86", trunk: "", nsn: func(g *generator) string { return "1" + g.digitsFrom("3456789", 1) + g.digits(9) }, layouts: []phoneLayout{
		{"138 xxxx xxxx", func(_, _, n string) string { return strings.Join(group(n, 3, 4), " ") }},
		{"138-xxxx-xxxx", func(_, _, n string) string { return strings.Join(group(n, 3, 4), "-") }},
		{"11 digits", func(_, _, n string) string { return n }},
		{"+86 138 xxxx xxxx", func(c, _, n string) string { return "+" + c + " " + strings.Join(group(n, 3, 4), " ") }},
	}},
}

func (g *generator) phone() Identifier {
	f := phoneFormats[g.intn(len(phoneFormats))]
	nsn := f.nsn(g)
	l := f.layouts[g.intn(len(f.layouts))]
	id := Identifier{Format: f.country + " " + l.name, Value: l.render(f.cc, f.trunk, nsn)}
	for _, d := range []string{f.cc + nsn, f.trunk + nsn, nsn} {
		if len(d) >= 10 && !contains(id.Digits, d) {
			id.Digits = append(id.Digits, d)
		}
	}
	return id
}

func (g *generator) ipv4() Identifier {
	var a [4]byte
	format := "public"
	switch g.intn(4) {
	case 0:
		format = "private 10/8"
		a = [4]byte{10, byte(g.intn(256)), byte(g.intn(256)), byte(1 + g.intn(254))}
	case 1:
		format = "private 192.168/16"
		a = [4]byte{192, 168, byte(g.intn(256)), byte(1 + g.intn(254))}
	default:
		for {
			a = [4]byte{byte(1 + g.intn(223)), byte(g.intn(256)), byte(g.intn(256)), byte(1 + g.intn(254))}
			if a[0] != 10 && a[0] != 127 && !(a[0] == 192 && a[1] == 168) {
				break
			}
		}
	}
	return Identifier{Format: format, Value: netip.AddrFrom4(a).String()}
}

func (g *generator) ipv6() Identifier {
	var b [16]byte
	prefixes := [][2]byte{{0x2a, 0x02}, {0x26, 0x00}, {0x24, 0x01}, {0x20, 0x01}, {0x2c, 0x0f}}
	p := prefixes[g.intn(len(prefixes))]
	b[0], b[1] = p[0], p[1]
	for i := 2; i < 16; i++ {
		b[i] = byte(g.intn(256))
	}
	var id Identifier
	switch g.intn(5) {
	case 0:
		id.Format = "full"
		a := netip.AddrFrom16(b)
		id.Value = a.StringExpanded()
		id.Needles = []string{a.String()}
	case 1:
		id.Format = "compressed"
		for i := 6; i < 12; i++ { // a run of zero groups to compress
			b[i] = 0
		}
		a := netip.AddrFrom16(b)
		id.Value = a.String()
		id.Needles = []string{a.StringExpanded()}
	case 2:
		id.Format = "IPv4-mapped"
		v4 := g.ipv4()
		a, _ := netip.ParseAddr(v4.Value)
		id.Value = "::ffff:" + v4.Value
		id.Needles = []string{v4.Value, netip.AddrFrom16(a.As16()).StringExpanded()}
	case 3:
		id.Format = "link-local with zone"
		b[0], b[1] = 0xfe, 0x80
		for i := 2; i < 8; i++ {
			b[i] = 0
		}
		a := netip.AddrFrom16(b)
		id.Value = a.String() + "%" + g.pick([]string{"wlan0", "en0", "eth0", "rmnet_data0"})
		id.Needles = []string{a.String(), a.StringExpanded()}
	default:
		id.Format = "upper case"
		a := netip.AddrFrom16(b)
		id.Value = strings.ToUpper(a.String())
		id.Needles = []string{a.StringExpanded()}
	}
	return id
}

func (g *generator) mac() Identifier {
	b := make([]byte, 6)
	for i := range b {
		b[i] = byte(g.intn(256))
	}
	h := fmt.Sprintf("%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5])
	pairs := group(h, 2, 2, 2, 2, 2)
	colon, dash := strings.Join(pairs, ":"), strings.Join(pairs, "-")
	dot := strings.Join(group(h, 4, 4), ".")
	// as Apple's and BSD's systems print it (an iOS BSSID)
	unpadded := fmt.Sprintf("%x:%x:%x:%x:%x:%x", b[0], b[1], b[2], b[3], b[4], b[5])
	id := Identifier{Needles: []string{colon, dash, dot, h, unpadded}}
	switch g.intn(6) {
	case 5:
		id.Format, id.Value = "colons, no leading zeros", unpadded
	case 0:
		id.Format, id.Value = "colons, upper case", strings.ToUpper(colon)
	case 1:
		id.Format, id.Value = "colons", colon
	case 2:
		id.Format, id.Value = "dashes, upper case", strings.ToUpper(dash)
	case 3:
		id.Format, id.Value = "dots (Cisco)", dot
	default:
		id.Format, id.Value = "dashes", dash
	}
	return id
}

// luhnDigit returns the check digit that makes digits+check Luhn-valid.
func luhnDigit(digits string) byte {
	sum := 0
	double := true // the digit left of the check digit is doubled
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnValid reports whether digits passes the Luhn check.
func luhnValid(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	return luhnDigit(digits[:len(digits)-1]) == digits[len(digits)-1]
}

func (g *generator) imei() Identifier {
	tac := g.pick([]string{"35", "86", "01", "49", "99"}) + g.digits(6)
	body := tac + g.digits(6)
	v := body + string(luhnDigit(body))
	id := Identifier{Digits: []string{v}}
	switch g.intn(3) {
	case 0:
		id.Format, id.Value = "15 digits", v
	case 1:
		id.Format, id.Value = "AA-BBBBBB-CCCCCC-D", strings.Join(group(v, 2, 6, 6), "-")
	default:
		id.Format, id.Value = "AA BBBBBB CCCCCC D", strings.Join(group(v, 2, 6, 6), " ")
	}
	return id
}

// uuid4 returns a random version 4 UUID in lower case.
func (g *generator) uuid4() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.intn(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (g *generator) adID() Identifier {
	u := g.uuid4()
	id := Identifier{Needles: []string{strings.ReplaceAll(u, "-", "")}}
	if g.intn(2) == 0 {
		id.Format, id.Value = "IDFA (upper case)", strings.ToUpper(u)
	} else {
		id.Format, id.Value = "GAID (lower case)", u
	}
	return id
}

// androidIDIdentifier returns an ANDROID_ID; its format says when it has
// a single letter, as one in 200 random ones have.
func (g *generator) androidIDIdentifier() Identifier {
	v := g.androidID()
	format := "16 hex digits"
	if strings.Count(v, "a")+strings.Count(v, "b")+strings.Count(v, "c")+strings.Count(v, "d")+strings.Count(v, "e")+strings.Count(v, "f") == 1 {
		format = "16 hex digits, one letter"
	}
	return Identifier{Format: format, Value: v}
}

func (g *generator) androidID() string {
	for {
		v := g.chars(lowerHex, 16)
		// Mostly digits would read as a number, not as the hex id.
		if strings.ContainsAny(v, "abcdef") && strings.ContainsAny(v, "0123456789") {
			return v
		}
	}
}

// hardwareID returns a device's or SIM's id in one of its own shapes.
func (g *generator) hardwareID() Identifier {
	switch g.intn(6) {
	case 5:
		// the random names Android gives an app's install folders
		outer := g.chars(alnum+"-_", 22) + "=="
		inner := g.chars(alnum+"-_", 22) + "=="
		return Identifier{Format: "Android install folders", Value: "/data/app/~~" + outer + "/com.example.notes-" + inner + "/lib/arm64/libnotes.so",
			Needles: []string{outer[:20], inner[:20]}}
	case 0:
		// chip id and ECID, as Apple writes UDIDs since the iPhone XS
		v := "0000" + g.pick([]string{"8020", "8030", "8101", "8110", "8120", "8140"}) + "-" + strings.ToUpper(g.chars(lowerHex, 16))
		return Identifier{Format: "iOS UDID", Value: v}
	case 1, 2:
		// 89, a country code, an issuer, the account and Luhn's digit
		body := "89" + g.pick([]string{"01", "44", "49", "33", "86"}) + g.digits(14+g.intn(2))
		v := body + string(luhnDigit(body))
		id := Identifier{Digits: []string{v}}
		if g.intn(2) == 0 {
			id.Format, id.Value = "ICCID, bare", v
		} else {
			id.Format, id.Value = "ICCID, as printed on the card", strings.Join(group(v, 4, 4, 4, 4), " ")
		}
		return id
	case 3:
		// an EID's check digits are ISO 7064 mod 97-10's, as an IBAN's
		// without the country code
		body := "89049032" + g.digits(22)
		v := body + ibanCheck("", body)
		return Identifier{Format: "eSIM EID", Value: v, Digits: []string{v}}
	default:
		// NSData's description of a 32-byte device token
		groups := make([]string, 8)
		for i := range groups {
			groups[i] = g.chars(lowerHex, 8)
		}
		return Identifier{Format: "APNs token as NSData printed it", Value: "<" + strings.Join(groups, " ") + ">",
			Needles: groups[:1]}
	}
}

// cardScheme is a card scheme's number shape.
type cardScheme struct {
	name     string
	prefixes []string
	length   int
	groups   []int
}

var cardSchemes = []cardScheme{
	{"Visa", []string{"4"}, 16, []int{4, 4, 4}},
	{"Mastercard", []string{"51", "52", "53", "54", "55", "2221", "2720"}, 16, []int{4, 4, 4}},
	{"Amex", []string{"34", "37"}, 15, []int{4, 6}},
	{"Discover", []string{"6011", "65"}, 16, []int{4, 4, 4}},
	{"JCB", []string{"3528", "3589"}, 16, []int{4, 4, 4}},
	{"Maestro 19", []string{"6759", "5018"}, 19, []int{4, 4, 4, 4}},
}

func (g *generator) card() Identifier {
	s := cardSchemes[g.intn(len(cardSchemes))]
	p := s.prefixes[g.intn(len(s.prefixes))]
	body := p + g.digits(s.length-len(p)-1)
	v := body + string(luhnDigit(body))
	id := Identifier{Digits: []string{v}}
	switch g.intn(3) {
	case 0:
		id.Format, id.Value = s.name+", grouped with spaces", strings.Join(group(v, s.groups...), " ")
	case 1:
		id.Format, id.Value = s.name+", grouped with dashes", strings.Join(group(v, s.groups...), "-")
	default:
		id.Format, id.Value = s.name+", no separators", v
	}
	return id
}

// ibanCountry is a country's BBAN shape as the IBAN registry states it:
// 'n' digits, 'a' upper-case letters, 'c' letters or digits.
type ibanCountry struct {
	code, bban string
}

var ibanCountries = []ibanCountry{
	{"DE", "nnnnnnnnnnnnnnnnnn"},
	{"AT", "nnnnnnnnnnnnnnnn"},
	{"FR", "nnnnnnnnnncccccccccccnn"},
	{"GB", "aaaannnnnnnnnnnnnn"},
	{"NL", "aaaannnnnnnnnn"},
	{"ES", "nnnnnnnnnnnnnnnnnnnn"},
	{"IT", "annnnnnnnnncccccccccccc"},
	{"CH", "nnnnncccccccccccc"},
	{"BE", "nnnnnnnnnnnn"},
	{"PL", "nnnnnnnnnnnnnnnnnnnnnnnn"},
}

// ibanCheck returns the two check digits of an IBAN of country cc and
// bban: 98 minus the mod-97 remainder of bban + cc + "00", letters as
// 10..35.
func ibanCheck(cc, bban string) string {
	rem := 0
	for _, c := range bban + cc + "00" {
		var v int
		if c >= '0' && c <= '9' {
			v = int(c - '0')
			rem = (rem*10 + v) % 97
			continue
		}
		v = int(c-'A') + 10
		rem = (rem*100 + v) % 97
	}
	return fmt.Sprintf("%02d", 98-rem)
}

// ibanValid reports whether iban (compact, upper case) has valid check
// digits.
func ibanValid(iban string) bool {
	if len(iban) < 5 {
		return false
	}
	rem := 0
	for _, c := range iban[4:] + iban[:4] {
		switch {
		case c >= '0' && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			rem = (rem*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func (g *generator) iban() Identifier {
	c := ibanCountries[g.intn(len(ibanCountries))]
	b := make([]byte, len(c.bban))
	for i, t := range []byte(c.bban) {
		switch t {
		case 'n':
			b[i] = byte('0' + g.intn(10))
		case 'a':
			b[i] = byte('A' + g.intn(26))
		default:
			b[i] = upperAlnum[g.intn(len(upperAlnum))]
		}
	}
	compact := c.code + ibanCheck(c.code, string(b)) + string(b)
	var groups []string
	for s := compact; s != ""; {
		n := min(4, len(s))
		groups = append(groups, s[:n])
		s = s[n:]
	}
	grouped := strings.Join(groups, " ")
	dashed := strings.Join(groups, "-")
	// the account number alone identifies too
	id := Identifier{Needles: []string{compact, grouped, dashed, compact[4:]}}
	switch g.intn(4) {
	case 0:
		id.Format, id.Value = c.code+", grouped", grouped
	case 1:
		id.Format, id.Value = c.code+", compact", compact
	case 2:
		id.Format, id.Value = c.code+", grouped with dashes", dashed
	default:
		id.Format, id.Value = c.code+", check digits apart", compact[:4]+" "+compact[4:]
	}
	return id
}

func (g *generator) credential() Identifier {
	if g.intn(4) == 0 {
		// in a URL's user information: scheme://user:password@host
		user, pass := g.userName(), g.chars(alnum, 10+g.intn(6))
		v := g.pick([]string{"https", "postgres", "redis", "amqp"}) + "://" + user + ":" + pass + "@" + g.pick([]string{"db.example.com", "cache", "10.0.0.7"}) + "/v1"
		return Identifier{Format: "URL user information", Value: v, Needles: []string{pass, "//" + user + ":"}}
	}
	if g.intn(3) == 0 {
		userpass := g.userName() + ":" + g.chars(alnum, 10+g.intn(6))
		enc := base64.StdEncoding.EncodeToString([]byte(userpass))
		return Identifier{Format: "Basic", Value: "Basic " + enc, Needles: []string{enc, userpass}}
	}
	tok := g.chars(base64url, 24+g.intn(24))
	return Identifier{Format: "Bearer", Value: "Bearer " + tok, Needles: []string{tok}}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func (g *generator) jwt() Identifier {
	alg := g.pick([]string{"HS256", "RS256", "ES256", "EdDSA"})
	header := b64(`{"alg":"` + alg + `","typ":"JWT"}`)
	payload := b64(fmt.Sprintf(`{"sub":"%s","iat":%d,"scope":"%s"}`, g.userName(), 1700000000+g.intn(1e8), g.pick(words)))
	sig := make([]byte, 32+g.intn(32))
	for i := range sig {
		sig[i] = byte(g.intn(256))
	}
	s := base64.RawURLEncoding.EncodeToString(sig)
	return Identifier{Format: alg, Value: header + "." + payload + "." + s, Needles: []string{payload, s}}
}

func (g *generator) apiKey() Identifier {
	switch g.intn(7) {
	case 0:
		return Identifier{Format: "AWS access key id", Value: g.pick([]string{"AKIA", "ASIA"}) + g.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}
	case 1:
		return Identifier{Format: "Stripe secret key", Value: g.pick([]string{"sk_live_", "rk_live_"}) + g.chars(alnum, 24+g.intn(20))}
	case 2:
		return Identifier{Format: "GitHub token", Value: g.pick([]string{"ghp_", "gho_", "ghs_"}) + g.chars(alnum, 36)}
	case 3:
		return Identifier{Format: "GitHub fine-grained token", Value: "github_pat_" + g.chars(upperAlnum, 22) + "_" + g.chars(alnum, 59)}
	case 4:
		return Identifier{Format: "Google API key", Value: "AIza" + g.chars(base64url, 35)}
	case 5:
		return Identifier{Format: "Slack token", Value: "xoxb-" + g.digits(11) + "-" + g.digits(13) + "-" + g.chars(alnum, 24)}
	default:
		return Identifier{Format: "SendGrid key", Value: "SG." + g.chars(base64url, 22) + "." + g.chars(base64url, 43)}
	}
}

func (g *generator) userPath() Identifier {
	u := g.userName()
	app := g.pick([]string{"com.example.notes", "com.example.sync", "org.example.reader"})
	file := g.pick(words) + g.pick([]string{".db", ".sqlite", ".json", ".plist", ".log"})
	id := Identifier{Needles: []string{u}}
	switch g.intn(11) {
	case 9:
		// a social network's profile, as a failed deep link prints it
		id.Format = "profile URL"
		id.Value = g.pick([]string{"https://www.instagram.com/", "https://x.com/", "https://t.me/", "https://www.linkedin.com/in/"}) + u +
			g.pick([]string{"/", "", "?igsh=MTc4MmM1YmI2Ng=="})
	case 10:
		id.Format, id.Value = "profile URL after @", g.pick([]string{"https://www.tiktok.com/@", "https://medium.com/@"})+u+g.pick([]string{"", "/video/7234", "/my-first-post"})
	case 7:
		// a device's default name, as Bluetooth and AirDrop logs print it
		name := title(g.pick(firstNames))
		if g.intn(2) == 0 {
			name += " " + title(g.pick(lastNames))
		}
		id.Format, id.Value = "device's name", name+"'s "+g.pick([]string{"iPhone", "iPad", "MacBook Pro", "AirPods", "Galaxy S21", "Pixel 8"})
		id.Needles = []string{name + "'s"}
	case 8:
		// a host name made from a device's name
		name := title(g.pick(firstNames))
		id.Format, id.Value = "device's host name", name+"s-"+g.pick([]string{"MacBook-Pro", "iPhone", "iPad", "iMac"})+".local"
		id.Needles = []string{name + "s-"}
	case 0:
		id.Format, id.Value = "macOS /Users", "/Users/"+u+"/Library/Containers/"+app+"/Data/"+file
	case 1:
		id.Format, id.Value = `Windows C:\Users`, `C:\Users\`+u+`\AppData\Local\Notes\`+file
	case 2:
		id.Format, id.Value = "Windows C:/Users", "C:/Users/"+u+"/Documents/"+file
	case 3:
		id.Format, id.Value = "Linux /home", "/home/"+u+"/.config/notes/"+file
	case 4:
		id.Format, id.Value = "Android /data/user", "/data/user/"+strconv.Itoa(g.pick2(0, 10+g.intn(140)))+"/"+app+"/files/accounts/"+u+"/"+file
	case 5:
		id.Format, id.Value = "file URL", "file:///Users/"+u+"/Documents/"+file
	default:
		id.Format, id.Value = "macOS ~ expanded in a crash", "/Users/"+u+"/Library/Developer/Xcode/DerivedData/Notes/"+file
	}
	return id
}

// title returns s with its first letter in upper case.
func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// pick2 returns a or b.
func (g *generator) pick2(a, b int) int {
	if g.intn(2) == 0 {
		return a
	}
	return b
}

// decimalDegrees returns v with n decimals, e.g. "48.20849".
func decimalDegrees(v float64, n int) string { return strconv.FormatFloat(v, 'f', n, 64) }

// hemisphere returns v as unsigned decimal degrees with n decimals and the
// letter of its hemisphere, pos or neg: 33.86785 S.
func hemisphere(v float64, n int, pos, neg string) string {
	if v < 0 {
		return decimalDegrees(-v, n) + " " + neg
	}
	return decimalDegrees(v, n) + " " + pos
}

// dms returns v as degrees, minutes and seconds.
func dms(v float64, pos, neg string) string {
	h := pos
	if v < 0 {
		h, v = neg, -v
	}
	d := int(v)
	m := int((v - float64(d)) * 60)
	s := (v - float64(d) - float64(m)/60) * 3600
	return fmt.Sprintf("%d°%d'%.1f\"%s", d, m, s, h)
}

// coordinate returns a precise latitude and longitude on land-ish
// latitudes, with 4 to 6 decimals.
func (g *generator) coordinate() (lat, lon float64, decimals int) {
	decimals = 4 + g.intn(3)
	lat = -55 + g.r.Float64()*125
	lon = -180 + g.r.Float64()*360
	return lat, lon, decimals
}

func (g *generator) coordinates() Identifier {
	lat, lon, n := g.coordinate()
	la, lo := decimalDegrees(lat, n), decimalDegrees(lon, n)
	id := Identifier{Needles: []string{la, lo}}
	switch g.intn(9) {
	case 7:
		// degrees times ten million, as location records write them
		a, b := strconv.Itoa(int(lat*1e7)), strconv.Itoa(int(lon*1e7))
		id.Format, id.Value = "E7 fields", "latitudeE7="+a+", longitudeE7="+b
		id.Needles = []string{a, b}
	case 6:
		// a CLLocation's description, as iOS apps log it
		sign := func(v string) string {
			if v[0] == '-' {
				return v
			}
			return "+" + v
		}
		id.Format, id.Value = "CLLocation", "<"+sign(la)+","+sign(lo)+"> +/- 5.00m"
	case 0:
		id.Format, id.Value = "decimal, comma and space", la+", "+lo
	case 1:
		id.Format, id.Value = "decimal, comma", la+","+lo
	case 2:
		id.Format, id.Value = "geo URI", "geo:"+la+","+lo
	case 3:
		id.Format, id.Value = "lat/lng parameters", "lat="+la+"&lng="+lo
	case 4:
		id.Format, id.Value = "decimal, space", la+" "+lo
	case 5:
		// as GPS receivers write them: 48.20849 N, 16.37208 E
		a, b := hemisphere(lat, n, "N", "S"), hemisphere(lon, n, "E", "W")
		id.Format, id.Value = "decimal, hemispheres", a+", "+b
		id.Needles = []string{strings.TrimRight(a, " NSEW"), strings.TrimRight(b, " NSEW")}
	default:
		a, b := dms(lat, "N", "S"), dms(lon, "E", "W")
		id.Format, id.Value = "degrees, minutes, seconds", a+" "+b
		id.Needles = []string{a, b}
	}
	return id
}

// identifierKeys name identifiers; the collector drops attributes with
// these keys and scrubs the values after them in text.
var identifierKeys = []string{"user_id", "userId", "device_id", "deviceId", "email", "ip", "ip_address", "idfa", "gaid",
	"android_id", "advertising_id", "account_id", "install_id", "customer_id", "msisdn", "phone", "imei", "serial",
	"mac_address", "push_token", "fcm_token", "session_token", "installationId", "userEmail", "imeisv", "apns", "cpf", "geohash", "appsflyer_id", "distinct_id",
	"crashReporterKey", "oaid", "cell_id", "mCid", "user_pseudo_id", "installation", "AF id", "vin", "city", "locality", "thoroughfare"}

// placeKeys are the identifierKeys that name places (their values are
// names, written after '=', ':' or in JSON, not after a blank alone).
var placeKeys = []string{"city", "locality", "thoroughfare"}

func (g *generator) keyValue() Identifier {
	key := g.pick(identifierKeys)
	var v string
	switch g.intn(3) {
	case 0:
		v = "u-" + g.chars("abcdefghijkmnpqrstuvwxyz23456789", 8+g.intn(4))
	case 1:
		v = g.digitsFrom("123456789", 8+g.intn(3))
	default:
		v = g.chars(alnum, 12+g.intn(8))
	}
	switch g.intn(8) {
	case 0:
		// the account a REST path names, as network errors print it
		path := g.pick([]string{"users", "accounts", "customers", "members", "profiles"}) + "/" + v + g.pick([]string{"/avatar", "", "/orders?page=2"})
		text := g.pick([]string{"GET /v1/", "https://api.example.com/v2/", "PUT /api/"}) + path
		return Identifier{Format: "REST path", Value: text, Needles: []string{v}}
	case 1:
		// a person's object as toString prints it: Kotlin, Java, Swift
		typ := g.pick([]string{"User", "Customer", "AccountEntity", "UserProfile", "MemberDto"})
		text := g.pick([]string{typ + "(id=" + v + ", plan=pro)", typ + "{id=" + v + ", active=true}", typ + `(id: "` + v + `", plan: "pro")`})
		return Identifier{Format: "person's object", Value: text, Needles: []string{v}}
	case 2:
		// an account as identity providers print it: with the
		// provider's prefix after a key and a blank, or an iCloud
		// user's record name
		if g.intn(2) == 0 {
			hex := g.chars("0123456789abcdef", 32)
			text := g.pick([]string{"CKError: recordName: _", "user record _", "gamePlayerID A:_"}) + hex
			return Identifier{Format: "iCloud record name", Value: text, Needles: []string{hex}}
		}
		text := g.pick([]string{"user_id auth0|", "playerID G:", "userId google-oauth2|"}) + v
		return Identifier{Format: "provider's account", Value: text, Needles: []string{v}}
	}
	var text, format string
	n := 4
	if contains(placeKeys, key) {
		n = 3 // a place's value is a name: a blank alone does not make it one
	}
	switch g.intn(n) {
	case 0:
		text, format = key+"="+v, "key=value"
	case 1:
		text, format = key+": "+v, "key: value"
	case 2:
		text, format = `"`+key+`":"`+v+`"`, `"key":"value"`
	default:
		text, format = key+" "+v, "key value"
	}
	return Identifier{Format: format + " (" + key + ")", Value: text, Needles: []string{v}}
}

// placeName returns a distinctive capitalized name of three syllables
// (Kolvarin), for a street or a place: one that no other text holds.
func (g *generator) placeName() string {
	var b strings.Builder
	for i := range 3 {
		c := g.chars("bdfgklmnprstvz", 1)
		if i == 0 {
			c = strings.ToUpper(c)
		}
		b.WriteString(c + g.chars("aeiou", 1) + g.chars("lnrs", 1))
	}
	return b.String()
}

// streetAddress returns a street address, a postcode or a place's two
// words after its key.
func (g *generator) streetAddress() Identifier {
	name := g.placeName()
	num := g.digitsFrom("123456789", 1+g.intn(3))
	switch g.intn(6) {
	case 0:
		t := g.pick([]string{"Street", "St", "Avenue", "Road", "Lane", "Terrace", "Blvd"})
		return Identifier{Format: "number, name, type", Value: num + " " + name + " " + t, Needles: []string{name}}
	case 1:
		return Identifier{Format: "number, French type, name", Value: num + " " + g.pick([]string{"rue de ", "rue ", "boulevard ", "avenue "}) + name, Needles: []string{name}}
	case 2:
		t := g.pick([]string{"Calle", "Via", "Rua", "Avenida", "Carrer de"})
		return Identifier{Format: "type, name, number", Value: t + " " + name + " " + num, Needles: []string{name}}
	case 3:
		t := g.pick([]string{"straße", "strasse", "gasse", "weg", "straat", "gatan", "vej"})
		return Identifier{Format: "name with type, number", Value: name + t + " " + num, Needles: []string{name}}
	case 4:
		// an outward code of four (SW1A, EC2M, BS16): shorter postcodes
		// are shorter than the scanner's needles
		v := g.chars("ABDEGHLMNPRSW", 2) + g.digits(1) + g.pick([]string{g.digits(1), "A"}) + " " +
			g.digits(1) + g.chars("ABDEFHJLNPQRSUWXYZ", 2)
		return Identifier{Format: "UK postcode", Value: v, Needles: []string{v}}
	default:
		other := g.placeName()
		key := g.pick([]string{"locality", "subLocality", "city", "district", "thoroughfare"})
		sep := g.pick([]string{"=", ": "})
		return Identifier{Format: "place key, two words (" + key + ")", Value: key + sep + name + " " + other, Needles: []string{name, other}}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
