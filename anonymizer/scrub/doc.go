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
// credentials, JWTs, API keys and other secrets, the user name in a home
// directory path, precise coordinates, and the values of keys that name an
// identifier ("user_id=1234"). Detectors that validate (Luhn, mod 97,
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
// no-break and other Unicode spaces, dashes and quotes, in any case, and
// cards, IBANs and coordinates wrapped over two lines. When a text holds
// any of these, the scanner reads a normalized copy of it and replaces,
// for each finding, the part of the text it came from (see normalize.go).
//
// # Limitations
//
// The detectors trade a few misses and false alarms for crash logs that
// still group:
//
//   - Numbers must have a known shape: a phone number needs a '+', "00", a
//     trunk '0', an area code in parentheses, the 3-3-4 North American
//     grouping or a phone word before it; a grouped card number needs the
//     grouping of cards (4-4-4-4, 4-6-5). Bare digit runs are counts.
//   - A value of a key ends at whitespace unless quoted: in "name: Jane
//     Doe" only "Jane" is replaced. The keys "name", "address", "location",
//     "fingerprint", "uid", "login", "gps" and "mobile" count only as
//     key=value or "key": value, as "name:" heads technical lines of crash
//     reports.
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
// ('%', '\', '&' and bytes beyond ASCII that start something the copy
// changes); only then is the copy built, into buffers the Scrubber reuses.
// It does not allocate when the text holds no identifier: [Scrubber.String]
// then returns its argument itself. Otherwise it builds the result in one
// buffer.
//
// # Guarantees
//
// Scrubbing is idempotent, which the fuzz tests check: scrubbing the
// output again changes nothing, and no detector finds anything in the
// normalized copy of the output. The output is valid UTF-8 if the input
// was, as every finding covers whole characters. A Scrubber is safe for
// concurrent use; its configuration is immutable after [New].
package scrub
