package scrub

// IsIdentifierKey reports whether an attribute key names an identifier,
// such as "user_id", "deviceId", "E-Mail" or "primaryPhoneNumber".
//
// The key is normalized by lower-casing ASCII letters and removing '_',
// '-', '.' and ' '. It names an identifier if the normalized key is a
// known name ("email", "userid", "idfa", "lat", "password", ...) or one of
// [Config.ExtraKeys], or if it contains a telling fragment ("email",
// "phone", "deviceid", "token", ...) at a word boundary of the original
// key, so that "user_email" and "deviceIdHash" match while
// "time_interval" (which holds "imei") and "microphone" do not.
// IsIdentifierKey does not allocate; of keys longer than 64 bytes only the
// fragments of the first and the last 64 bytes are checked.
func (s *Scrubber) IsIdentifierKey(key string) bool {
	var k normKey
	k.set(key)
	if s.isIdentifier(&k) {
		return true
	}
	if k.trunc {
		// Look at the fragments of the end too, as in "..._email".
		k.set(key[len(key)-len(k.b):])
		return s.isIdentifier(&k)
	}
	return false
}

// normKey is a key normalized for lookups.
type normKey struct {
	b      [64]byte // the normalized key
	n      int      // its length
	starts uint64   // bit i is set when b[i] starts a word of the original key
	trunc  bool     // the key did not fit
}

// kinds of bytes for word boundaries in keys
const (
	kkOther = iota
	kkLower
	kkUpper
	kkDigit
)

// set normalizes key into k, noting where its words start: after a
// separator, at a lower-to-upper case change ("userId"), at the last
// capital of a run followed by lower case ("IPAddress"), and between
// letters and digits.
func (k *normKey) set(key string) {
	k.n, k.starts, k.trunc = 0, 0, false
	sep := true
	prev, prev2 := kkOther, kkOther
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c == '-' || c == '.' || c == ' ' {
			sep = true
			continue
		}
		if k.n == len(k.b) {
			k.trunc = true
			return
		}
		kind := kkOther
		switch {
		case c >= 'a' && c <= 'z':
			kind = kkLower
		case c >= 'A' && c <= 'Z':
			kind = kkUpper
			c += 'a' - 'A'
		case c >= '0' && c <= '9':
			kind = kkDigit
		}
		switch {
		case sep,
			kind == kkUpper && prev == kkLower,
			(kind == kkDigit) != (prev == kkDigit) && k.n > 0:
			k.starts |= 1 << k.n
		case kind == kkLower && prev == kkUpper && prev2 == kkUpper:
			k.starts |= 1 << (k.n - 1)
		}
		k.b[k.n] = c
		k.n++
		prev2, prev = prev, kind
		sep = false
	}
}

// fragment is a part of a key that makes it name an identifier or a
// secret.
type fragment struct {
	s          string
	start, end bool    // it must start (end) at a word boundary
	notAfterI  bool    // not right after a one-letter word "i" (iPhone)
	flag       keyFlag // what a key holding it names
}

// containsAt reports whether k holds f at i.
func (k *normKey) containsAt(i int, f fragment) bool {
	b := k.b[:k.n]
	if i+len(f.s) > len(b) || string(b[i:i+len(f.s)]) != f.s {
		return false
	}
	if f.start && k.starts&(1<<i) == 0 {
		return false
	}
	if e := i + len(f.s); f.end && e < len(b) && k.starts&(1<<e) == 0 {
		return false
	}
	if f.notAfterI && i > 0 && b[i-1] == 'i' && k.starts&(1<<(i-1)) != 0 {
		return false
	}
	return true
}

// keyFlag says what a key names.
type keyFlag uint8

const (
	kIdent  keyFlag = 1 << iota // an identifier
	kSecret                     // a secret
	kWeak                       // a weak key, see weakKeys
	kCoord                      // a latitude or longitude
	kAuth                       // an HTTP Authorization header
	kCookie                     // a cookie header
)

