package scrub

import (
	"strings"
	"testing"
)

// The cases of this file are what the adversarial privacy test
// (internal/privacyprobe, make privacy) found stored by the collector
// before the scrubber learned to read them, one test per gap it listed,
// with its examples.

// TestGluedWithUnderscores: an identifier glued into a word with '_'
// (cache_<id>_v2, as in file and cache names) is found.
func TestGluedWithUnderscores(t *testing.T) {
	runCases(t, []scrubCase{
		{"cache_3d8c0c45-a705-45e0-bf7d-9e95d2b136c1_v2", "cache_[uuid]_v2"},
		{"cache_32A2F13D-D265-4AAA-AFA7-CA82F4AE1824_v2", "cache_[uuid]_v2"},
		{"cache_d593ebcf33207e45_v2", "cache_[device_id]_v2"},
		{"cache_AKIADCYLFI6EWZR7ZXPM_v2", "cache_[secret]_v2"},
		{"cache_AIzaxBpavlkqJQwpp3Pcks16UMv3oq8K6ufkfYo_v2", "cache_[secret]_v2"},
		{"cache_rk_live_v1QDTiLyuyonrOg3xdobF3jhfICc0bcruCwjkblkh_v2", "cache_[secret]"},
		{"cache_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_v2", "cache_[secret]"},
		{"cache_2720-5087-1555-3399_v2", "cache_[card]_v2"},
		{"cache_4554 7774 0238 3264_v2", "cache_[card]_v2"},
		{"cache_372019073006355_v2", "cache_[card]_v2"},
		{"cache_5018-7207-1157-8449-983_v2", "cache_[card]_v2"},
		{"cache_015425956777140_v2", "cache_[imei]_v2"},
		{"cache_99-885761-571148-5_v2", "cache_[imei]_v2"},
		{"cache_49 590630 357653 2_v2", "cache_[imei]_v2"},
		{"cache_PL86099251504312277373399725_v2", "cache_[iban]_v2"},
		{"cache_BE13 9760 2421 6099_v2", "cache_[iban]_v2"},
		{"cache_IT70 L756 4028 9725 VOPC RHJ8 23YC_v2", "cache_[iban]_v2"},
		{"cache_192.168.123.119_v2", "cache_[ip]_v2"},
		{"cache_10.45.101.41_v2", "cache_[ip]_v2"},
		{"cache_2600:bbcc:ede9:ef91:5cc5:ff99:8058:d2e5_v2", "cache_[ip]_v2"},
		{"cache_2a02:917f:144f::167c:11ff_v2", "cache_[ip]_v2"},
		{"cache_fe80::9f6a:deae:5d1d:881e%rmnet_data0_v2", "cache_[ip]_data0_v2"},
		{"cache_00:1A:2B:3C:4D:5E_v2", "cache_[mac]_v2"},
		{"cache_001a.2b3c.4d5e_v2", "cache_[mac]_v2"},
		{"cache_+43 664 1234567_v2", "cache_[phone]_v2"},
		{"cache_0664 1234567_v2", "cache_[phone]_v2"},
		{"cache_-25.44551, -118.65351_v2", "cache_[coordinates]_v2"},
		{"cache_geo:-42.736676,85.034850_v2", "cache_geo:[id]_v2"}, // "geo" names an identifier
		{"cache_-52.508756,140.103166_v2", "cache_[coordinates]_v2"},
		{"cache_lat=58.407530&lng=68.170902_v2", "cache_lat=[coordinates]&lng=[coordinates]_v2"},
		{"cache_Basic a3dhbWVsaW44NTI3OnVvRGZmSDBPQ1I=_v2", "cache_Basic [token]"}, // "_" is a byte of credentials
		{"cache_Bearer 3F9h7nK2go0EFobIF-H0sBkf_v2", "cache_Bearer [token]"},
		{"cache_Bearer oDUjw_dgoX4ZOK1NAG8x8OGE01_v2", "cache_Bearer [token]"},
		{"cache_jane.doe@example.com_v2", "[email]_v2"}, // "_" is part of local parts
		{"cache_device_id 7649188531_v2", "cache_device_id [id]"},
		{"cache_/home/jdoe123/.config/notes/sync.db_v2", "cache_/home/[user]/.config/notes/sync.db_v2"},
	})
	// Words of code joined by '_' stay: native symbols, JNI names,
	// snake_case identifiers and constants.
	runCases(t, kept(
		"Java_com_example_notes_NativeBridge_render+164",
		"_ZN7android14AndroidRuntime8startVmEPP7_JavaVMPP7_JNIEnvbb",
		"__pthread_kill + 8",
		"libsystem_kernel.dylib __abort_with_payload",
		"sync_queue_2 worker_3 retry_after_ms=1500",
		"ERROR_CODE_404 E_ACCESS_DENIED HTTP_503",
		"thread_pool_12 frame_0x7f3a",
		"v4_12_0_3 build_4120003",
		"DCIM_2026_11_29 IMG_20261129_123045.jpg",
		"com.example.notes_preferences.xml",
	))
}

