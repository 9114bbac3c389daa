// Package privacyprobe is the instrument of the adversarial privacy test
// (make privacy): it plants identifiers in every string field of ingest
// batches and then looks for them wherever the collector could have put
// them.
//
// A [Probe] is generated from a seed. It walks the descriptor of
// consentryv1.IngestRequest (protoreflect), so every string field, every
// repeated and map field and every oneof branch (each event kind) at every
// depth gets a planted identifier, and a field added to the API later is
// planted without a change here. Each plant is a fresh identifier of one
// [Kind] (emails, phone numbers of many countries, IPv4 and IPv6
// addresses, MACs, IMEIs, advertising ids, ANDROID_IDs, payment cards,
// IBANs, credentials, JWTs, API keys, user names in paths, coordinates,
// values of identifier-named keys) drawn from the seed, so no fixed list
// exists that a detector could be tuned to, rendered in one of many
// [Context]s: after '/', '=', ':', '@' or '#', in brackets or quotes,
// URL-encoded, JSON-escaped, as HTML entities, split by zero-width
// characters, in full-width digits, with no-break spaces, in mixed case,
// across line breaks, in a stack frame, in a URL query. The batches stay
// valid (a consent token with every scope, valid ids, times and enums, and
// names within the characters the collector accepts), so the collector
// accepts the events: a planted value in a dropped event proves nothing,
// and [Probe.Record] keeps what was dropped apart. Batches also carry
// identifiers in forwarding headers, the User-Agent, other headers and gRPC
// metadata, and each connects from its own loopback address.
//
// A [Scanner] then looks for every planted value, and for its normalised
// forms, in text: case-folded and NFKC-normalised (full-width digits,
// no-break spaces), with zero-width characters removed, with URL, JSON,
// ClickHouse and HTML escapes decoded, and, for numbers such as phone
// numbers, cards and IMEIs, with the separators inside a number ignored.
// The caller feeds it every column of every table, logs, spool files and
// server logs; [Report] prints what was planted by kind and context, what
// was found and where, and tells new findings from [KnownGaps].
//
// The package has no knowledge of how the collector stores or logs data;
// its tests drive the real consentryd binary against a real ClickHouse
// (privacyprobe_integration_test.go) and run the pipeline's stages in
// process (probe_test.go).
package privacyprobe