// flags returns what the normalized key names: by its whole name and by
// the fragments it contains.
func (s *Scrubber) flags(k *normKey) keyFlag {
	if k.n == 0 {
		return 0
	}
	var f keyFlag
	if !k.trunc && keyShapes[k.n&63]&(1<<(k.b[0]&31)) != 0 {
		f = keyTable[string(k.b[:k.n])]
	}
	if !k.trunc && s != nil && s.extraKey != nil {
		if _, ok := s.extraKey[string(k.b[:k.n])]; ok {
			f |= kIdent
		}
	}
	b := k.b[:k.n]
	for i := 0; i+minFragment <= len(b); i++ {
		c0, c1 := b[i]-'a', b[i+1]-'a'
		if c0 >= 26 || c1 >= 26 {
			continue
		}
		for _, fr := range fragmentsByPrefix[int(c0)*26+int(c1)] {
			if f&fr.flag != fr.flag && k.containsAt(i, fr) {
				f |= fr.flag
			}
		}
	}
	return f
}

// isIdentifier reports whether the normalized key names an identifier.
func (s *Scrubber) isIdentifier(k *normKey) bool { return s.flags(k)&kIdent != 0 }

// identifierKeys are normalized keys that name identifiers.
var identifierKeys = [...]string{
	// device and install ids
	"deviceid", "deviceidentifier", "devicename", "hostname", "udid", "uid", "userid", "useridentifier",
	"idfa", "idfv", "gaid", "adid", "aaid", "advertisingid", "advertiserid", "androidid", "vendorid",
	"imei", "meid", "imsi", "iccid", "msisdn", "serial", "serialno", "serialnumber", "deviceserial",
	"installid", "installationid", "instanceid", "firebaseinstallationid", "appinstanceid",
	"pushtoken", "fcmtoken", "apnstoken", "devicetoken", "registrationtoken", "fingerprint",
	// people
	"accountid", "account", "accountnumber", "username", "user", "login", "name", "firstname",
	"lastname", "fullname", "surname", "givenname", "familyname", "middlename", "displayname",
	"nickname", "owner", "ownername", "customerid", "clientid", "memberid", "personid", "profileid",
	"playerid", "ssn", "socialsecuritynumber", "nationalid", "taxid", "passport", "passportnumber",
	"dob", "birthday", "birthdate", "dateofbirth",
	// contact
	"email", "mail", "emailaddress", "emailaddr", "phone", "phonenumber", "phoneno", "tel",
	"telephone", "mobile", "mobilenumber", "fax", "address", "street", "streetaddress",
	"homeaddress", "billingaddress", "shippingaddress", "postcode", "postalcode", "zip", "zipcode",
	// network
	"ip", "ipaddress", "ipaddr", "ipv4", "ipv6", "remoteaddr", "remoteip", "clientip", "realip",
	"xrealip", "xforwardedfor", "forwardedfor", "mac", "macaddress", "macaddr", "wifimac",
	"bluetoothaddress", "bssid", "ssid",
	// location
	"lat", "latitude", "lon", "lng", "longitude", "location", "gps", "coords",
	"coordinates", "geo", "geolocation", "latlng", "latlon",
	// credentials and money
	"sessionid", "token", "accesstoken", "refreshtoken", "idtoken", "authtoken", "password",
	"passwd", "pwd", "secret", "clientsecret", "apikey", "cookie", "iban", "card", "cardnumber",
	"creditcard", "pan", "cvv", "cvc", "bankaccount", "routingnumber",
}

// identifierFragments make any key containing them name an identifier,
// e.g. "user_email" or "primaryPhoneNumber".
var identifierFragments = []fragment{
	{s: "email"}, {s: "phone", start: true, notAfterI: true}, {s: "deviceid", end: true},
	{s: "deviceidentifier"}, {s: "userid"}, {s: "useridentifier"}, {s: "idfa", start: true},
	{s: "idfv", start: true}, {s: "gaid", start: true}, {s: "imei", start: true},
	{s: "imsi", start: true}, {s: "iccid", start: true}, {s: "msisdn"}, {s: "androidid"},
	{s: "advertisingid"}, {s: "ipaddr"}, {s: "macaddr"}, {s: "installid"},
	{s: "installationid"}, {s: "accountid"}, {s: "customerid"}, {s: "serialnumber"},
	{s: "username"}, {s: "password"}, {s: "passwd"}, {s: "token", end: true}, {s: "secret"},
	{s: "apikey"}, {s: "sessionid"}, {s: "latitude"}, {s: "longitude"}, {s: "fingerprint"},
	{s: "pushtoken"}, {s: "iban", start: true, end: true}, {s: "creditcard"}, {s: "cardnumber"},
}