// TestKeySpaceValue: the value after an identifier-named key and a space
// is found when it looks like an id (a digit, or a case change inside),
// not when it is a word.
func TestKeySpaceValue(t *testing.T) {
	runCases(t, []scrubCase{
		{"fcm_token 9962541186", "fcm_token [phone]"}, // an Indian mobile number
		{"fcm_token 59571515", "fcm_token [secret]"},
		{"sync failed for installationId tJh8KLVci0K3OQpCb", "sync failed for installationId [id]"},
		{"email ogCPiHHFD2sDt", "email [id]"},
		{"deviceId 855557138 registered", "deviceId [id] registered"},
		{"ip u-4j5sbbp2x", "ip [id]"},
		{"serial mTaq4ODdMn9ZlN", "serial [id]"},
		{"aNdROid_ID 93017202", "aNdROid_ID [id]"},
		{"POST /v1/items/android_id tU51d2VWiBJlYNllIE/state 404", "POST /v1/items/android_id [id]/state 404"},
		{"failed (android_id 8235867768) code 7", "failed (android_id [phone]) code 7"},
		{"failed (android_id 823586776) code 7", "failed (android_id [id]) code 7"},
		{`{"ref":"phone sTKeVKJjPMiv3yC","n":1}`, `{"ref":"phone [id]","n":1}`},
		{"user_id\t829301", "user_id\t[id]"},
		// random values without digits, whose capitals do not mark words
		{"payload=installationId%20SrHfwlaqioeGf", "payload=installationId%20[id]"},
		{"POST /v1/items/android_id nCvMffLobnTfDfkf/avatar", "POST /v1/items/android_id [id]/avatar"},
		{"customer_id YoZjBomkldsYni", "customer_id [id]"},
		{"1;userEmail xakGgvmjybQu,y", "1;userEmail [id],y"},
		// a key in mangled case, whose words may spell lat
		{"INStalLaTIoNId=U-q3qiW4485", "INStalLaTIoNId=[id]"},
		{"inStALLaTIoNiD: U-B9aDzDPg", "inStALLaTIoNiD: [id]"},
		{"https://api.example.com/v1/lookup?ref=fcm_token+mtxrzqfePgqh&page=9", "https://api.example.com/v1/lookup?ref=fcm_token+[secret]&page=9"},
	})
	runCases(t, kept(
		"email must not be empty",
		"token expired after 3 attempts",
		"push_token refresh scheduled",
		"user 12 of 40",
		"name RenderThread",
		"Email address invalid",
		"session 3",
		"phone number missing",
		"ip version 4",
		"user sendAction",
		"email CellForRow",
	))
}

// TestAndroidAppUserPath: a user name in a folder of accounts below an
// Android app's own folder is found.
func TestAndroidAppUserPath(t *testing.T) {
	runCases(t, []scrubCase{
		{"/data/user/0/com.example.notes/files/accounts/jdoe123/sync.db", "/data/user/0/com.example.notes/files/accounts/[user]/sync.db"},
		{"/data/user/98/org.example.reader/files/accounts/priya.moreau870/sync.plist", "/data/user/98/org.example.reader/files/accounts/[user]/sync.plist"},
		{"/data/data/com.example.notes/files/accounts/jane_doe/", "/data/data/com.example.notes/files/accounts/[user]/"},
		{"/data/user_de/0/com.example.notes/shared_prefs/users/jane/x.xml", "/data/user_de/0/com.example.notes/shared_prefs/users/[user]/x.xml"},
		{"/storage/emulated/0/Android/data/com.example.notes/files/profiles/jane.doe/a", "/storage/emulated/0/Android/data/com.example.notes/files/profiles/[user]/a"},
		{"open /HoMe/jdoe123/notes", "open /HoMe/[user]/notes"},
		{"FILE:///USERS/jdoe123/Documents/a.db", "FILE:///USERS/[user]/Documents/a.db"},
		{"/HOME/jdoe123/", "/HOME/[user]/"},
		// a Windows path's backslashes escape nothing, also where the
		// text is read in its detection copy (a full-width digit, a
		// no-break space)
		{"line one\nC:\\Users\\rfernandes680\\AppData\\Local\\Notes\\river.json\r\nline three",
			"line one\nC:\\Users\\[user]\\AppData\\Local\\Notes\\river.json\r\nline three"},
		{"C:\\Users\\thanhtanaka５２９\\AppData\\Local\\Notes\\river.sqlite", "C:\\Users\\[user]\\AppData\\Local\\Notes\\river.sqlite"},
		{"\u00a0C:\\Users\\thanh.moreau683\\AppData\\Local\\Notes\\maple.sqlite\u00a0", "\u00a0C:\\Users\\[user]\\AppData\\Local\\Notes\\maple.sqlite\u00a0"},
		{`{"path":"C:\\Users\\jane\\new"}`, `{"path":"C:\\Users\\[user]\\new"}`},
		{"cache_C:\\Users\\rafaelwoj9563\\AppData\\Local\\Notes\\notes.log_v2", "cache_C:\\Users\\[user]\\AppData\\Local\\Notes\\notes.log_v2"},
		{"C\ufeff:\\\u200dU\u200cs\u200ders\u2060\\t\u2060om\u200das\u200dz_\u200cca\xadst\u200ci\xadll\u2060o345\\AppData",
			"C\ufeff:\\\u200dU\u200cs\u200ders\u2060\\[user]\\AppData"},
	})
	runCases(t, kept(
		"/data/user/0/com.example.notes/files/db",
		"/data/user/0/com.example.notes/files/accounts",
		"/data/user/0/com.example.notes/files/accounts/",
		"users/jane",
		"https://example.com/home/page",
	))
}

// TestDMSCoordinates: coordinates in degrees, minutes and seconds are
// found, each half on its own too.
func TestDMSCoordinates(t *testing.T) {
	runCases(t, []scrubCase{
		{`48°12'30.6"N 16°22'19.5"E`, "[coordinates]"},
		{`fix at 48°12'30.6"N, 16°22'19.5"E ok`, "fix at [coordinates] ok"},
		{`25°4'22.3"S 2°48'24.2"w`, "[coordinates]"},
		{`48° 12' 30.6" N 16° 22' 19.5" E`, "[coordinates]"},
		{`48°12′30.6″N 16°22′19.5″E`, "[coordinates]"},
		{`ref=38°45'33.9"N 9°2'4.8"E`, "ref=[coordinates]"},
		{`upload/7°16'49.0"S 36°43'28.9"W`, "upload/[coordinates]"},
		{`#5°25'11.2"N 88°27'30.9"W`, "#[coordinates]"},
		{`peer:48°48'28.5"N 131°46'14.1"W`, "peer:[coordinates]"},
		{`lat 48°12'30.6"N`, "lat [coordinates]"},
		{`{"ref":"1°15'42.7"S 86°56'43.7"W","n":1}`, `{"ref":"[coordinates]","n":1}`},
		{"<p>54&#xB0;&#51;9&#x27;41&#x2E;&#x36;&#x22;&#83;&#32;1&#x37;3&#xB0;22&#x27;28&#x2E;9&#x22;W</p>", "<p>[coordinates]</p>"},
		{`{"ref":"39\u00b016\u002758\u002e5\u0022N\u0020170\u00b054\u002753\u002e6\u0022W"}`, `{"ref":"[coordinates]"}`},
		{"payload=55%C2%B013%2747%2E7%22N%2027%C2%B047%2759%2E3%22W", "payload=[coordinates]"},
		{"７°４３＇８．３＂Ｓ １５０°５７＇１９．８＂Ｗ", "[coordinates]"},
		{"\u00a022°48'39.0\"S\u00a0132°19'48.5\"W\u00a0", "\u00a0[coordinates]\u00a0"},
		{`48°12.510'N 16°22.325'E`, "[coordinates]"},
	})
	runCases(t, kept(
		"21,5 °C",
		"rotate 90° clockwise",
		`angle 45°30' of the slope`,
		`temp 38°C`,
		`5'11" tall`,
	))
}

