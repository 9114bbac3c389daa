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
// Revoke stamps a revocation, records it in the Store (by the SHA-256 of
// the consent id, never the id) within RevocationsConfig.WriteTimeout, and
// only then returns and adds it to its replica's Revocations. Every
// replica refreshes its Revocations every RevocationsConfig.Interval,
// fetching what was recorded since its previous refresh minus an Overlap
// that absorbs clock skew and slow writes. The Filter drops the batches
// of consents it knows are revoked. Revocations are kept until their
// token expired plus RevocationsConfig.Retain.
//
// # The ship-time gate
//
// Gate is the one check of revocation and erasure after ingest: a spool
// (collector/spool) asks it about every batch just before storing it.
// Admit refuses a batch whose consent was revoked at or before it was
// received (allowing for MaxClockSkew) or whose rows were erased; Horizon
// tells up to which receive time those answers are final. So a replica
// whose Revocations are stale (ClickHouse away) may go on accepting
// batches into its spool: FilterConfig.Gate makes the Filter accept them
// instead of failing closed with ErrRevocationsStale, as it still does
// without a spool. docs/consent.md states the guarantee and its
// assumptions.
//
// # Erasure
//
// Each App has a Policy. Anonymous apps' rows carry no link to a consent.
// Erasable apps' rows carry ConsentKey, an HMAC of the consent id under a
// server secret. Revoke with erase deletes those rows through Store.Erase
// (which logs the erasure) and returns a Receipt signed with the consent
// key, which an app or an auditor verifies with KeyRing.VerifyReceipt.
// The Gate drops spooled batches of erased consents. Batches that passed
// the consent check just before the revocation may still be being stored
// when the erasure runs, so every erasure is swept a second time
// ServiceConfig.ResweepAfter later. Service.Run derives these resweeps
// from the Store's erasures log (Store.UnsweptErasures), not from memory,
// so any replica finishes them after any restart.
package consent
