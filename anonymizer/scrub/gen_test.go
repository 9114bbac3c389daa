package scrub

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// planted is an identifier to plant in text. text[at:at+len(secret)] is
// the part that must be covered by findings: the whole text, or for a key,
// a scheme or a path, the value, the credential or the user name.
type planted struct {
	kind   Kind
	text   string
	secret string
	at     int
}

// secretAt returns the offset of p.secret in p.text.
func (p planted) secretAt() int { return p.at }

func whole(k Kind, s string) planted { return planted{k, s, s, 0} }

// part returns an identifier of kind k whose secret is between prefix and
// suffix.
func part(k Kind, prefix, secret, suffix string) planted {
	return planted{k, prefix + secret + suffix, secret, len(prefix)}
}

// gen makes random identifiers of every kind.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) gen { return gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

func (g gen) from(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

const (
	lowerHex = "0123456789abcdef"
	upperHex = "0123456789ABCDEF"
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b64url   = alnum + "-_"
)

// luhnDigit returns the digit that makes body+digit pass the Luhn check.
func luhnDigit(body string) string {
	for d := byte('0'); d <= '9'; d++ {
		if luhn(body + string(d)) {
			return string(d)
		}
	}
	panic("unreachable")
}

// group splits s into groups of the given sizes joined by sep.
func group(s, sep string, sizes ...int) string {
	var parts []string
	for _, n := range sizes {
		if n >= len(s) {
			break
		}
		parts = append(parts, s[:n])
		s = s[n:]
	}
	if s != "" {
		parts = append(parts, s)
	}
	return strings.Join(parts, sep)
}

func (g gen) email() planted {
	local := g.from("abcdefghijklmnopqrstuvwxyz", 1+g.r.IntN(3)) + g.from("abcdefghijklmnopqrstuvwxyz0123456789._+-", g.r.IntN(12)) + g.from("abcdefghijklmnopqrstuvwxyz0123456789", 1)
	domain := g.pick("example.com", "example.org", "example.net", "mail.example.com", "EXAMPLE.COM", "example.co.uk")
	return whole(Email, local+"@"+domain)
}

func (g gen) phone() planted {
	var s string
	switch g.r.IntN(10) {
	case 0:
		s = "+43 6" + g.digits(2) + " " + g.digits(7)
	case 1:
		s = "+1 (" + g.pick("415", "212", "650") + ") 555-" + g.digits(4)
	case 2:
		s = "(" + g.pick("415", "212", "650") + ") 555-" + g.digits(4)
	case 3:
		s = g.pick("415", "212", "650") + g.pick("-", ".", " ") + "555"
		s += s[3:4] + g.digits(4)
	case 4:
		s = "06" + g.digits(2) + g.pick(" ", "/", "-") + g.digits(7)
	case 5:
		s = "0" + g.pick("6", "7") + " " + group(g.digits(8), " ", 2, 2, 2)
	case 6:
		s = "+33" + g.pick("6", "7") + g.digits(8)
	case 7:
		s = "0043 6" + g.digits(2) + " " + g.digits(7)
	case 8:
		s = "030 " + g.digits(8)
	default:
		s = "+44 20 " + g.digits(4) + " " + g.digits(4)
	}
	return whole(Phone, s)
}

func (g gen) ipv4() planted {
	return whole(IP, fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(254), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254)))
}

func (g gen) ipv6() planted {
	var groups []string
	for range 8 {
		groups = append(groups, fmt.Sprintf("%x", g.r.IntN(0x10000)))
	}
	switch g.r.IntN(4) {
	case 0:
		return whole(IP, "2001:db8:"+strings.Join(groups[:6], ":"))
	case 1:
		return whole(IP, "2001:db8:"+groups[0]+"::"+groups[1])
	case 2:
		return whole(IP, "fe80::"+strings.Join(groups[:4], ":"))
	default:
		return whole(IP, fmt.Sprintf("::ffff:192.0.2.%d", g.r.IntN(256)))
	}
}

func (g gen) uuid() planted {
	h := lowerHex
	if g.r.IntN(2) == 0 {
		h = upperHex
	}
	return whole(UUID, group(g.from(h, 32), "-", 8, 4, 4, 4))
}

func (g gen) imei() planted {
	body := g.pick("35", "86", "49", "01", "99") + g.digits(12)
	s := body + luhnDigit(body)
	if g.r.IntN(2) == 0 {
		s = group(s, g.pick(" ", "-"), 2, 6, 6)
	}
	return whole(IMEI, s)
}