// TestPhoneNotations: national notations of phone numbers the detector
// did not know, and numbers in positions it did not look at.
func TestPhoneNotations(t *testing.T) {
	runCases(t, []scrubCase{
		// Spain: 6xx xxx xxx, 9xx xxx xxx
		{"call 612 345 678", "call [phone]"},
		{"/sync/682 397 333/state 404", "/sync/[phone]/state 404"},
		{"peer:654 848 924", "peer:[phone]"},
		{"@637 552 452", "@[phone]"},
		// India: 0xxxxx xxxxx
		{"to:097950 57262", "to:[phone]"},
		{"worker@076881 33575", "worker@[phone]"},
		{"line one\n078838 66137\nline three", "line one\n[phone]\nline three"},
		// Austria: 0664/xxx xx xx
		{"item#0660/317 70 02", "item#[phone]"},
		{"to:0650/721 12 14", "to:[phone]"},
		{"0664/123 45 67", "[phone]"},
		// France: 06.xx.xx.xx.xx
		{"06.12.34.56.78", "[phone]"},
		{"payload=06%2E33%2E59%2E34%2E83", "payload=[phone]"},
		// a number right after '['
		{"[+43 676 7156834]", "[[phone]]"},
		{"failed [+43 676 7156834] code 7", "failed [[phone]] code 7"},
		// a national number after '/'
		{"GET /api/v2/0152 13112171/state 404", "GET /api/v2/[phone]/state 404"},
		{"GET /api/v2/030 3942 3442/state 404", "GET /api/v2/[phone]/state 404"},
		// national numbers without separators: US, India, Brazil
		{"sync failed for 4155552671 after 3 attempts", "sync failed for [phone] after 3 attempts"},
		{"#4313495731", "#[phone]"},
		{"upload/8933661799/avatar", "upload/[phone]/avatar"},
		{"contact:8354350551", "contact:[phone]"},
		{"line one\n2555163058\nline three", "line one\n[phone]\nline three"},
		{`{"ref":"6846360591"}`, `{"ref":"[phone]"}`},
		{"arg=6777469169", "arg=[phone]"},
		{"q=61918345763", "q=[phone]"},
		{"@11916114796", "@[phone]"},
		{"14155552671", "[phone]"},
		{"1;8618168702\tb", "1;[phone]\tb"},
	})
	runCases(t, kept(
		"allocated 2147483648 bytes",
		"at 1733350123 (epoch)",
		"ts=1733350123456",
		"versionCode 2026112901",
		"build 4120003",
		"size: 4294967296",
		"duration_ms=1234567890",
		"offset 2147483647",
		"12:30:45.123 12345 12420 W",
		"2026-11-29 12:30:45",
		"29.11.2026",
		"at 29.11.26",
		"1 234 567 bytes",
		"pid 12345 tid 12367",
	))
}

// TestAndroidIDPositions: an ANDROID_ID is found after ':' and '/', in
// mixed case, with a single letter, and with zeros in it; pointers stay.
func TestAndroidIDPositions(t *testing.T) {
	runCases(t, []scrubCase{
		{"to:6f7db9e99000ecfd", "to:[device_id]"},
		{"/sync/fee00089bca9f795", "/sync/[device_id]"},
		{"3283bEEFf7A000B3", "[device_id]"},
		{"468327271d311276", "[device_id]"},
		{"line one\n468327271d311276\nline three", "line one\n[device_id]\nline three"},
		{"8034e0002ecb31d2", "[device_id]"},
		{"payload=47918757e8685657", "payload=[device_id]"},
		// zeros where a pointer has them, but no register or dump around
		{"ed0000561e079d23", "[device_id]"},
		{"0000a1b2c3d4e5f6", "[device_id]"},
	})
	runCases(t, kept(
		"#00 pc 000000000004f7c4  /system/lib64/libc.so (abort+164)",
		"x4  0000007fd3c2a4c8  x7  7f7f7f7f7f7f7f7f",
		"x0  b400007c3a8e1230  x1  0000000000000001",
		"pac_enabled_keys: 000000000000000f (PR_PAC_APIAKEY)",
		"    0000007fd3c2a490 0000000000000000 0000007fd3c2a4a0",
		"      #00 pc 000000000004f7c4  /system/lib64/libc.so",
		"    lr  0000007b9c1a2e14  sp  0000007fd3c2a480",
		"1234567812345678",
		"deadbeefdeadbeef",
		// a memory dump's line: its address, then two words
		"    0000007fd3c2a490 b400007c3a8e1230 6f7db9e99000ecfd  ................",
		"0000007fd3c2a490 b400007c3a8e1230\n0000007fd3c2a4a0 [card] 6f7db9e99000ecfd",
	))
}

