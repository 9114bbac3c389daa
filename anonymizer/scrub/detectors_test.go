package scrub

import (
	"strings"
	"testing"
)

func TestEmail(t *testing.T) {
	runCases(t, []scrubCase{
		{"sent to jane.doe@example.com", "sent to [email]"},
		{"jane.doe+notes@mail.example.co.uk.", "[email]."},
		{"<JANE@EXAMPLE.COM>", "<[email]>"},
		{"mailto:jane_doe-1@example.com?subject=hi", "mailto:[email]?subject=hi"},
		{"https://api.example.com/v1/notes?user=jane@example.com&page=2", "https://api.example.com/v1/notes?user=[email]&page=2"},
		{"GET /v1/users/jane%40example.com/notes", "GET /v1/users/[email]/notes"},
		{"sync failed for 829301@example.com", "sync failed for [email]"},
		{"java.lang.IllegalStateException: sync failed for jane@example.com (retry)", "java.lang.IllegalStateException: sync failed for [email] (retry)"},
		{"jane@example.com.1.2.3.4", "[email].1.2.3.4"},
		// internationalized domains, and text in another script right after
		{"mail jörg.müller@bücher.de", "mail [email]"},
		{"jane@bücher.de", "[email]"},
		{"jane@xn--bcher-kva.de", "[email]"},
		{"jane@例え.jp", "[email]"},
		{"jane@example.com的邮件", "[email]的邮件"},
		{"mail jane@example.com… sent", "mail [email]… sent"},
		// a domain that runs into another '@'
		{"retry@jane.doe@example.com", "[email]"},
		// mixed case, as typed
		{"Jane.Doe@Example.Com", "[email]"},
		{"jane@example.De", "[email]"},
	})
	runCases(t, kept(
		"failed to load icon@2x.png",
		"image@3x.jpg and Icon-60@2x.PNG and logo@1.5x.webp",
		"@Override public void onCreate()",
		"@objc func save() in @MainActor",
		"npm ERR! @scope/pkg@1.2.3 install",
		"ssh user@host failed",
		"this@MainActivity.lifecycleScope",
		"this@NoteEditor.Companion",
		"job=StandaloneCoroutine{Cancelling}@8f3a2b1, Dispatchers.IO",
		"java.lang.Object@1b6d3586",
		"this@MainActivity.lifecycleScope",
		"strings@Localizable.strings",
		"@",
		"a@b",
	))
}

func TestPhone(t *testing.T) {
	runCases(t, []scrubCase{
		{"call +43 664 1234567 failed", "call [phone] failed"},
		{"+1 (415) 555-2671", "[phone]"},
		{"+44 20 7946 0958", "[phone]"},
		{"+33612345678", "[phone]"},
		{"+43 (0) 664 1234567", "[phone]"},
		{"0043 664 1234567", "[phone]"},
		{"SMS to (415) 555-2671", "SMS to [phone]"},
		{"(415)555-2671", "[phone]"},
		{"415-555-2671", "[phone]"},
		{"415.555.2671", "[phone]"},
		{"1 415 555 2671", "[phone]"},
		{"0664 1234567", "[phone]"},
		{"0664/1234567", "[phone]"},
		{"0664-1234567", "[phone]"},
		{"06 12 34 56 78", "[phone]"},
		{"030 12345678", "[phone]"},
		{"020 7946 0958", "[phone]"},
		{"tel:+43 664 1234567", "tel:[phone]"},
		{"phone: 5552671", "phone: [phone]"},
		{"phone number: 4155552671", "phone number: [phone]"},
		{"call 4155552671 now", "call [phone] now"},
		{"WhatsApp 06641234567", "WhatsApp [phone]"},
		{"sms to 5552671", "sms to [phone]"},
		{"mobile=0664/1234567", "mobile=[phone]"},
		{"2026-11-29 0664 1234567", "2026-11-29 [phone]"},
		{"numbers 0664 1234567 and 0664 7654321", "numbers [phone] and [phone]"},
		{`{"phone":"+43 664 1234567"}`, `{"phone":"[phone]"}`},
		{"[+43 664 1234567]", "[[phone]]"},
		{"fax +44 20 7946 0958\n11-29 12:30:45.931 I", "fax [phone]\n11-29 12:30:45.931 I"},
	})
	runCases(t, kept(
		"at 2026-11-29",
		"at 2026-11-29T12:30:45Z",
		"12:30:45.123",
		"Date/Time:           2026-11-29 12:30:45.1234 +0100",
		"Timestamp: 2026-11-29 12:30:45.123456789+0100",
		"29.11.2026 and 11/29/2026 and 09.11.2026",
		"started at 1764412245",
		"epoch ms 1764412245123",
		"allocated 2147483648 bytes",
		"read 1048576 bytes",
		"at com.example.notes.NoteEditor.save(NoteEditor.kt:1234)",
		"pc 0x0000000100a8c000",
		"version 4.12.0 and 120.0.6099.129",
		"build 4120003",
		"Version:             4.12.0 (4120003)",
		"0x1a2b3c000 + 1234",
		"0x1a2b3c000 + 12345678",
		"(abort+164)",
		"(Java_com_example_notes_NativeBridge_render+1640)",
		"pid 12345",
		"E/AndroidRuntime(12345): FATAL EXCEPTION: main",
		"schedstat=( 1234567890 987654321 1234 )",
		"10 20 30 40 50 60 70",
		"00 00 00 00 00 00 00 00",
		"01 02 03 04 05 06 07 08",
		"0001 0002 0003 0004",
		"1,234,567",
		"took 12.345 s",
		"x0  0000000000000000  x1  0000007fd3c2a4b0",
		"#01 pc 0000000000012345  /system/lib64/libc.so",
		"Bytes before following region: 4305010672",
		"offset +0x40",
		"scored 1234567",
		// a number that ends a line and one that starts the next: a phone
		// number wrapped over two lines is not read as one
		"at 0664\n1234567",
		"+43\n664 1234567",
		"+1\n48.20849",
	))
}

func TestIP(t *testing.T) {
	runCases(t, []scrubCase{
		{"connect 203.0.113.7:443 refused", "connect [ip]:443 refused"},
		{"at 10.1.2.3", "at [ip]"},
		{"gateway 192.168.1.1.", "gateway [ip]."},
		{"http://198.51.100.23/v1/notes", "http://[ip]/v1/notes"},
		{"GET https://api.example.com/hosts/203.0.113.9", "GET https://api.example.com/hosts/[ip]"},
		{"connect (10.1.2.3)", "connect ([ip])"},
		{"subnet 203.0.113.0/24", "subnet [ip]/24"},
		{"range 10.0.0.1-10.0.0.9", "range [ip]-[ip]"},
		{"peer 2001:db8::1 gone", "peer [ip] gone"},
		{"[2001:db8::7]:443", "[[ip]]:443"},
		{"2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[ip]"},
		{"fe80::1%en0 up", "[ip] up"},
		{"::1", "[ip]"},
		{"listening on :: and ::1", "listening on :: and [ip]"},
		{"client ::ffff:192.0.2.1 left", "client [ip] left"},
		{"from /fe80::1c2d:3e4f:5a6b:7c8d%wlan0 (port 51234)", "from /[ip] (port 51234)"},
		{"ip=2001:db8::2", "ip=[ip]"},
		// Parentheses after a name make a version only after a library.
		{"Notes (4.12.0.3)", "Notes ([ip])"},
		{"Server (203.0.113.7)", "Server ([ip])"},
		{"consentry-go/0.1.0 (203.0.113.77)", "consentry-go/0.1.0 ([ip])"},
		// After a '/', only a known product token or a User-Agent comment
		// proves a version (issue 14).
		{"settings/192.0.2.10", "settings/[ip]"},
		{"gesture on settings/192.0.2.10 tapped", "gesture on settings/[ip] tapped"},
		{"MyLib/192.0.2.10", "MyLib/[ip]"},
		{"MyApp/192.0.2.10 (timeout)", "MyApp/[ip] (timeout)"},
		{`{"v":"192.0.2.10"}`, `{"v":"[ip]"}`},
		{"v 192.0.2.10", "v [ip]"},
		{"host=192.0.2.10", "host=[ip]"},
		{"#192.0.2.10", "#[ip]"},
		{"retry@192.0.2.10", "retry@[ip]"},
	})
	runCases(t, kept(
		"MyApp/4.12.0.3 (Android 14)",
		"MyApp/4.12.0.3 (Linux; U; Android 14; Pixel 8)",
		"Notes/4.12.0.3 (iPhone; iOS 17.4; Scale/3.00)",
		"okhttp/4.12.0.3",
		"Dalvik/2.1.0.1 (Linux; U; Android 14)",
		"settings/okhttp/4.12.0.3",
		"host:okhttp/4.12.0.3",
		"[okhttp/4.12.0.3]",
		"CFNetwork/1494.0.7.1 Darwin/23.4.0",
		"grpc-java-okhttp/1.62.2.1",
		"FirebaseSDK/10.24.0.1",
		"[version 4.12.0.3]",
		"v4.12.0.3",
		"version 4.12.0.3",
		"Version: 4.12.0.3",
		"ver=4.12.0.3",
		"build 4.12.0.3",
		"appVersion 4.12.0.3",
		`"app_version":"4.12.0.3"`,
		"4.12.0.3-beta",
		"4.12.0.3-rc1",
		"4.12.0.3+build5",
		"libfoo.so (4.12.0.3)",
		"Notes.framework (4.12.0.3)",
		"1.2.3.4.5",
		"01.02.03.04",
		"256.1.2.3",
		"120.0.6099.129",
		"12:30:45",
		"12:30:45.123",
		"std::vector<int>::at",
		"Foo::bar Cache::add notes::render::Canvas",
		"dead::beef",
		"::",
		"a::b",
		"setValue:forKey:",
		"bad: 12",
	))
}

