// Package scrub finds identifiers in free text, such as crash messages,
// stack frames, log lines and attribute values sent by mobile apps, and
// replaces each with a marker naming its kind, e.g. "[email]" or "[ip]".
//
// The surrounding text is kept, so crashes that differ only in the
// identifier still group together:
//
//	sync failed for jane.doe@example.com at 203.0.113.7:443
//	sync failed for [email] at [ip]:443
//
// # Detectors
//
// Each [Kind] is one detector: e-mail addresses, phone numbers, IPv4 and
// IPv6 addresses, UUIDs (IDFA, GAID, IDFV, install ids), Luhn-checked IMEIs
// and payment cards, MAC addresses, mod-97-checked IBANs, HTTP
// credentials and those in a URL (scheme://user:password@host), JWTs, API
// keys and other secrets, the user name in a home directory path or in
// an account's folder of an Android app, the names of a login and its
// groups in id(1)'s output (uid=1000(jane) groups=1000(jane),27(sudo):
// the numbers, and the system's own accounts and groups, stay), a
// handle in prose (@jdoe1987, mention @jane_doe; not annotations such as
// @Override or @MainActor) and the account a log signed in as (signed in
// as jdoe), the owner's name in a device's name (Jane's iPhone, iPhone
// von Anna), street addresses with their house numbers and UK and
// Canadian postcodes (221B Baker Street, Calle Mayor 5, Hauptstraße 12,
// SW1A 1AA; see address.go), precise
// coordinates (decimal, or degrees, minutes and seconds), and the values
// of keys that name an identifier ("user_id=1234", "fcm_token 99625411",
// "gps_lat=48.20849", and all the words of a name's, a place's or a
// postcode's: "locality=Rio de Janeiro"; see [Scrubber.IsIdentifierKey]
// for how keys are read word by word; a Wi-Fi network's name, which is a
// household's, after ssid, and after wifi, network and network name
// where it is not the network's state or type: "connected to network
// 'The Johnsons'", not "wifi: enabled" or "network=wifi"), and a
// referral's or an
// invitation's code (referral_code=JDOE50, and ref, code or invite in the
// query of a link to an invitation, a referral or a sign-up:
// myapp://invite?ref=JDOE2024; elsewhere ref is a git ref or a
// campaign's tag, and stays, as do promotion codes, which everyone a
// campaign reaches shares). Detectors that validate (Luhn, mod 97,
// address syntax) leave numbers that fail the check alone.
//
// The detectors are tuned against realistic crash logs: versions
// ("okhttp/4.12.0.3"), timestamps, counts, line numbers, hex addresses,
// build ids, C++ scopes, asset names ("icon@2x.png") and app folders
// ("/data/user/0/com.example.notes") are left alone. Where a string is
// ambiguous and no context says otherwise, the scrubber errs on the side of
// removing: a dotted quad is an IP address unless its context proves it a
// version (a version word before it, a pre-release suffix, a known
// library's or SDK's product token before its '/', a User-Agent comment
// naming a platform after it), so settings/192.0.2.10 loses its address.
//
// # Encodings
//
// Identifiers are found in the forms text takes on its way into a crash
// log: percent-encoded (jane%40example.com, also twice), as JSON, C and
// JavaScript escapes (\u0040, \x40, \u{40}, and escaped again inside
// JSON), as HTML character references (&#64;, &commat;, &amp;#64;), split
// by invisible characters (zero-width spaces and joiners, soft hyphens,
// bidi controls, tag characters), written in full-width, mathematical or
// enclosed forms, with the digits of other scripts (٠٦٦٤ ١٢٣٤٥٦٧), with
// no-break and other Unicode spaces, dashes and quotes, with '+' for a
// space in a URL's query (?ref=5112+3072+4384+3730), in any case, and
// cards, IBANs and coordinates wrapped over two lines. When a text holds
// any of these, the scanner reads a normalized copy of it and replaces,
// for each finding, the part of the text it came from (see normalize.go).
// A single backslash in a Windows path (C:\Users\jane\river.json)
// separates folders and is not read as an escape.
//
// An identifier glued into a word with underscores, as in file and cache
// names (cache_3d8c0c45-a705-45e0-bf7d-9e95d2b136c1_v2), is found by a
// second reading of the line that holds such a word, with the word's
// underscores read as spaces; keys that underscores join (screen_name,
// user_id) are read whole in the first reading only.
//
// # Limitations
//
// The detectors trade a few misses and false alarms for crash logs that
// still group:
//
//   - Numbers must have a known shape: a phone number needs a '+', "00", a
//     trunk '0', an area code in parentheses, a national grouping (North
//     American 3-3-4, Spanish 3-3-3, Indian 6-5 after a trunk 0, French
//     2-2-2-2-2, Austrian 0664/123 45 67) or a phone word before it; a
//     grouped card number needs the grouping of cards (4-4-4-4, 4-6-5).
//     Runs of 10 or 11 digits without separators that have the shape of a
//     North American, Indian or Brazilian number are phone numbers unless
//     a unit after them or a word before them makes them a count, size,
//     time or code ("2147483648 bytes", "size: 4294967296", "versionCode
//     2026112901"): the scrubber errs on the side of removing. Epoch times
//     in seconds (until 2033) and milliseconds have none of these shapes;
//     other bare digit runs are counts.
//   - A value of a key ends at whitespace unless quoted, or, for a key
//     that names a person, a place, a postcode or a national number, at
//     the first word after it in lower case, a delimiter or the next key:
//     in "display_name: Jane Doe logged in" "Jane Doe" is replaced. The
//     keys "name", "address", "location", "fingerprint", "uid", "login",
//     "gps" and "mobile" count only as key=value or "key": value, as
//     "name:" heads technical lines of crash reports (a key of two words
//     that ends in one counts: "display name: Jane Doe", "network name:
//     Home"). After "network" only a quoted name counts, after "wifi:"
//     only one that looks like an id (JohnsHome-5G), so "Network: Smith
//     Family WiFi" keeps the name. After a key and a blank (fcm_token
//     9962541186) only a quoted value or one that looks like an id, with
//     a digit, a '-' or '_' inside or capitals not in the pattern of
//     code, is replaced, so "token expired" stays.
//   - A street address needs its house number and, in English, a street
//     type that is no common word of other text (Street, Road, Avenue, not
//     Way or Place); a name in lower case must hold no word of prose. An
//     address broken over lines keeps its parts, as do postcodes of
//     countries other than the UK, Canada and the US on their own
//     (numbers that only a key or a street address before them tells
//     apart) and people's names in prose.
//   - An ANDROID_ID-shaped run of 16 hex digits is kept only where a
//     crash dump puts pointers: after a register name or "pc"
//     ("x4  0000007fd3c2a4c8", "#00 pc 000000000004f7c4"), or in the first
//     three columns of a memory dump's line, which starts with a
//     user-space address whose upper 16 bits are zero
//     ("    0000007fd3c2a490 b400007a9e1f3c50 6f7db9e99000ecfd"). Both
//     contexts are words no other finding replaces, so scrubbing the
//     output again keeps the same runs.
//   - A random secret needs 32 or more bytes with upper- and lower-case
//     letters and three digits; shorter ones are only found after a key or
//     an authentication scheme, or in a known shape.
//   - Two precise decimals that are not coordinates, such as timings
//     ("12.345, 67.891"), are replaced; coordinates with fewer than three
//     decimals (about 100 m) are kept.
//   - Identifiers are made of ASCII, after the normalized copy folded what
//     it can to ASCII; letters of other scripts that look like Latin ones
//     (Cyrillic а) are not folded, as they are words of those scripts. An
//     e-mail address's local part and domain, and a user name in a path,
//     may hold any letters.
//   - Base64 is not decoded: long encoded values are secrets by their
//     shape, short ones are not looked into.
//   - A phone number broken over two lines is not read as one; an escape
//     right after a path's backslash (C:\tmp\\u0031) is read as an escape
//     inside an escaped string, which joins the value to the folder name.
//
// # Performance
//
// A [Scrubber] is a hand-written scanner that reads the text once, and
// long runs that may be secrets twice. It splits the text into words of
// ASCII letters, digits and underscores, looks at each word's shape and
// the bytes around it, and runs only the detectors that shape allows. The
// bytes between words tell it whether the text needs the normalized copy
// ('%', '\', '&', '+' and bytes beyond ASCII that start something the
// copy changes); only then is the copy built, into buffers the Scrubber
// reuses. A word glued with underscores costs a second reading of its
// line only. It does not allocate when the text holds no identifier:
// [Scrubber.String] then returns its argument itself. Otherwise it builds
// the result in one buffer.
//
// # Guarantees
//
// Scrubbing is idempotent, which the fuzz tests check: scrubbing the
// output again changes nothing, and no detector finds anything in the
// normalized copy of the output. The output is valid UTF-8 if the input
// was, as every finding covers whole characters. A Scrubber is safe for
// concurrent use; its configuration is immutable after [New].
package scrub