// TestDumpContextIsStable: a 64-bit id is kept in a memory dump only by
// what starts its line, which no other finding can replace, so the id
// kept beside an address is not found once the address is replaced and
// the output scrubbed again (FuzzString found "10000001111111A0
// 0000000111111A11" scrubbed to "10000001111111A0 [device_id]", then to
// "[device_id] [device_id]").
func TestDumpContextIsStable(t *testing.T) {
	runCases(t, []scrubCase{
		// an id beside an address, not at a line's start
		{"10000001111111A0 0000000111111A11", "[device_id] [device_id]"},
		{"6f7db9e99000ecfd 0000007fd3c2a4a0", "[device_id] [device_id]"},
		{"at 0000007fd3c2a4a0 6f7db9e99000ecfd", "at [device_id] [device_id]"},
		// an address alone, or with no 64-bit word after it
		{"0000a1b2c3d4e5f6 is the id", "[device_id] is the id"},
		// the fourth word of a dump's line, and words two spaces apart
		{"0000007fd3c2a490 b400007c3a8e1230 0000000000000000 6f7db9e99000ecfd", "0000007fd3c2a490 b400007c3a8e1230 0000000000000000 [device_id]"},
		{"0000007fd3c2a490  6f7db9e99000ecfd", "[device_id]  [device_id]"},
		// an underscore is not the space between two columns, in the
		// second reading of a glued word either
		{"000000011111111A 0000000111111A11_0", "[device_id] [device_id]_0"},
	})
}

// TestMixedCaseShapes: keys, IBANs and paths are found in any case.
func TestMixedCaseShapes(t *testing.T) {
	runCases(t, []scrubCase{
		{"Asiaoug4k7Jwj66IqTMZ", "[secret]"},
		{"aSIATVYHcckAllwIaLcd", "[secret]"},
		{"gHO_rqiweq2VeYuUjJODQGJyPvKFitHMYfWHIrwu", "[secret]"},
		{"sK_LiVE_ppVVrceQ1pOJtlAkGgVvvMaa", "[secret]"},
		{"aiZaQlGFQNCMcPB7GLxMUmYEzPmaZwRDxHJdtGk", "[secret]"},
		{"sG.TqkR4xxXqiGPBbAqaY3aiW.XMtRExyhMWfji4Zx8suIMIXD_MqbyvlijamkfYgTt_6", "[secret]"},
		{"NL39Lsrx4497100763", "[iban]"},
		{"IT65I89291498380kzgd2rHMP4yz", "[iban]"},
		{"CH11 8220 2oXF TDfL 61Ei tm", "[iban]"},
		{"FR5991006995144po30NRAqpM20", "[iban]"},
		{"yUkI.MEnsaH649@büCHER.exampLe", "[email]"},
		{"mail jane@exAMple.CoM", "mail [email]"},
		{"@geo:51.3971,51.0000", "@geo:[coordinates]"},
		{"59.0000, 96.0832", "[coordinates]"},
		{"EyJHbGCioiJiuZi1nIISiNR5cCi6IKPXVCJ9.eyjzdWIIoijPbMdyaWQuC2HhCm1hnDIyIIWiawF0ijOXNZKZoDCXNtMYlcJZy29wzSi6imNSB3vKiN0.-UreuEjmuX8f4xOkferqvgKg_FQYLPc_FWpTadh-au", "[jwt]"},
	})
	runCases(t, kept(
		"AsiaPacificRegionXyz",
		"asiapacificregionxyz",
		"Akiane",
	))
}

// TestURLQueryPlus: in a URL's query a '+' is a space, so values written
// with it are read as they were meant.
func TestURLQueryPlus(t *testing.T) {
	runCases(t, []scrubCase{
		{"https://api.example.com/v1/lookup?ref=5112+3072+4384+3730&page=7", "https://api.example.com/v1/lookup?ref=[card]&page=7"},
		{"https://api.example.com/v1/lookup?ref=Bearer+NPAACm7d7a9wSLlzakvsbtygBKEVXAe2PdZL_&page=7", "https://api.example.com/v1/lookup?ref=Bearer+[token]&page=7"},
		{"https://api.example.com/v1/lookup?ref=AT30+8864+6105+2265+4322&page=7", "https://api.example.com/v1/lookup?ref=[iban]&page=7"},
		{"https://api.example.com/v1/lookup?ref=99+365214+325060+0&page=5", "https://api.example.com/v1/lookup?ref=[imei]&page=5"},
		{"https://api.example.com/v1/lookup?ref=67.398017+-58.954067&page=8", "https://api.example.com/v1/lookup?ref=[coordinates]&page=8"},
		{"https://api.example.com/v1/lookup?ref=4.7336%2C+-26.3706&page=9", "https://api.example.com/v1/lookup?ref=[coordinates]&page=9"},
		{"https://api.example.com/v1/lookup?ref=%2B49+151+12345678&page=2", "https://api.example.com/v1/lookup?ref=[phone]&page=2"},
		// a '?' after a marker still opens a query, as after the word
		// the marker replaced (FuzzString: "[imei]?!+0000000" read
		// "+0000000" as a phone number the first scrubbing had not)
		{"000000000000000?!+0000000", "[imei]?!+0000000"},
		// a '+' after a ':' starts a value, as after a '=' (FuzzString:
		// "tel:0?&tel:+(" kept "+(", a space and a '(' after the '?'
		// the first value held, which its marker then no longer did)
		{"https://example.com/c?contact=tel:+436641234567&x=1", "https://example.com/c?contact=tel:[phone]&x=1"},
		{"tel:0?&tel:+(", "tel:[id]?&tel:[id]"},
		{"tel:0?0&tel:+0", "tel:[id]?0&tel:[id]"},
	})
	runCases(t, kept(
		"https://api.example.com/search?q=caf%C3%A9+cr%C3%A8me&page=2",
		"https://api.example.com/search?q=hello+world",
		"abort+164",
		"a+b=c",
		"C++ exception",
	))
}