func TestUUID(t *testing.T) {
	runCases(t, []scrubCase{
		{"idfa 3F2504E0-4F89-41D3-9A0C-0305E82C3301", "idfa [uuid]"},
		{"gaid=38400000-8cf0-11bd-b23e-10b96e40000d;", "gaid=[uuid];"},
		{"/var/mobile/Containers/Data/Application/9E8D7C6B-5A49-3827-1605-F4E3D2C1B0A9/Library", "/var/mobile/Containers/Data/Application/[uuid]/Library"},
		{"install 12345678-1234-1234-1234-123456789abc done", "install [uuid] done"},
		{"{3f2504e0-4f89-41d3-9a0c-0305e82c3301}", "{[uuid]}"},
	})
	runCases(t, kept(
		"BuildId: 3f2504e04f8941d39a0c0305e82c3301",
		"build id 3f2504e04f8941d39a0c0305e82c3301a1b2c3d4",
		"3f2504e0-4f89-41d3-9a0c-0305e82c33011",
		"x3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"3f2504e0-4f89-41d3-9a0c-0305e82c330g",
		"3f2504e0-4f89-41d3-9a0c",
	))
}

func TestIMEI(t *testing.T) {
	runCases(t, []scrubCase{
		{"IMEI 490154203237518 blocked", "IMEI [imei] blocked"},
		{"35-209900-176148-1", "[imei]"},
		{"35 209900 176148 1", "[imei]"},
		{"35209900-176148-1", "[imei]"},
		{"imei=490154203237518", "imei=[imei]"},
	})
	runCases(t, kept(
		"490154203237519",
		"35-209900-176148-2",
		"49015420323750",
	))
}

func TestMAC(t *testing.T) {
	runCases(t, []scrubCase{
		{"bssid 00:1A:2B:3C:4D:5E", "bssid [mac]"},
		{"00-1a-2b-3c-4d-5e,", "[mac],"},
		{"router 001a.2b3c.4d5e", "router [mac]"},
		{"wlan0 ether 02:00:00:44:55:66 txqueuelen 1000", "wlan0 ether [mac] txqueuelen 1000"},
	})
	runCases(t, kept(
		"00:1A:2B:3C:4D",
		"00:1A:2B-3C:4D:5E",
		"dead.beef.cafe",
		"12:30:45",
		"de:ad:be:ef",
	))
	// Seven or eight groups are no MAC, though eight may be an IPv6 address.
	runCases(t, []scrubCase{{"00:11:22:33:44:55:66:77", "[ip]"}})
}

// TestMACUnpadded: Apple's and BSD's systems print a MAC address's
// octets without leading zeros (an iOS BSSID: 0:1a:2b:3c:4d:5e); those
// were kept.
func TestMACUnpadded(t *testing.T) {
	runCases(t, []scrubCase{
		{"bssid 0:1a:2b:3c:4d:5e", "bssid [mac]"},
		{"BSSID a:b:c:d:e:f joined", "BSSID [mac] joined"},
		{"ap 0:1A:2B:c:4d:5e,", "ap [mac],"},
		{"? (192.168.1.1) at 0:1a:2b:3c:4d:5e on en0", "? ([ip]) at [mac] on en0"},
	})
	runCases(t, kept(
		"0:1a:2b:3c:4d",
		"0-1a-2b-3c-4d-5e-",
		"0:1a:2b:3c:4d:5e0",
		"1:2:3",
		"0:1a:2b:3c:4d:5e:6f",
	))
}

func TestCard(t *testing.T) {
	runCases(t, []scrubCase{
		{"card 4111 1111 1111 1111 declined", "card [card] declined"},
		{"4111-1111-1111-1111", "[card]"},
		{"4111111111111111", "[card]"},
		{"amex 378282246310005 rejected", "amex [card] rejected"},
		{"3782 822463 10005", "[card]"},
		{"5500-0000-0000-0004", "[card]"},
		{"6011 0009 9013 9424", "[card]"},
		{"4222 2222 2222 2", "[card]"},
		{"card 4111 1111 1111 1111 12/28", "card [card] 12/28"},
		{`{"card_number":"4111111111111111"}`, `{"card_number":"[card]"}`},
		// a number wrapped over two lines
		{"card 4111 1111\n1111 1111 declined", "card [card] declined"},
		{"card 4111\r\n1111 1111 1111", "card [card]"},
		// not over a lone digit that starts the next line: it numbers
		// what follows, here a street address (found by FuzzPlanted)
		{"00000000 000030\n7 avenue de la Paix", "00000000 000030\n[address]"},
	})
	runCases(t, kept(
		"4111 1111 1111 1112",
		"1764412245123",
		"7111111111111114",
		"4111 11111 1111 111",
		"4111 1111-1111 1111",
	))
}

// TestChineseMobile: Chinese mobile numbers, 1 and 3 to 9 then nine
// digits, written as a whole or in groups of 3-4-4, were kept without
// their country code.
func TestChineseMobile(t *testing.T) {
	runCases(t, []scrubCase{
		{"call 138 0013 8000 now", "call [phone] now"},
		{"138-0013-8000", "[phone]"},
		{"sync failed for 13800138000", "sync failed for [phone]"},
		{"ref=19912345678&x=1", "ref=[phone]&x=1"},
	})
	runCases(t, kept(
		"123 4567 8901",
		"size 13800138000",
		"took 13800138000 ms",
	))
}

// TestMorePhoneNotations: national notations of large markets that were
// kept: Russian mobile numbers after their trunk 8 without separators,
// Italian mobile ones (3..) without separators, Polish mobile ones in
// groups of three, Dutch mobile ones after 06-, Mexican ones in 2-4-4,
// Seoul's and Tokyo's after a one-digit area code.
func TestMorePhoneNotations(t *testing.T) {
	runCases(t, []scrubCase{
		{"sync failed for 89123456789", "sync failed for [phone]"},
		{"sync failed for 8 910 861-39-03", "sync failed for [phone]"},
		{"sync failed for 8 (910) 861-39-03", "sync failed for [phone]"},
		{"sync failed for 8-910-861-39-03", "sync failed for [phone]"},
		{"sync failed for 3331234567", "sync failed for [phone]"},
		{"to 512 345 678 now", "to [phone] now"},
		{"to 06-12345678 now", "to [phone] now"},
		{"to 06 12345678 now", "to [phone] now"},
		{"to 55 1234 5678 now", "to [phone] now"},
		{"sync 03-1234-5678 ok", "sync [phone] ok"},
		{"sync 02-123-4567 ok", "sync [phone] ok"},
		// the country code in parentheses
		{"call (+43) 664 1234567", "call [phone]"},
		{"to (+1) 415-555-2671 now", "to [phone] now"},
		{"tel:(+43)664123456", "tel:([phone]"},
	})
	runCases(t, kept(
		"size 89123456789",
		"took 3331234567 ms",
		"12 3456 7890 1234",
		// a marker after the groups stands for the groups it replaced,
		// whichever separator joins it (FuzzString: "10-0000-0000-" and
		// 15 zeros came out "10-0000-0000-[imei]", then
		// "[phone]-[imei]"), and after five groups of two
		"10 1000 1000 [phone]",
		"10-0000-0000-[imei]",
		"55.1234.5678.[card]",
		"06 12 34 56 78 [phone]",
		"v 06-1234567",
		"2026 1234 5678",
	))
}

// TestPushTokens: push tokens and IMEISVs under their short names, and an
// APNs device token as iOS printed it (NSData's description: eight groups
// of eight hex digits in angle brackets), were kept.
func TestPushTokens(t *testing.T) {
	runCases(t, []scrubCase{
		{"IMEISV 3520990017614823", "IMEISV [id]"},
		{"apns 740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad", "apns [id]"},
		{"fcm=dXZ8p0Nw7Hk:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx", "fcm=[id]"},
		{"didRegisterForRemoteNotificationsWithDeviceToken: <740f4707 bebcf74f 9b7c25d4 8e335894 5f6aa01d a5ddb387 462c7eaf 61bb78ad>",
			"didRegisterForRemoteNotificationsWithDeviceToken: <[device_id]>"},
	})
	runCases(t, kept(
		"FCM error: timeout",
		"apns connection closed",
		"<740f4707 bebcf74f 9b7c25d4>",
		"<740f4707 bebcf74f 9b7c25d4 8e335894 5f6aa01d a5ddb387 462c7eaf 61bb78ad 00>",
	))
}

// TestEmailAtWritten: an e-mail address with its '@' (and dots) written
// as a word in brackets, as people write them to fool harvesters
// (jane(at)example.com, jane [at] example [dot] com), was kept.
func TestEmailAtWritten(t *testing.T) {
	runCases(t, []scrubCase{
		{"mail jane(at)example.com now", "mail [email] now"},
		{"mail jane.doe[at]example.de", "mail [email]"},
		{"mail jane [at] example [dot] com now", "mail [email] now"},
		{"mail jane (AT) example (DOT) co (DOT) uk", "mail [email]"},
		{"mail jane{at}example{dot}com", "mail [email]"},
		// encoded, or with no-break spaces
		{"GET /u/jane%28at%29example.com/x", "GET /u/[email]/x"},
		{"<td>jane&#40;at&#41;example.com</td>", "<td>[email]</td>"},
		{"mail jane\u00a0[at]\u00a0example.com", "mail [email]"},
		{"mail jane(a\u200bt)example.com", "mail [email]"},
		{"GET /v1?to=jane+[at]+example.com&x=1", "GET /v1?to=[email]&x=1"},
	})
	runCases(t, kept(
		"look (at) this",
		"crashed at com.example.Foo.bar(Foo.kt:42)",
		"value [at] index 3",
		"jane at example dot com",
		"a (dot) b",
	))
}

