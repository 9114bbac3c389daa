// Package consent issues, verifies and withdraws consent tokens, and is
// the pipeline stage that drops every event its batch's token does not
// cover.
//
// # Tokens
//
// A consent token is a compact JWS (RFC 7515, "typ" consent+jwt) signed
// with Ed25519 ("EdDSA", RFC 8037). Its header names the key id ("kid"),
// so keys rotate without downtime and any replica verifies with public
// keys only (KeyRing). Its claims:
//
//	jti    random consent id (128 bits, base64url); never a person or device id
//	aud    the app id
//	scope  space-separated scopes: analytics, crash_reports, location
//	ver    the version of the consent text the user accepted
//	iat    issued at (Unix seconds)
//	exp    expiry (Unix seconds)
//	iss    "consentry"
//
// The token carries no identifier of the person or the device. Tokens are
// long-lived (DefaultTTL, a year): a user withdraws consent by revoking,
// not by waiting. A Verifier caches the claims of tokens that verified, so
// a device's batches cost one signature check per token, not per batch.
//
// # Service
//
// Service implements consentryv1.ConsentService (Grant, Revoke, Status);
// NewHTTPHandler serves the same operations as HTTPS+JSON, with the same
// validation and errors (errors.go maps both).
//
// # Revocation
//
// Revoke records a revocation in the Store (by the SHA-256 of the consent
// id, never the id) before it returns, and adds it to its replica's
// Revocations at once. Every replica refreshes its Revocations every
// RevocationsConfig.Interval, fetching what was recorded since its
// previous refresh minus an Overlap that absorbs clock skew between
// replicas, and refuses ingest (ErrRevocationsStale) while its last
// successful refresh is older than the Bound: so no replica stores events
// of a consent revoked more than Bound ago. Revocations are pruned once
// their token has expired, as it is refused then anyway.
//
// # Erasure
//
// Each App has a Policy. Anonymous apps' rows carry no link to a consent.
// Erasable apps' rows carry ConsentKey, an HMAC of the consent id under a
// server secret. Revoke with erase deletes those rows through Store.Erase
// and returns a Receipt signed with the consent key, which an app or an
// auditor verifies with KeyRing.VerifyReceipt. Batches that passed the
// consent check just before the revocation may still be being stored when
// the erasure runs, so the Service erases the consent's rows a second time
// ServiceConfig.ResweepAfter later (the propagation bound plus the longest
// ingest request), from a goroutine its Run owns.
package consent