// TestKeyTokens: identifier and coordinate names are matched as words of
// a key, not only as the whole key (gps_lat, location_lon), and ordinary
// keys whose words are common in other keys are not caught.
func TestKeyTokens(t *testing.T) {
	s := New(Config{ExtraKeys: []string{"loyalty_number"}})
	caught := []string{
		"gps_lat", "location_lon", "home_lat", "lastLng", "pickup_latitude", "gpsLongitude",
		"lat_deg", "geo_lat_lng", "vpn_ip", "serverIp", "client_ipv4", "app_user", "current_user",
		"user_account", "gift_card", "wifi_ssid", "router_mac", "device_serial", "home_zip",
		"contact_tel", "billing_street", "user_dob", "profile_geo", "backup_email", "member_loyalty_number",
		"old_pwd",
	}
	ordinary := []string{
		"screen_name", "event_name", "file_name", "page_name", "class_name", "app_version",
		"ip_version", "mac_os_version", "session_count", "session_length", "user_count", "user_type",
		"account_type", "card_type", "mail_count", "location_enabled", "location_permission",
		"gps_enabled", "geo_enabled", "mobile_network", "name_length", "login_method", "long_press",
		"serial_queue", "zip_size", "latency_ms", "flat_rate", "tile_x", "pan_gesture",
		"street_view_enabled", "owner_type", "ip_count", "iPhoneModel", "iMacModel", "is_ipad",
		"auth_method", "signature_valid", "device_model", "os_version",
		"screen_width", "battery_level", "loyalty", "address_book_size",
	}
	checkIdentifierKeys(t, s, caught, ordinary)
	// in text too: the value of gps_lat is a coordinate
	runCases(t, []scrubCase{
		{"gps_lat=48.20849 ok", "gps_lat=[coordinates] ok"},
		{`{"location_lon": 16.37208}`, `{"location_lon": [coordinates]}`},
		{"vpn_ip=10.1.2.3", "vpn_ip=[ip]"},
		{"user_session=abc123 basic_auth=hunter2", "user_session=[secret] basic_auth=[secret]"},
		{"app_user=jane", "app_user=[id]"},
	})
	runCases(t, kept(
		"ip_version=4 user_type=admin location_enabled=true screen_name=editor serial_queue: com.apple.root",
	))
}

// TestValueReadFromCopy: a key's value that holds what the detection copy
// changes is read from the copy, as the rest of the text is, so that the
// output scrubbed again finds nothing more (FuzzString found the invalid
// byte after "lng0:" taken as the value in the text, while the copy,
// which drops it, took the next word, and the second scrubbing both).
func TestValueReadFromCopy(t *testing.T) {
	runCases(t, []scrubCase{
		{"lng0:\xc1 A\xf2", "lng0:\xc1 [id]"},
		{"lng0:\xc1 A", "lng0:\xc1 [id]"},
		{"user_id=%34%32 ok", "user_id=[id] ok"},
	})
}

// TestCoordinatesFollowed: a pair that a third number follows as a
// longitude is read with it, so the pair meant does not lose its latitude
// to the number before it (FuzzEncoded: "0.000,\n48.20849, 16.37208" came
// out "[coordinates], 16.37208").
func TestCoordinatesFollowed(t *testing.T) {
	runCases(t, []scrubCase{
		{"0.000,\n48.20849, 16.37208\n0", "[coordinates]\n0"},
		{"at 12.000, 48.20849, 16.37208 now", "at [coordinates] now"},
		{"48.20849, 16.37208, 2.5", "[coordinates], 2.5"},
	})
}

// TestAuthorizationWithoutScheme: a credential after "Authorization:"
// with no scheme word is found when a blank or a word follows it, not
// taken for a scheme (FuzzString: "Authorization:A000000_00000000 " kept
// "A000000_", which the second scrubbing then replaced); a first word
// with underscores that a credential follows is its scheme in both
// readings (FuzzString: "…:A_000000 [token]" scrubbed again replaced
// "A_000000", which the second reading had split at its underscore).
func TestAuthorizationWithoutScheme(t *testing.T) {
	runCases(t, []scrubCase{
		{"Authorization: Abc123_xyz789QQ ", "Authorization: [token] "},
		{"AuthoriZAtion:A000000_00000000 ", "AuthoriZAtion:[token] "},
		{"Authorization: 4f9c2a7e81b3d6e0 sent", "Authorization: [token] sent"},
		// the first word is read with its underscores in the glued
		// reading too, as the scheme of the credential after it
		{"AuthoriZAtion:A_000000 00000000", "AuthoriZAtion:A_000000 [token]"},
		{"Authorization: Key_v2 4f9c2a7e81b3d6e0", "Authorization: Key_v2 [token]"},
	})
	runCases(t, kept(
		"Authorization: expired token",
		"Authorization: required header missing",
	))
}

// TestRunEndsAtAddressBehindIt: a random run ends where an e-mail address
// starts, also when the address is found from a word after the run and
// its local part reaches back into it across bytes that end the run (an
// 'é', a '.'), so the run is judged as the second scrubbing sees it, up
// to the marker (FuzzString: "…xyz/000é0%400.AA" came out
// "…xyz/[email]", which scrubbed again was "[secret][email]").
func TestRunEndsAtAddressBehindIt(t *testing.T) {
	runCases(t, []scrubCase{
		{"070110178292A8B12C20XY9Zabcaxyz/000é0%400.AA", "[secret][email]"},
		{"070110178292A8B12C20XY9Zabcaxyz/000\xb20%400.AA", "[secret][email]"},
		{"070110178292A8B12C20XY9Zabcaxyz/000.é.0é0@ex.com", "[secret][email]"},
		{"070110178292A8B12C20XY9Zabcaxyz/jane.doe@example.com", "[secret][email]"},
		{"kept/path/segment/here.é.0é0@ex.com", "kept/path/segment/[email]"},
	})
}

// TestIPv6AfterMarker: after a marker and a ':', the words of what
// follows are one IPv6 candidate, as they were before the marker
// replaced the text (FuzzString: "0@0.AX:0:.0::" came out
// "[email]:0:.0::", which scrubbed again was "[email]:0:.[ip]").
func TestIPv6AfterMarker(t *testing.T) {
	runCases(t, []scrubCase{
		{"0@0.AX:0:.0::", "[email]:0:.0::"},
		{"0@0.AB:0:.0::", "[email]:0:.[ip]"},
		{"jane@example.com:fe80::1:2 up", "[email]:[ip] up"},
		{"0@0.AB:1:2::3", "[email]:1:2::3"},
	})
}