// TestDeviceOwnerNames: a device's default name holds its owner's name
// (Jane's iPhone; as a host name, Janes-MacBook-Pro.local), and appears in
// Bluetooth, AirDrop and network logs; the owner's name was kept.
func TestDeviceOwnerNames(t *testing.T) {
	runCases(t, []scrubCase{
		{"Jane's iPhone", "[user]'s iPhone"},
		{"paired with Jane Doe's AirPods Pro", "paired with [user]'s AirPods Pro"},
		{"AirDrop from Jane's MacBook Pro", "AirDrop from [user]'s MacBook Pro"},
		{"Bluetooth: Jane\u2019s Galaxy S21", "Bluetooth: [user]\u2019s Galaxy S21"},
		{"HKQuantitySample from Jane\u2019s Apple Watch", "HKQuantitySample from [user]\u2019s Apple Watch"},
		{"casting to Jane's Apple TV", "casting to [user]'s Apple TV"},
		{"Connected to Jane's Echo Dot", "Connected to [user]'s Echo Dot"},
		{`hotspot "Jane's iPhone" is on`, `hotspot "[user]'s iPhone" is on`},
		{"host Janes-MacBook-Pro.local", "host [user]-MacBook-Pro.local"},
		{"janes-macbook.local", "[user]-macbook.local"},
		{"Jane-Does-iPhone", "[user]-iPhone"},
		// Swedish, Danish, Norwegian: the genitive without an apostrophe
		{"AirDrop from Annas iPhone", "AirDrop from [user] iPhone"},
		{`paired with "Jonas iPad", rssi -60`, `paired with "[user] iPad", rssi -60`},
		// German, French, Spanish, Italian, Dutch: the name after the
		// device and a preposition
		{"paired with iPhone von Anna", "paired with iPhone von [user]"},
		{"AirDrop: iPad de María García", "AirDrop: iPad de [user]"},
		{"MacBook Pro di Marco", "MacBook Pro di [user]"},
		{"Galaxy S23 de Juan", "Galaxy S23 de [user]"},
		{"iPhone van Jan-Willem", "iPhone van [user]"},
	})
	runCases(t, kept(
		"Apple's iPhone lineup",
		"the app's Apple Pay sheet",
		"Amazon's Echo",
		"the user's iPhone",
		"Google's Pixel",
		"it's iPhone only",
		"Jane's notes",
		"versions-iphone",
		"docs-mac",
		"Settings iPhone",
		"Apples iPhone",
		"iPhone de test",
		"iPhone von Apple",
		"Pixel 8 de 128 GB",
		"Requires iPhone 12 or later",
		"Suggests laptop-detect",
		`Add symbols for the "Logitech Cordless Desktop Navigator"`,
	))
}

func TestIBAN(t *testing.T) {
	runCases(t, []scrubCase{
		{"to DE89 3704 0044 0532 0130 00", "to [iban]"},
		{"GB82WEST12345698765432", "[iban]"},
		{"AT611904300234573201.", "[iban]."},
		{"FR14 2004 1010 0505 0001 3M02 606 EUR", "[iban] EUR"},
		{"iban=DE89370400440532013000", "iban=[iban]"},
		// as typed, in lower or mixed case
		{"to de89 3704 0044 0532 0130 00", "to [iban]"},
		{"gb82west12345698765432", "[iban]"},
		{"De89 3704 0044 0532 0130 00", "[iban]"},
		// wrapped over two lines
		{"to DE89 3704 0044\n0532 0130 00", "to [iban]"},
	})
	runCases(t, kept(
		// valid check digits, but no country
		"ab91 3704 1244 5532 5130 71",
		"AB91 3704 1244 5532 5130 71",
		"xy09370412445532513071",
		"DE89 3704 0044 0532 0130 01",
		"DE89 3704 0044 0532 0130 02",
		"GB82WEST12345698765433",
		"UE1A.240105.004",
		"AB12",
	))
}

// TestIBANWritten: an IBAN of a country of the registry is found however
// its characters are grouped, with spaces, dashes or dots, as people and
// forms write them, since the registry fixes its length: the groups must
// end exactly there. Each of these was kept before.
func TestIBANWritten(t *testing.T) {
	runCases(t, []scrubCase{
		{"DE89-3704-0044-0532-0130-00", "[iban]"},
		{"DE89.3704.0044.0532.0130.00", "[iban]"},
		{"to DE89 370400440532013000 today", "to [iban] today"},
		{"iban DE89 3704 0044 0532 013000", "iban [iban]"},
		{"to DE 89 3704 0044 0532 0130 00", "to [iban]"},
		{"GB82WEST 12345698765432", "[iban]"},
		{"GB82-WEST-1234-5698-7654-32.", "[iban]."},
		{"fr76-3000-6000-0112-3456-7890-189 ok", "[iban] ok"},
		{"NO93 8601 1117947", "[iban]"},
		{"cache_DE89-3704-0044-0532-0130-00_v2", "cache_[iban]_v2"},
		// in dashed groups of four, as in spaced ones, any length from
		// 15 to 34 with valid check digits
		{"DE65-3704-0044-0532-0130-0012", "[iban]"},
		{"IT08-B818-7814-164R-GM3M-BFUV-PHGP", "[iban]"},
	})
	runCases(t, kept(
		// wrong check digits
		"DE88-3704-0044-0532-0130-00",
		// longer or shorter than Germany's IBANs
		"DE89-3704-0044-0532-0130-00-1",
		"DE89-3704-0044-0532-0130-0",
		"DE89 3704 0044 0532 0130 001",
		"DE65-3704-0044-0532-013000-12",
		"DE65-3704-0044-0532-01300012",
		// one kind of separator
		"DE89 3704-0044 0532-0130 00",
		// over two lines, in groups other than four
		"DE89 370400\n440532013000",
	))
}

func TestToken(t *testing.T) {
	runCases(t, []scrubCase{
		{"Authorization: Bearer abc.def-123", "Authorization: Bearer [token]"},
		{"Authorization: Bearer dXNlcjpwYXNzd29yZDEyMw", "Authorization: Bearer [token]"},
		{"authorization: basic amFuZTpodW50ZXIy", "authorization: basic [token]"},
		{"Token 9f8e7d6c5b4a3f2e", "Token [token]"},
		{"Authorization: 9f8e7d6c5b4a3f2e", "Authorization: [token]"},
		{`{"Authorization":"Bearer abc.def-123"}`, `{"Authorization":"Bearer [token]"}`},
		{"Proxy-Authorization: Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1", "Proxy-Authorization: Negotiate [token]"},
		{"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl", "Authorization: Bearer [token]"},
	})
	runCases(t, kept(
		"Bearer token expired",
		"Bearer Expired",
		"Token refresh failed",
		"token received from server",
		"Basic configuration missing",
		"Bearer abc",
	))
}

// TestURLCredentials: the user name and password in a URL's user
// information (scheme://user:password@host) are removed, the host kept;
// the user name was kept, and a password before a host without a dot was
// kept too.
func TestURLCredentials(t *testing.T) {
	runCases(t, []scrubCase{
		{"GET https://jane:s3cret@example.com/x failed", "GET https://[user]:[secret]@example.com/x failed"},
		{"postgres://admin:hunter2@db.example.com:5432/app", "postgres://[user]:[secret]@db.example.com:5432/app"},
		{"redis://:s3cret@cache:6379/0", "redis://:[secret]@cache:6379/0"},
		{"amqp://jane:p%40ss%3Aw0rd@localhost", "amqp://[user]:[secret]@localhost"},
		{`{"url":"https://jane.doe:x@api.example.com"}`, `{"url":"https://[user]:[secret]@api.example.com"}`},
		{"https://jane:s3cret@[2001:db8::1]:80/", "https://[user]:[secret]@[[ip]]:80/"},
		// whatever the host is: an IPv6 address unbracketed, which
		// reads as "[ip]" once replaced (FuzzString: "://:0@::0" came
		// out "://:0@[ip]", then "://:[secret]@[ip]"), or none
		{"://:0@::0", "://:[secret]@[ip]"},
		{"redis://jane:s3cret@fe80::1ff:fe23:4567:890a/0", "redis://[user]:[secret]@[ip]/0"},
		{"ftp://jane:pw@ done", "ftp://[user]:[secret]@ done"},
	})
	runCases(t, kept(
		"https://example.com:8080/a@b",
		"http://[::1]:80/",
		"see https://example.com/x?a=b:c",
		"ssh://git:/repo",
	))
}

func TestJWT(t *testing.T) {
	runCases(t, []scrubCase{
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl", "jwt [jwt]"},
		{"id_token eyJhbGciOiJub25lIn0.eyJzdWIiOiJqYW5lIn0.", "id_token [jwt]."},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.a-b_c", "[jwt]"},
	})
	runCases(t, kept("eyJhbGciOiJIUzI1NiJ9", "eyJ.eyJ.x"))
}

func TestDeviceID(t *testing.T) {
	runCases(t, []scrubCase{
		{"device 9774d56d682e549c", "device [device_id]"},
		{"ANDROID_ID 9774D56D682E549C registered", "ANDROID_ID [device_id] registered"},
	})
	runCases(t, kept(
		"#00 pc 000000000004f7c4  /system/lib64/libc.so (abort+164)",
		"0x9774d56d682e549c",
		"BuildId: 3f2504e04f8941d39a0c0305e82c3301",
		"deadbeefdeadbeef",  // no digits: a pattern, not an id
		"1234567812345678",  // no letters: a number
		"9774d56d682e549c1", // 17 digits
	))
}

