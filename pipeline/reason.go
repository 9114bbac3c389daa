package pipeline

import (
	consentryv1 "github.com/consentry/consentry/proto/consentry/v1"
)

// Reason is why an event was not stored. Per-event reasons mirror the API's
// DropReason; batch-level rejections (the whole request refused with a gRPC
// status) have reasons of their own. The string form is what the rejects
// table stores.
type Reason string

// Batch-level rejection reasons: the request was refused as a whole.
const (
	// ReasonBatchMalformed: the request could not be decoded or lacks a
	// required batch field.
	ReasonBatchMalformed Reason = "batch_malformed"
	// ReasonBatchTooLarge: the request exceeds a batch-level limit.
	ReasonBatchTooLarge Reason = "batch_too_large"
	// ReasonStorageUnavailable: storage failed before the rows were durable.
	ReasonStorageUnavailable Reason = "storage_unavailable"
	// ReasonOverloaded: the collector had no room for the rows (its
	// writer's or spool's bound); the client retries later.
	ReasonOverloaded Reason = "overloaded"
	// ReasonSpoolFull: the spool held its cap of batches not yet shipped
	// to ClickHouse; the client retries later.
	ReasonSpoolFull Reason = "spool_full"
	// ReasonRateLimited: the app sent more events than its rate limit.
	ReasonRateLimited Reason = "rate_limited"
)

// DropReason converts an API drop reason to its Reason.
func DropReason(r consentryv1.DropReason) Reason {
	switch r {
	case consentryv1.DropReason_DROP_REASON_CONSENT_MISSING:
		return "consent_missing"
	case consentryv1.DropReason_DROP_REASON_CONSENT_INVALID:
		return "consent_invalid"
	case consentryv1.DropReason_DROP_REASON_CONSENT_EXPIRED:
		return "consent_expired"
	case consentryv1.DropReason_DROP_REASON_CONSENT_REVOKED:
		return "consent_revoked"
	case consentryv1.DropReason_DROP_REASON_CONSENT_WRONG_APP:
		return "consent_wrong_app"
	case consentryv1.DropReason_DROP_REASON_CONSENT_SCOPE:
		return "consent_scope"
	case consentryv1.DropReason_DROP_REASON_UNKNOWN_KIND:
		return "unknown_kind"
	case consentryv1.DropReason_DROP_REASON_INVALID_ENUM:
		return "invalid_enum"
	case consentryv1.DropReason_DROP_REASON_INVALID_FIELD:
		return "invalid_field"
	case consentryv1.DropReason_DROP_REASON_TOO_LARGE:
		return "too_large"
	case consentryv1.DropReason_DROP_REASON_TOO_OLD:
		return "too_old"
	case consentryv1.DropReason_DROP_REASON_IN_FUTURE:
		return "in_future"
	case consentryv1.DropReason_DROP_REASON_DUPLICATE:
		return "duplicate"
	default:
		return "unspecified"
	}
}
