package scrub

// IsIdentifierKey reports whether an attribute key names an identifier,
// such as "user_id", "deviceId", "E-Mail", "gps_lat" or
// "primaryPhoneNumber".
//
// The key is normalized by lower-casing ASCII letters and removing '_',
// '-', '.' and ' ', and split into words at those separators, at changes
// of case (camelCase) and between letters and digits. It names an
// identifier if the normalized key is a known name ("email", "userid",
// "idfa", "lat", "password", ...) or one of [Config.ExtraKeys]; if one of
// its words, or a run of them, is one (gps_lat, location_lon,
// client_ip, app_user); or if it contains a telling fragment ("email",
// "phone", "deviceid", "token", ...) at a word boundary, so that
// "user_email" and "deviceIdHash" match while "time_interval" (which
// holds "imei") and "microphone" do not. Names that are common words of
// other keys match only as the last word (ip: client_ip but not
// ip_version; user: app_user but not user_type) or only as the whole
// key (name, address, location, login, mobile, gps, uid, pan, long:
// screen_name, location_enabled, long_press stay), and no name matches
// right after a one-letter word "i" (iPhone, iMac).
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
// letters and digits. A key whose case changes more often than every
// third letter was not written in camelCase but mangled
// (INStalLaTIoNId): its words start at separators and digits only.
func (k *normKey) set(key string) {
	k.n, k.starts, k.trunc = 0, 0, false
	var byCase uint64 // the word starts that only case marks
	letters, changes := 0, 0
	sep := true
	prev, prev2 := kkOther, kkOther
	prevLetter := kkOther
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c == '-' || c == '.' || c == ' ' {
			sep = true
			continue
		}
		if k.n == len(k.b) {
			k.trunc = true
			break
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
		if kind == kkLower || kind == kkUpper {
			if letters > 0 && kind != prevLetter {
				changes++
			}
			letters++
			prevLetter = kind
		}
		switch {
		case sep, (kind == kkDigit) != (prev == kkDigit) && k.n > 0:
			k.starts |= 1 << k.n
		case kind == kkUpper && prev == kkLower:
			byCase |= 1 << k.n
		case kind == kkLower && prev == kkUpper && prev2 == kkUpper:
			byCase |= 1 << (k.n - 1)
		}
		k.b[k.n] = c
		k.n++
		prev2, prev = prev, kind
		sep = false
	}
	if changes*3 <= letters {
		k.starts |= byCase
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
type keyFlag uint16

const (
	kIdent  keyFlag = 1 << iota // an identifier
	kSecret                     // a secret
	kWeak                       // a weak key, see weakKeys
	kCoord                      // a latitude or longitude
	kAuth                       // an HTTP Authorization header
	kCookie                     // a cookie header
	kPlace                      // a place finer than a region, see placeKeys
	kWords                      // a value of words, see wordsKeys
	kLone                       // a value of one word, see loneKeys
	kNet                        // a Wi-Fi network's name in text, see networkKeys
	kQuoted                     // a network's name, only quoted; see networkKeys
	kShaped                     // a network's name, after "key:" no word; see networkKeys

	// How a name of keyTable matches as a word, or a run of words, of a
	// longer key (see tokenFlags); by default anywhere in it.
	kHeadOnly  // only as the last word: client_ip, not ip_version
	kWholeOnly // never: only the whole key is the name
)

// flags returns what the normalized key names: by its whole name and by
// the fragments it contains.
func (s *Scrubber) flags(k *normKey) keyFlag {
	if k.n == 0 {
		return 0
	}
	var f keyFlag
	if !k.trunc && keyShapes[k.n&63]&(1<<(k.b[0]&31)) != 0 {
		f = keyTable[string(k.b[:k.n])] &^ (kHeadOnly | kWholeOnly)
	}
	if !k.trunc && s != nil && s.extraKey != nil {
		if _, ok := s.extraKey[string(k.b[:k.n])]; ok {
			f |= kIdent
		}
	}
	f |= s.tokenFlags(k)
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

// tokenFlags returns what the words of the normalized key, and runs of
// them, name (see IsIdentifierKey): every run but the whole key, which
// flags looks up itself.
func (s *Scrubber) tokenFlags(k *normKey) keyFlag {
	if k.trunc || k.starts == 1 {
		return 0 // one word: the whole key
	}
	b := k.b[:k.n]
	limit := maxTokenKey
	if s != nil {
		limit = max(limit, s.extraMax)
	}
	var f keyFlag
	for i := 0; i < len(b); i++ {
		if k.starts&(1<<i) == 0 {
			continue
		}
		if i > 0 && b[i-1] == 'i' && (i == 1 || k.starts&(1<<(i-1)) != 0) {
			continue // iPhone, iMac
		}
		words := 0
		for j := i + 1; j <= len(b) && words < maxKeyWords; j++ {
			if j < len(b) && k.starts&(1<<j) == 0 {
				continue
			}
			words++
			if i == 0 && j == len(b) {
				break
			}
			run := b[i:j]
			if len(run) > limit {
				break
			}
			var g keyFlag
			if tokenShapes[len(run)]&(1<<(run[0]&31)) != 0 {
				g = keyTable[string(run)]
			}
			if s != nil && s.extraKey != nil {
				if _, extra := s.extraKey[string(run)]; extra {
					g |= kIdent
				}
			}
			if g == 0 {
				continue
			}
			switch {
			case g&kWholeOnly != 0:
				continue
			case g&kHeadOnly != 0 && j < len(b):
				continue
			}
			f |= g &^ (kWeak | kHeadOnly | kWholeOnly)
		}
	}
	return f
}

// isIdentifier reports whether the normalized key names an identifier:
// flags, but done as soon as one of its tests says so.
func (s *Scrubber) isIdentifier(k *normKey) bool {
	if k.n == 0 {
		return false
	}
	if !k.trunc && keyShapes[k.n&63]&(1<<(k.b[0]&31)) != 0 && keyTable[string(k.b[:k.n])]&kIdent != 0 {
		return true
	}
	return s.flags(k)&kIdent != 0
}

// identifierKeys are normalized keys that name identifiers.
var identifierKeys = [...]string{
	// device and install ids
	"deviceid", "deviceidentifier", "devicename", "hostname", "udid", "uid", "userid", "useridentifier",
	"idfa", "idfv", "gaid", "adid", "aaid", "advertisingid", "advertiserid", "androidid", "vendorid",
	"imei", "meid", "imsi", "iccid", "msisdn", "serial", "serialno", "serialnumber", "deviceserial",
	"installid", "installationid", "instanceid", "firebaseinstallationid", "appinstanceid", "fid",
	"installation", "installationuuid", "installuuid", "afid", "appsflyerid",
	// vehicles: a car's identification number, its plate
	"vin", "licenseplate", "licenceplate", "numberplate", "platenumber", "vehicleregistration",
	// an OpenID Connect token's subject, the account, as a decoded
	// token's claims print it (weak: quoted or after '=', or drawn at
	// random)
	"sub",
	"distinctid", "externalid", "anonymousid", "visitorid", "identityid",
	"pushtoken", "fcmtoken", "apnstoken", "devicetoken", "registrationtoken", "fingerprint",
	"imeisv", "apns", "fcm", "gcm", "crashreporterkey", "oaid", "gsfid", "widevineid", "drmid",
	"mediadrmid", "openudid", "userpseudoid",
	// cells: with the network's codes, a cell's id places a phone to
	// a few hundred metres (mCi, mCid, mNci in Android's CellIdentity*)
	"cellid", "mci", "mcid", "mnci",
	// a computer's name, as Windows' environment holds it
	"computername",
	// people; a shell's login as whoami and the environment print it
	"whoami", "logname",
	// the member a referral or an invitation names, by their code
	"referrer", "referral", "referralcode", "referralid", "referrercode", "referrerid", "refcode",
	"referredby", "invitecode", "invitationcode", "inviter", "inviterid", "invitedby",
	"accountid", "account", "accountnumber", "username", "user", "login", "name", "firstname",
	"lastname", "fullname", "surname", "givenname", "familyname", "middlename", "displayname",
	"nickname", "owner", "ownername", "customer", "customername", "customerid", "customernumber",
	"clientid", "memberid", "personid", "profileid", "recipient", "recipientname",
	"recipients", "attendees", "invitees", "participants", "playerid", "ssn", "socialsecuritynumber", "nationalid", "taxid", "passport", "passportnumber",
	"passportno", "nino", "bsn", "nif", "cpf", "aadhaar", "pesel", "curp", "nric", "tfn", "idnumber",
	"idcard", "idcardnumber", "nationalidnumber", "driverlicense", "driverslicense", "driverlicence",
	"driverslicence", "drivinglicense", "drivinglicence", "licensenumber", "licenceno", "licenseno",
	"dob", "birthday", "birthdate", "dateofbirth",
	// contact
	"email", "mail", "emailaddress", "emailaddr", "phone", "phonenumber", "phoneno", "tel",
	"telephone", "mobile", "mobilenumber", "fax", "address", "street", "streetaddress",
	"homeaddress", "billingaddress", "shippingaddress", "postcode", "postalcode", "zip", "zipcode",
	// network
	"ip", "ipaddress", "ipaddr", "ipv4", "ipv6", "remoteaddr", "remoteip", "clientip", "realip",
	"xrealip", "xforwardedfor", "forwardedfor", "mac", "macaddress", "macaddr", "wifimac",
	"bluetoothaddress", "bssid", "ssid", "essid", "wifiname", "wifinetwork",
	// location
	"lat", "latitude", "lon", "lng", "longitude", "location", "gps", "coords",
	"coordinates", "geo", "geolocation", "latlng", "latlon", "geohash", "pluscode",
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

// placeKeys name places finer than a region (what a geocoder's address
// and a CLPlacemark hold): they are identifier keys, as stored location
// is a region at most. Their values are names, not ids, so a blank alone
// does not separate one from its key (the city of Graz).
var placeKeys = [...]string{
	"city", "town", "village", "suburb", "district", "county", "neighborhood", "neighbourhood",
	"locality", "sublocality", "thoroughfare", "subthoroughfare", "streetname", "housenumber",
	"addressline", "addresslines", "postaltown",
}

// wordsKeys name identifiers that are written in words, or in groups of
// letters and digits that blanks separate: people's names, places
// (placeKeys are such keys too), postcodes, dates of birth, national
// numbers (first_name=Anna Maria, postcode: SW1A 1AA, NINO: QQ 12 34 56
// C, ssid=Anna Home). The unquoted value of such a key runs on over the
// words after it (see scanner.wordsEnd), where another key's runs to the
// first blank.
var wordsKeys = [...]string{
	"name", "firstname", "lastname", "fullname", "surname", "givenname", "familyname", "middlename",
	"displayname", "nickname", "owner", "ownername", "devicename", "ssid", "essid", "wifiname",
	"wifinetwork", "networkname", "wifi", "customer", "customername",
	"recipient", "recipientname", "recipients", "attendees", "invitees", "participants",
	"address", "street", "streetaddress", "homeaddress", "billingaddress", "shippingaddress",
	"postcode", "postalcode", "zip", "zipcode",
	"licenseplate", "licenceplate", "numberplate", "platenumber", "vehicleregistration",
	"dob", "birthday", "birthdate", "dateofbirth",
	"ssn", "socialsecuritynumber", "nationalid", "nationalidnumber", "taxid", "passport",
	"passportnumber", "passportno", "nino", "aadhaar", "nric", "tfn", "bsn", "idnumber", "idcard",
	"idcardnumber", "driverlicense", "driverslicense", "driverlicence", "driverslicence",
	"drivinglicense", "drivinglicence", "licensenumber", "licenceno", "licenseno",
}

// weakKeys name identifiers as attribute keys, but in crash text they
// mostly head technical lines ("Thread 0 name:  Dispatch queue: ...",
// "pid: 1, tid: 2, name: RenderThread", "Load Address: 0x1000",
// "Build fingerprint: 'google/...'", "uid: 10123"). Their values are
// replaced only in the forms key=value and "key": value, and after a
// colon when they look drawn at random (uid: Xk3mP9qR..., see randomID).
var weakKeys = [...]string{"name", "address", "location", "fingerprint", "uid", "login", "gps", "mobile", "sub"}

// loneKeys name an identifier that is one word, a tool's output, whose
// value is no value when it starts the tool's error (whoami: cannot find
// name for user ID 1000; see toolErrors).
var loneKeys = [...]string{"whoami", "logname"}

// networkKeys name a Wi-Fi network in text (wifi: JohnsHome-5G,
// connected to network 'The Johnsons', network name: Smith Family WiFi),
// whose name is a household's and often its family's; but as attribute
// keys, and often in text, they name a network's type or state
// (network=wifi, wifi: enabled, network_name=T-Mobile), so they are no
// identifier keys (IsIdentifierKey), and in text a state or a type is no
// value (see scanner.networkValue). After "network" only a quoted name
// counts (networkQuoted); after "wifi:", which heads log lines, only one
// that looks like no word (networkShaped).
var networkKeys = [...]string{"wifi", "network", "networkname"}

// networkQuoted and networkShaped: see networkKeys.
var (
	networkQuoted = [...]string{"network"}
	networkShaped = [...]string{"wifi"}
)

// coordinateKeys name a latitude or longitude.
var coordinateKeys = [...]string{"lat", "latitude", "lon", "lng", "long", "longitude"}

// authKeys name an HTTP Authorization header.
var authKeys = [...]string{"authorization", "proxyauthorization"}

// cookieKeys name a cookie header, whose value is the rest of the line.
var cookieKeys = [...]string{"cookie", "setcookie"}

// headOnlyKeys are names of keyTable that are common words of other
// keys: they name an identifier as the last word of a key (client_ip,
// app_user, gift_card, router_mac) but not before another word
// (ip_version, user_type, card_type, mac_os).
var headOnlyKeys = [...]string{
	"hostname", "serial", "account", "user", "owner", "passport", "dob", "mail", "tel", "telephone",
	"fax", "street", "zip", "ip", "ipv4", "ipv6", "mac", "ssid", "geo", "pwd", "cookie", "card",
	"city", "town", "village", "suburb", "district", "county",
	"token", "instanceid", "clientid", "secret", "pass", "auth", "session", "sid", "signature",
	"authorization", "setcookie", "installation", "vin", "referrer", "referral", "inviter",
	"essid", "wifiname", "wifinetwork", "networkname",
}

// wholeOnlyKeys are names of keyTable that are words of many ordinary
// keys (screen_name, location_enabled, long_press, pan_gesture): only the
// whole key is the name.
var wholeOnlyKeys = [...]string{"name", "address", "location", "fingerprint", "uid", "login", "gps", "mobile", "pan", "long", "sub"}

// keyTable holds what each known normalized key names.
var keyTable = func() map[string]keyFlag {
	t := make(map[string]keyFlag)
	for _, set := range []struct {
		words []string
		flag  keyFlag
	}{
		{identifierKeys[:], kIdent}, {placeKeys[:], kIdent | kPlace | kWords}, {wordsKeys[:], kWords}, {secretKeys[:], kSecret}, {weakKeys[:], kWeak},
		{loneKeys[:], kLone | kWholeOnly}, {networkKeys[:], kNet},
		{networkQuoted[:], kQuoted | kWholeOnly}, {networkShaped[:], kShaped | kWholeOnly},
		{coordinateKeys[:], kCoord}, {authKeys[:], kAuth}, {cookieKeys[:], kCookie},
		{headOnlyKeys[:], kHeadOnly}, {wholeOnlyKeys[:], kWholeOnly},
	} {
		for _, w := range set.words {
			t[w] |= set.flag
		}
	}
	// Secret names match as the last word only (user_session,
	// basic_auth), unless they are identifier names too.
	for _, w := range secretKeys {
		if t[w]&(kIdent|kWholeOnly) == 0 {
			t[w] |= kHeadOnly
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

// maxKeyWords is the most words a name of keyTable spans in a key
// (firebase_installation_id, date_of_birth).
const maxKeyWords = 4

// maxTokenKey is the length of the longest name of keyTable that matches
// as words of a longer key, and tokenShapes has bit c&31 of entry n set
// when such a name of length n starts with c: a cheap test that saves
// most lookups of the words of keys (see tokenFlags).
var maxTokenKey, tokenShapes = func() (int, [64]uint32) {
	var t [64]uint32
	longest := 0
	for k, f := range keyTable {
		if f&kWholeOnly != 0 || f&^(kHeadOnly|kWeak) == 0 || len(k) >= len(t) {
			continue
		}
		t[len(k)] |= 1 << (k[0] & 31)
		longest = max(longest, len(k))
	}
	return longest, t
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