// TestDeviceHardwareIDs: a device's and a SIM's ids in the shapes Apple
// and the SIM standards give them were kept when no key named them: an
// iOS UDID of an iPhone since the XS (Xcode's and the Finder's device
// logs print it), a SIM card's ICCID, bare or in the groups printed on
// the card, and an eSIM's EID.
func TestDeviceHardwareIDs(t *testing.T) {
	runCases(t, []scrubCase{
		{"Identifier: 00008030-001A2D3E0C12802E", "Identifier: [device_id]"},
		{"device 00008101-000a1c2e3f40001e connected", "device [device_id] connected"},
		{"SIM 8901260123456789011 ready", "SIM [device_id] ready"},
		{"ICCID 8901 2601 2345 6789 011", "ICCID [device_id]"},
		{"8901-2601-2345-6789-0121", "[device_id]"},
		{`{"iccid":"89012601234567890121"}`, `{"iccid":"[device_id]"}`},
		{"EID 89049032004008882600012345678956", "EID [device_id]"},
	})
	runCases(t, kept(
		"10008030-001A2D3E0C12802E",        // no chip id
		"00008030-001A2D3E0C12802E1",       // 17 hex digits
		"00008030-001A2D3E0C12802E-x",      // part of a longer word
		"8901260123456789012",              // Luhn fails
		"1234 8901 2601 2345 6789 0121",    // inside a longer number
		"8901 2601 2345 6789 0121 5555",    // so
		"89049032004008882600012345678957", // mod 97 fails
		"7901260123456789016",              // not from 89
	))
}