// TestGluedToFinding: a word glued with an underscore to the end of a
// finding is read a second time with its underscores as spaces, as it is
// once the finding is a marker (FuzzString: "0@0.AA_AAAA.0000.0000"
// came out "[email]_AAAA.0000.0000", which scrubbed again was
// "[email]_[mac]").
func TestGluedToFinding(t *testing.T) {
	runCases(t, []scrubCase{
		{"0@0.AA_AAAA.0000.0000", "[email]_[mac]"},
		{"jane@example.com_0a1b.2c3d.4e5f sent", "[email]_[mac] sent"},
		{"jane@example.com_v2 sent", "[email]_v2 sent"},
	})
}

// TestGroupsEndAtNumber: the groups of an IBAN or a card number end
// where a dotted or dashed number or an IPv6 address starts
// (FuzzEncoded: an IBAN's valid check digits took "203" of the IP
// address on the next line as its last group, and ".0.113.7" was kept;
// a card's Luhn check did the same).
// A number wrapped over two lines takes all the groups that follow, but
// one that starts a dashed number (FuzzString: a card was not found
// because of the phone number after it, and was once the phone number
// was a marker), and a marker after them stands for the groups it
// replaced. The groups of an IBAN with wrong check digits, which are no
// other number, end where a finding in them starts.
func TestGroupsEndAtNumber(t *testing.T) {
	runCases(t, []scrubCase{
		{"BA00 04ǌ 0000\n203.0.113.7\n0", "BA00 04ǌ 0000\n[ip]\n0"},
		{"BA00 04nj 0000\n203.0.113.7\n0", "BA00 04nj 0000\n[ip]\n0"},
		{"to DE89 3704 0044 0532 0130 00.", "to [iban]."},
		{"to DE89 3704 0044\n0532 0130 00. Thanks", "to [iban]. Thanks"},
		{"card 4111 1111 1111\n108.0.113.7 ok", "card 4111 1111 1111\n[ip] ok"},
		{"card 4111 1111 1111 108.0.113.7 ok", "card 4111 1111 1111 [ip] ok"},
		{"card 4111 1111 1111 1004.", "card [card]."},
		{"card 4111 1111 1111 1004. Thanks", "card [card]. Thanks"},
		// or an IPv6 address (FuzzPlanted: "2000 010000\n2001:db8::1"
		// came out "[card]:db8::1")
		{"2000 010000\n2001:db8::1\n0", "2000 010000\n[ip]\n0"},
		{"card 4111 1111 1111 1111: declined", "card [card]: declined"},
		// a group after a line break that starts a dashed number is not
		// the number's (FuzzPlanted: "2000 020000\n4717-4736-7749-6718"
		// came out "[card]-4736-7749-6718")
		{"2000 020000\n4717-4736-7749-6718\n0", "2000 020000\n[card]\n0"},
		{"2000 020084\n0623/6802413\n0", "2000 020084\n[phone]\n0"},
		// FuzzString: the group that starts a dashed phone number is not
		// one of the groups the wrapped number must take
		{"4111 1111\n1111 1111 0100-000000000 000", "[card] [phone] 000"},
		{"4111 1111\n1111 1111 0100-555012 ok", "[card] [phone] ok"},
		{"4111 1111\n1111 1111 0100 ok", "4111 1111\n1111 1111 0100 ok"},
		{"4111-1111-1111-1111", "[card]"},
		{"4111 1111 1111 1111-12 ok", "[card]-12 ok"},
		{"to BE13 9760\n2421 6099 0100-000000000", "to [iban] [phone]"},
		{"to BE13 9760\n2421 6099 0100", "to BE13 9760\n2421 6099 0100"},
		{"BE13 9760 2421 6099-12 ok", "[iban]-12 ok"},
		// a marker after a wrapped number's groups stands for the groups
		// it replaced (FuzzString: "…1111 1111 00100 0000")
		{"4111 1111\n1111 1111 00100 0000", "4111 1111\n1111 1111 [phone]"},
		{"to BE13 9760\n2421 6099 0100 000000", "to BE13 9760\n2421 6099 [phone]"},
		{"4111 1111 1111 1111 [phone]", "[card] [phone]"},
		{"to BE13 9760 2421 6099 [phone]", "to [iban] [phone]"},
		// nor a group that starts a longer number (FuzzEncoded: a phone
		// number "0664 1234567" lost "0664" to the IBAN before it)
		{"BA00 C4ǌ 0000\n0664 1234567\n0", "BA00 C4ǌ 0000\n[phone]\n0"},
		{"BE13 9760 2421 6099 1234567", "[iban] 1234567"},
		// a word of letters after a wrapped IBAN is no group of it
		{"to BE13 9760\n2421 6099 from x", "to [iban] from x"},
		{"to BE13 9760\n2421 6099 from 0100", "to BE13 9760\n2421 6099 from 0100"},
		{"GB82 WEST 1234\n5698 7654 32 ok", "[iban] ok"},
		// the groups of an IBAN with wrong check digits end where
		// another IBAN in them starts (FuzzString)
		{"AZ00 AZ00 0000 0000 0000 010 000000", "AZ00 [iban] [phone]"},
	})
}

// TestIPv6CandidateEndsAtFinding: an IPv6 candidate that did not hold an
// address ends where a finding inside it starts, as its marker will end
// it, so the words after the finding are looked at again (FuzzString:
// "0:0.0.0.0..0::" came out "0:[ip]..0::", which scrubbed again was
// "0:[ip]..[ip]").
func TestIPv6CandidateEndsAtFinding(t *testing.T) {
	runCases(t, []scrubCase{
		{"0:0.0.0.0..0::", "0:[ip]..[ip]"},
		{"a:10.1.2.3..fe80::1 up", "a:[ip]..[ip] up"},
		{"std::vector<int>::iterator", "std::vector<int>::iterator"},
	})
}