func (g gen) mac() planted {
	switch g.r.IntN(3) {
	case 0:
		return whole(MAC, group(g.from(upperHex, 12), ":", 2, 2, 2, 2, 2))
	case 1:
		return whole(MAC, group(g.from(lowerHex, 12), "-", 2, 2, 2, 2, 2))
	default:
		return whole(MAC, group(g.from("0123456789", 1)+g.from(lowerHex, 11), ".", 4, 4))
	}
}

func (g gen) card() planted {
	var body string
	sizes := []int{4, 4, 4}
	switch g.r.IntN(4) {
	case 0:
		body = "4" + g.digits(14)
	case 1:
		body = "5" + g.pick("1", "2", "3", "4", "5") + g.digits(13)
	case 2:
		body = "6011" + g.digits(11)
	default:
		body = "3" + g.pick("4", "7") + g.digits(12)
		sizes = []int{4, 6}
	}
	s := body + luhnDigit(body)
	if g.r.IntN(3) > 0 {
		s = group(s, g.pick(" ", "-"), sizes...)
	}
	return whole(Card, s)
}

func (g gen) iban() planted {
	var country, bban string
	switch g.r.IntN(5) {
	case 0:
		country, bban = "DE", g.digits(18)
	case 1:
		country, bban = "AT", g.digits(16)
	case 2:
		country, bban = "GB", g.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4)+g.digits(14)
	case 3:
		country, bban = "FR", g.digits(20)+g.from(upperNum, 3)
	default:
		country, bban = "NL", g.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4)+g.digits(10)
	}
	check := 98 - mod97(mod97(0, bban), country+"00")
	s := fmt.Sprintf("%s%02d%s", country, check, bban)
	if g.r.IntN(2) == 0 {
		s = group(s, " ", 4, 4, 4, 4, 4, 4, 4)
	}
	return whole(IBAN, s)
}

func (g gen) token() planted {
	cred := g.from(alnum, 8+g.r.IntN(20)) + g.pick("", ".", "-", "_") + g.from(alnum+"._~+/-", 4+g.r.IntN(16)) + g.from(alnum, 1) + g.pick("", "=", "==")
	scheme := g.pick("Bearer", "Basic", "Token", "bearer")
	prefix := g.pick("", "Authorization: ", "authorization=")
	return part(Token, prefix+scheme+" ", cred, "")
}

func (g gen) jwt() planted {
	return whole(JWT, "eyJ"+g.from(b64url, 10+g.r.IntN(30))+".eyJ"+g.from(b64url, 10+g.r.IntN(60))+"."+g.from(b64url, 20+g.r.IntN(40)))
}

// randomSecret returns a string that the generic rule takes for a secret.
func (g gen) randomSecret() string {
	for {
		s := g.from(alnum, 1) + g.from(alnum+g.pick("", "+/", "-_"), 31+g.r.IntN(32))
		if looksSecret(s) {
			return s
		}
	}
}

func (g gen) secret() planted {
	switch g.r.IntN(6) {
	case 0:
		return whole(Secret, g.pick("AKIA", "ASIA")+g.from(upperNum, 16))
	case 1:
		return whole(Secret, g.pick("sk_live_", "sk_test_", "pk_live_", "rk_live_")+g.from(alnum, 24))
	case 2:
		return whole(Secret, "AIza"+g.from(b64url, 35))
	case 3:
		return whole(Secret, g.pick("ghp_", "gho_", "ghs_")+g.from(alnum, 36))
	case 4:
		v := g.from(alnum, 6+g.r.IntN(10))
		return part(Secret, g.pick("password=", "passwd: ", "api_key=", "client_secret=", "access_token=", "sessionid="), v, "")
	default:
		return whole(Secret, g.randomSecret())
	}
}