func TestSecret(t *testing.T) {
	runCases(t, []scrubCase{
		{"key AKIAIOSFODNN7EXAMPLE", "key [secret]"},
		{"wJalrXUtnFEMI7K7MDENGbPxRfiCY9EXAMPLEKEY", "[secret]"}, // AWS's example secret key: long capital runs are not words
		{"ASIAY34FZKBOKMUTVV7A", "[secret]"},
		{"stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe [secret]"},
		{"sk_test_51H8xYzAbCdEfGhIjKlMn", "[secret]"},
		{"pk_live_51H8xYzAbCdEfGhIjKlMn rk_live_51H8xYzAbCdEfGhIjKlMn", "[secret] [secret]"},
		{"AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "[secret]"},
		{"ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R", "[secret]"},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[secret]"},
		{"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "[secret]"},
		{"glpat-Xy9Zk2LmN4pQ8rT6vW1s", "[secret]"},
		{"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", "[secret]"},
		{"signed with q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI", "signed with [secret]"},
		{"blob aGVsbG8gd29ybGQhIFRoaXMgaXMgYSB0ZXN0IDEyMzQ1Njc4OTA=", "blob [secret]"},
		{"/v1/files/q8F2xK9mL4vR7tW1zB3nC6pD0sG5hJ2kY8aE4uI/download", "/v1/files/[secret]/download"},
		{"login password=hunter2-Sesame failed", "login password=[secret] failed"},
		{"passwd: hunter2", "passwd: [secret]"},
		{"--password=\"correct horse battery staple\"", "--password=\"[secret]\""},
		{"secret=abc api_key='k-12345' apikey: k2", "secret=[secret] api_key='[secret]' apikey: [secret]"},
		{"access_token=ya29.a0AfH6SM refresh_token=def502 client_secret=s3cr3t", "access_token=[secret] refresh_token=[secret] client_secret=[secret]"},
		{"auth=x1 session=abc sessionid=def sid=42", "auth=[secret] session=[secret] sessionid=[secret] sid=[secret]"},
		{"Cookie: sessionid=8f14e45f; csrftoken=Zx8Kq2LmN4pR", "Cookie: [secret]"},
		{"X-Amz-Signature=3a4b5c&X-Amz-Date=20261129", "X-Amz-Signature=[secret]&X-Amz-Date=20261129"},
	})
	runCases(t, kept(
		"BuildId: 3f2504e04f8941d39a0c0305e82c3301",
		"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
		"3F2504E04F8941D39A0C0305E82C33013F2504E0",
		"AbstractSingletonProxyFactoryBean",
		"com_example_notes_NoteEditorViewModel_onCreate2",
		"(Java_com_example_notes_NativeBridge_render+164)",
		"Java_com_example_notes_NoteEditor2_render3+164",
		"/Library/Developer/CoreSimulator/Devices/6A8F1D2C3B4E4F5A8B9C0D1E2F3A4B5C/data/Containers",
		"androidx/compose/ui/platform/AndroidComposeView2/dispatchDraw3/Impl4",
		"dXNlcjpwYXNzd29yZA==",
		"AKIAIOSFODNN7EXAMPL",
		"sk_live_short",
		"max_tokens=256",
		"tokenizer=bpe",
	))
}

func TestUserPath(t *testing.T) {
	runCases(t, []scrubCase{
		{"open /Users/jane/Library/notes.db", "open /Users/[user]/Library/notes.db"},
		{"/Users/jane.doe/src/notes/Editor.swift", "/Users/[user]/src/notes/Editor.swift"},
		{"file:///Users/jane/Desktop/a.txt", "file:///Users/[user]/Desktop/a.txt"},
		{"/home/jane/notes/out", "/home/[user]/notes/out"},
		{"'/home/jane'", "'/home/[user]'"},
		{`C:\Users\jane\AppData\notes.db`, `C:\Users\[user]\AppData\notes.db`},
		{`D:\Users\Jane Doe\AppData\Local`, `D:\Users\[user]\AppData\Local`},
		{`C:\Users\jane is missing`, `C:\Users\[user] is missing`},
		{"c:/users/jdoe/AppData", "c:/users/[user]/AppData"},
		{`\\?\C:\Users\jane\notes`, `\\?\C:\Users\[user]\notes`},
		{`C:\Documents and Settings\jane\Desktop`, `C:\Documents and Settings\[user]\Desktop`},
		{"at /Users/jane.", "at /Users/[user]."},
		{"/Users/jane/Library/Developer/CoreSimulator/Devices/6A8F1D2C-3B4E-4F5A-8B9C-0D1E2F3A4B5C/data", "/Users/[user]/Library/Developer/CoreSimulator/Devices/[uuid]/data"},
	})
	runCases(t, kept(
		"/Users/Shared/Notes",
		`C:\Users\Public\Documents`,
		`C:\Users\Default\AppData`,
		"/home/",
		"/home",
		"https://example.com/home/page",
		"/data/user/0/com.example.notes/files/db",
		"/data/data/com.example.notes/",
		"/storage/emulated/0/Download",
		"~jane/notes",
		"users/jane",
	))
}

// TestIDCommandOutput: id(1)'s output, which root checks, su and CLI
// tools print into logs, names the user by their login and their own
// group. Only uid's value was replaced, the number with the first name
// ("uid=[id])"), and the names after gid= and groups= were kept. Each
// name goes; the numbers stay (a uid says no more than "uid: 10234",
// which stays), as do the system's own accounts and groups (root, sudo,
// staff, macOS's _appserverusr, an Android app's u0_a123).
func TestIDCommandOutput(t *testing.T) {
	runCases(t, []scrubCase{
		{"uid=1000(jdoe) gid=1000(jdoe) groups=1000(jdoe),27(sudo)", "uid=1000([user]) gid=1000([user]) groups=1000([user]),27(sudo)"},
		{"uid=1000(jdoe) gid=1000(jdoe) groups=1000(jdoe),4(adm),24(cdrom),27(sudo),1001(smithfamily),998(docker)",
			"uid=1000([user]) gid=1000([user]) groups=1000([user]),4(adm),24(cdrom),27(sudo),1001([user]),998(docker)"},
		{"uid=501(jdoe) gid=20(staff) groups=20(staff),12(everyone),61(localaccounts),79(_appserverusr),80(admin),701(com.apple.sharepoint.group.1)",
			"uid=501([user]) gid=20(staff) groups=20(staff),12(everyone),61(localaccounts),79(_appserverusr),80(admin),701(com.apple.sharepoint.group.1)"},
		{"su: euid=0(root) uid=1000(jane.doe)", "su: euid=0(root) uid=1000([user])"},
		{"exec as uid=1000(jdoe_1987) gid=1000(jdoe_1987)", "exec as uid=1000([user]) gid=1000([user])"},
		{"GID=1000(JDoe)", "GID=1000([user])"},
		// uid's value alone is a key's value, as before
		{"uid=1000", "uid=[id]"},
		{"uid=1000(jdoe", "uid=[id]"},
	})
	runCases(t, kept(
		"uid=0(root) gid=0(root) groups=0(root) context=u:r:su:s0",
		"uid=10123(u0_a123) gid=10123(u0_a123) groups=10123(u0_a123),3003(inet),9997(everybody),20123(u0_a123_cache),50123(all_a123)",
		"uid=33(www-data) gid=33(www-data) groups=33(www-data)",
		"uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),3003(inet)",
		"retry groups=3 (of 5)",
		"groups=3",
		"Sort(1000(jdoe))",
		"at Foo.groups(Foo.java:12)",
		"gids=1000(jdoe)",
	))
}

func TestCoordinates(t *testing.T) {
	runCases(t, []scrubCase{
		{"last fix 48.20849, 16.37208", "last fix [coordinates]"},
		{"48.20849,16.37208", "[coordinates]"},
		{"(48.20849 16.37208)", "([coordinates])"},
		{"lat=48.20849 lon=16.37208", "lat=[coordinates]"},
		{"latitude: -33.8688, longitude: 151.2093", "latitude: [coordinates]"},
		{"geo:48.2085,16.3721", "geo:[coordinates]"},
		{`{"lat":48.2085,"lng":16.3721}`, `{"lat":[coordinates]}`},
		{"at -33.868800, -151.209300", "at [coordinates]"},
		{"lat=48.21", "lat=[coordinates]"},
		{"longitude: 16.37208 only", "longitude: [coordinates] only"},
		{"lng=-122.4194;", "lng=[coordinates];"},
		{"fix 48.20849,\n16.37208", "fix [coordinates]"},
	})
	runCases(t, kept(
		"{{0.000, 0.000}, {375.000, 812.000}}",
		"{{16.000, 20.000}, {343.000, 44.000}}",
		"scale 2.000",
		"12.5, 3.25",
		"4.12.0, 16.372",
		"version 4.12.0",
		"48.20849, 216.37208",
		"98.20849, 16.37208",
		"lat=48.2",
		"altitude=171.25",
		"12:30:45.123, 16.372",
		"took 12.345\n67.891",
	))
}

// TestMoreIdentifierKeys: national identity and tax numbers, location
// codes and analytics SDKs' ids under their common names were kept; a word that is a common word
// in another language (dni, Polish for days) is no key.
func TestMoreIdentifierKeys(t *testing.T) {
	runCases(t, []scrubCase{
		{"NINO QQ123456C", "NINO [id]"},
		{"BSN 123456782", "BSN [id]"},
		{"CPF 123.456.789-09", "CPF [id]"},
		{"aadhaar=234567890123", "aadhaar=[id]"},
		{"PESEL 44051401359", "PESEL [id]"},
		{"geohash=u2edk85d", "geohash=[id]"},
		{"pluscode=8FWR6C8X+4Q", "pluscode=[id]"},
		// the ids analytics and attribution SDKs give a device or person
		{"fid=dIsVQ2QVRT-TW6ZESZV-v6", "fid=[id]"},
		{"appsflyer_id=1700000000000-1234567890123456789", "appsflyer_id=[id]"},
		{"mixpanel distinct_id: $device:18c3f2a4b5-0d1e2f3a4b5c6d", "mixpanel distinct_id: [id]"},
		{"braze external_id=jane.doe", "braze external_id=[id]"},
		{`{"anonymousId":"507f191e810c19729de860ea"}`, `{"anonymousId":"[id]"}`},
		// an iOS crash report's per-device key, in the text and the
		// JSON formats; China's advertising id, Google Services
		// Framework's and the DRM's device ids
		{"CrashReporter Key:   a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "CrashReporter Key:   [id]"},
		{`"crashReporterKey" : "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",`, `"crashReporterKey" : "[id]",`},
		{"oaid=3ef8a2b1c0d94e7f86a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3", "oaid=[id]"},
		{"GSF ID: 3912345678901234568", "GSF ID: [id]"},
		{"widevine_id=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "widevine_id=[id]"},
		{"user_pseudo_id=1234567890.1700000000", "user_pseudo_id=[id]"},
		// a cell's id, as Android prints a CellIdentity
		{"CellIdentityLte:{ mCi=27447297 mPci=123 mTac=4011 mEarfcn=1300 mMcc=232 mMnc=03}", "CellIdentityLte:{ mCi=[id] mPci=123 mTac=4011 mEarfcn=1300 mMcc=232 mMnc=03}"},
		{"CellIdentityGsm:{ mLac=4011 mCid=20443 mMcc=232 mMnc=01}", "CellIdentityGsm:{ mLac=4011 mCid=[id] mMcc=232 mMnc=01}"},
		{"cell_id: 27447297", "cell_id: [id]"},
		// passports and driving licences, as forms' fields name them
		{"passportNo: X12345678", "passportNo: [id]"},
		{"passport_no=X12345678", "passport_no=[id]"},
		{"driver_license: D1234567", "driver_license: [id]"},
		{"drivingLicenceNumber=MORGA753116SM9IJ", "drivingLicenceNumber=[id]"},
		{"id_card_number: T22000129", "id_card_number: [id]"},
		// install ids as Firebase, Crashlytics and AppsFlyer log them
		{"FirebaseInstallations: installation: fSa4Bx9kQ0m3c8Yq1WZt_e registered", "FirebaseInstallations: installation: [id] registered"},
		{"FIS auth token refreshed for installation cJ2eD7TSRLKJzWE9bGYYkU", "FIS auth token refreshed for installation [id]"},
		{"Crashlytics installation UUID: 0A1B2C3D4E5F60718293A4B5C6D7E8F9", "Crashlytics installation UUID: [id]"},
		{"AppsFlyerLib: AF id: 1612345678901-9876543210987654321", "AppsFlyerLib: AF id: [id]"},
		// a key of two words quoted whole, and followed by a blank
		{`{"AF id":"731033489","n":1}`, `{"AF id":"[id]","n":1}`},
		{`"af id": "u-hhv6xk2v6gg"`, `"af id": "[id]"`},
		{`{\"AF id\":\"731033489\"}`, `{\"AF id\":\"[id]\"}`},
		{"/sync/AF id IWoMeh9buppx073/state 404", "/sync/AF id [id]/state 404"},
		{"User ID 48213377 signed out", "User ID [id] signed out"},
		{"[AF id=1557398521]", "[AF id=[id]]"},
		{"[ip] id=7 [user] id 1234", "[ip] id=7 [user] id 1234"},
		{`"Thread id": "7", "Process id": "123"`, `"Thread id": "7", "Process id": "123"`},
		{"Thread id 7 and frame id 12 of process id 4312", "Thread id 7 and frame id 12 of process id 4312"},
		// accounts: a provider's prefix, Game Center's player ids,
		// Firebase Auth's uid, an ID token's subject, an iCloud user's
		// record name
		{"Auth0 user_id auth0|5f8e7d6c5b4a3928170f6e5d", "Auth0 user_id [id]"},
		{"GameCenter playerID G:1234567890", "GameCenter playerID [id]"},
		{"GKLocalPlayer gamePlayerID A:_a1b2c3d4e5f60718293a4b5c6d7e8f90 teamPlayerID T:_0f1e2d3c4b5a69788796a5b4c3d2e1f0", "GKLocalPlayer gamePlayerID [id] teamPlayerID [id]"},
		{"Firebase Auth uid: Xk3mP9qR2sT5vW8yZ1aB4cD6eF7g", "Firebase Auth uid: [id]"},
		{`claims: {"sub": "google-oauth2|104857123456789012345", "aud": "app"}`, `claims: {"sub": "[id]", "aud": "app"}`},
		{`{"sub":"001234.5f6e7d8c9b0a1f2e3d4c5b6a79808172.1234"}`, `{"sub":"[id]"}`},
		{"NSUbiquitousKeyValueStore user record _a1b2c3d4e5f60718293a4b5c6d7e8f90", "NSUbiquitousKeyValueStore user record [id]"},
		{"CKError: recordName: _9f8e7d6c5b4a39281706f5e4d3c2b1a0 not found", "CKError: recordName: [id] not found"},
		{"cache_CKError: recordName: _f9fa74adb6338310e4c00e66016f28fe_v2", "cache_CKError: recordName: [id]_v2"},
		// vehicles
		{"License plate: B-MW 1234", "License plate: [id]"},
		{"license_plate=B-MW1234", "license_plate=[id]"},
		{"VIN 1HGCM82633A004352", "VIN [id]"},
	})
	runCases(t, kept(
		"Pozostało dni: 14",
		"installation complete",
		"Installation failed: INSTALL_FAILED_INSUFFICIENT_STORAGE",
		"installation 2 of 3 finished",
		"Package installation took 1234 ms",
		"installation id: null",
		"installation_status=ok",
		"vin_check=passed",
		"uid: 10234",
		"Process uid: 10123 pid: 4567",
		"uid: abcdefghijklmnopqrstuvwxyz",
		"name: AbstractFactoryBean2",
		"sub: main",
		"sub_type=annual",
		"key kind: A:1",
		"status code: HTTP:503 retry",
	))
}

// TestCoordinatesFixedPoint: a coordinate key's value in degrees times
// ten million (latitudeE7=482084900), as location records write them, was
// kept.
func TestCoordinatesFixedPoint(t *testing.T) {
	runCases(t, []scrubCase{
		{"latitudeE7=482084900, longitudeE7=163720800", "latitudeE7=[coordinates], longitudeE7=[coordinates]"},
		{`{"latitudeE7":-338678500,"longitudeE7":1512073200}`, `{"latitudeE7":[coordinates],"longitudeE7":[coordinates]}`},
		{"lat=48208490", "lat=[coordinates]"},
		// near the equator or the prime meridian an E7 value has fewer
		// than seven digits; the key says what it is
		{"a\tlatitudeE7=-144724, longitudeE7=1231885552\tb", "a\tlatitudeE7=[coordinates], longitudeE7=[coordinates]\tb"},
		{`{"latE7":9012,"lngE7":-55}`, `{"latE7":[coordinates],"lngE7":[coordinates]}`},
	})
	runCases(t, kept(
		"lat=48",
		"lon=16",
		"latency=482084900",
		"latency_e7=1234",
	))
}

// TestCoordinatesSigned: a CLLocation's description, as iOS apps log it,
// writes both numbers with their signs (<+48.20849000,+16.37208000>); the
// pair was taken for two phone numbers.
func TestCoordinatesSigned(t *testing.T) {
	runCases(t, []scrubCase{
		{"<+48.20849000,+16.37208000> +/- 5.00m (speed -1.00 mps / course -1.00)", "<[coordinates]> +/- 5.00m (speed -1.00 mps / course -1.00)"},
		{"<-33.86785000,+151.20732000> +/- 65.00m", "<[coordinates]> +/- 65.00m"},
		{"fix +48.20849, -16.37208", "fix [coordinates]"},
	})
	runCases(t, kept(
		"+48.2, +16.3",
		"speed +1.00 mps",
	))
}

// TestCoordinatesHemispheres: decimal degrees with the hemisphere's
// letter after or before them, as GPS receivers and map apps write them,
// were kept.
func TestCoordinatesHemispheres(t *testing.T) {
	runCases(t, []scrubCase{
		{"fix 48.2084912 N, 16.3720811 E ok", "fix [coordinates] ok"},
		{"48.20849N 16.37208E", "[coordinates]"},
		{"at 48.20849°N, 16.37208°E.", "at [coordinates]."},
		{"48.20849° N 16.37208° W", "[coordinates]"},
		{"33.86785 S, 151.20732 E", "[coordinates]"},
		{"pos N 48.20849 E 16.37208 ok", "pos [coordinates] ok"},
		{"N48.20849 E16.37208", "[coordinates]"},
		{"N 48.20849°, E 16.37208°", "[coordinates]"},
		{"S33.86785, W151.20732", "[coordinates]"},
		{"11.46034 n, 150.78456 e", "[coordinates]"},
		{"n 48.20849 e 16.37208", "[coordinates]"},
	})
	runCases(t, kept(
		"took 48.208 s, 16.372 s",
		"48.208 N, 16.372 N",
		"48.2 N, 16.3 E",
		"98.20849 N, 16.37208 E",
		"N 48.20849 N 16.37208",
		"48.20849 N",
		"N 48.20849",
		"48.20849 Nord, 16.37208 East",
	))
}

func TestKeyValue(t *testing.T) {
	runCases(t, []scrubCase{
		{"sync user_id=829301 done", "sync user_id=[id] done"},
		{"androidId: 9774d56d682e549c", "androidId: [device_id]"},
		{`{"deviceId":"abc123","pages":12}`, `{"deviceId":"[id]","pages":12}`},
		{`"user_id": 12345,`, `"user_id": [id],`},
		{"serial=R58M123ABC idfa=AEBE52E7", "serial=[id] idfa=[id]"},
		{"install_id=ab12cd34ef56&account=jane.doe", "install_id=[id]&account=[id]"},
		{"user => jane", "user => [id]"},
		{"email=jane@example.com", "email=[email]"},
		{"x-user-id: 829301", "x-user-id: [id]"},
		{"User ID: 829301 opened", "User ID: [id] opened"},
		{"Device ID: 9774d56d682e549c", "Device ID: [device_id]"},
		{`{\"user_id\":\"u-829301\",\"name\":\"Jane Doe\"}`, `{\"user_id\":\"[id]\",\"name\":\"[id]\"}`},
		{"name=jane", "name=[id]"},
		{`"name": "Jane Doe"`, `"name": "[id]"`},
		{"user_ids=[829301, 829302]", "user_ids=[[id], 829302]"},
		{"deviceId=(abc123)", "deviceId=([id])"},
		{"ip=10.1.2.3:443", "ip=[id]"},
		{"loyalty=1", "loyalty=1"},
	})
	runCases(t, kept(
		"Thread 0 name:  Dispatch queue: com.apple.main-thread",
		"pid: 12345, tid: 12367, name: RenderThread  >>> com.example.notes <<<",
		"Build fingerprint: 'google/oriole/oriole:14/UQ1A.240105.004/11206848:user/release-keys'",
		"Load Address: 0x100a8c000",
		"11-29 12:30:45.955 12345 12345 E Auth: login failed",
		"E/Location: no fix",
		"pages=12 format=a4 screen=editor duration=1500 count=3 size=1024 theme=dark plan=pro tier=gold",
		"locale=de_AT language=de source=push screen_name=editor button=save result=ok error_code=E1",
		"retry=2 network=wifi latency_ms=12 feature=x variant=B experiment=y version=4.12.0",
		"user_id=null email=\"\" deviceId=nil phone=-",
		"user_id=[id]",
		"at com.example.notes.EmailValidator.validate(EmailValidator.kt:23)",
		"at com.example.notes.PhoneNumberFormatter.format(PhoneNumberFormatter.kt:31)",
		"user_id == 42",
		"Foo::user_id",
		"time_interval=30 microphone=on",
		"/data/user/0/com.example.notes",
	))
	s := New(Config{ExtraKeys: []string{"Loyalty-Number"}})
	if got := s.String("loyalty_number=99 loyalty=1"); got != "loyalty_number=[id] loyalty=1" {
		t.Errorf("with extra key: %q", got)
	}
}

// TestLoginNames: a login's name as shells and environment dumps print
// it (whoami, LOGNAME=, a computer's name) was kept; USER=, USERNAME=,
// HOME=/home/... and /Users/... paths were found before and still are.
func TestLoginNames(t *testing.T) {
	runCases(t, []scrubCase{
		{"whoami: jdoe", "whoami: [id]"},
		{"whoami=jdoe", "whoami=[id]"},
		{"sync failed for whoami: jdoe at noon", "sync failed for whoami: [id] at noon"},
		{"LOGNAME=jdoe SHELL=/bin/zsh", "LOGNAME=[id] SHELL=/bin/zsh"},
		{"COMPUTERNAME=DESKTOP-7K3J9QX", "COMPUTERNAME=[id]"},
		{"USER=jdoe", "USER=[id]"},
		{"SUDO_USER=jdoe", "SUDO_USER=[id]"},
		{"USERNAME=jdoe", "USERNAME=[id]"},
		{"logged in user: jdoe", "logged in user: [id]"},
		{"HOME=/home/jdoe", "HOME=/home/[user]"},
		{"HOME=/Users/jdoe", "HOME=/Users/[user]"},
		{"/Users/jdoe/Library/Logs/DiagnosticReports/Notes.ips", "/Users/[user]/Library/Logs/DiagnosticReports/Notes.ips"},
	})
	runCases(t, kept(
		"$ whoami",
		"whoami: cannot find name for user ID 1000",
		"sh: whoami: not found",
		"SHELL=/bin/zsh TERM=xterm-256color LANG=en_US.UTF-8",
	))
}

// TestReferralCodes: a referral or invitation code names the person who
// shares it, as most programs give each member their own
// (myapp://invite?ref=JDOE2024); it was kept. Keys that name a referrer or
// an invitation's code are identifier keys; ref, code and invite are
// ones only in the query of a link whose path is an invitation, a
// referral or a sign-up, as elsewhere ref names a git ref, an object or a
// campaign (ref=refs/heads/main, ?ref=producthunt). Promotion and coupon
// codes and utm_ tags are shared by everyone a campaign reaches: they
// name no one, and stay.
func TestReferralCodes(t *testing.T) {
	runCases(t, []scrubCase{
		{"open myapp://invite?ref=JDOE2024", "open myapp://invite?ref=[id]"},
		{"https://example.com/signup?ref=abc123&utm_source=x", "https://example.com/signup?ref=[id]&utm_source=x"},
		{"https://example.com/join?utm_source=x&ref=jdoe", "https://example.com/join?utm_source=x&ref=[id]"},
		{"https://example.com/r/invite?code=K7XQ2P", "https://example.com/r/invite?code=[id]"},
		{"myapp://referral?invite=JDOE2024&src=share", "myapp://referral?invite=[id]&src=share"},
		{"https://example.com/signup?referrer=jdoe&x=1", "https://example.com/signup?referrer=[id]&x=1"},
		{"referral_code=JDOE50", "referral_code=[id]"},
		{"invite_code=K7XQ2P", "invite_code=[id]"},
		{`{"referralCode":"JDOE50","inviterId":"u-48213"}`, `{"referralCode":"[id]","inviterId":"[id]"}`},
		{"referred_by=jdoe", "referred_by=[id]"},
		{"invited_by: jdoe", "invited_by: [id]"},
		{"inviter=jdoe", "inviter=[id]"},
	})
	runCases(t, kept(
		"git push ref=refs/heads/main",
		"ref=refs/heads/main",
		"GET https://api.github.com/repos/o/r/contents/a.txt?ref=main",
		"https://example.com/pricing?ref=producthunt",
		"https://api.example.com/v1/lookup?ref=x1y2z3",
		"https://example.com/signup?promo=SUMMER24&utm_source=newsletter&utm_campaign=spring",
		"coupon=WELCOME10 promo_code=SUMMER24",
		"referrer_policy=strict-origin invite_count=3 referral_program=enabled",
		"https://example.com/signup?ref=",
		"myapp://invite?ref=null",
		"https://example.com/invite?code",
	))
}

// TestPlaceKeys: values of keys that name a place finer than a region
// (a city, a district, a street, as a geocoder's address and a
// CLPlacemark name them) were kept, in attributes and in text; stored
// location is a region at most. Android's Address lists its lines as
// [0:"..."], whose first item is the value.
func TestPlaceKeys(t *testing.T) {
	runCases(t, []scrubCase{
		{`Address[addressLines=[0:"Stephansplatz 1, 1010 Wien, Austria"],feature=1,admin=Wien,locality=Wien,thoroughfare=Stephansplatz,postalCode=1010,countryCode=AT]`,
			`Address[addressLines=[0:"[id]"],feature=1,admin=Wien,locality=[id],thoroughfare=[id],postalCode=[id],countryCode=AT]`},
		{`{"city":"Graz","district":"Geidorf","country":"AT","region":"AT-6"}`, `{"city":"[id]","district":"[id]","country":"AT","region":"AT-6"}`},
		{"geocode failed for city=Graz", "geocode failed for city=[id]"},
		{"county: Cork", "county: [id]"},
	})
	runCases(t, kept(
		"the city of Graz",
		`{"city_count":12,"capacity":"Graz"}`,
	))
}

// TestValuesOfWords: the value of a key that names a person, a place, a
// postcode, a date of birth or a national number is often words or groups
// that blanks separate; only the first word was scrubbed (postcode: [id]
// 1AA, thoroughfare=[id] Street, NINO: [id] 12 34 56 C). The value runs on
// over capitalized words, numbers and names' particles, and stops at a
// word of prose in lower case, a delimiter or the next key.
func TestValuesOfWords(t *testing.T) {
	runCases(t, []scrubCase{
		{"postcode: SW1A 1AA", "postcode: [address]"},
		{"postal_code=1012 AB", "postal_code=[id]"},
		{"subLocality: Innere Stadt, locality: Wien", "subLocality: [id], locality: [id]"},
		{"Address[locality=Rio de Janeiro,thoroughfare=Downing Street,postalCode=SW1A 2AA,countryCode=GB]",
			"Address[locality=[id],thoroughfare=[id],postalCode=[address],countryCode=GB]"},
		{"NINO: QQ 12 34 56 C", "NINO: [id]"},
		{"aadhaar: 2345 6789 0123", "aadhaar: [id]"},
		{"first_name=Anna Maria last_name=van der Berg", "first_name=[id] last_name=[id]"},
		{"display_name: Anna Müller", "display_name: [id]"},
		{"ssid=Anna Home router 00:11:22:33:44:55", "ssid=[id] router [mac]"},
		{"city=Graz Country=AT", "city=[id] Country=AT"},
		{"dob: 12 April 1990", "dob: [id]"},
		{"city: mUngisFan kEllanbor", "city: [id]"},
		// random case: a word in lower case goes on the value too
		{"lOcALITY: nERbisBAs gilkosnos", "lOcALITY: [id]"},
	})
	runCases(t, kept(
		"name: Dispatch queue: com.apple.main-thread",
		"Thread 0 name:  Dispatch queue: com.apple.main-thread",
		"city: null at index 3",
	))
}

// TestSpacedKeyQuotedValue: a quoted value after an identifier's key and a
// blank (connected to SSID "Anna Home") was kept unless it looked like an
// id; a quoted value is a value, in single quotes too, as SQL Server's
// and MySQL's refusals print the user (Login failed for user 'jsmith').
func TestSpacedKeyQuotedValue(t *testing.T) {
	runCases(t, []scrubCase{
		{`connected to SSID "Anna Home"`, `connected to SSID "[id]"`},
		{`no account for user "anna.mueller"`, `no account for user "[id]"`},
		{`password "hunter2" rejected`, `password "[secret]" rejected`},
		{`Login failed for user 'jsmith'.`, `Login failed for user '[id]'.`},
		{`Access denied for user 'anna.berg'@'localhost' (using password: YES)`,
			`Access denied for user '[id]'@'localhost' (using password: YES)`},
		{`connected to SSID 'Anna Home'`, `connected to SSID '[id]'`},
		{`password 'hunter2' rejected`, `password '[secret]' rejected`},
	})
	runCases(t, kept(
		`thread name "main"`,
		`fix to pass "make distcheck"`,
		`fix to pass 'make distcheck'`,
		`session "scriptlets" that are shipped`,
		`the city "of lights"`,
		`the city 'of lights'`,
		`token expired`,
		`the user's 'settings' page`,
		`user 'unterminated quote`,
		`(using password: NO)`,
	))
}

// TestNetworkNames: a Wi-Fi network's name (SSID) is a household's, and
// often carries its family's name (Smith Family WiFi, The Johnsons). It
// was found after ssid and SSID, and kept after wifi, network and
// network name. Those words head states and types as often (wifi:
// enabled, network=wifi, network "cellular"): after "network" only a
// quoted name counts, after "wifi:" only one that looks like no word,
// and states stay. A BSSID is a MAC address.
func TestNetworkNames(t *testing.T) {
	runCases(t, []scrubCase{
		{`SSID "Smith Family WiFi"`, `SSID "[id]"`},
		{"SSID: Smith Family WiFi", "SSID: [id]"},
		{"connected to network 'The Johnsons'", "connected to network '[id]'"},
		{`Connected to wireless network "Smith Family WiFi".`, `Connected to wireless network "[id]".`},
		{"wifi: JohnsHome-5G", "wifi: [id]"},
		{"WiFi: JohnsHome-5G connected", "WiFi: [id] connected"},
		{"wifi=Smith Family WiFi", "wifi=[id]"},
		{`{"wifi":"The Johnsons","network":"The Johnsons"}`, `{"wifi":"[id]","network":"[id]"}`},
		{"network name: Smith Family WiFi", "network name: [id]"},
		{"Network Name: JohnsHome-5G", "Network Name: [id]"},
		{"wifi_name=Smith Family WiFi", "wifi_name=[id]"},
		{`ESSID:"Smith Family WiFi"`, `ESSID:"[id]"`},
		{"BSSID: 00:11:22:33:44:55", "BSSID: [mac]"},
		{"bssid=a4:2b:b0:c1:d2:e3", "bssid=[mac]"},
	})
	runCases(t, kept(
		"wifi: enabled",
		"wifi: on",
		"wifi=off",
		"WiFi: Connected",
		"wifi: scan results: 12 networks",
		"wifi: wlan0: disconnected",
		"wifi: -67 dBm",
		"wifi: 802.11ac 5GHz",
		"wifi=2.4GHz",
		"wifi JohnsHome-5G",
		"SSID: <redacted>",
		"SSID: <unknown ssid>",
		"retry=2 network=wifi latency_ms=12",
		`{"network":"wifi","network_type":"cellular"}`,
		`network "cellular" is metered`,
		"network: unreachable",
		"network error: timeout",
		"Network is unreachable",
		"wifi_enabled=true wifi_state=3 network_type=LTE",
		"network name: unknown",
	))
}

// TestAndroidInstallFolders: the random names Android (8 and later)
// gives an app's install folders differ between installs of the same app,
// so they name an install; native crashes' frames and dlopen errors hold
// them. They were kept (and split one crash into a group per install);
// the package's name stays.
func TestAndroidInstallFolders(t *testing.T) {
	runCases(t, []scrubCase{
		{"#00 pc 0000000000012345  /data/app/~~2zPOOUcyyxvkBKyf4ncyqA==/com.example.notes-qh63ZqVw9GXQGEtiEHnmDg==/lib/arm64/libnotes.so (render+164)",
			"#00 pc 0000000000012345  /data/app/~~[device_id]/com.example.notes-[device_id]/lib/arm64/libnotes.so (render+164)"},
		{`dlopen failed: library "/data/app/~~R4nd0mB4se64xyz==/com.example.notes-Qm9vYmFyYmF6==/base.apk!/lib/arm64-v8a/libfoo.so" not found`,
			`dlopen failed: library "/data/app/~~[device_id]/com.example.notes-[device_id]/base.apk!/lib/arm64-v8a/libfoo.so" not found`},
		{"/data/app/com.example.notes-qh63ZqVw9GXQGEtiEHnmDg==/base.apk", "/data/app/com.example.notes-[device_id]/base.apk"},
	})
	runCases(t, kept(
		"/data/app/com.example.notes-1/base.apk",
		"/data/app/com.example.notes-2/oat/arm64/base.odex",
		"/data/app/",
		"/data/app/~~short/x",
	))
}

// TestRemovableVolumeIDs: Android names a removable volume's folder after
// its serial number, which an SD card keeps for life; paths and the
// externalstorage provider's URIs in crash messages held it.
func TestRemovableVolumeIDs(t *testing.T) {
	runCases(t, []scrubCase{
		{"open failed: /storage/1A2B-3C4D/Android/data/com.example.notes/files/x.jpg: EACCES",
			"open failed: /storage/[device_id]/Android/data/com.example.notes/files/x.jpg: EACCES"},
		{"/mnt/media_rw/1a2b-3c4d/DCIM", "/mnt/media_rw/[device_id]/DCIM"},
		{"content://com.android.externalstorage.documents/tree/1A2B-3C4D%3ADCIM",
			"content://com.android.externalstorage.documents/tree/[device_id]%3ADCIM"},
		{"content://com.android.externalstorage.documents/document/1A2B-3C4D:DCIM/x.jpg",
			"content://com.android.externalstorage.documents/document/[device_id]:DCIM/x.jpg"},
	})
	runCases(t, kept(
		"/storage/emulated/0/Download",
		"/storage/self/primary",
		"/api/2024-1130/x",
		"/storage/1A2B-3C4D5",
	))
}

// TestAccountsInPaths: network errors print the request's path, and a
// REST path names the account it is about (GET /v1/users/48213/avatar,
// https://api.example.com/accounts/jdoe/settings); social networks'
// profile URLs name a person (https://instagram.com/alice.smith,
// https://www.tiktok.com/@alice_smith). Both were kept.
func TestAccountsInPaths(t *testing.T) {
	runCases(t, []scrubCase{
		{"GET https://api.example.com/v1/users/48213/avatar failed: 404", "GET https://api.example.com/v1/users/[id]/avatar failed: 404"},
		{"GET https://api.example.com/v1/users/alice.smith/avatar failed: 404", "GET https://api.example.com/v1/users/[id]/avatar failed: 404"},
		{"GET /v1/accounts/jdoe/settings 500", "GET /v1/accounts/[id]/settings 500"},
		{"PUT /api/customers/cus_8f1a9b2c3d/orders", "PUT /api/customers/[id]/orders"},
		{"/api/v2/profile/jdoe1987", "/api/v2/profile/[id]"},
		{"https://example.com/members/anna-berg/posts", "https://example.com/members/[id]/posts"},
		{"https://example.com/users/48213?tab=posts", "https://example.com/users/[id]?tab=posts"},
		{"https://example.com/patients/P-204913#notes", "https://example.com/patients/[id]#notes"},
		{`url="https://api.example.com/user/48213"`, `url="https://api.example.com/user/[id]"`},
		{"https://www.instagram.com/alice.smith/", "https://www.instagram.com/[user]/"},
		{"https://instagram.com/alice.smith", "https://instagram.com/[user]"},
		{"https://twitter.com/jdoe1987/status/1234567890", "https://twitter.com/[user]/status/1234567890"},
		{"https://x.com/jdoe1987", "https://x.com/[user]"},
		{"https://m.facebook.com/alice.smith.58", "https://m.facebook.com/[user]"},
		{"https://t.me/alice_smith", "https://t.me/[user]"},
		{"https://www.linkedin.com/in/jane-doe-8a1b2c3/", "https://www.linkedin.com/in/[user]/"},
		{"https://www.reddit.com/user/throwaway123/comments", "https://www.reddit.com/user/[id]/comments"},
		{"https://www.reddit.com/u/throwaway123", "https://www.reddit.com/u/[id]"},
		{"https://www.tiktok.com/@alice_smith/video/7234", "https://www.tiktok.com/@[user]/video/7234"},
		{"https://medium.com/@alice.smith/my-post-123", "https://medium.com/@[user]/my-post-123"},
		{"https://www.youtube.com/@AliceVlogs", "https://www.youtube.com/@[user]"},
		{"https://mastodon.social/@alice", "https://mastodon.social/@[user]"},
		{"https://mastodon.social/@alice/109876543210", "https://mastodon.social/@[user]/109876543210"},
		{"https://bsky.app/profile/alice.bsky.social", "https://bsky.app/profile/[id]"},
		// a contact's lookup key, made from the contact's name or id
		{"Permission Denial: reading com.android.providers.contacts.ContactsProvider2 uri content://com.android.contacts/contacts/lookup/0n4A616E6520446F65/17 from pid=4242",
			"Permission Denial: reading com.android.providers.contacts.ContactsProvider2 uri content://com.android.contacts/contacts/lookup/[id]/17 from pid=4242"},
	})
	runCases(t, kept(
		// the signed-in user, actions and collections, not accounts
		"GET https://api.example.com/v1/users/me/avatar failed: 404",
		"GET https://api.example.com/v1/users/search?q=x failed",
		"GET /v1/users/{id}/avatar",
		"GET /v1/users/:userId/avatar",
		"POST /v1/users/login",
		"GET /v1/users/",
		"GET /v1/users",
		"https://api.example.com/v1/users/self/settings",
		// Android's and Linux's numbered users, Google's account index
		"/data/user/0/com.example.notes/files/db.sqlite",
		"/data/user_de/0/com.example.notes/shared_prefs",
		"/data/misc/user/0/cacerts-added",
		"/run/user/1000/bus",
		"https://mail.google.com/mail/u/0/#inbox",
		"https://docs.google.com/document/u/1/d/",
		// profile pages that are no one's, scoped npm packages
		"https://www.instagram.com/explore/tags/cats/",
		"https://twitter.com/intent/tweet?text=hi",
		"https://x.com/i/flow/login",
		"https://www.facebook.com/sharer/sharer.php?u=x",
		"https://www.youtube.com/watch?v=dQw4w9WgXcQ",
		"https://www.linkedin.com/in/",
		"https://unpkg.com/@babel/core@7.24.0/lib/index.js",
		"https://registry.npmjs.org/@react-native/metro-config",
		"node_modules/@react-navigation/native/src/NavigationContainer.tsx",
		"https://github.com/square/okhttp/issues/1234",
		// a path with "users" in it that names no account
		"/api/users/count",
		"https://example.com/users/sign_in",
		// a segment too long for an account's name, cut nowhere (it
		// was cut after 128 bytes, inside a character)
		"GET /v1/users/"+strings.Repeat("a", 127)+"\u00e9x/avatar",
		"GET /api/lookup/country",
		"content://com.android.contacts/contacts/17",
		// files' paths
		"/members/anna-berg/posts",
		"at com.example.profile.ProfileFragment.onCreate(app/src/main/java/com/example/profile/ProfileFragment.kt:42)",
		"/Users/Shared/Library/x",
		"file:///data/user/10/com.example.notes/files/notes.db",
	))
}

// TestHandlesInProse: a handle in prose names a person as its profile's
// URL does (see TestAccountsInPaths), and so does the account a log says
// it signed in as; both were kept. A handle after '@' is found when it
// has a digit and three letters (@jdoe1987) or a word before it says it
// is one (mention @jane_doe, by @alice, as @jdoe); the name after "logged
// in as", "signed in as" or "logged in user" is found. Annotations and
// attributes in stack traces and code (@Override, @objc, @MainActor, Swift's
// @callee_guaranteed), asset suffixes (icon@2x), scoped packages, SQL's
// parameters (@p0), broadcast mentions (@here) and roles (as guest)
// stay.
func TestHandlesInProse(t *testing.T) {
	runCases(t, []scrubCase{
		{"Logged in as @jdoe1987", "Logged in as @[user]"},
		{"signed in as jdoe1987", "signed in as [user]"},
		{"mention @jane_doe", "mention @[user]"},
		{"Logged in as jdoe", "Logged in as [user]"},
		{"signed in as Jane Doe, syncing 3 notes", "signed in as [user], syncing 3 notes"},
		{"signed in as jane@example.com", "signed in as [email]"},
		{"authenticated as 'jdoe' via SSO", "authenticated as '[user]' via SSO"},
		{"logged in user jdoe", "logged in user [user]"},
		{"@jdoe1987 liked your note", "@[user] liked your note"},
		{"shared by @alice with you", "shared by @[user] with you"},
		{"cc @jane.doe, @jdoe_1987", "cc @[user], @[user]"},
		{"reply (@jdoe1987): thanks", "reply (@[user]): thanks"},
		{"LOGGED IN AS @JDOE1987", "LOGGED IN AS @[user]"},
		{"<td>@jdoe1987</td> <td>mention @jane_doe</td>", "<td>@[user]</td> <td>mention @[user]</td>"},
		{"open settings/@jdoe1987", "open settings/@[user]"},
		{"https://api.example.com/v1?to=@jdoe1987&x=1", "https://api.example.com/v1?to=@[user]&x=1"},
	})
	runCases(t, kept(
		"@Override",
		"@objc func didTapSave(_ sender: UIButton) crashed in @MainActor closure",
		"@synchronized(self)",
		"@property (nonatomic, strong) NSString *name;",
		"icon@2x.png image @3x",
		"marked as @objc",
		"isolated by @MainActor",
		"mention @everyone, cc @here",
		"https://unpkg.com/@babel/core@7.24.0/lib/index.js",
		"npm ERR! @scope/pkg1@1.0.0",
		`@_silgen_name("swift_foo")`,
		"reabstraction thunk helper from @escaping @callee_guaranteed (@in_guaranteed Foo) -> (@out Bar)",
		"[Parameters=[@p0='?' (DbType = Int32)]",
		"User logged in as expected",
		"signed in as guest",
		"logged in as admin",
		"logged in as root",
		"signed in as a different user",
		"java.lang.Object@6d06d69c",
		"user@host",
		"retry @ 0x1a2b",
		"node_modules/@types/node/index.d.ts",
		"settings/@jane_doe",
	))
}

// TestPersonObjects: crash messages print objects as their toString
// writes them (Kotlin's data classes, Java's IDE-made toString, Swift's
// description), and the object of a user, a customer or an account names
// them by fields that elsewhere name nothing: its id, its handle, and
// its name after ": " (Swift) were kept.
func TestPersonObjects(t *testing.T) {
	runCases(t, []scrubCase{
		{"invalid User(id=48213, name=Jane Doe, email=jane@example.com)", "invalid User(id=[id], name=[id], email=[email])"},
		{"User{id=48213, username='jdoe'}", "User{id=[id], username='[id]'}"},
		{`nil while unwrapping: User(id: 48213, name: "Jane Doe", handle: "@jdoe")`, `nil while unwrapping: User(id: [id], name: "[id]", handle: "[id]")`},
		{"Account [id=48213, type=premium]", "Account [id=[id], type=premium]"},
		{"CustomerEntity(id=c-9981, tier=gold)", "CustomerEntity(id=[id], tier=gold)"},
		{"AppUserDto(id=48213)", "AppUserDto(id=[id])"},
		{"Order(id=123, buyer=UserProfile(id=48213, tags=[a, b], name=Jane Doe))", "Order(id=123, buyer=UserProfile(id=[id], tags=[a, b], name=[id]))"},
		{"device: Device(id=9f1c2e77, model=Pixel 8)", "device: Device(id=[id], model=Pixel 8)"},
		// random case, as the adversarial test writes it
		{"cuStOMEr{Id=1451476089, ACTIve=tRUe}", "cuStOMEr{Id=[id], ACTIve=tRUe}"},
		{"uSEr(ID=u-uy5gp8v5e, plAN=Pro)", "uSEr(ID=[id], plAN=Pro)"},
		{"CUSTOMER(id=48213)", "CUSTOMER(id=[id])"},
		// random case whose capitals look like words that are not there
		{"meMBERDTo(iD=4431, nAmE=Jane Doe)", "meMBERDTo(iD=[id], nAmE=[id])"},
		{"MEMBErdto(id=4431)", "MEMBErdto(id=[id])"},
		{"USERprofile{Id=48213}", "USERprofile{Id=[id]}"},
	})
	runCases(t, kept(
		"Thread(id=12, state=RUNNABLE)",
		"Order(id=123, total=9.99)",
		`Event(id: 7, name: "screen_view")`,
		"Thread 0 name:  Dispatch queue: com.apple.main-thread",
		"pid: 1, tid: 2, name: RenderThread",
		"Users(count=3)",
		"User(id=null)",
		"User(id=)",
		`UserSettings(id: 1, name: "dark")`,
		"ThreadInfo(id=12, state=RUNNABLE)",
		"uSERsETTINGS(id=1)",
	))
}