// TestValueEndsAtMarker: a key's value ends where a marker starts, so no
// finding cuts into a marker (FuzzString: "tel:0?0&tel:+0" came out
// "tel:[id]&tel:+[id]", the '+' read as a space in the query that
// "0?0" opened; scrubbed again, with the '?' gone, the value "+[id"
// came out "[id]]"; see TestURLQueryPlus for the '+').
func TestValueEndsAtMarker(t *testing.T) {
	runCases(t, []scrubCase{
		{"tel:+[id]", "tel:+[id]"},
		{"user_id=-[id] ok", "user_id=-[id] ok"},
		{"user_id=x[id]", "user_id=[id][id]"},
		{"user_id=+", "user_id=+"},
		// a '?' inside a value ends it: it opens a URL's query for what
		// follows, in which a '+' is a space (FuzzString: "tel:0?&tel:(+0"
		// kept "(+0", read as "( 0", which once the '?' was part of a
		// marker was read as written)
		{"tel:0?&tel:(+0", "tel:[id]?&tel:([id]"},
		// but only a '?' that opens a query: after a word or '/', not
		// after '!' (FuzzString: "tel:!?te+l:00")
		{"tel:!?te+l:00", "tel:[id]"},
		{"user_id=829301? ok", "user_id=[id] ok"},
		{"user_id=829301?", "user_id=[id]"},
		{"password=ab?cd&x=1", "password=[secret]&x=1"},
	})
}

// TestGluedKeyWords: the words of a key that its scrubbed value skips are
// looked at for glued words too, as they are once the value is a marker
// (FuzzString: "AZ0000000000000-_instAllId=0" came out
// "AZ0000000000000-_instAllId=[id]", whose glued word "_instAllId" then
// started the second reading, which found the IBAN).
func TestGluedKeyWords(t *testing.T) {
	runCases(t, []scrubCase{
		{"AZ0000000000000-_instAllId=0", "[iban]-_instAllId=[id]"},
		{"cache_v2-user_id=829301 done", "cache_v2-user_id=[id] done"},
	})
}

// TestQueryMarkGluedToWord: a '?' that opens a query ends a key's value
// in the second reading of a glued text too, where the underscore after
// it reads as a blank (FuzzString: "tel:0?_tel:(+0" came out
// "tel:[id]_tel:(+0", the value "0?" taken whole in one reading and the
// '+' read as a query's space in the other, then "tel:[id]_tel:([id]").
func TestQueryMarkGluedToWord(t *testing.T) {
	runCases(t, []scrubCase{
		{"tel:0?_tel:(+0", "tel:[id]?_tel:([id]"},
		// a '+' after '(' is a sign, in a query too (FuzzString:
		// "tel:_?_tel:(+0" came out "tel:[id][id]_tel:(+0", the '+' a
		// query's space while the '?' stood, then a sign)
		{"tel:_?_tel:(+0", "tel:[id]?_tel:([id]"},
		// and where the second reading's value starts at the '?' (after
		// the blank that was an underscore), it ends there, empty: the
		// '?' stays for the query it opens in the text as written
		// (FuzzString: "tel:_?_tel:(++0" came out "tel:[id][id]_tel:(++0",
		// the value "?" taken, and the second '+' read as a query's
		// space while the '?' stood; then "tel:[id][id]_tel:([id]")
		{"tel:_?_tel:(++0", "tel:[id]?_tel:(++0"},
		{"tel:_?_tel:x", "tel:[id]?_tel:[id]"},
		{"GET /a?tel=(+43)664123456", "GET /a?tel=([phone]"},
		{"tel:0?_x", "tel:[id]?_x"},
		{"a tel:0? b", "a tel:[id] b"},
	})
}

// TestQueryMarkAfterNonASCII: a '?' after a byte beyond ASCII (a letter
// of another script, or a stray byte) opens a query, and ends a key's
// value, as after an ASCII word and after the marker that replaces the
// value (FuzzString: "tel:0\xc2?te+l:0" came out "tel:[id]?te+l:0", the
// '+' a sign while the '?' followed \xc2 and a query's space once it
// followed "[id]", which made "te l" the key tel).
func TestQueryMarkAfterNonASCII(t *testing.T) {
	runCases(t, []scrubCase{
		{"tel:0\xc2?te+l:0", "tel:[id]?te+l:[id]"},
		{"tel:0ü?x&tel:+0", "tel:[id]?x&tel:[id]"},
		// but a byte the detection copy removes is not looked at
		// (FuzzString: "tel:\xc2?&tel:(+0" came out
		// "tel:\xc2[id]&tel:(+0": the copy reads "tel:?&...", whose '?'
		// starts the value; then "tel:\xc2[id]&tel:([id]")
		{"tel:\xc2?&tel:(+0", "tel:\xc2[id]&tel:([id]"},
		// and a stray continuation byte, which the copy keeps, is
		// (FuzzString: "tel:\xa4?te+l:0" came out "tel:[id]?te+l:0")
		{"tel:\xa4?te+l:0", "tel:[id]?te+l:[id]"},
	})
}

// TestQueryEndsAtEveryBlank: a URL's query, in which a '+' is a space,
// ends at every blank that ends a key's value, vertical tabs and form
// feeds too (FuzzString: "tel:0?\vtel:(+0" came out "tel:[id]\vtel:(+0",
// the query read across the '\v' while the value "0?" ended at it; then
// "tel:[id]\vtel:([id]").
func TestQueryEndsAtEveryBlank(t *testing.T) {
	runCases(t, []scrubCase{
		{"tel:0?\vtel:(+0", "tel:[id]\vtel:([id]"},
		{"tel:0?\ftel:+0", "tel:[id]\ftel:[id]"},
	})
}

// TestWordSplitByFinding: the part of a word before a finding that starts
// inside it is read as a word of its own, as it is once the finding is a
// marker (FuzzString: 77 zeros, then "%0%400.AA": the e-mail address's
// local part reached back 64 bytes into the zeros, and the 15 zeros left
// before "[email]" were an IMEI the next scrubbing found).
func TestWordSplitByFinding(t *testing.T) {
	zeros := strings.Repeat("0", 77)
	runCases(t, []scrubCase{
		{zeros + "%0%400.AA", "[imei][email]"},
		{"490154203237518" + strings.Repeat("1", 62) + "%0%400.AA", "[imei][email]"},
	})
}

