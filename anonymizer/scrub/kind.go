package scrub

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the kind of identifier a detector finds. Each Kind has its own
// detector, which [Config.Disabled] can switch off.
type Kind uint8

// The kinds of identifiers, one per detector.
const (
	// Email is an e-mail address, such as jane@example.com.
	Email Kind = iota + 1
	// Phone is a phone number in international (+43 664 1234567,
	// 0043 664 1234567) or national ((415) 555-2671, 0664 1234567)
	// notation, or any 7 to 15 digits after a word such as "phone" or "sms".
	Phone
	// IP is an IPv4 or IPv6 address. A port after it is kept.
	IP
	// UUID is a UUID in its 8-4-4-4-12 hex form, such as an IDFA, GAID,
	// IDFV or install id.
	UUID
	// IMEI is a 15-digit device identity that passes the Luhn check.
	IMEI
	// MAC is a hardware address, such as 00:1A:2B:3C:4D:5E or
	// 001a.2b3c.4d5e.
	MAC
	// Card is a payment card number of 13 to 19 digits that passes the
	// Luhn check.
	Card
	// IBAN is an international bank account number whose check digits
	// are valid.
	IBAN
	// Token is the credential after an HTTP authentication scheme such as
	// "Bearer" or "Basic"; the scheme itself is kept.
	Token
	// JWT is a JSON Web Token.
	JWT
	// Secret is an API key of a well-known shape (AWS, Stripe, Google,
	// GitHub, Slack, GitLab, SendGrid), a long random string, or the value
	// of a secret-named key such as password=... or cookie: ...
	Secret
	// UserPath is the user name in a home directory path, such as
	// /Users/jane/ or C:\Users\jane\, in a URL (https://jane:...@), the
	// owner's name in a device's name (Jane's iPhone), the handle in
	// a social network's profile URL (instagram.com/jane.doe,
	// tiktok.com/@jane) or in prose (@jdoe1987), the account a log signed
	// in as (signed in as jane), or a login's and its groups' names in
	// id(1)'s output (uid=1000(jane)).
	UserPath
	// Coordinates is a precise latitude/longitude pair, or a single
	// precise value after a key such as "lat".
	Coordinates
	// KeyValue is the value of a key that names an identifier, such as
	// user_id=1234 or "deviceId":"abc123" (see [Scrubber.IsIdentifierKey]),
	// the account a web path names after a collection of accounts
	// (GET /v1/users/48213/avatar), or the code in the query of an
	// invitation's, a referral's or a sign-up's link
	// (myapp://invite?ref=JDOE2024).
	KeyValue
	// DeviceID is a device's or SIM's id in a shape of its own, written
	// without a key: a 64-bit id in 16 hex digits, the shape of Android's
	// ANDROID_ID (device 9774d56d682e549c), an APNs token as iOS printed
	// it, an iOS UDID (00008030-001A2D3E0C12802E), a SIM card's ICCID
	// (19 or 20 digits from 89, Luhn), an eSIM's EID (32 digits from
	// 89, mod 97), or the random names of an Android app's install
	// folders (/data/app/~~…==/com.example.notes-…==/), which name an
	// install, or a removable volume's serial number in its folder's
	// name (/storage/1A2B-3C4D/).
	DeviceID
	// Address is a street address with its house number (221B Baker
	// Street, 12 rue de la Paix, Calle Mayor 5, Hauptstraße 12), the
	// postcode after one, a full postcode of the UK or Canada (SW1A 1AA,
	// K1A 0B1) or a US ZIP code after its state's code (CA 94043).
	Address
)

// lastKind is the highest Kind.
const lastKind = Address

var kindNames = [...]string{
	Email:       "email",
	Phone:       "phone",
	IP:          "ip",
	UUID:        "uuid",
	IMEI:        "imei",
	MAC:         "mac",
	Card:        "card",
	IBAN:        "iban",
	Token:       "token",
	JWT:         "jwt",
	Secret:      "secret",
	UserPath:    "user",
	Coordinates: "coordinates",
	KeyValue:    "id",
	DeviceID:    "device_id",
	Address:     "address",
}

var kindGoNames = [...]string{
	Email:       "Email",
	Phone:       "Phone",
	IP:          "IP",
	UUID:        "UUID",
	IMEI:        "IMEI",
	MAC:         "MAC",
	Card:        "Card",
	IBAN:        "IBAN",
	Token:       "Token",
	JWT:         "JWT",
	Secret:      "Secret",
	UserPath:    "UserPath",
	Coordinates: "Coordinates",
	KeyValue:    "KeyValue",
	DeviceID:    "DeviceID",
	Address:     "Address",
}

var kindMarkers = [...]string{
	Email:       "[email]",
	Phone:       "[phone]",
	IP:          "[ip]",
	UUID:        "[uuid]",
	IMEI:        "[imei]",
	MAC:         "[mac]",
	Card:        "[card]",
	IBAN:        "[iban]",
	Token:       "[token]",
	JWT:         "[jwt]",
	Secret:      "[secret]",
	UserPath:    "[user]",
	Coordinates: "[coordinates]",
	KeyValue:    "[id]",
	DeviceID:    "[device_id]",
	Address:     "[address]",
}

func (k Kind) valid() bool { return k >= Email && k <= lastKind }

// String returns the name of the marker of k, such as "email" for [Email]
// and "id" for [KeyValue].
func (k Kind) String() string {
	if !k.valid() {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Marker returns the text that replaces an identifier of kind k, such as
// "[email]". It returns "[redacted]" for an invalid Kind.
func (k Kind) Marker() string {
	if !k.valid() {
		return "[redacted]"
	}
	return kindMarkers[k]
}

// Kinds returns all kinds, in the order of their values.
func Kinds() []Kind {
	ks := make([]Kind, 0, lastKind)
	for k := Email; k <= lastKind; k++ {
		ks = append(ks, k)
	}
	return ks
}

// ParseKind returns the Kind whose name, marker or Go name is s, ignoring
// case: "user", "[user]" and "UserPath" all name [UserPath].
func ParseKind(s string) (Kind, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	for k := Email; k <= lastKind; k++ {
		if strings.EqualFold(name, kindNames[k]) || strings.EqualFold(name, kindGoNames[k]) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("scrub: unknown kind %q", s)
}

// markerAt returns the length of the marker that starts at s[i], or 0.
func markerAt(s string, i int) int {
	if i >= len(s) || s[i] != '[' {
		return 0
	}
	for _, m := range kindMarkers[Email:] {
		if strings.HasPrefix(s[i:], m) {
			return len(m)
		}
	}
	return 0
}