func (g gen) userPath() planted {
	name := g.from("abcdefghijklmnopqrstuvwxyz", 3+g.r.IntN(6)) + g.pick("", ".doe", "_1", "-x")
	switch g.r.IntN(4) {
	case 0:
		return part(UserPath, "/Users/", name, "/Library/Caches/notes.db")
	case 1:
		return part(UserPath, "/home/", name, "/notes/out")
	case 2:
		return part(UserPath, `C:\Users\`, name, `\AppData\Local\Notes`)
	default:
		return part(UserPath, "c:/users/", name, "/AppData")
	}
}

func (g gen) coordinate() (string, string) {
	frac := func(n int) string {
		for {
			if d := g.digits(n); strings.Trim(d, "0") != "" {
				return d
			}
		}
	}
	lat := fmt.Sprintf("%s%d.%s", g.pick("", "-"), g.r.IntN(90), frac(3+g.r.IntN(4)))
	lon := fmt.Sprintf("%s%d.%s", g.pick("", "-"), g.r.IntN(180), frac(3+g.r.IntN(4)))
	return lat, lon
}

func (g gen) coordinates() planted {
	lat, lon := g.coordinate()
	switch g.r.IntN(5) {
	case 0:
		return whole(Coordinates, lat+", "+lon)
	case 1:
		return whole(Coordinates, lat+","+lon)
	case 2:
		return part(Coordinates, "(", lat+" "+lon, ")")
	case 3:
		return part(Coordinates, "lat=", lat+" lon="+lon, "")
	default:
		return part(Coordinates, "geo:", lat+","+lon, "")
	}
}

func (g gen) keyValue() planted {
	v := g.pick(g.digits(4+g.r.IntN(6)), g.from(lowerHex, 16), "u-"+g.digits(6), g.from(upperNum, 10))
	switch g.r.IntN(4) {
	case 0:
		return part(KeyValue, g.pick("user_id", "userId", "device_id", "install_id", "account", "serial")+"=", v, "")
	case 1:
		return part(KeyValue, `"`+g.pick("deviceId", "user_id", "idfa", "androidId")+`":"`, v, `"`)
	case 2:
		return part(KeyValue, g.pick("androidId", "user_id", "customer_id")+": ", v, "")
	default:
		return part(KeyValue, "User ID: ", v, "")
	}
}

// any returns a random identifier of kind k.
func (g gen) any(k Kind) planted {
	switch k {
	case Email:
		return g.email()
	case Phone:
		return g.phone()
	case IP:
		if g.r.IntN(2) == 0 {
			return g.ipv4()
		}
		return g.ipv6()
	case UUID:
		return g.uuid()
	case IMEI:
		return g.imei()
	case MAC:
		return g.mac()
	case Card:
		return g.card()
	case IBAN:
		return g.iban()
	case Token:
		return g.token()
	case JWT:
		return g.jwt()
	case Secret:
		return g.secret()
	case UserPath:
		return g.userPath()
	case Coordinates:
		return g.coordinates()
	case DeviceID:
		return g.deviceID()
	case Address:
		return g.address()
	default:
		return g.keyValue()
	}
}

// address returns a random street address in one of the orders that
// address.go reads, a UK or Canadian postcode, a US ZIP code after its
// state's code, or a postcode after a street address.
func (g gen) address() planted {
	name := func() string {
		return string(rune('A'+g.r.IntN(26))) + g.from("abcdefghijklmnoprstuvwxyz", 2+g.r.IntN(7))
	}
	num := g.digits(1 + g.r.IntN(3))
	if num[0] == '0' {
		num = "1" + num[1:]
	}
	switch g.r.IntN(8) {
	case 6:
		zip := g.digits(5) + g.pick("", "-"+g.digits(4))
		return part(Address, name()+", "+g.pick("CA", "NY", "TX", "MA", "WA")+" ", zip, "")
	case 7:
		return part(Address, name()+"stra\u00dfe "+num+", ", string(rune('1'+g.r.IntN(9)))+g.digits(4), " "+name())
	case 0:
		return whole(Address, num+g.pick("", "B", "a")+" "+name()+g.pick("", " "+name())+" "+g.pick("Street", "St", "Avenue", "Road", "Lane", "Blvd", "Drive", "Terrace"))
	case 1:
		return whole(Address, num+" "+g.pick("rue", "avenue", "boulevard", "place")+" "+g.pick("", "de ", "de la ", "des ")+name())
	case 2:
		return whole(Address, g.pick("Calle", "Via", "Rua", "Avenida", "Piazza", "Carrer de")+" "+name()+g.pick("", " "+name())+" "+num)
	case 3:
		return whole(Address, name()+g.pick("stra\u00dfe", "strasse", "gasse", "weg", "straat", "gatan", "vej")+" "+num)
	case 4:
		return whole(Address, g.from("ABDEGHLMNPRSW", 1+g.r.IntN(2))+g.digits(1)+g.pick("", g.digits(1), "A")+" "+g.digits(1)+g.from("ABDEFGHJLNPQRSTUWXYZ", 2))
	default:
		return whole(Address, g.from("ABCEGHJKLMNPRSTVXY", 1)+g.digits(1)+g.from("ABCEGHJKLMNPRSTVWXYZ", 1)+" "+g.digits(1)+g.from("ABCEGHJKLMNPRSTVWXYZ", 1)+g.digits(1))
	}
}

// deviceID returns a random ANDROID_ID-shaped id.
func (g gen) deviceID() planted {
	for {
		if h := g.from(lowerHex, 16); deviceIDShape(h) {
			return whole(DeviceID, h)
		}
	}
}

// covered reports whether every byte of in[start:end] is in a finding.
func covered(s *Scrubber, in string, start, end int) bool {
	next := start
	s.Find(in, func(_ Kind, a, b int) {
		if a <= next && b > next {
			next = b
		}
	})
	return next >= end
}