// secretKeys are normalized keys whose values in text are secrets.
var secretKeys = [...]string{
	"password", "passwd", "pwd", "pass", "passphrase", "secret", "clientsecret", "apisecret",
	"secretkey", "privatekey", "apikey", "xapikey", "authkey", "accesskey", "accesstoken",
	"refreshtoken", "idtoken", "authtoken", "token", "auth", "session", "sessionid", "sessid",
	"phpsessid", "jsessionid", "sid", "cookie", "setcookie", "signature", "xamzsignature",
	"xamzcredential",
}

// secretFragments make any key containing them name a secret.
var secretFragments = []fragment{
	{s: "password"}, {s: "passwd"}, {s: "secret"}, {s: "token", end: true}, {s: "apikey"},
	{s: "privatekey"}, {s: "sessionid"}, {s: "cookie"},
}

// weakKeys name identifiers as attribute keys, but in crash text they
// mostly head technical lines ("Thread 0 name:  Dispatch queue: ...",
// "pid: 1, tid: 2, name: RenderThread", "Load Address: 0x1000",
// "Build fingerprint: 'google/...'", "uid: 10123"). Their values are
// replaced only in the forms key=value and "key": value.
var weakKeys = [...]string{"name", "address", "location", "fingerprint", "uid", "login", "gps", "mobile"}

// coordinateKeys name a latitude or longitude.
var coordinateKeys = [...]string{"lat", "latitude", "lon", "lng", "long", "longitude"}

// authKeys name an HTTP Authorization header.
var authKeys = [...]string{"authorization", "proxyauthorization"}

// cookieKeys name a cookie header, whose value is the rest of the line.
var cookieKeys = [...]string{"cookie", "setcookie"}

// keyTable holds what each known normalized key names.
var keyTable = func() map[string]keyFlag {
	t := make(map[string]keyFlag)
	for _, set := range []struct {
		words []string
		flag  keyFlag
	}{
		{identifierKeys[:], kIdent}, {secretKeys[:], kSecret}, {weakKeys[:], kWeak},
		{coordinateKeys[:], kCoord}, {authKeys[:], kAuth}, {cookieKeys[:], kCookie},
	} {
		for _, w := range set.words {
			t[w] |= set.flag
		}
	}
	return t
}()

// keyShapes has bit c&31 of entry n set when keyTable has a key of
// length n (modulo 64) whose first byte is c: a cheap test that saves most
// lookups of keys that are not in it.
var keyShapes = func() (t [64]uint32) {
	for k := range keyTable {
		t[len(k)&63] |= 1 << (k[0] & 31)
	}
	return t
}()

// shortKeyFirsts has bit c&31 set when keyTable has a key shorter than
// minFragment whose first letter is c.
var shortKeyFirsts = func() (m uint32) {
	for n := 1; n < minFragment; n++ {
		m |= keyShapes[n]
	}
	return m
}()

// minFragment is the length of the shortest fragment.
const minFragment = 4

// fragmentsByPrefix lists the fragments by their first two letters.
var fragmentsByPrefix = func() (t [26 * 26][]fragment) {
	for _, list := range []struct {
		frags []fragment
		flag  keyFlag
	}{{identifierFragments, kIdent}, {secretFragments, kSecret}} {
		for _, f := range list.frags {
			if len(f.s) < minFragment {
				panic("scrub: fragment " + f.s + " is too short")
			}
			f.flag = list.flag
			i := int(f.s[0]-'a')*26 + int(f.s[1]-'a')
			t[i] = append(t[i], f)
		}
	}
	return t
}()