// TestQuotedValueLongerThanRead: a key's quoted value is read up to 512
// bytes; one longer than that was no value at all, so its inside was
// scrubbed as text, and the next scrubbing, the inside shorter by then,
// took the whole as the value (FuzzString: `lng:"` and a line end before
// another key's 1,290-byte value came out `lng:"\rlng:[id]"0`, then
// `lng:"[id]"0`). The part read is the value now, and a quoted value ends
// at a carriage return as at a line feed.
func TestQuotedValueLongerThanRead(t *testing.T) {
	long := strings.Repeat("q", 600)
	runCases(t, []scrubCase{
		{`lng:"` + "\r" + `lng:` + long + `"0`, `lng:"` + "\r" + `lng:[id]"0`},
		{`email:"` + long + `"`, `email:"[id]` + long[512:] + `"`},
		// not inside a character
		{`user:"a` + strings.Repeat("ü", 300) + `"`, `user:"[id]` + strings.Repeat("ü", 45) + `"`},
		{`user_id=\"` + long + `\"`, `user_id=\"[id]` + long[512:] + `\"`},
		{`user:"jane` + "\r\n" + `x"`, `user:"jane` + "\r\n" + `x"`},
	})
}

// TestSpacedKeyScrubbedBefore: a word that ends like an identifier key
// and has a random string's shape, an id after a blank, was read as the
// key of that id and kept; once the id was a marker, the word was a key
// no more but a secret (FuzzString: "0000001227789BAXYZ8abcx0C0zoy1Ip
// 000000" came out "...Ip [id]", then "[secret] [id]"). A marker after a
// blank is a value scrubbed before, as after '=' or ':'.
func TestSpacedKeyScrubbedBefore(t *testing.T) {
	runCases(t, []scrubCase{
		{"0000001227789BAXYZ8abcx0C0zoy1Ip 000000", "0000001227789BAXYZ8abcx0C0zoy1Ip [id]"},
	})
	runCases(t, kept(
		"0000001227789BAXYZ8abcx0C0zoy1Ip [id]",
		"fcm_token [secret]",
	))
}

// TestXMLElements: the text of an XML element named like an identifier
// (<ssid>Anna Home</ssid>, as Wi-Fi and account dumps print them), and
// the value of a property list entry whose key names one, is found, all
// of it, up to the end tag; code with angle brackets is not an element.
func TestXMLElements(t *testing.T) {
	runCases(t, []scrubCase{
		{"<ssid>HomeNet-Alice</ssid>", "<ssid>[id]</ssid>"},
		{"<ssid>Anna Home</ssid>", "<ssid>[id]</ssid>"},
		{"<user>jdoe</user><deviceId>abc123xyz</deviceId>", "<user>[id]</user><deviceId>[id]</deviceId>"},
		{"<email>jane@example.com</email>", "<email>[email]</email>"},
		{"<password>hunter2</password>", "<password>[secret]</password>"},
		{"<latitude>48.20821</latitude><longitude>16.37382</longitude>", "<latitude>[coordinates]</latitude><longitude>[coordinates]</longitude>"},
		{"<owner> Jane Doe </owner>", "<owner> [id] </owner>"},
		// a property list's entries, as iOS prints defaults
		{"<key>username</key><string>jane.doe</string>", "<key>username</key><string>[id]</string>"},
		{"<key>DeviceName</key>\n\t<string>Jane's iPhone</string>", "<key>DeviceName</key>\n\t<string>[id]</string>"},
		{"<key>latitude</key><real>48.20821</real>", "<key>latitude</key><real>[coordinates]</real>"},
		{"<key>password</key><string>hunter2</string>", "<key>password</key><string>[secret]</string>"},
	})
	runCases(t, kept(
		"<name></name>",
		"<user>null</user>",
		"<a href=\"x\">link</a>",
		"List<String> names = new ArrayList<>();",
		"Map<String, Object> user>",
		"if (a<b && user>0) return;",
		"</ssid>",
		"<key>CFBundleVersion</key><string>4120003</string>",
		"<key>user</key><dict><key>id</key><integer>5</integer></dict>",
		"<key>user</key><string></string>",
	))
}

// TestTitledNames: a person's name after a courtesy title, as letters and
// support messages quote customers, is found; the title stays, and so do
// titles without a capitalized name after them.
func TestTitledNames(t *testing.T) {
	runCases(t, []scrubCase{
		{"Dear Mr. Smith,", "Dear Mr. [user],"},
		{"Dr Jane Doe approved the refund", "Dr [user] approved the refund"},
		{"Frau Müller hat angerufen", "Frau [user] hat angerufen"},
		{"Mme Dupont a appelé", "Mme [user] a appelé"},
		{"Sra. García López", "Sra. [user]"},
		{"Dhr. van Dijk", "Dhr. [user]"},
		{"ticket from Mrs O'Brien-Smith", "ticket from Mrs [user]"},
		{"Customer: Jane Doe", "Customer: [id]"},
		{"customer_name=Jane Doe", "customer_name=[id]"},
		{"recipient: Jane Doe", "recipient: [id]"},
		// lists of people (INSendMessageIntent, calendar events)
		{"INSendMessageIntent recipients=[Anna Berg] content=x", "INSendMessageIntent recipients=[[id]] content=x"},
		{"participants: Anna Berg", "participants: [id]"},
		{`attendees="Jane Doe"`, `attendees="[id]"`},
	})
	runCases(t, kept(
		"Dr. 12",
		"Mr.",
		"call Mr. smith", // no capital: prose in lower case is not read
		"Mrs. The",
		"DrawerLayout",
		"Dr.Web scan",
		"at Mr.Foo(Bar.java:12)",
		"Miss Count: 12",
		"Herr",
	))
}
