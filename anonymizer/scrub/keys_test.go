package scrub

import (
	"strings"
	"testing"
)

// checkIdentifierKeys checks that s takes every key of caught, and none of
// ordinary, for an identifier key.
func checkIdentifierKeys(t *testing.T, s *Scrubber, caught, ordinary []string) {
	t.Helper()
	for _, k := range caught {
		if !s.IsIdentifierKey(k) {
			t.Errorf("IsIdentifierKey(%q) = false, want true", k)
		}
	}
	for _, k := range ordinary {
		if s.IsIdentifierKey(k) {
			t.Errorf("IsIdentifierKey(%q) = true, want false", k)
		}
	}
}

func TestIsIdentifierKey(t *testing.T) {
	s := New(Config{ExtraKeys: []string{"Loyalty-Number", "", "club.card"}})
	yes := []string{
		"device_id", "deviceId", "DeviceID", "DEVICE_ID", "device-id", "device.id", "device id",
		"userid", "user_id", "userId", "uid", "email", "e_mail", "E-Mail", "mail", "emailAddress",
		"user_email", "userEmailHash", "primaryPhoneNumber", "phone", "phone_number", "tel", "mobile",
		"msisdn", "ip", "ip_address", "ipAddr", "remote_addr", "client_ip", "X-Forwarded-For",
		"idfa", "IDFA", "idfv", "gaid", "adid", "aaid", "advertising_id", "android_id", "imei",
		"device_imei", "meid", "imsi", "iccid", "serial", "serial_no", "serialNumber", "install_id",
		"installation_id", "firebase_installation_id", "instance_id", "account_id", "account",
		"username", "user_name", "user", "login", "name", "first_name", "lastName", "full_name",
		"surname", "address", "street", "postcode", "zip", "zip_code", "lat", "latitude", "lon",
		"lng", "longitude", "location", "gps", "coords", "coordinates", "mac", "mac_address",
		"wifiMacAddr", "bssid", "ssid", "customer_id", "client_id", "session_id", "token",
		"access_token", "refreshToken", "password", "passwd", "pwd", "secret", "client_secret",
		"api_key", "apiKey", "ssn", "dob", "birthday", "birth_date", "iban", "card", "card_number",
		"pan", "cookie", "fingerprint", "push_token", "fcm_token", "apns_token", "device_token",
		"deviceIdHash", "IPAddress", "loyalty_number", "LOYALTY NUMBER", "clubCard",
		"device_name", "host_name", "whoami", "LOGNAME", "COMPUTERNAME", "SUDO_USER",
		"referrer", "referral_code", "referralCode", "invite_code", "inviterId", "invited_by",
		"referred_by", "app_referrer",
		"city", "home_city", "userCity", "town", "district", "county", "neighborhood",
		"neighbourhood", "locality", "subLocality", "thoroughfare", "subThoroughfare",
		"street_name", "house_number", "addressLines", "postal_town",
		strings.Repeat("x", 80) + "_email",
		strings.Repeat("a_", 40) + "email",
	}
	no := []string{
		"", "pages", "format", "screen", "duration", "count", "size", "theme", "plan", "tier",
		"locale", "language", "source", "screen_name", "button", "result", "error_code", "retry",
		"network", "latency_ms", "feature", "variant", "experiment", "version", "app_version",
		"time_interval", "timeInterval", "runtime_info", "microphone", "microphone_enabled",
		"headphones", "iPhoneModel", "iphone_model", "device_idle", "deviceIdle", "max_tokens",
		"tokenizer", "class_name", "className", "bundle_identifier", "id", "build_id", "request_id",
		"megaid", "identity", "loyalty", "screen_width", "orientation", "battery_level",
		"city_count", "town_hall_opened", "capacity", "velocity", "publicity",
		"region", "country", "state", "country_code", "region_code",
		"ref", "promo", "promo_code", "coupon", "utm_source", "referrer_policy", "referral_program",
		"invite", "invite_count", "inviter_count",
		strings.Repeat("x", 200),
	}
	// the names the collector's privacy policy lists
	policy := strings.Fields(`device_id userid uid email mail e_mail emailaddress phone phonenumber
		tel mobile msisdn ip ipaddress ipaddr remoteaddr clientip xforwardedfor idfa idfv gaid adid
		aaid advertisingid androidid imei meid imsi iccid serial serialno serialnumber installid
		installationid instanceid accountid account username user login name firstname lastname
		fullname surname address street postcode zip zipcode lat latitude lon lng longitude location
		gps coords coordinates mac macaddress bssid ssid customerid clientid sessionid token
		accesstoken refreshtoken password passwd pwd secret apikey ssn dob birthday birthdate iban
		card cardnumber pan cookie fingerprint pushtoken fcmtoken apnstoken devicetoken`)
	checkIdentifierKeys(t, s, append(yes, policy...), no)
	if New(Config{}).IsIdentifierKey("loyalty_number") {
		t.Error("extra key without config")
	}
	for _, k := range []string{"user_email", "pages", strings.Repeat("x", 100)} {
		if n := testing.AllocsPerRun(100, func() { s.IsIdentifierKey(k) }); n != 0 {
			t.Errorf("IsIdentifierKey(%q) allocates %v times", k, n)
		}
	}
}

func TestNormKey(t *testing.T) {
	cases := []struct{ key, norm, words string }{
		{"user_id", "userid", "user id"},
		{"userId", "userid", "user id"},
		{"IPAddress", "ipaddress", "ip address"},
		{"deviceIDHash", "deviceidhash", "device id hash"},
		{"ipv4-Addr", "ipv4addr", "ipv 4 addr"},
		{"E-Mail", "email", "e mail"},
	}
	for _, c := range cases {
		var k normKey
		k.set(c.key)
		got := string(k.b[:k.n])
		var words []string
		for i := 0; i < k.n; i++ {
			if i > 0 && k.starts&(1<<i) != 0 {
				words = append(words, " ")
			}
			words = append(words, string(k.b[i]))
		}
		if got != c.norm || strings.Join(words, "") != c.words {
			t.Errorf("normalize(%q) = %q (%q), want %q (%q)", c.key, got, strings.Join(words, ""), c.norm, c.words)
		}
	}
}
